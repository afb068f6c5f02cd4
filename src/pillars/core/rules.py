"""Row-level rules that the pipeline applies to training data and serving applies to new rows.

Kept free of pandas I/O, pandera and scikit-learn, so the model service imports only what it runs.
"""

from collections.abc import Mapping

import numpy as np

CASE_FOLDS = {"lower": str.lower, "upper": str.upper, "keep": str}


def outside(values: object, low: float | None, high: float | None) -> np.ndarray:
    """Rows whose value is below `low` or above `high` (missing values are never outside)."""
    numbers = np.asarray(values, dtype="float64")
    mask = np.zeros(len(numbers), dtype=bool)
    if low is not None:
        mask |= numbers < low
    if high is not None:
        mask |= numbers > high
    return mask


def apply_outlier_rule(
    values: object, action: str, bounds: tuple[float | None, float | None]
) -> tuple[np.ndarray, np.ndarray]:
    """The values after an outlier rule (clipped for `clip`) and the mask of outliers (the flag)."""
    numbers = np.asarray(values, dtype="float64")
    low, high = bounds
    mask = outside(numbers, low, high)
    if action == "clip":
        numbers = np.clip(numbers, -np.inf if low is None else low, np.inf if high is None else high)
    return numbers, mask


def spelling(value: str, case: str, aliases: Mapping[str, str]) -> str:
    """The canonical spelling of a category: trimmed, case-folded, then mapped through the aliases."""
    folded = CASE_FOLDS[case](value.strip())
    return aliases.get(folded, folded)


def folded_aliases(aliases: Mapping[str, str], case: str) -> dict[str, str]:
    """Aliases with both sides trimmed and case-folded, so they match folded spellings."""
    fold = CASE_FOLDS[case]
    return {fold(spelling.strip()): fold(canonical.strip()) for spelling, canonical in aliases.items()}
