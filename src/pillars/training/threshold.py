"""The decision threshold of a binary model, tuned on held-out predictions.

A probability becomes a decision (the positive label or not) at a threshold. 0.5 is right only when the
model is calibrated and both errors cost the same; otherwise the threshold that serves the user best is
found on rows the model did not train on (the valid split, or the out-of-fold predictions of small-data
tuning), for the objective in `train.threshold`: the F1 score of the positive class (`f1`), or the expected
cost per row of the false positives and false negatives (`cost`, from `costs`); `fixed` keeps 0.5.

Every distinct score is tried at once (one sort, cumulative counts): the threshold is the midpoint between
the chosen score and the next lower one, so rows scored exactly as on the tuning rows get the same decision
and the value does not sit on one row's score. Ties go to the highest threshold.
"""

from dataclasses import dataclass

import numpy as np

from pillars.core.metrics import BINARY_THRESHOLD
from pillars.core.params import ThresholdParams


@dataclass(frozen=True)
class Threshold:
    """The threshold, what it was tuned for, and that objective's value on the tuning rows."""

    value: float
    objective: str
    tuned_value: float | None

    def report(self) -> dict:
        shown = None if self.tuned_value is None else round(self.tuned_value, 6)
        return {"value": round(self.value, 6), "objective": self.objective, "valid_value": shown}


def tune_threshold(y: np.ndarray, scores: np.ndarray, settings: ThresholdParams) -> Threshold:
    """The threshold on `scores` (positive-class probabilities) that is best for `settings.objective`."""
    y, scores = np.asarray(y), np.asarray(scores, dtype="float64")
    positives = int((y == 1).sum())
    if settings.objective == "fixed" or not len(y):
        return Threshold(BINARY_THRESHOLD, settings.objective, None)
    order = np.argsort(-scores, kind="stable")
    ranked, truth = scores[order], y[order] == 1
    last = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])  # the last row of each distinct score
    # predicting positive from the top down to each distinct score; first, predicting no row positive
    true_positives = np.r_[0, np.cumsum(truth)[last]]
    false_positives = np.r_[0, last + 1] - true_positives
    false_negatives = positives - true_positives
    if settings.objective == "f1":
        denominator = 2 * true_positives + false_positives + false_negatives
        values = np.divide(
            2 * true_positives, denominator, out=np.zeros(len(last) + 1), where=denominator > 0
        )
        best = int(np.argmax(values))
    else:
        costs = settings.costs
        values = (false_positives * costs.false_positive + false_negatives * costs.false_negative) / len(y)
        best = int(np.argmin(values))
    if best == 0:  # no row positive: just above the highest score
        return Threshold(float(np.nextafter(ranked[0], np.inf)), settings.objective, float(values[0]))
    lowest = last[best - 1]  # the last row predicted positive
    below = ranked[lowest + 1] if lowest + 1 < len(ranked) else 0.0
    return Threshold(float((ranked[lowest] + below) / 2), settings.objective, float(values[best]))
