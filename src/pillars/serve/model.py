"""The packaged model: raw rows in, predictions out, by exactly the rules the training pipeline applied.

`ServingModel` carries what the pipeline learned or was told that matters for a new row: the schema's types
and categories (validate_data), the impossible-value limits and outlier rules with their limits resolved on
the training data (cleanse), spellings and units (standardize), the fitted feature pipeline compiled to
vectorized NumPy (featurize) and the selected model. The service, the deploy check and batch inference all
score through it: one path from a raw row to a prediction, so there is no training/serving skew.

Rows come in as columns (raw column name -> values) already typed: numbers as floats (None or NaN for
missing), booleans, and strings (dates and times as text, parsed here with the schema's format). This module imports neither pandera nor pyarrow nor dvc: it is what the
Bento runs.
"""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import threadpoolctl

from pillars.core import pickles
from pillars.core.metrics import BINARY_THRESHOLD, labels_from_scores, predict_scores
from pillars.core.rules import apply_outlier_rule, calendar_features, outside, parse_datetimes, spelling
from pillars.serve.conformal import Conformal, by_class
from pillars.serve.estimators import load_model
from pillars.serve.gate import shown

FEATURE_DTYPE = np.float32
MODEL_NAME = "pillars-model"  # in the BentoML model store; versions are content hashes
SERVING_FILE = "serving_model.pkl"  # the pickled ServingModel inside the BentoML model
Columns = Mapping[str, Sequence[Any] | np.ndarray]


@dataclass(frozen=True)
class InputField:
    """One raw input column: its type and the rules for it, from the schema and params."""

    name: str  # the raw name, as in the schema: the key clients send
    feature: str  # the standardized name the feature pipeline knows
    dtype: str  # integer | float | boolean | string | datetime
    nullable: bool
    categories: tuple[str, ...] | None = None  # the schema's; others are scored as training scored them
    expected: tuple[float | None, float | None] = (None, None)  # the schema's range (a warning outside)
    impossible: tuple[float | None, float | None] = (None, None)  # cleanse's limits (the row is rejected)
    outlier: tuple[str, tuple[float | None, float | None]] | None = None  # action and resolved limits
    outlier_feature: str | None = None  # the standardized name of the outlier flag, when it is a feature
    factor: float | None = None  # standardize's unit conversion
    aliases: Mapping[str, str] = field(default_factory=dict)  # folded spelling -> canonical spelling
    date_format: str | None = None  # datetime: the schema's format of its text (None: ISO 8601)
    with_time: bool = False  # datetime: an hour feature is derived too

    @property
    def is_numeric(self) -> bool:
        return self.dtype in ("integer", "float")

    @property
    def limits(self) -> tuple[float | None, float | None]:
        """Values outside these cannot be scored: impossible values, or outliers that cleanse quarantines."""
        if self.outlier is not None and self.outlier[0] == "quarantine":
            return narrowest(self.impossible, self.outlier[1])
        return self.impossible


