"""The ensemble candidate: the tuned candidates averaged, with weights fitted on held-out predictions.

Ensemble selection with replacement (Caruana et al., 2004): start from nothing and, `size` times, add the
candidate whose addition makes the running average score best on the held-out rows (the valid split, or the
out-of-fold predictions of small-data tuning); a candidate's weight is the share of picks it got. Picking
with replacement lets a strong candidate weigh more and keeps weak ones out, and the weights are fractions
with denominator `size`, so they are exact and the same on every run. Ties go to the earlier candidate in
`train.candidates`. The test split is never seen.
"""

from dataclasses import dataclass

import numpy as np

from pillars.core.errors import PillarsError
from pillars.core.metrics import METRICS, Task, measure
from pillars.serve.estimators import blend_scores


@dataclass(frozen=True)
class Weights:
    """The fitted weights (candidates with at least one pick, in candidate order) and the metric of the
    weighted average on the held-out rows."""

    weights: dict[str, float]
    value: float


def select_weights(
    scores: dict[str, np.ndarray], y: np.ndarray, task: Task, metric: str, size: int
) -> Weights:
    """Greedy ensemble selection with replacement over the candidates' held-out `scores`."""
    better = METRICS[task][metric].better
    picks = dict.fromkeys(scores, 0)
    total = np.zeros_like(next(iter(scores.values())), dtype="float64")
    best_value = None
    for step in range(1, size + 1):
        best_name = None
        for name, candidate in scores.items():
            value = measure(metric, task, y, (total + candidate) / step).value
            if value is not None and (best_name is None or better(value, best_value)):
                best_name, best_value = name, value
        if best_name is None:  # undefined on every mix: no pick can be judged
            break
        picks[best_name] += 1
        total = total + scores[best_name]
    chosen = sum(picks.values())
    if not chosen:
        raise PillarsError(f"train: ensemble: {metric} is undefined on the held-out rows for every candidate")
    weights = {name: count / chosen for name, count in picks.items() if count}
    return Weights(weights, float(measure(metric, task, y, blend_scores(scores, weights)).value))
