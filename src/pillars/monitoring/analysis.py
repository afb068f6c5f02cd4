"""Pillar 15, monitoring: logged production rows against the training reference.

Pure functions from the monitored rows (`pillars.monitoring.logs` reads them) and reference frames to the
report; no I/O here. Drift and quality are computed on every monitored row; performance on the rows whose
ground truth has arrived.
"""

from typing import Any

import numpy as np
import pandas as pd

from pillars.core.metrics import BINARY_THRESHOLD, METRICS, labels_from_scores, measure
from pillars.core.params import MonitorParams, Params
from pillars.core.rules import outside, parse_datetimes
from pillars.monitoring.drift import ColumnDrift, Distribution, categorical_drift, numeric_drift
from pillars.monitoring.logs import SKIP_REASONS, Logged, Monitored
from pillars.serve.conformal import Conformal, covered
from pillars.serve.model import InputField, ServingModel


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
    conformal: Conformal | None = None,
) -> dict[str, Any]:
    """The metric on labelled rows, overall and per window of `window_rows` rows in time order, on the
    task's full label set (binary decisions at the served model's `threshold`), and the share of labelled
    rows whose truth fell in the served conformal set or interval (`coverage`: promised 1 - alpha). Where
    there is no value (fewer than `min_labels` labels, or the metric undefined on the labelled rows, e.g.
    one class only), the value is None and `reason` says why."""
    minimum = params.performance.min_labels

    def realized(rows: np.ndarray) -> float | None:
        known = rows[~np.isnan(labels[rows])]
        if conformal is None or len(known) < minimum:
            return None
        truth = labels[known] if task == "regression" else labels[known].astype("int64")
        return round(float(covered(conformal, truth, logged.scores[known], threshold).mean()), 6)

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
                "coverage": realized(rows),
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
        "coverage": {
            "promised": None if conformal is None else round(1 - conformal.alpha, 6),
            "realized": realized(order),
        },
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
        logged,
        monitored.encoded,
        serving.task,
        metric,
        reference_value,
        settings,
        serving.threshold,
        serving.conformal,
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
