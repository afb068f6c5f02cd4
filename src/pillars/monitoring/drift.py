"""Drift statistics of one column, reference vs current (scipy): a test, PSI and a distance.

A column drifts when the test is significant AND an effect size is over its threshold. Significance alone
flags trivial differences once thousands of rows are logged; effect size alone flags noise in small
samples. Numeric columns: Kolmogorov-Smirnov, PSI on the reference's quantile bins, and the Wasserstein
distance in reference standard deviations. Categorical columns: chi-square on the contingency table, PSI
and the Jensen-Shannon distance (base 2, so within [0, 1]) on category shares.
"""

import itertools
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from pillars.core.params import DriftLimits

MISSING_BIN = "missing"
OTHER_BIN = "(other)"
SHARE_FLOOR = 1e-4  # PSI of an empty bin would be infinite: shares are floored at this
MAX_CATEGORY_BINS = 20  # categorical bins shown and tested; rarer categories share OTHER_BIN


@dataclass(frozen=True)
class ColumnDrift:
    kind: str  # numeric | categorical
    test: str
    p_value: float | None  # None: no current values to test
    psi: float
    distance: float | None
    distance_name: str
    drifted: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Distribution:
    """The binned shares the PSI is computed on, for the report's plots."""

    kind: str
    bins: list[str]
    reference: list[float]
    current: list[float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros(len(counts))


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins."""
    expected = np.maximum(reference, SHARE_FLOOR)
    actual = np.maximum(current, SHARE_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _rounded(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.6g}")


def _verdict(
    kind: str,
    test: str,
    p_value: float | None,
    index: float,
    distance: float | None,
    distance_name: str,
    distance_limit: float,
    thresholds: DriftLimits,
) -> ColumnDrift:
    """Drifted: the test is significant and the PSI or the distance is over its threshold."""
    drifted = (
        p_value is not None
        and distance is not None
        and p_value < thresholds.p_value
        and (index >= thresholds.psi or distance >= distance_limit)
    )
    return ColumnDrift(
        kind, test, _rounded(p_value), _rounded(index), _rounded(distance), distance_name, bool(drifted)
    )


def _edge(value: float) -> str:
    return f"{value:.4g}"


def numeric_drift(
    reference: np.ndarray, current: np.ndarray, bins: int, thresholds: DriftLimits
) -> tuple[ColumnDrift, Distribution]:
    """Drift of a numeric column (NaN = missing: its own bin for PSI, left out of the test and distance)."""
    reference = np.asarray(reference, dtype="float64")
    current = np.asarray(current, dtype="float64")
    present_reference = reference[~np.isnan(reference)]
    present_current = current[~np.isnan(current)]
    edges = np.unique(np.quantile(present_reference, np.linspace(0, 1, bins + 1)[1:-1]))
    labels = (
        [f"(-inf, {_edge(edges[0])}]"]
        + [f"({_edge(low)}, {_edge(high)}]" for low, high in itertools.pairwise(edges)]
        + [f"({_edge(edges[-1])}, inf)", MISSING_BIN]
    )

    def binned(values: np.ndarray) -> np.ndarray:
        missing = np.isnan(values)
        counts = np.bincount(np.searchsorted(edges, values[~missing], side="left"), minlength=len(edges) + 1)
        return shares(np.append(counts, missing.sum()).astype("float64"))

    reference_shares, current_shares = binned(reference), binned(current)
    index = psi(reference_shares, current_shares)
    if len(present_current) and len(present_reference):
        p_value = float(stats.ks_2samp(present_reference, present_current).pvalue)
        spread = float(present_reference.std()) or 1.0
        distance: float | None = (
            float(stats.wasserstein_distance(present_reference, present_current)) / spread
        )
    else:
        p_value = distance = None
    return (
        _verdict(
            "numeric", "ks", p_value, index, distance, "wasserstein", thresholds.wasserstein, thresholds
        ),
        Distribution("numeric", labels, reference_shares.round(6).tolist(), current_shares.round(6).tolist()),
    )


def categorical_drift(
    reference: np.ndarray, current: np.ndarray, thresholds: DriftLimits
) -> tuple[ColumnDrift, Distribution]:
    """Drift of a categorical column (None/NaN = missing). The most frequent reference categories get a bin
    each; rarer ones and categories the reference never had share one, so a new category still shows."""
    reference_values = pd.Series(reference, dtype=object)
    current_values = pd.Series(current, dtype=object)
    counts = reference_values.value_counts(dropna=True)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    ordered = [value for value, _ in ranked[:MAX_CATEGORY_BINS]]
    labels = [str(value) for value in ordered] + [OTHER_BIN, MISSING_BIN]

    def counted(values: pd.Series) -> np.ndarray:
        missing = values.isna().to_numpy()
        codes = pd.Index(ordered, dtype=object).get_indexer(values[~missing])  # -1: not a frequent category
        counts = np.bincount(np.where(codes < 0, len(ordered), codes), minlength=len(ordered) + 1)
        return np.append(counts, missing.sum()).astype("float64")

    reference_counts, current_counts = counted(reference_values), counted(current_values)
    reference_shares, current_shares = shares(reference_counts), shares(current_counts)
    index = psi(reference_shares, current_shares)
    if current_counts.sum() and reference_counts.sum():
        table = np.vstack([reference_counts, current_counts])
        table = table[:, table.sum(axis=0) > 0]
        p_value = float(stats.chi2_contingency(table).pvalue) if table.shape[1] > 1 else 1.0
        distance: float | None = float(jensenshannon(reference_shares, current_shares, base=2))
    else:
        p_value = distance = None
    return (
        _verdict(
            "categorical",
            "chi-square",
            p_value,
            index,
            distance,
            "jensen_shannon",
            thresholds.jensen_shannon,
            thresholds,
        ),
        Distribution(
            "categorical", labels, reference_shares.round(6).tolist(), current_shares.round(6).tolist()
        ),
    )
