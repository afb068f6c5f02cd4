"""Model metrics per task: one registry, so train, validate_model, select, assess and monitor agree on every
name, on the label set and on when a metric is undefined.

Every metric is computed against the task's full label set (class codes 0..K-1: [0, 1] for binary, one per
score column for multiclass), so a subset that lacks some classes (a slice, a monitoring window) still gets
a value wherever the metric is defined on it. Where it is not (ROC AUC with one class present, R² on one row
or a constant target, anything on no rows), the value is None with the reason, never an exception or NaN.

scikit-learn is imported on a metric's first use, not with this module: the params loader reads the
registry's names, and every stage loads params, so this keeps stage start-up fast.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any, NamedTuple

import numpy as np

Task = str  # "binary" | "multiclass" | "regression"
BINARY_THRESHOLD = 0.5
POSITIVE = 1  # the positive class code of a binary task
NO_ROWS = "no rows"

# (truth, predictions as the metric takes them, the task's class codes) -> the metric's value
Compute = Callable[[np.ndarray, np.ndarray, np.ndarray], float]
# the same arguments -> why the metric is undefined on these rows (None: it is defined)
Requirement = Callable[[np.ndarray, np.ndarray, np.ndarray], str | None]


class UndefinedMetricError(ValueError):
    """A metric asked for as a number on rows where it has none (`score`); `reason` says why."""

    def __init__(self, metric: str, reason: str) -> None:
        super().__init__(f"{metric} is undefined on these rows: {reason}")
        self.metric, self.reason = metric, reason


def _sklearn(name: str, *, labels: bool = False, **fixed: object) -> Compute:
    """A sklearn.metrics function by name, with fixed keyword arguments (and `labels=` the task's class
    codes when `labels`), imported when first called."""

    def compute(y: np.ndarray, predicted: np.ndarray, classes: np.ndarray) -> float:
        function = getattr(import_module("sklearn.metrics"), name)
        return float(function(y, predicted, **({"labels": classes} if labels else {}), **fixed))

    return compute


def _log_loss(y: np.ndarray, predicted: np.ndarray, classes: np.ndarray) -> float:
    """Log loss of class probabilities rescaled to sum to one in float64: models give float32 ones whose sums
    miss 1 by more than scikit-learn's float64 tolerance (it warns), not by enough to matter."""
    if predicted.ndim == 2:
        predicted = predicted / predicted.sum(axis=1, keepdims=True)
    return _sklearn("log_loss", labels=True)(y, predicted, classes)


def _rmse(y: np.ndarray, predicted: np.ndarray, classes: np.ndarray) -> float:
    return float(np.sqrt(_sklearn("mean_squared_error")(y, predicted, classes)))


def _codes(values: np.ndarray) -> list[int]:
    return [int(value) for value in np.unique(values)]


def _two_classes(y: np.ndarray, predicted: np.ndarray, classes: np.ndarray) -> str | None:
    present = _codes(y)
    return None if len(present) > 1 else f"one class only (every row is class {present[0]})"


def _every_class(y: np.ndarray, predicted: np.ndarray, classes: np.ndarray) -> str | None:
    absent = sorted(set(_codes(classes)) - set(_codes(y)))
    if not absent:
        return None
    return f"class {absent} absent: one-vs-rest ROC AUC needs rows of every class"


def _a_positive(y: np.ndarray, predicted: np.ndarray, classes: np.ndarray) -> str | None:
    return None if (y == POSITIVE).any() else f"no positive rows (class {POSITIVE})"


def _a_predicted_positive(y: np.ndarray, predicted: np.ndarray, classes: np.ndarray) -> str | None:
    return None if (predicted == POSITIVE).any() else f"no row predicted positive (class {POSITIVE})"


def _a_positive_either_way(y: np.ndarray, predicted: np.ndarray, classes: np.ndarray) -> str | None:
    if (y == POSITIVE).any() or (predicted == POSITIVE).any():
        return None
    return f"no positive rows and none predicted positive (class {POSITIVE})"


def _a_varying_target(y: np.ndarray, predicted: np.ndarray, classes: np.ndarray) -> str | None:
    if len(y) < 2:
        return f"fewer than 2 rows ({len(y)})"
    return None if np.ptp(y) > 0 else f"the target is constant ({float(y[0]):g}) in these rows"


@dataclass(frozen=True)
class Metric:
    """A metric of predictions: scores (probabilities or values) or labels, which way is better, and what
    rows it needs beyond at least one (`requires`: why it is undefined on the given rows, or None)."""

    compute: Compute
    greater_is_better: bool
    uses_labels: bool = False
    requires: Requirement | None = None

    def better(self, candidate: float, incumbent: float) -> bool:
        return candidate > incumbent if self.greater_is_better else candidate < incumbent

    @property
    def direction(self) -> str:
        return "maximize" if self.greater_is_better else "minimize"


