"""What a first look at a table says about it: the task, its placeholders, and the columns a model should not
use (identifiers, free text, constants, leaks), which columns to slice by, and whether a date orders the
rows. Pure functions of a DataFrame; `pillars.init.proposal` turns the profile into params."""

import itertools
import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from pillars.core.rules import parse_datetimes
from pillars.core.schema import date_format

Task = Literal["binary", "multiclass", "regression"]

# Text that means "no value" in the wild; pandas already reads "", "NA", "N/A", "null", "NaN" and the like
# as missing from CSV, these are the ones it keeps as text
PLACEHOLDER_TOKENS = ("?", "-", "--", "na", "n/a", "null", "none", "missing", "unknown", "nan", "#n/a", ".")
ALWAYS_PLACEHOLDERS = frozenset({"?", "n/a", "null", "#n/a", "nan"})  # never a real category
MAX_CLASSES_OF_NUMBERS = 10  # a numeric target with more distinct values is a regression target
IDENTIFIER_NAME = re.compile(r"(^|[^a-z])(id|uuid|guid|key|index|row)([^a-z]|$)", re.IGNORECASE)
FREE_TEXT_WORDS = 4  # mean words per value from which a many-valued text column is free text
FREE_TEXT_DISTINCT_SHARE = 0.3
LEAK_SCORE = 0.99  # one column alone reaching this (accuracy, or R²) predicts the target too well
SUM_COLUMNS = 3  # numeric columns adding up to a regression target are looked for in sets up to this size
PROFILE_ROWS = 20_000  # rows looked at for the costly checks (leakage), drawn with a fixed seed
SLICE_CATEGORIES = (2, 8)  # a slice column has this many categories
MAX_SLICE_COLUMNS = 3
ORDERED_SHARE = 0.95  # a date orders the rows when this share of consecutive rows do not go back in time


@dataclass(frozen=True)
class Profile:
    """The findings, each with its reason, for `pillars.init.proposal` and for the person reviewing it."""

    task: Task
    labels: list[str]  # classification: the target's labels, most frequent first
    positive_label: str | None
    placeholders: list[str]
    drops: dict[str, str]  # column -> why a model should not use it
    slices: list[str]
    time_column: str | None  # the datetime column that orders the rows, if one does
    dates: dict[str, str | None] = field(default_factory=dict)  # datetime columns -> their text format
    notes: list[str] = field(default_factory=list)  # what a person should review
    non_negative_target: bool = False  # regression: a target never below 0 (a count, an amount)
    target_std: float | None = None  # regression: the target's standard deviation (the scale of RMSE)


def placeholders(frame: pd.DataFrame) -> list[str]:
    """Tokens used for "no value": the unambiguous ones wherever they occur, and any token that stands
    among numbers in a column otherwise numeric."""
    found: set[str] = set()
    for name in frame.columns:
        values = frame[name]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        text = values.dropna().astype("str")
        stripped = text.str.strip()
        tokens = stripped[stripped.str.lower().isin(PLACEHOLDER_TOKENS) | (stripped == "")]
        if tokens.empty:
            continue
        others = text[~text.index.isin(tokens.index)]
        numeric = len(others) > 0 and pd.to_numeric(others, errors="coerce").notna().all()
        found |= {
            token for token in tokens.unique() if numeric or token.strip().lower() in ALWAYS_PLACEHOLDERS
        }
    return sorted(found)


def infer_task(target: pd.Series) -> Task:
    """Two labels: binary; a few labels (text, or up to MAX_CLASSES_OF_NUMBERS integers): multiclass;
    other numbers: regression."""
    present = target.dropna()
    distinct = present.nunique()
    if distinct == 2:
        return "binary"
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.notna().all() and len(present):
        whole = bool(np.all(np.mod(numbers.to_numpy(dtype="float64"), 1) == 0))
        return "multiclass" if whole and distinct <= MAX_CLASSES_OF_NUMBERS else "regression"
    return "multiclass"


def class_labels(target: pd.Series) -> list[str]:
    """The target's labels as text, most frequent first (ties by label)."""
    counts = target.dropna().astype("str").value_counts()
    return sorted(counts.index, key=lambda label: (-counts[label], label))


