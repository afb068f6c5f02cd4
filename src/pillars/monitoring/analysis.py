"""Pillar 15, monitoring: logged production rows against the training reference.

Pure functions from logs, feedback and reference frames to the report; the monitor stage does the I/O.
Reading is forgiving by design: a corrupt line, a line from another model version or a line whose inputs
do not match the model's fields is skipped, counted and reported with an example, never fatal. Drift and
quality are computed on every monitored row; performance on the rows whose ground truth has arrived.
"""

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pillars.core.errors import PillarsError
from pillars.core.io import SUFFIX_FORMATS, read_file
from pillars.core.metrics import BINARY_THRESHOLD, METRICS, labels_from_scores, measure
from pillars.core.params import MonitorParams, Params
from pillars.core.rules import outside, parse_datetimes
from pillars.monitoring.drift import ColumnDrift, Distribution, categorical_drift, numeric_drift
from pillars.serve.capture import LOG_SUFFIX
from pillars.serve.model import InputField, ServingModel

KEY_COLUMNS = ["request_id", "row"]
LINE_KEYS = ("model_version", "request_id", "row", "inputs", "prediction", "probabilities")
MAX_EXAMPLES = 5  # examples kept per kind of skipped input
SKIP_REASONS = (  # lines for corrupt_lines and feedback_files, rows otherwise
    "corrupt_lines",
    "other_model_version",
    "schema_change",
    "feedback_files",
    "unknown_labels",
    "unmatched_feedback",
)


