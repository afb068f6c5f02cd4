"""Model metrics per task: one registry, so train, validate_model, select and assess agree on every name.

scikit-learn is imported on a metric's first use, not with this module: the params loader reads the
registry's names, and every stage loads params, so this keeps stage start-up fast.
"""

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

import numpy as np

Task = str  # "binary" | "multiclass" | "regression"
BINARY_THRESHOLD = 0.5


def _sklearn(name: str, **fixed: object) -> Callable[[np.ndarray, np.ndarray], float]:
    """A sklearn.metrics function by name, with fixed keyword arguments, imported when first called."""

    def compute(y: np.ndarray, predicted: np.ndarray) -> float:
        return float(getattr(import_module("sklearn.metrics"), name)(y, predicted, **fixed))

    return compute


def _rmse(y: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(_sklearn("mean_squared_error")(y, predicted)))


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


METRICS: dict[Task, dict[str, Metric]] = {
    "binary": {
        "roc_auc": Metric(_sklearn("roc_auc_score"), True),
        "average_precision": Metric(_sklearn("average_precision_score"), True),
        "log_loss": Metric(_sklearn("log_loss"), False),
        "brier": Metric(_sklearn("brier_score_loss"), False),
        "accuracy": Metric(_sklearn("accuracy_score"), True, uses_labels=True),
        "f1": Metric(_sklearn("f1_score"), True, uses_labels=True),
        "precision": Metric(_sklearn("precision_score", zero_division=0), True, uses_labels=True),
        "recall": Metric(_sklearn("recall_score"), True, uses_labels=True),
    },
    "multiclass": {
        "log_loss": Metric(_sklearn("log_loss"), False),
        "roc_auc_ovr": Metric(_sklearn("roc_auc_score", multi_class="ovr"), True),
        "accuracy": Metric(_sklearn("accuracy_score"), True, uses_labels=True),
        "f1_macro": Metric(_sklearn("f1_score", average="macro"), True, uses_labels=True),
    },
    "regression": {
        "rmse": Metric(_rmse, False),
        "mae": Metric(_sklearn("mean_absolute_error"), False),
        "r2": Metric(_sklearn("r2_score"), True),
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
