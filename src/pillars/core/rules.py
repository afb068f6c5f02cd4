"""Row-level rules that the pipeline applies to training data and serving applies to new rows.

Kept free of pandas I/O, pandera and scikit-learn, so the model service imports only what it runs.
"""

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

CASE_FOLDS: dict[str, Callable[[str], str]] = {"lower": str.lower, "upper": str.upper, "keep": str}


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


DATETIME_UNIT = "datetime64[us]"
EPOCH = np.datetime64("1970-01-01T00:00:00", "us")
MICROSECONDS_PER_DAY = 86_400_000_000
DATETIME_KINDS = frozenset({"datetime", "datetime64", "date"})  # pandas' names for datetime objects
CALENDAR_PARTS = ("year", "month", "day", "day_of_week", "day_of_year")  # + hour when times are carried


def parse_datetimes(values: object, date_format: str | None) -> np.ndarray:
    """Dates and times as naive UTC datetime64 (NaT for missing or unparsable): text in the schema's format
    or in ISO 8601 (unambiguous, so always accepted too), offsets converted to UTC, datetime values kept."""
    series = pd.Series(values)
    if series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) in DATETIME_KINDS:
        series = pd.to_datetime(series, utc=True)
    if pd.api.types.is_datetime64_any_dtype(series):
        parsed = series.dt.tz_convert("UTC").dt.tz_localize(None) if series.dt.tz is not None else series
        return np.asarray(parsed.to_numpy(dtype=DATETIME_UNIT))
    text = series.astype("str").mask(series.isna())
    parsed = pd.to_datetime(text, format=date_format or "ISO8601", errors="coerce", utc=True)
    if date_format not in (None, "ISO8601"):
        retry = parsed.isna() & text.notna()
        if retry.any():
            parsed = parsed.mask(
                retry, pd.to_datetime(text[retry], format="ISO8601", errors="coerce", utc=True)
            )
    return np.asarray(parsed.dt.tz_localize(None).to_numpy(dtype=DATETIME_UNIT))


def calendar_names(column: str, with_time: bool) -> list[str]:
    """The names of the features derived from a datetime column."""
    parts = [*CALENDAR_PARTS, *(["hour"] if with_time else []), "elapsed_days"]
    return [f"{column}_{part}" for part in parts]


def calendar_features(column: str, values: np.ndarray, with_time: bool) -> dict[str, np.ndarray]:
    """Calendar parts of parsed datetimes (year, month, day of month, day of week from Monday = 0, day of
    year, hour when the column carries times) and the days elapsed since 1970-01-01, as floats (NaN where
    the date is missing), named as `calendar_names` says."""
    moments = np.asarray(values, dtype=DATETIME_UNIT)
    index = pd.DatetimeIndex(moments)
    parts = [*CALENDAR_PARTS, *(["hour"] if with_time else [])]
    features = {
        f"{column}_{part}": getattr(index, part).to_numpy(dtype="float64", na_value=np.nan) for part in parts
    }
    elapsed = (moments - EPOCH).astype("int64") / MICROSECONDS_PER_DAY
    features[f"{column}_elapsed_days"] = np.where(np.isnat(moments), np.nan, elapsed)
    return features
