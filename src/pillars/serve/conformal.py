"""Split-conformal uncertainty: an interval around each regression prediction, a set of classes for each
classification, that hold the truth on at least 1 - alpha of new rows drawn like the calibration rows.

Calibrated on rows the model did not train on (`select`: the valid split, or out of fold after small-data
tuning), applied wherever the model scores (the service, batch inference, assess) from the fitted `Conformal`
in the serving model, so online and batch give the same bytes. The nonconformity score is the absolute
residual (regression) or one minus the probability of the true class (classification, "LAC": the smallest
sets on average); the threshold is its ceil((n + 1)(1 - alpha))-th smallest calibration value, the finite-
sample correction that makes the coverage guarantee hold (Angelopoulos & Bates, 2021). A class set always
holds the predicted class (binary: the label at the tuned decision threshold), so it is never empty and never
contradicts the prediction; coverage can only be higher.

This module runs inside the Bento: numpy and `core.metrics`.
"""

import math
from dataclasses import dataclass

import numpy as np

from pillars.core.metrics import labels_from_scores


@dataclass(frozen=True)
class Conformal:
    """The fitted calibration: `alpha`, the task, the nonconformity threshold, and the rows it came from."""

    alpha: float
    task: str
    threshold: (
        float  # regression: the half-width of every interval; classification: 1 - the least probability
    )
    rows: int

    def interval(self, predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The lower and upper ends around regression predictions."""
        values = np.asarray(predictions, dtype="float64")
        return values - self.threshold, values + self.threshold

    def sets(self, by_class: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        """Which classes are in each row's set (rows, classes), from the class probabilities (rows, classes)
        and the predicted class codes."""
        by_class = np.asarray(by_class, dtype="float64")
        inside = by_class >= 1.0 - self.threshold
        inside[np.arange(len(by_class)), np.asarray(predicted, dtype="int64")] = True
        return inside


def by_class(scores: np.ndarray, task: str) -> np.ndarray:
    """Class probabilities (rows, classes) from the scores `core.metrics` uses (binary: of the positive class)."""
    values: np.ndarray = np.asarray(scores, dtype="float64")
    return np.column_stack([1.0 - values, values]) if task == "binary" else values


def nonconformity(task: str, y: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """How unusual each labelled row is for the model: |y - prediction|; or the least set threshold whose set
    holds the truth: 0 when the truth is the predicted class (at the decision `threshold`: always in the
    set), else 1 - p(true class). Calibrating the sets as they are built keeps the coverage at the promised
    rate: with 1 - p alone, adding the predicted class would push it above (0.97 for 0.9 on a binary model
    deciding at 0.3)."""
    if task == "regression":
        residuals: np.ndarray = np.abs(np.asarray(y, dtype="float64") - np.asarray(scores, dtype="float64"))
        return residuals
    probabilities = by_class(scores, task)
    truth = np.asarray(y, dtype="int64")
    unusual = 1.0 - probabilities[np.arange(len(probabilities)), truth]
    predicted = labels_from_scores(scores, task, threshold) == truth
    least: np.ndarray = np.where(predicted, 0.0, unusual)
    return least


def calibrate(task: str, y: np.ndarray, scores: np.ndarray, alpha: float, threshold: float) -> Conformal:
    """The threshold from held-out rows (classification: labels decided at the decision `threshold`). Too few
    rows for the level (fewer than 1 / alpha - 1): the threshold is infinite, every interval unbounded and
    every set whole, which is honest, and said by the caller."""
    values = np.sort(nonconformity(task, y, scores, threshold))
    rank = math.ceil((len(values) + 1) * (1 - alpha))
    threshold = float(values[rank - 1]) if rank <= len(values) else math.inf
    return Conformal(alpha, task, threshold, len(values))


def predicted_sets(conformal: Conformal, scores: np.ndarray, threshold: float) -> np.ndarray:
    """The class sets of scores (`core.metrics`' form) whose labels are decided at `threshold` (binary)."""
    return conformal.sets(
        by_class(scores, conformal.task), labels_from_scores(scores, conformal.task, threshold)
    )


def covered(conformal: Conformal, y: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Whether each labelled row's truth is in its interval or set (labels decided at `threshold`)."""
    if conformal.task == "regression":
        low, high = conformal.interval(scores)
        truth = np.asarray(y, dtype="float64")
        return (low <= truth) & (truth <= high)
    inside = predicted_sets(conformal, scores, threshold)
    hit: np.ndarray = inside[np.arange(len(inside)), np.asarray(y, dtype="int64")]
    return hit