METRICS: dict[Task, dict[str, Metric]] = {
    "binary": {
        "roc_auc": Metric(_sklearn("roc_auc_score"), True, requires=_two_classes),
        "average_precision": Metric(_sklearn("average_precision_score"), True, requires=_a_positive),
        "log_loss": Metric(_log_loss, False),
        "brier": Metric(_sklearn("brier_score_loss", labels=True), False),
        "accuracy": Metric(_sklearn("accuracy_score"), True, uses_labels=True),
        "f1": Metric(_sklearn("f1_score"), True, uses_labels=True, requires=_a_positive_either_way),
        "precision": Metric(
            _sklearn("precision_score"), True, uses_labels=True, requires=_a_predicted_positive
        ),
        "recall": Metric(_sklearn("recall_score"), True, uses_labels=True, requires=_a_positive),
    },
    "multiclass": {
        "log_loss": Metric(_log_loss, False),
        "roc_auc_ovr": Metric(
            _sklearn("roc_auc_score", labels=True, multi_class="ovr"), True, requires=_every_class
        ),
        "accuracy": Metric(_sklearn("accuracy_score"), True, uses_labels=True),
        # the mean F1 over the classes it is defined for: a class neither present nor predicted has no F1
        # (0/0) and is left out of the mean; a class predicted but absent counts with F1 0
        "f1_macro": Metric(
            _sklearn("f1_score", labels=True, average="macro", zero_division=np.nan), True, uses_labels=True
        ),
    },
    "regression": {
        "rmse": Metric(_rmse, False),
        "mae": Metric(_sklearn("mean_absolute_error"), False),
        "r2": Metric(_sklearn("r2_score"), True, requires=_a_varying_target),
    },
}

# The metrics train.metric may name: every model family's library reports them per round (a family's
# `eval_metrics`), so early stopping and the pruner follow the objective.
OBJECTIVES: dict[Task, list[str]] = {
    "binary": ["average_precision", "log_loss", "roc_auc"],
    "multiclass": ["log_loss", "roc_auc_ovr"],
    "regression": ["mae", "rmse"],
}


def labels_from_scores(scores: np.ndarray, task: Task, threshold: float = BINARY_THRESHOLD) -> np.ndarray:
    """Class labels from probabilities: positive from `threshold` up for binary (the candidate's tuned
    threshold, `decision_threshold`), the most probable class otherwise."""
    if task == "binary":
        return (scores >= threshold).astype("int64")
    return np.asarray(scores.argmax(axis=1))


def task_classes(task: Task, scores: np.ndarray) -> np.ndarray:
    """The task's class codes: [0, 1] for binary, one per score column for multiclass, none for regression."""
    if task == "binary":
        return np.array([0, POSITIVE])
    if task == "multiclass":
        return np.arange(np.asarray(scores).shape[1])
    return np.array([], dtype="int64")


def predict_scores(model: Any, features: np.ndarray, task: Task, n_classes: int | None = None) -> np.ndarray:
    """Probabilities of the positive class (binary), of every class (multiclass), or values (regression).

    With `n_classes`, a classifier that never saw some classes (fitted on a fold that lacked them) gets
    probability 0 for them, so its scores have one column per class code like every other model's."""
    if len(features) == 0:  # no rows: scikit-learn and LightGBM refuse to predict on none
        width = n_classes or len(model.classes_) if task == "multiclass" else 0
        return np.zeros((0, width)) if task == "multiclass" else np.zeros(0)
    if task == "regression":
        return np.asarray(model.predict(features), dtype="float64")
    probabilities = np.asarray(model.predict_proba(features), dtype="float64")
    if n_classes is not None and probabilities.shape[1] != n_classes:
        full = np.zeros((len(probabilities), n_classes))
        full[:, np.asarray(model.classes_, dtype="int64")] = probabilities
        probabilities = full
    return probabilities[:, POSITIVE] if task == "binary" else probabilities


class Measurement(NamedTuple):
    """One metric on some rows: its value, or None and why it is undefined there."""

    value: float | None
    undefined: str | None = None


def measure(
    name: str, task: Task, y: np.ndarray, scores: np.ndarray, threshold: float = BINARY_THRESHOLD
) -> Measurement:
    """One metric of scores against the truth, on the task's full label set (labels: binary scores from
    `threshold` up are positive); None with the reason where the metric is undefined on these rows."""
    metric = METRICS[task][name]
    y, scores = np.asarray(y), np.asarray(scores)
    if len(y) == 0:
        return Measurement(None, NO_ROWS)
    classes = task_classes(task, scores)
    predicted = labels_from_scores(scores, task, threshold) if metric.uses_labels else scores
    if metric.requires is not None and (reason := metric.requires(y, predicted, classes)):
        return Measurement(None, reason)
    value = metric.compute(y, predicted, classes)
    if not math.isfinite(value):  # what the requirements do not foresee: never NaN in a report
        return Measurement(None, f"not a finite number on these rows ({value})")
    return Measurement(value)


def score(name: str, task: Task, y: np.ndarray, scores: np.ndarray) -> float:
    """One metric of scores against the truth, where a number is needed (UndefinedMetricError if it has none)."""
    value, reason = measure(name, task, y, scores)
    if value is None:
        raise UndefinedMetricError(name, reason or NO_ROWS)
    return value


@dataclass(frozen=True)
class Evaluation:
    """Every metric of the task on some rows: `values` has each metric (rounded so that reports are stable
    and readable; None where undefined), `undefined` the reason for each None."""

    values: dict[str, float | None]
    undefined: dict[str, str]


def evaluate(
    task: Task, y: np.ndarray, scores: np.ndarray, threshold: float = BINARY_THRESHOLD
) -> Evaluation:
    """Every metric of the task, rounded; the undefined ones as None, with their reasons."""
    values: dict[str, float | None] = {}
    undefined: dict[str, str] = {}
    for name in METRICS[task]:
        value, reason = measure(name, task, y, scores, threshold)
        values[name] = None if value is None else round(value, 6)
        if reason is not None:
            undefined[name] = reason
    return Evaluation(values, undefined)


def shown(value: float | None, reason: str | None = None, digits: int = 4) -> str:
    """A metric value for people: the number, or "n/a" with the reason where it is undefined."""
    if value is not None:
        return f"{value:.{digits}f}"
    return f"n/a: {reason}" if reason else "n/a"