@dataclass
class Skipped:
    """Input the monitor could not use: counts per reason and a few examples ("file:line: why")."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, amount: int, where: str, why: str) -> None:
        self.counts[reason] += amount
        found = self.examples.setdefault(reason, [])
        if len(found) < MAX_EXAMPLES:
            found.append(f"{where}: {why}")


@dataclass(frozen=True)
class Logged:
    """The monitored rows: typed raw inputs per field, and per row its keys, time and outputs."""

    inputs: dict[str, np.ndarray]
    rows: pd.DataFrame  # request_id, row, time, prediction; in log order
    scores: np.ndarray  # as `assess` scores: positive-class probability, class probabilities, or values
    lines: int


def _parse_line(text: str) -> dict[str, Any]:
    """One log line, checked for shape (ValueError: corrupt)."""
    record = json.loads(text)
    if not isinstance(record, dict) or any(key not in record for key in LINE_KEYS):
        raise ValueError(f"not a prediction log record (needs {', '.join(LINE_KEYS)})")
    size = len(record["request_id"])
    columns = [record["row"], record["prediction"], *record["inputs"].values()]
    columns += list((record["probabilities"] or {}).values())
    if any(not isinstance(column, list) or len(column) != size for column in columns):
        raise ValueError(f"columns of unequal length (request_id has {size} values)")
    return record


def _call_scores(record: dict[str, Any], serving: ServingModel) -> np.ndarray:
    if serving.task == "regression":
        return np.asarray(record["prediction"], dtype="float64")
    probabilities = record["probabilities"] or {}
    missing = [label for label in serving.labels if label not in probabilities]
    if missing:
        raise ValueError(f"no probabilities for labels {missing}")
    by_class = np.column_stack(
        [np.asarray(probabilities[label], dtype="float64") for label in serving.labels]
    )
    return by_class[:, 1] if serving.task == "binary" else by_class


def read_logs(folder: Path, serving: ServingModel, skipped: Skipped) -> Logged:
    """Every line of every *.jsonl file under `folder` (name order) that belongs to this model."""
    names = [item.name for item in serving.fields]
    inputs: dict[str, list[np.ndarray]] = {name: [] for name in names}
    keys: list[pd.DataFrame] = []
    scores: list[np.ndarray] = []
    lines = 0
    for path in sorted(folder.rglob(f"*{LOG_SUFFIX}")):
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, text in enumerate(handle, 1):
                if not text.strip():
                    continue
                lines += 1
                where = f"{path}:{number}"
                try:
                    record = _parse_line(text)
                except (ValueError, TypeError, AttributeError) as error:
                    skipped.add("corrupt_lines", 1, where, str(error)[:200])
                    continue
                size = len(record["request_id"])
                if record["model_version"] != serving.version:
                    skipped.add(
                        "other_model_version",
                        size,
                        where,
                        f"model {record['model_version']!r}, not {serving.version!r}",
                    )
                    continue
                fields = set(record["inputs"])
                if fields != set(names):
                    why = (
                        f"inputs lack {sorted(set(names) - fields)}, have extra {sorted(fields - set(names))}"
                    )
                    skipped.add("schema_change", size, where, why)
                    continue
                try:
                    typed = serving.typed(record["inputs"])
                    call_scores = _call_scores(record, serving)
                    call_keys = pd.DataFrame(
                        {
                            "request_id": pd.Series(record["request_id"], dtype=object).astype(str),
                            "row": pd.Series(record["row"], dtype="int64"),
                            "time": record.get("time"),
                            "prediction": pd.Series(record["prediction"], dtype=object),
                        }
                    )
                except (ValueError, TypeError) as error:
                    skipped.add("schema_change", size, where, str(error)[:200])
                    continue
                for name in names:
                    inputs[name].append(typed[name])
                scores.append(call_scores)
                keys.append(call_keys)
    if not keys:
        empty = serving.typed({name: [] for name in names})
        return Logged(
            empty, pd.DataFrame(columns=["request_id", "row", "time", "prediction"]), np.array([]), lines
        )
    return Logged(
        inputs={name: np.concatenate(parts) for name, parts in inputs.items()},
        rows=pd.concat(keys, ignore_index=True),
        scores=np.concatenate(scores),
        lines=lines,
    )


def read_feedback(folder: Path, target: str, skipped: Skipped) -> pd.DataFrame:
    """Ground truth: every CSV/Parquet/JSONL file under `folder` with request_id, row (default 0) and the
    target column. A file without them is skipped and reported; for a repeated key the last label wins."""
    frames = []
    for path in sorted(path for path in folder.rglob("*") if path.suffix.lower() in SUFFIX_FORMATS):
        try:
            frame = read_file(path, "auto")
            missing = [column for column in ("request_id", target) if column not in frame]
            if missing:
                raise ValueError(f"columns {missing} missing (feedback needs request_id, {target}, row)")
            rows = frame["row"] if "row" in frame else pd.Series(0, index=frame.index)
            frames.append(
                pd.DataFrame(
                    {
                        "request_id": frame["request_id"].astype(str),
                        "row": pd.to_numeric(rows, errors="raise").astype("int64"),
                        "label": frame[target].astype(object),
                    }
                )
            )
        except (PillarsError, ValueError, TypeError) as error:
            skipped.add("feedback_files", 1, str(path), str(error)[:200])
    if not frames:
        return pd.DataFrame(columns=[*KEY_COLUMNS, "label"])
    return pd.concat(frames, ignore_index=True).drop_duplicates(KEY_COLUMNS, keep="last")


def encoded_labels(labels: pd.Series, serving: ServingModel) -> np.ndarray:
    """Ground truth as the model's targets: class codes (classification) or floats; NaN where unknown."""
    if serving.task == "regression":
        return pd.to_numeric(labels, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    codes = {label: float(code) for code, label in enumerate(serving.labels)}
    return labels.astype(str).where(labels.notna()).map(codes).to_numpy(dtype="float64", na_value=np.nan)


def _comparable(values: Any, item: InputField) -> np.ndarray:
    """What drift compares: floats for numbers, text for categories and booleans (None: missing)."""
    series = pd.Series(values)
    if item.is_numeric or item.dtype == "boolean":
        numbers = series.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
        if item.is_numeric:
            return numbers
        return np.where(np.isnan(numbers), None, np.where(numbers == 1, "true", "false")).astype(object)
    return series.astype(object).where(series.notna(), None).to_numpy()


def _share(mask: np.ndarray) -> float:
    return round(float(mask.mean()), 6) if len(mask) else 0.0


def data_quality(
    logged: Logged,
    reference: pd.DataFrame,
    serving: ServingModel,
    params: MonitorParams,
    skipped_share: float,
) -> dict[str, Any]:
    """Per field: missing share (vs the reference), unseen categories and values outside the schema's range."""
    limits = params.quality
    fields: dict[str, dict[str, float]] = {}
    alerts = []
    for item in serving.fields:
        values = pd.Series(logged.inputs[item.name], dtype=object if not item.is_numeric else "float64")
        present = values.notna().to_numpy()
        unseen = (
            present & ~values.isin(item.categories).to_numpy()
            if item.categories is not None
            else np.zeros(len(values), bool)
        )
        out_of_range = (
            outside(values.to_numpy(dtype="float64"), *item.expected)
            if item.is_numeric
            else np.zeros(len(values), bool)
        )
        found = {
            "missing_share": _share(~present),
            "reference_missing_share": _share(reference[item.feature].isna().to_numpy()),
            "unseen_share": _share(unseen),
            "out_of_range_share": _share(out_of_range),
        }
        fields[item.name] = found
        increase = found["missing_share"] - found["reference_missing_share"]
        if increase > limits.max_missing_increase:
            alerts.append(
                f"{item.name}: {found['missing_share']:.1%} missing, {found['reference_missing_share']:.1%} in "
                f"the reference (limit +{limits.max_missing_increase:.1%})"
            )
        if found["unseen_share"] > limits.max_unseen_share:
            alerts.append(
                f"{item.name}: {found['unseen_share']:.1%} of values are categories the schema does not know "
                f"(limit {limits.max_unseen_share:.1%})"
            )
        if found["out_of_range_share"] > limits.max_out_of_range_share:
            low, high = item.expected
            alerts.append(
                f"{item.name}: {found['out_of_range_share']:.1%} of values outside the schema's range "
                f"[{low}, {high}] (limit {limits.max_out_of_range_share:.1%})"
            )
    if skipped_share > limits.max_skipped_share:
        alerts.append(
            f"{skipped_share:.1%} of logged rows were skipped (limit {limits.max_skipped_share:.1%}): see skipped"
        )
    return {"fields": fields, "alerts": alerts}


def feature_drift(
    logged: Logged, reference: pd.DataFrame, serving: ServingModel, params: MonitorParams
) -> tuple[dict[str, ColumnDrift], dict[str, Distribution]]:
    """Drift of every input field, compared as the model sees it (after standardize's rules). A datetime
    field is not tested: production data is later than the training data by design."""
    inputs = {
        item.name: parse_datetimes(logged.inputs[item.name], item.date_format)
        if item.dtype == "datetime"
        else logged.inputs[item.name]
        for item in serving.fields
    }
    current = serving.standardized(inputs)
    drifts, distributions = {}, {}
    for item in serving.fields:
        if item.dtype == "datetime":
            continue
        ours = _comparable(current[item.feature], item)
        theirs = _comparable(reference[item.feature], item)
        drifts[item.name], distributions[item.name] = (
            numeric_drift(theirs, ours, params.bins, params.drift)
            if item.is_numeric
            else categorical_drift(theirs, ours, params.drift)
        )
    return drifts, distributions


def prediction_drift(
    logged: Logged, test_predictions: pd.DataFrame, serving: ServingModel, params: MonitorParams
) -> tuple[str, ColumnDrift, Distribution]:
    """Served outputs vs the model's outputs on the test split: the positive-class probability (binary),
    the predicted class (multiclass) or the predicted value (regression)."""
    if serving.task == "multiclass":
        scores = test_predictions[[f"score_{code}" for code in range(len(serving.labels))]].to_numpy()
        expected = np.asarray(serving.labels, dtype=object)[labels_from_scores(scores, "multiclass")]
        drift, distribution = categorical_drift(
            expected, logged.rows["prediction"].astype(str).to_numpy(dtype=object), params.drift
        )
        return "prediction", drift, distribution
    name = f"probability:{serving.labels[1]}" if serving.task == "binary" else "prediction"
    drift, distribution = numeric_drift(
        test_predictions["score"].to_numpy(dtype="float64"), logged.scores, params.bins, params.drift
    )
    return name, drift, distribution


def performance(
    logged: Logged,
    labels: np.ndarray,
    task: str,
    metric: str,
    reference: float | None,
    params: MonitorParams,
    threshold: float = BINARY_THRESHOLD,
) -> dict[str, Any]:
    """The metric on labelled rows, overall and per window of `window_rows` rows in time order, on the
    task's full label set (binary decisions at the served model's `threshold`). Where there is no value (fewer than `min_labels` labels, or the metric undefined
    on the labelled rows, e.g. one class only), the value is None and `reason` says why."""
    minimum = params.performance.min_labels

    def measured(rows: np.ndarray) -> tuple[float | None, str | None]:
        known = rows[~np.isnan(labels[rows])]
        if len(known) < minimum:
            return None, f"fewer than {minimum} labels (monitor.performance.min_labels)"
        truth = labels[known] if task == "regression" else labels[known].astype("int64")
        value, undefined = measure(metric, task, truth, logged.scores[known], threshold)
        if value is None:
            return None, f"{metric} undefined on the labelled rows: {undefined}"
        return round(value, 6), None

    order = np.argsort(logged.rows["time"].fillna("").astype(str).to_numpy(), kind="stable")
    times = logged.rows["time"].to_numpy(dtype=object)
    windows = []
    for number, start in enumerate(range(0, len(order), params.window_rows), 1):
        rows = order[start : start + params.window_rows]
        value, reason = measured(rows)
        windows.append(
            {
                "window": number,
                "first": times[rows[0]],
                "last": times[rows[-1]],
                "rows": len(rows),
                "labelled": int((~np.isnan(labels[rows])).sum()),
                "value": value,
                "reason": reason,
            }
        )
    current, reason = measured(order)
    drop = None
    if current is not None and reference is not None:
        worse = reference - current if METRICS[task][metric].greater_is_better else current - reference
        drop = round(worse, 6)
    return {
        "labelled": int((~np.isnan(labels)).sum()),
        "reference": reference,
        "current": current,
        "reason": reason,
        "drop": drop,
        "windows": windows,
    }


def decide(
    monitored: int,
    drifts: dict[str, ColumnDrift],
    predictions: dict[str, ColumnDrift],
    measured: dict[str, Any],
    metric: str,
    params: MonitorParams,
) -> dict[str, Any]:
    """Retrain when inputs or outputs drifted or performance dropped past the limits; wait for data first."""
    if monitored < params.min_rows:
        return {
            "action": "wait",
            "retrain": False,
            "reasons": [
                f"only {monitored} rows monitored; a decision needs monitor.min_rows = {params.min_rows}"
            ],
        }
    reasons = []
    drifted = [name for name, drift in drifts.items() if drift.drifted]
    if len(drifted) > params.drift.max_drifted_features:
        reasons.append(
            f"{len(drifted)} input features drifted (monitor.drift.max_drifted_features = "
            f"{params.drift.max_drifted_features}): {', '.join(drifted)}"
        )
    reasons += [f"predictions drifted ({name})" for name, drift in predictions.items() if drift.drifted]
    if measured["drop"] is not None and measured["drop"] > params.performance.max_drop:
        reasons.append(
            f"{metric} fell to {measured['current']} from {measured['reference']} on test (drop "
            f"{measured['drop']}, monitor.performance.max_drop = {params.performance.max_drop})"
        )
    if reasons:
        return {"action": "retrain", "retrain": True, "reasons": reasons}
    checked = "no input feature or prediction drifted"
    if measured["current"] is None:
        checked += f"; performance not measured ({measured.get('reason') or 'no value'})"
    else:
        checked += f"; {metric} {measured['current']} is within {params.performance.max_drop} of test"
    return {"action": "none", "retrain": False, "reasons": [checked]}


@dataclass(frozen=True)
class Monitored:
    """The logged rows of this model with the ground truth that arrived for them joined on."""

    logged: Logged
    labels: pd.Series  # per logged row, the label as reported (missing: none yet)
    encoded: np.ndarray  # the same as the model's targets (NaN: none, or a label the model does not know)
    skipped: Skipped


def read_monitored(logs: Path, feedback: Path, serving: ServingModel, target: str) -> Monitored:
    """Read the logs and the feedback and join them on (request_id, row), counting what does not fit."""
    skipped = Skipped()
    logged = read_logs(logs, serving, skipped)
    truth = read_feedback(feedback, target, skipped)
    labels = logged.rows[KEY_COLUMNS].merge(truth, on=KEY_COLUMNS, how="left")["label"]
    encoded = encoded_labels(labels, serving)
    unknown = labels.notna().to_numpy() & np.isnan(encoded)
    if unknown.any():
        examples = sorted({str(value) for value in labels[unknown]})[:MAX_EXAMPLES]
        skipped.add(
            "unknown_labels", int(unknown.sum()), str(feedback), f"labels {examples} are not the model's"
        )
    matched = truth.merge(logged.rows[KEY_COLUMNS].drop_duplicates(), on=KEY_COLUMNS, how="inner")
    if len(truth) > len(matched):
        skipped.add(
            "unmatched_feedback",
            len(truth) - len(matched),
            str(feedback),
            "no logged prediction has these keys",
        )
    return Monitored(logged, labels, encoded, skipped)


def monitor(
    monitored: Monitored,
    reference: pd.DataFrame,
    test_predictions: pd.DataFrame,
    serving: ServingModel,
    params: Params,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The monitoring report (metrics/monitoring.json) and the binned distributions for its plots."""
    settings = params.monitor
    metric = params.train.metric
    logged, skipped = monitored.logged, monitored.skipped
    rows = len(logged.rows)
    skipped_rows = sum(skipped.counts[reason] for reason in ("other_model_version", "schema_change"))
    skipped_share = (skipped_rows + skipped.counts["corrupt_lines"]) / max(rows + skipped_rows, 1)
    drifts: dict[str, ColumnDrift] = {}
    predictions: dict[str, ColumnDrift] = {}
    distributions: dict[str, Distribution] = {}
    if rows:
        drifts, distributions = feature_drift(logged, reference, serving, settings)
        name, drift, distribution = prediction_drift(logged, test_predictions, serving, settings)
        predictions[name], distributions[name] = drift, distribution
    reference_value = serving.metadata.get("test_metrics", {}).get(metric)
    measured = performance(
        logged, monitored.encoded, serving.task, metric, reference_value, settings, serving.threshold
    )
    report = {
        "model_version": serving.version,
        "task": serving.task,
        "metric": metric,
        **({"decision_threshold": serving.threshold} if serving.task == "binary" else {}),
        "rows": {"logged": rows + skipped_rows, "monitored": rows, "labelled": measured["labelled"]},
        "skipped": {reason: int(skipped.counts[reason]) for reason in SKIP_REASONS},
        "skipped_examples": skipped.examples,
        "thresholds": {
            **settings.drift.model_dump(),
            "max_performance_drop": settings.performance.max_drop,
        },
        "drift": {
            "features": {name: drift.as_dict() for name, drift in drifts.items()},
            "prediction": {name: drift.as_dict() for name, drift in predictions.items()},
            "drifted_features": [name for name, drift in drifts.items() if drift.drifted],
        },
        "quality": data_quality(logged, reference, serving, settings, skipped_share),
        "performance": measured,
        "decision": decide(rows, drifts, predictions, measured, metric, settings),
    }
    return report, {name: distribution.as_dict() for name, distribution in distributions.items()}
