"""The gate's statistics (pillars.training.evidence): DeLong's variance equals the brute-force one, the
bootstrap's resampled metrics equal the metrics on the resampled rows, intervals cover known differences,
verdicts follow the tests, Holm matches a hand example, rows that cannot decide give `insufficient`, and a
2,000-resample bootstrap on 10,000 rows is fast."""

import time

import numpy as np
import pytest

from pillars.core.metrics import METRICS, measure
from pillars.core.params import EvidenceCheck
from pillars.training.evidence import (
    BETTER,
    INSUFFICIENT,
    NOT_WORSE,
    WORSE,
    Comparison,
    compare,
    delong,
    holm,
    mcnemar_mid_p,
    meets,
    resample_counts,
    resampled,
    verdict,
    with_holm,
)


def scores_with_signal(rows: int, strength: float, seed: int, ties: bool = False) -> tuple[np.ndarray, ...]:
    """A binary truth and two models' probabilities: the second is the first plus noise (paired, correlated)."""
    generator = np.random.default_rng(seed)
    y = generator.integers(0, 2, rows)
    first = 1 / (1 + np.exp(-(strength * (2 * y - 1) + generator.normal(size=rows))))
    second = 1 / (1 + np.exp(-(np.log(first / (1 - first)) + generator.normal(scale=0.8, size=rows))))
    if ties:
        first, second = np.round(first, 1), np.round(second, 1)
    return y, first, second


def brute_force_delong(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """DeLong's covariance from the O(n^2) comparisons of every positive with every negative."""
    x, z = scores[:, y == 1], scores[:, y == 0]
    psi = (x[:, :, None] > z[:, None, :]) + 0.5 * (x[:, :, None] == z[:, None, :])
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)
    return np.cov(v10) / x.shape[1] + np.cov(v01) / z.shape[1]


@pytest.mark.parametrize("ties", [False, True])
def test_delong_matches_the_brute_force_variance(ties: bool) -> None:
    y, first, second = scores_with_signal(300, 1.0, seed=3, ties=ties)
    scores = np.vstack([first, second])
    aucs, covariance = delong(y, scores)
    np.testing.assert_allclose(covariance, brute_force_delong(y, scores), rtol=0, atol=1e-9)
    assert aucs[0] == pytest.approx(measure("roc_auc", "binary", y, first).value, abs=1e-12)


@pytest.mark.parametrize(
    ("task", "metric"),
    [(task, metric) for task in ("binary", "regression") for metric in METRICS[task]]
    + [("multiclass", metric) for metric in METRICS["multiclass"]],
)
def test_resampled_metrics_equal_the_metric_on_the_resampled_rows(task: str, metric: str) -> None:
    generator = np.random.default_rng(5)
    rows = 200
    if task == "regression":
        y = generator.normal(size=rows)
        scores = y + generator.normal(size=rows)
    elif task == "binary":
        y, scores, _ = scores_with_signal(rows, 1.0, seed=5, ties=True)
    else:
        y = generator.integers(0, 3, rows)
        scores = generator.dirichlet(np.ones(3), rows)
    (counts,) = resample_counts(rows, EvidenceCheck(resamples=10, seed=2))
    assert counts.shape == (10, rows) and (counts.sum(axis=1) == rows).all()
    values = resampled(metric, task, y, scores, 0.4)(counts)
    drawn = [np.repeat(np.arange(rows), row) for row in counts]
    expected = [measure(metric, task, y[rows], scores[rows], 0.4).value for rows in drawn]
    np.testing.assert_allclose(values, np.array(expected, dtype="float64"), rtol=1e-9, atol=1e-12)


def test_the_interval_covers_a_known_difference() -> None:
    """A candidate that is right where the reference is wrong on a known share of rows: the accuracy
    difference is that share, and the interval covers it; the same models swapped give the mirror image."""
    generator = np.random.default_rng(7)
    rows = 2_000
    y = generator.integers(0, 2, rows)
    reference = np.where(generator.random(rows) < 0.8, y, 1 - y).astype("float64")
    candidate = np.where(generator.random(rows) < 0.5, y, reference).astype("float64")
    settings = EvidenceCheck(resamples=1_000, seed=1)
    result = compare("accuracy", "binary", y, candidate, reference, settings)
    true_difference = np.mean(candidate == y) - np.mean(reference == y)
    assert result.difference == pytest.approx(true_difference)
    assert result.interval[0] < true_difference < result.interval[1]
    assert result.verdict == BETTER and result.test.startswith("mcnemar")
    swapped = compare("accuracy", "binary", y, reference, candidate, settings)
    assert swapped.verdict == WORSE


def test_identical_models_are_not_worse_and_a_clearly_better_one_is_better() -> None:
    y, strong, weak = scores_with_signal(3_000, 1.5, seed=11)
    settings = EvidenceCheck(resamples=500, seed=0, margin=0.005)
    same = compare("roc_auc", "binary", y, strong, strong, settings)
    assert (same.verdict, same.difference, same.interval) == (NOT_WORSE, 0.0, (0.0, 0.0))
    better = compare("roc_auc", "binary", y, strong, weak, settings)
    assert better.verdict == BETTER and better.test == "delong" and better.interval[0] > 0
    assert compare("roc_auc", "binary", y, weak, strong, settings).verdict == WORSE
    # a loss metric: lower is better, the verdict follows
    assert compare("log_loss", "binary", y, strong, weak, settings).verdict == BETTER