def identifiers(frame: pd.DataFrame, target: str) -> dict[str, str]:
    """Columns that name rows rather than describe them: a distinct value in every row (text, or
    integers that count up or are named like an id)."""
    found = {}
    for name in frame.columns:
        values = frame[name]
        if name == target or values.isna().any() or len(values) < 2 or not values.is_unique:
            continue
        if pd.api.types.is_float_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        if pd.api.types.is_integer_dtype(values):
            ordered = values.is_monotonic_increasing or values.is_monotonic_decreasing
            if not (ordered or IDENTIFIER_NAME.search(str(name))):
                continue
        elif date_format(values) is not None or values.astype("str").str.contains(" ").mean() > 0.5:
            continue  # dates, and sentences (free text, below), are not identifiers
        found[name] = f"identifier: a different value in each of the {len(values)} rows"
    return found


def free_text(frame: pd.DataFrame, skip: set[str]) -> dict[str, str]:
    """Text columns of sentences: many distinct values of several words each (a tabular model cannot use
    them as categories)."""
    found = {}
    for name in frame.columns:
        values = frame[name]
        if name in skip or pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        text = values.dropna().astype("str")
        if text.empty or date_format(values) is not None:
            continue
        words = float(text.str.split().str.len().mean())
        share = text.nunique() / len(text)
        if words >= FREE_TEXT_WORDS and share >= FREE_TEXT_DISTINCT_SHARE:
            found[name] = f"free text: {share:.0%} distinct values of {words:.1f} words on average"
    return found


def constants(frame: pd.DataFrame, skip: set[str]) -> dict[str, str]:
    """Columns with one value (or none) in every row."""
    return {
        name: f"constant: {frame[name].dropna().iloc[0]!r} in every row"
        if frame[name].notna().any()
        else "constant: always missing"
        for name in frame.columns
        if name not in skip and frame[name].nunique(dropna=True) <= 1
    }


def leaks(frame: pd.DataFrame, target: str, task: Task, skip: set[str], seed: int) -> dict[str, str]:
    """Columns that give the target away: one that alone predicts it almost perfectly (a shallow tree on that
    column, cross-validated), or numeric columns that add up to a regression target."""
    from sklearn.model_selection import cross_val_score
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    known = frame[frame[target].notna()]
    if len(known) > PROFILE_ROWS:
        known = known.sample(PROFILE_ROWS, random_state=seed)
    if len(known) < 20:
        return {}
    y = known[target]
    if task == "regression":
        y = pd.to_numeric(y, errors="coerce")
        model, scoring = DecisionTreeRegressor(max_depth=8, random_state=seed), "r2"
    else:
        y = y.astype("str")
        model, scoring = DecisionTreeClassifier(max_depth=8, random_state=seed), "accuracy"
    found = {}
    for name in frame.columns:
        if name in skip or name == target:
            continue
        column = _encoded(known[name])
        if column is None:
            continue
        score = float(np.mean(cross_val_score(model, column.reshape(-1, 1), y, cv=3, scoring=scoring)))
        if score >= LEAK_SCORE:
            found[name] = f"leakage suspect: alone it predicts the target ({scoring} {score:.3f})"
    if task == "regression":
        found |= _sums(known, target, skip | set(found))
    return found