def _datetimes(item: InputField, values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """A datetime field's values parsed as training parsed them; text that is no date is an error naming
    the field, the row and (cut short) the value."""
    parsed = parse_datetimes(values, item.date_format)
    given = ~pd.isna(pd.Series(values, dtype=object)).to_numpy()
    unreadable = np.flatnonzero(given & np.isnat(parsed))
    if len(unreadable):
        row = int(unreadable[0])
        raise ValueError(
            f"{item.name}: {shown(values[row])} (row {row}) is not a date in the format {item.date_format or 'ISO8601'}"
            + (f"; {len(unreadable)} such values" if len(unreadable) > 1 else "")
        )
    return parsed


def narrowest(
    first: tuple[float | None, float | None], second: tuple[float | None, float | None]
) -> tuple[float | None, float | None]:
    """The intersection of two ranges (None: unbounded on that side)."""
    lows = [value for value in (first[0], second[0]) if value is not None]
    highs = [value for value in (first[1], second[1]) if value is not None]
    return (max(lows) if lows else None, min(highs) if highs else None)


@dataclass(frozen=True)
class CategoryBlock:
    """The one-hot block of one categorical column, read off the fitted OneHotEncoder."""

    column: str
    fill: str  # what missing values become before encoding
    positions: Mapping[str, int]  # one-hot column of each category the encoder knows
    unknown: int  # one-hot column of categories unseen in training (-1: all zeros)

    def columns_of(self, values: np.ndarray) -> np.ndarray:
        """The one-hot column of every value (-1: none), looking up each distinct value once."""
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        lookup = np.array(
            [self.positions.get(str(value), self.unknown) for value in uniques]
            + [self.positions.get(self.fill, self.unknown)],
            dtype=np.int64,
        )
        return np.asarray(lookup[codes])  # the sentinel -1 picks the last entry: missing values


@dataclass(frozen=True)
class CompiledFeatures:
    """The fitted feature pipeline as NumPy operations: the same numbers without per-call overhead.

    Built from the fitted ColumnTransformer's public attributes; `package` checks that it reproduces the
    pipeline's output exactly on the test split before anything is shipped.
    """

    numeric: tuple[str, ...]
    fill: np.ndarray  # imputed value per numeric column
    indicated: np.ndarray  # numeric columns that get a missing-value indicator
    mean: np.ndarray | None  # standard scaling, when the pipeline scales
    scale: np.ndarray | None
    blocks: tuple[CategoryBlock, ...]
    width: int

    def transform(self, columns: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
        """The feature matrix of standardized columns."""
        parts = []
        if self.numeric:
            values = np.column_stack([np.asarray(columns[name], dtype="float64") for name in self.numeric])
            missing = np.isnan(values)
            numeric = np.hstack([np.where(missing, self.fill, values), missing[:, self.indicated]])
            if self.mean is not None and self.scale is not None:
                numeric = (numeric - self.mean) / self.scale
            parts.append(numeric)
        onehot = np.zeros((rows, self.width - sum(part.shape[1] for part in parts)), dtype="float64")
        for block in self.blocks:
            positions = block.columns_of(columns[block.column])
            hit = positions >= 0
            onehot[np.flatnonzero(hit), positions[hit]] = 1.0
        parts.append(onehot)
        return np.hstack(parts).astype(FEATURE_DTYPE)


def compile_features(pipeline: Any) -> CompiledFeatures:
    """Read the fitted ColumnTransformer of `pillars.features.build_pipeline` into CompiledFeatures."""
    branches = {name: (branch, list(columns)) for name, branch, columns in pipeline.transformers_}
    numeric: list[str] = []
    fill = indicated = np.zeros(0)
    mean = scale = None
    numeric_width = 0
    if "numeric" in branches and branches["numeric"][1]:
        branch, numeric = branches["numeric"]
        imputer = branch.named_steps["impute"]
        fill = imputer.statistics_.astype("float64")
        indicated = imputer.indicator_.features_ if imputer.indicator_ is not None else np.zeros(0, dtype=int)
        numeric_width = len(numeric) + len(indicated)
        if "scale" in branch.named_steps:
            scaler = branch.named_steps["scale"]
            mean, scale = scaler.mean_, scaler.scale_
    blocks = []
    offset = 0  # within the one-hot part, which follows the numeric part
    if "categorical" in branches and branches["categorical"][1]:
        branch, categorical = branches["categorical"]
        missing_fill = branch.named_steps["impute"].fill_value
        encoder = branch.named_steps["encode"]
        infrequent = getattr(encoder, "infrequent_categories_", [None] * len(categorical))
        for column, categories, rare in zip(categorical, encoder.categories_, infrequent, strict=True):
            rare_set = set() if rare is None else {str(value) for value in rare}
            frequent = [str(value) for value in categories if str(value) not in rare_set]
            rare_position = offset + len(frequent) if rare_set else -1
            positions = {
                str(value): rare_position if str(value) in rare_set else offset + frequent.index(str(value))
                for value in categories
            }
            blocks.append(
                CategoryBlock(
                    column=column, fill=str(missing_fill), positions=positions, unknown=rare_position
                )
            )
            offset += len(frequent) + (1 if rare_set else 0)
    return CompiledFeatures(
        numeric=tuple(numeric),
        fill=fill,
        indicated=np.asarray(indicated, dtype=int),
        mean=mean,
        scale=scale,
        blocks=tuple(blocks),
        width=numeric_width + offset,
    )


@dataclass(frozen=True)
class Scored:
    """Predictions for a batch: scores as `assess` computes them, labels, and per-row warnings."""

    scores: np.ndarray  # positive-class probability (binary), class probabilities, or values
    predictions: list[Any]  # labels as in the data (classification) or values (regression)
    probabilities: dict[str, np.ndarray] | None  # per class label (classification)
    warnings: list[dict[str, Any]]  # {"row", "field", "reason"}: scored, but worth knowing
    intervals: tuple[np.ndarray, np.ndarray] | None = None  # regression, conformal: lower and upper ends
    sets: np.ndarray | None = None  # classification, conformal: (rows, classes), each class in the row's set

    def row_warnings(self) -> list[list[str]]:
        """The warnings of each row, as "field: reason" messages."""
        per_row: list[list[str]] = [[] for _ in self.predictions]
        for warning in self.warnings:
            per_row[warning["row"]].append(f"{warning['field']}: {warning['reason']}")
        return per_row


@dataclass(frozen=True)
class ServingModel:
    """Everything needed to score raw rows, pickled into the BentoML model by `package`."""

    version: str
    task: str
    labels: tuple[str, ...]  # class labels in code order (classification)
    fields: tuple[InputField, ...]
    placeholders: tuple[str, ...]
    case: str
    features: CompiledFeatures
    model: Any
    metadata: Mapping[str, Any]
    max_request_bytes: int  # the service's limits: body size, records per /predict, rows per /predict_bulk
    max_records: int
    max_bulk_rows: int
    threshold: float = BINARY_THRESHOLD  # binary: scores from here up get the positive label
    conformal: Conformal | None = None  # intervals or class sets served with every answer

    def typed(self, columns: Columns) -> dict[str, np.ndarray]:
        """The input columns as arrays: floats (NaN for missing), or objects (None for missing)."""
        missing = [item.name for item in self.fields if item.name not in columns]
        if missing:
            raise ValueError(f"missing input columns {missing}")
        lengths = {len(columns[item.name]) for item in self.fields}
        if len(lengths) > 1:
            raise ValueError(f"input columns differ in length: {sorted(lengths)}")
        typed = {}
        for item in self.fields:
            values = columns[item.name]
            if item.is_numeric or item.dtype == "boolean":
                typed[item.name] = np.asarray(values, dtype="float64")
            elif item.dtype == "datetime":
                typed[item.name] = _datetimes(item, values)
            else:
                text = np.array(values, dtype=object)  # a copy: placeholders become None in it
                if self.placeholders:
                    text[np.isin(text, self.placeholders)] = None
                typed[item.name] = text
        return typed

    def read_dates(self, columns: Columns) -> None:
        """Parse every datetime field, as `typed` will: text that is no date is a ValueError naming the field,
        the row and the value (the service's gate calls this per request, before requests are batched)."""
        for item in self.fields:
            if item.dtype == "datetime":
                _datetimes(item, columns[item.name])

    def rejections(self, typed: Mapping[str, np.ndarray]) -> pd.Series:
        """Why each row cannot be scored (None where it can): a missing required value, an impossible value."""
        reasons = pd.Series(None, index=range(len(next(iter(typed.values())))), dtype=object)
        for item in self.fields:
            values = typed[item.name]
            absent = pd.isna(values)
            if not item.nullable:
                reasons = reasons.mask(reasons.isna() & absent, f"{item.name}: missing, and it is required")
            if item.is_numeric:
                low, high = item.limits
                bad = outside(values, low, high)
                reasons = reasons.mask(
                    reasons.isna() & bad, f"{item.name}: outside the possible range [{low}, {high}]"
                )
        return reasons

    def warnings(self, typed: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
        """Values that are scored but that the schema does not expect: unknown categories, out of range."""
        found = []
        for item in self.fields:
            values = typed[item.name]
            if item.categories is not None:
                codes, uniques = pd.factorize(values, use_na_sentinel=True)
                known = np.array([value in item.categories for value in uniques] + [True])
                unknown = ~known[codes]
                found += [
                    {
                        "row": int(row),
                        "field": item.name,
                        "reason": f"unknown category {shown(values[row])}: scored like a category unseen "
                        "in training",
                    }
                    for row in np.flatnonzero(unknown)
                ]
            elif item.is_numeric and item.expected != (None, None):
                low, high = item.expected
                found += [
                    {
                        "row": int(row),
                        "field": item.name,
                        "reason": f"{values[row]:g} is outside the schema's range [{low}, {high}]",
                    }
                    for row in np.flatnonzero(outside(values, low, high))
                ]
        return sorted(found, key=lambda warning: (warning["row"], warning["field"]))

    def standardized(self, typed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The feature pipeline's inputs: cleanse's outlier rules, then standardize's units and spellings."""
        columns: dict[str, np.ndarray] = {}
        for item in self.fields:
            values = typed[item.name]
            if item.is_numeric:
                if item.outlier is not None:
                    values, flagged = apply_outlier_rule(values, item.outlier[0], item.outlier[1])
                    if item.outlier_feature is not None:
                        columns[item.outlier_feature] = flagged.astype("float64")
                if item.factor is not None:
                    values = values * item.factor
            elif item.dtype == "datetime":
                columns |= calendar_features(item.feature, values, item.with_time)
            elif item.dtype == "string":
                codes, uniques = pd.factorize(values, use_na_sentinel=True)
                canonical = np.array(
                    [spelling(str(value), self.case, item.aliases) for value in uniques] + [None],
                    dtype=object,
                )
                values = canonical[codes]
            columns[item.feature] = values
        return columns

    def score(self, typed: Mapping[str, np.ndarray]) -> Scored:
        """Predictions for rows that passed `rejections` (the service's request types enforce the same)."""
        rows = len(next(iter(typed.values())))
        matrix = self.features.transform(self.standardized(typed), rows)
        scores = predict_scores(self.model, matrix, self.task)
        if self.task == "regression":
            intervals = self.conformal.interval(scores) if self.conformal is not None else None
            return Scored(scores, scores.tolist(), None, self.warnings(typed), intervals=intervals)
        probabilities_by_class = by_class(scores, self.task)
        codes = labels_from_scores(scores, self.task, self.threshold)
        labels = np.asarray(self.labels, dtype=object)[codes]
        probabilities = {label: probabilities_by_class[:, code] for code, label in enumerate(self.labels)}
        sets = self.conformal.sets(probabilities_by_class, codes) if self.conformal is not None else None
        return Scored(scores, labels.tolist(), probabilities, self.warnings(typed), sets=sets)


def pin_threads(model: Any, threads: int) -> None:
    """Every thread pool the model predicts with, pinned to `threads` in this process: the model's own
    (`n_jobs`: XGBoost) and the native ones (OpenMP, BLAS: scikit-learn's histogram gradient boosting). A
    served HistGradientBoosting model left on its default OpenMP threads fell to 3-40 requests/s at
    concurrency 32 on two cores, every worker's threads fighting for them; pinned, 134."""
    if hasattr(model, "get_params") and "n_jobs" in model.get_params():
        model.set_params(n_jobs=threads)
    threadpoolctl.threadpool_limits(limits=threads)


def thread_counts() -> dict[str, int]:
    """The threads of each native thread pool loaded in this process (`/model` reports them)."""
    return {
        f"{pool['internal_api']}:{pool['prefix']}": pool["num_threads"]
        for pool in threadpoolctl.threadpool_info()
    }


def content_version(*payloads: bytes) -> str:
    """A model version from the bytes that decide predictions: equal models get equal versions."""
    digest = hashlib.sha256()
    for payload in payloads:
        digest.update(hashlib.sha256(payload).digest())
    return digest.hexdigest()[:16]


def dumps(model: ServingModel) -> bytes:
    """The pickled serving model (trusted: written by `package`, read by the service)."""
    return pickles.dumps(model)


def loads(payload: bytes) -> ServingModel:
    """A serving model pickled by `package`."""
    model = load_model(payload)
    if not isinstance(model, ServingModel):
        raise TypeError(f"not a pillars serving model: {type(model).__name__}")
    return model
