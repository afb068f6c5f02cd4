"""Drift statistics: quiet on samples of one distribution, loud on a shift, and PSI's basic properties."""

import numpy as np
import pytest

from pillars.core.params import DriftLimits
from pillars.monitoring.drift import OTHER_BIN, categorical_drift, numeric_drift, psi

LIMITS = DriftLimits()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(3)


def test_psi_is_zero_for_equal_shares_and_grows_with_the_difference() -> None:
    even = np.full(4, 0.25)
    assert psi(even, even) == 0
    assert 0 < psi(even, np.array([0.3, 0.2, 0.25, 0.25])) < psi(even, np.array([0.7, 0.1, 0.1, 0.1]))


def test_numeric_samples_of_one_distribution_do_not_drift(rng: np.random.Generator) -> None:
    reference, current = rng.normal(40, 12, 30_000), rng.normal(40, 12, 5_000)
    drift, distribution = numeric_drift(reference, current, 10, LIMITS)
    assert not drift.drifted
    assert drift.psi < 0.02 and drift.distance < 0.05
    assert (
        len(distribution.bins) == len(distribution.reference) == len(distribution.current) == 10 + 1
    )  # ten quantile bins and "missing"
    assert sum(distribution.reference) == pytest.approx(1)


def test_a_shifted_numeric_column_drifts_and_names_its_statistics(rng: np.random.Generator) -> None:
    drift, _ = numeric_drift(rng.normal(40, 12, 30_000), rng.normal(48, 12, 5_000), 10, LIMITS)
    assert drift.drifted
    assert (drift.kind, drift.test, drift.distance_name) == ("numeric", "ks", "wasserstein")
    assert drift.p_value < 1e-10 and drift.psi > LIMITS.psi and drift.distance > LIMITS.wasserstein


def test_missing_values_are_a_bin_of_their_own(rng: np.random.Generator) -> None:
    current = rng.normal(0, 1, 1_000)
    current[:500] = np.nan
    drift, distribution = numeric_drift(rng.normal(0, 1, 10_000), current, 10, LIMITS)
    assert distribution.bins[-1] == "missing" and distribution.current[-1] == pytest.approx(0.5)
    assert drift.psi > LIMITS.psi  # half the rows moved to the missing bin
    assert not drift.drifted  # but the values that are there are the same distribution


def test_a_significant_but_tiny_difference_is_not_drift(rng: np.random.Generator) -> None:
    """Hundreds of thousands of rows make any difference significant; the effect size must matter too."""
    drift, _ = numeric_drift(rng.normal(0, 1, 300_000), rng.normal(0.02, 1, 300_000), 10, LIMITS)
    assert drift.p_value < LIMITS.p_value
    assert not drift.drifted


def test_categorical_shares_same_and_shifted(rng: np.random.Generator) -> None:
    categories = np.array(["a", "b", "c"], dtype=object)
    reference = rng.choice(categories, 20_000, p=[0.6, 0.3, 0.1])
    same, _ = categorical_drift(reference, rng.choice(categories, 3_000, p=[0.6, 0.3, 0.1]), LIMITS)
    moved, _ = categorical_drift(reference, rng.choice(categories, 3_000, p=[0.2, 0.3, 0.5]), LIMITS)
    assert not same.drifted
    assert moved.drifted and moved.test == "chi-square" and moved.distance_name == "jensen_shannon"


def test_a_category_the_reference_never_had_lands_in_other_and_drifts(rng: np.random.Generator) -> None:
    reference = rng.choice(np.array(["a", "b"], dtype=object), 10_000)
    current = np.where(rng.random(2_000) < 0.4, "new", rng.choice(np.array(["a", "b"], dtype=object), 2_000))
    drift, distribution = categorical_drift(reference, current.astype(object), LIMITS)
    assert distribution.current[distribution.bins.index(OTHER_BIN)] == pytest.approx(0.4, abs=0.05)
    assert drift.drifted


def test_no_current_values_gives_no_test_and_no_drift() -> None:
    drift, _ = numeric_drift(np.arange(100.0), np.array([np.nan, np.nan]), 10, LIMITS)
    assert drift.p_value is None and not drift.drifted
