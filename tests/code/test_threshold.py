"""The binary decision threshold, tuned on held-out scores for F1 or the expected cost."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from pillars.core.params import ThresholdParams
from pillars.training.threshold import tune_threshold


def scored(rows: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Positives are rare and the scores are shrunk towards 0: 0.5 is far from the best threshold."""
    generator = np.random.default_rng(3)
    y = (generator.random(rows) < 0.2).astype("int64")
    scores = np.clip(0.15 + 0.3 * y + generator.normal(scale=0.12, size=rows), 0, 1)
    return y, scores


def test_the_f1_threshold_is_the_best_cut_of_the_held_out_scores() -> None:
    y, scores = scored()
    tuned = tune_threshold(y, scores, ThresholdParams(objective="f1"))
    best = max(f1_score(y, scores >= cut) for cut in np.unique(scores))
    assert tuned.tuned_value == pytest.approx(best)
    assert f1_score(y, scores >= tuned.value) == pytest.approx(best)
    assert f1_score(y, scores >= tuned.value) > f1_score(y, scores >= 0.5) + 0.1
    assert not np.isin(tuned.value, scores), "the threshold lies between two scores, not on one"


def test_the_cost_threshold_follows_the_costs() -> None:
    y, scores = scored()
    cheap_misses = ThresholdParams(objective="cost", costs={"false_positive": 5.0, "false_negative": 1.0})
    dear_misses = ThresholdParams(objective="cost", costs={"false_positive": 1.0, "false_negative": 5.0})
    high, low = tune_threshold(y, scores, cheap_misses), tune_threshold(y, scores, dear_misses)
    assert low.value < high.value

    def cost(cut: float, fp: float, fn: float) -> float:
        predicted = scores >= cut
        return float((fp * (predicted & (y == 0)).sum() + fn * (~predicted & (y == 1)).sum()) / len(y))

    cuts = np.r_[np.unique(scores), 1.01]
    assert high.tuned_value == pytest.approx(min(cost(cut, 5.0, 1.0) for cut in cuts))
    assert cost(high.value, 5.0, 1.0) == pytest.approx(high.tuned_value)


def test_when_every_positive_decision_costs_more_than_it_saves_none_is_made() -> None:
    y, scores = scored()
    scores = np.minimum(scores, 0.99)
    scores[np.flatnonzero(y == 0)[0]] = 1.0  # the top score is a negative: any positive decision costs 100
    settings = ThresholdParams(objective="cost", costs={"false_positive": 100.0, "false_negative": 0.01})
    tuned = tune_threshold(y, scores, settings)
    assert (scores < tuned.value).all()


def test_fixed_keeps_one_half() -> None:
    y, scores = scored()
    tuned = tune_threshold(y, scores, ThresholdParams(objective="fixed"))
    assert (tuned.value, tuned.tuned_value) == (0.5, None)
    assert tuned.report() == {"value": 0.5, "objective": "fixed", "valid_value": None}
