"""Model metrics per task: one registry, so train, validate_model, select and assess agree on every name."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as sk

Task = str  # "binary" | "multiclass" | "regression"
BINARY_THRESHOLD = 0.5


@dataclass(frozen=True)
class Metric:
    """A metric of predictions: scores (probabilities or values) or labels, and which way is better."""

    compute: Callable[[np.ndarray, np.ndarray], float]
    greater_is_better: bool
    uses_labels: bool = False

    def better(self, candidate: float, incumbent: float) -> bool:
        return candidate > incumbent if self.greater_is_better else candidate < incumbent

    @property
    def direction(self) -> str:
        return "maximize" if self.greater_is_better else "minimize"


def _rmse(y: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(sk.mean_squared_error(y, predicted)))


METRICS: dict[Task, dict[str, Metric]] = {
    "binary": {
        "roc_auc": Metric(sk.roc_auc_score, True),
        "average_precision": Metric(sk.average_precision_score, True),
        "log_loss": Metric(sk.log_loss, False),
        "brier": Metric(sk.brier_score_loss, False),
        "accuracy": Metric(sk.accuracy_score, True, uses_labels=True),
        "f1": Metric(sk.f1_score, True, uses_labels=True),
        "precision": Metric(
            lambda y, labels: sk.precision_score(y, labels, zero_division=0), True, uses_labels=True
        ),
        "recall": Metric(sk.recall_score, True, uses_labels=True),
    },
    "multiclass": {
        "log_loss": Metric(sk.log_loss, False),
        "roc_auc_ovr": Metric(lambda y, scores: sk.roc_auc_score(y, scores, multi_class="ovr"), True),
        "accuracy": Metric(sk.accuracy_score, True, uses_labels=True),
        "f1_macro": Metric(lambda y, labels: sk.f1_score(y, labels, average="macro"), True, uses_labels=True),
    },
    "regression": {
        "rmse": Metric(_rmse, False),
        "mae": Metric(sk.mean_absolute_error, False),
        "r2": Metric(sk.r2_score, True),
    },
}

# The metric XGBoost reports per boosting round for each objective metric (feeds the pruner)
XGBOOST_EVAL_METRIC = {
    ("binary", "roc_auc"): "auc",
    ("binary", "average_precision"): "aucpr",
    ("binary", "log_loss"): "logloss",
    ("multiclass", "log_loss"): "mlogloss",
    ("multiclass", "roc_auc_ovr"): "auc",
    ("regression", "rmse"): "rmse",
    ("regression", "mae"): "mae",
}


def labels_from_scores(scores: np.ndarray, task: Task) -> np.ndarray:
    """Class labels from probabilities: the 0.5 threshold for binary, the most probable class otherwise."""
    if task == "binary":
        return (scores >= BINARY_THRESHOLD).astype("int64")
    return scores.argmax(axis=1)


def predict_scores(model: object, features: np.ndarray, task: Task) -> np.ndarray:
    """Probabilities of the positive class (binary), of every class (multiclass), or values (regression)."""
    if task == "regression":
        return np.asarray(model.predict(features), dtype="float64")
    probabilities = np.asarray(model.predict_proba(features), dtype="float64")
    return probabilities[:, 1] if task == "binary" else probabilities


def score(name: str, task: Task, y: np.ndarray, scores: np.ndarray) -> float:
    """One metric of scores against the truth."""
    metric = METRICS[task][name]
    return float(metric.compute(y, labels_from_scores(scores, task) if metric.uses_labels else scores))


def evaluate(task: Task, y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Every metric of the task, rounded so that reports are stable and readable."""
    return {name: round(score(name, task, y, scores), 6) for name in METRICS[task]}