def test_a_loss_within_the_margin_is_not_worse_and_one_shown_beyond_it_is_worse() -> None:
    generator = np.random.default_rng(12)
    y = generator.normal(size=20_000)
    reference = y + generator.normal(size=len(y))
    slightly = reference + 0.05 * generator.normal(size=len(y))  # mae about 0.001 larger
    clearly = reference + 0.5 * generator.normal(size=len(y))  # mae about 0.1 larger
    settings = EvidenceCheck(resamples=300, margin=0.02)
    assert compare("mae", "regression", y, slightly, reference, settings).verdict == NOT_WORSE
    worse = compare("mae", "regression", y, clearly, reference, settings)
    assert worse.verdict == WORSE and worse.interval[0] > 0.02, "mae: higher is worse, beyond the margin"


def test_better_needs_a_gain_beyond_min_gain() -> None:
    """A real gain smaller than `min_gain` (what a seed-only retrain reaches) is `not worse`, not `better`."""
    y, strong, weak = scores_with_signal(3_000, 1.5, seed=11)
    for metric in ("roc_auc", "log_loss", "accuracy"):
        found = compare(metric, "binary", y, strong, weak, EvidenceCheck(resamples=300, min_gain=0.0))
        assert found.verdict == BETTER, metric
        gain = abs(found.difference)
        beyond = compare(metric, "binary", y, strong, weak, EvidenceCheck(resamples=300, min_gain=2 * gain))
        assert beyond.verdict == NOT_WORSE, metric


def test_verdicts_and_requirements() -> None:
    assert verdict(0.01, 0.99, level=0.025) == BETTER
    assert verdict(0.3, 0.6, level=0.025) == NOT_WORSE, (
        "neither shown: no evidence of a loss beyond the margin"
    )
    assert verdict(0.99, 0.01, level=0.025) == WORSE
    y, strong, weak = scores_with_signal(3_000, 1.5, seed=11)
    settings = EvidenceCheck(resamples=200)
    better = compare("roc_auc", "binary", y, strong, weak, settings)
    assert meets(better, "better") and meets(better, "not_worse") and meets(better, "any")
    worse = compare("roc_auc", "binary", y, weak, strong, settings)
    assert meets(worse, "not_worse") is False and meets(worse, "any") is True


def test_rows_that_cannot_decide_are_insufficient() -> None:
    y, first, second = scores_with_signal(500, 1.0, seed=2)
    settings = EvidenceCheck(resamples=200, min_rows=100)
    few = compare("roc_auc", "binary", y[:50], first[:50], second[:50], settings)
    assert few.verdict == INSUFFICIENT and "fewer than 100 rows" in few.reason
    one_class = compare("roc_auc", "binary", np.ones(200, dtype="int64"), first[:200], second[:200], settings)
    assert one_class.verdict == INSUFFICIENT and "one class" in one_class.reason
    assert meets(one_class, "better") is None and one_class.report()["verdict"] == INSUFFICIENT
    rare = np.zeros(300, dtype="int64")
    rare[0] = 1  # one positive: most resamples have none, so ROC AUC is mostly undefined
    sparse = compare("roc_auc", "binary", rare, first[:300], second[:300], settings)
    assert sparse.verdict == INSUFFICIENT and "resamples" in sparse.reason


def test_mcnemar_mid_p_matches_a_hand_example() -> None:
    # 8 wins and 2 losses among 10 disagreements: P(X >= 8) - P(X = 8) / 2 for X ~ Binomial(10, 1/2)
    candidate = np.array([True] * 8 + [False] * 2 + [True] * 5)
    reference = np.array([False] * 8 + [True] * 2 + [True] * 5)
    assert mcnemar_mid_p(candidate, reference) == pytest.approx((56 - 45 / 2) / 1024)
    assert mcnemar_mid_p(reference, reference) == 0.5  # no disagreement: no evidence either way


def test_holm_matches_a_hand_example() -> None:
    # sorted 0.01, 0.02, 0.03, 0.04 times 4, 3, 2, 1 -> 0.04, 0.06, 0.06 (monotone), 0.06
    assert holm([0.03, None, 0.01, 0.04, 0.02]) == pytest.approx([0.06, None, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.9]) == [1.0, 1.0]  # 2 x 0.5 caps at 1; the larger p never gets a smaller value


def test_holm_across_slices_can_take_back_a_verdict() -> None:
    """A difference significant in one slice alone is not, once the other slices are counted; a slice with
    too few rows is not counted and stays insufficient."""
    settings = EvidenceCheck(margin=0.01)
    alone = Comparison("roc_auc", 500, BETTER, 0.9, 0.88, 0.02, (0.001, 0.04), "delong", 0.01, 0.99)
    harm = Comparison("roc_auc", 500, WORSE, 0.8, 0.9, -0.1, (-0.2, -0.05), "delong", 0.99, 0.005)
    flat = Comparison("roc_auc", 500, NOT_WORSE, 0.9, 0.9, 0.0, (-0.005, 0.005), "delong", 0.5, 0.5)
    few = Comparison("roc_auc", 20, INSUFFICIENT, reason="fewer than 100 rows (20)")
    adjusted = with_holm({"a": alone, "b": harm, "c": flat, "d": few}, settings)
    assert adjusted["a"].p_better == pytest.approx(0.03) and adjusted["a"].verdict == NOT_WORSE
    assert adjusted["b"].p_worse == pytest.approx(0.015) and adjusted["b"].verdict == WORSE
    assert adjusted["c"].verdict == NOT_WORSE and adjusted["d"] == few


def test_a_large_bootstrap_is_fast() -> None:
    y, first, second = scores_with_signal(10_000, 1.0, seed=9)
    start = time.perf_counter()
    result = compare("roc_auc", "binary", y, first, second, EvidenceCheck(resamples=2_000, seed=0))
    assert time.perf_counter() - start < 10
    assert result.verdict == BETTER
