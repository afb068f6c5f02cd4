"""The metric registry: every task gets its full metric set, and labels come from scores the same way."""

import numpy as np
import pytest

from pillars.core.metrics import METRICS, evaluate, labels_from_scores, score


def test_binary_metrics_and_threshold() -> None:
    y = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.6, 0.4, 0.9])
    assert labels_from_scores(scores, "binary").tolist() == [0, 1, 0, 1]
    measured = evaluate("binary", y, scores)
    assert set(measured) == set(METRICS["binary"])
    assert measured["roc_auc"] == 0.75
    assert measured["accuracy"] == 0.5


def test_multiclass_uses_the_most_probable_class() -> None:
    y = np.array([0, 1, 2])
    scores = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4]])
    assert labels_from_scores(scores, "multiclass").tolist() == [0, 1, 0]
    assert score("accuracy", "multiclass", y, scores) == pytest.approx(2 / 3)


def test_regression_metrics() -> None:
    measured = evaluate("regression", np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert measured["mae"] == pytest.approx(2 / 3, abs=1e-6)
    assert measured["rmse"] == pytest.approx(np.sqrt(4 / 3), abs=1e-6)
    assert not METRICS["regression"]["rmse"].greater_is_better