def _encoded(values: pd.Series) -> np.ndarray | None:
    """A column as one number per row for the leak check: numbers as they are, text as category codes."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.astype("float64").fillna(-1e12).to_numpy()
    if date_format(values) is not None:
        return None  # a date predicts through time, which the split handles
    codes, _ = pd.factorize(values.astype("str"), sort=True)
    return codes.astype("float64")


def _sums(known: pd.DataFrame, target: str, skip: set[str]) -> dict[str, str]:
    """Sets of up to SUM_COLUMNS numeric columns whose sum is the target in every row."""
    numeric = [
        name
        for name in known.columns
        if name not in skip
        and name != target
        and pd.api.types.is_numeric_dtype(known[name])
        and not pd.api.types.is_bool_dtype(known[name])
    ]
    y = pd.to_numeric(known[target], errors="coerce").to_numpy(dtype="float64")
    values = known[numeric].astype("float64").to_numpy()
    scale = np.nanmax(np.abs(y)) if len(y) else 1.0
    for size in range(2, SUM_COLUMNS + 1):
        for combination in itertools.combinations(range(len(numeric)), size):
            total = values[:, combination].sum(axis=1)
            if np.allclose(total, y, rtol=0, atol=1e-9 * max(scale, 1.0), equal_nan=False):
                names = [numeric[position] for position in combination]
                return {
                    name: f"leakage suspect: {' + '.join(names)} = {target} in every row" for name in names
                }
    return {}


def slice_columns(frame: pd.DataFrame, skip: set[str]) -> list[str]:
    """Categorical columns with a few values to judge the model on, most balanced first."""
    scored = []
    for name in frame.columns:
        values = frame[name]
        if name in skip or pd.api.types.is_float_dtype(values):
            continue
        counts = values.dropna().astype("str").value_counts(normalize=True)
        if SLICE_CATEGORIES[0] <= len(counts) <= SLICE_CATEGORIES[1]:
            scored.append((float(counts.min()), name))
    return [name for _, name in sorted(scored, key=lambda item: (-item[0], item[1]))][:MAX_SLICE_COLUMNS]


def ordering_date(frame: pd.DataFrame, dates: dict[str, str | None]) -> str | None:
    """The datetime column that orders the rows (as they come, time does not go back), if one does."""
    for name, fmt in dates.items():
        moments = pd.Series(parse_datetimes(frame[name], fmt)).dropna()
        if len(moments) < 10 or moments.nunique() < 3:
            continue
        steps = moments.diff().dropna()
        if float((steps >= pd.Timedelta(0)).mean()) >= ORDERED_SHARE:
            return name
    return None


def without_placeholders(frame: pd.DataFrame, tokens: list[str]) -> pd.DataFrame:
    """The frame with its placeholders as missing values, as cleanse will read it."""
    return frame.replace(tokens, np.nan) if tokens else frame


def profile(
    frame: pd.DataFrame, target: str, task: Task | None, seed: int, positive_label: str | None = None
) -> Profile:
    """Everything `make init` decides from the data, with reasons; `positive_label`: the binary label
    encoded as 1 (default: the minority class)."""
    notes = []
    found_placeholders = placeholders(frame)
    cleaned = without_placeholders(frame, found_placeholders)
    if task is None:
        task = infer_task(cleaned[target])
        if task == "multiclass" and pd.to_numeric(cleaned[target].dropna(), errors="coerce").notna().all():
            notes.append(
                f"{target}: {cleaned[target].nunique()} whole-number values, taken as classes; if it is a "
                "count or an amount, run make init again with TASK=regression FORCE=1"
            )
    labels = class_labels(cleaned[target]) if task != "regression" else []
    positive = (positive_label or labels[-1]) if task == "binary" else None  # default: the minority class
    dates = {
        name: date_format(cleaned[name]) if not pd.api.types.is_datetime64_any_dtype(cleaned[name]) else None
        for name in cleaned.columns
        if name != target
        and (pd.api.types.is_datetime64_any_dtype(cleaned[name]) or date_format(cleaned[name]) is not None)
    }
    drops = identifiers(cleaned, target)
    drops |= constants(cleaned, set(drops) | {target})
    drops |= free_text(cleaned, set(drops) | {target})
    drops |= leaks(cleaned, target, task, set(drops) | set(dates), seed)
    time_column = ordering_date(cleaned, dates)
    slices = slice_columns(cleaned, set(drops) | {target} | set(dates))
    for name, fmt in dates.items():
        if fmt is not None and fmt.startswith(("%m/%d", "%d/%m", "%m-%d", "%d-%m")):
            notes.append(
                f"{name}: dates read as {fmt}; if day and month are the other way round, fix the schema's format"
            )
    if task == "binary" and positive_label is None:
        notes.append(
            f"positive label {positive!r} (the minority class): check it is the one to predict (POSITIVE=...)"
        )
    non_negative, target_std = False, None
    if task == "regression":
        values = pd.to_numeric(cleaned[target], errors="coerce").dropna()
        non_negative = bool(len(values)) and float(values.min()) >= 0
        target_std = float(values.std()) if len(values) > 1 else None
        if non_negative:
            notes.append(
                f"{target} is never negative: the boosting families also try Poisson and Tweedie losses "
                "(train.families.<family>.space.objective)"
            )
    return Profile(
        task,
        labels,
        positive,
        found_placeholders,
        drops,
        slices,
        time_column,
        dates,
        notes,
        non_negative,
        target_std,
    )
