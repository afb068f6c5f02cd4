"""Monitoring performance per window on joined feedback: a window whose labels hold one class, or too few
labels, has no value and says why; the other windows and the overall value are still measured."""

import json

import numpy as np
import pandas as pd

from pillars.core.params import MonitorParams
from pillars.monitoring.analysis import decide, performance
from pillars.monitoring.logs import Logged
from pillars.serve.conformal import Conformal


def logged(scores: np.ndarray) -> Logged:
    times = [f"2026-11-24T10:{minute:02d}:00Z" for minute in range(len(scores))]
    rows = pd.DataFrame({"request_id": [str(n) for n in range(len(scores))], "row": 0, "time": times})
    return Logged(inputs={}, rows=rows.assign(prediction=""), scores=scores, lines=len(scores))


SETTINGS = MonitorParams(window_rows=4, performance={"min_labels": 3, "max_drop": 0.05})


def test_a_window_whose_labels_hold_one_class_has_no_value_and_the_reason() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.8, 0.3, 0.9, 0.1, 0.4, 0.7, 0.6])
    labels = np.array([1, 1, 1, 1, 0, 1, 0, 1, 0, np.nan, np.nan, 1], dtype="float64")
    measured = performance(logged(scores), labels, "binary", "roc_auc", 0.95, SETTINGS)
    first, second, third = measured["windows"]
    assert first["value"] is None
    assert first["reason"] == "roc_auc undefined on the labelled rows: one class only (every row is class 1)"
    assert second["value"] == 1.0 and second["reason"] is None
    assert (
        third["value"] is None and third["reason"] == "fewer than 3 labels (monitor.performance.min_labels)"
    )
    assert measured["current"] is not None and measured["reason"] is None, "all the labels: both classes"
    json.dumps(measured, allow_nan=False)


def test_multiclass_window_missing_a_class_keeps_the_metrics_defined_on_it() -> None:
    scores = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1]])
    labels = np.array([0, 1, 0, 1], dtype="float64")  # class 2 absent
    by_log_loss = performance(logged(scores), labels, "multiclass", "log_loss", None, SETTINGS)
    assert by_log_loss["current"] == round(-np.mean(np.log([0.7, 0.7, 0.6, 0.8])), 6)
    by_auc = performance(logged(scores), labels, "multiclass", "roc_auc_ovr", 0.9, SETTINGS)
    assert by_auc["current"] is None and by_auc["drop"] is None
    assert "class [2] absent" in by_auc["reason"]
    decision = decide(4, {}, {}, by_auc, "roc_auc_ovr", SETTINGS.model_copy(update={"min_rows": 1}))
    assert decision["action"] == "none"
    assert (
        "performance not measured (roc_auc_ovr undefined on the labelled rows: class [2] absent"
        in (decision["reasons"][0])
    )


def test_realized_coverage_is_the_share_of_labelled_rows_in_their_served_set() -> None:
    """Per window and overall: how many labelled rows' truth fell in the conformal set the service answered
    with (the set holds every class at or above 1 - threshold, and the predicted one)."""
    scores = np.array([0.9, 0.8, 0.3, 0.6, 0.1, 0.45, 0.7, 0.2])
    labels = np.array([1, 0, 0, 0, 1, 1, np.nan, 0])
    conformal = Conformal(alpha=0.1, task="binary", threshold=0.6, rows=100)  # classes at 0.4 or more
    measured = performance(logged(scores), labels, "binary", "roc_auc", None, SETTINGS, 0.5, conformal)
    # sets {1}, {1}, {0}, {0,1}, {0}, {0,1}, -, {0}: the truth is in 5 of the 7 labelled rows
    assert measured["coverage"] == {"promised": 0.9, "realized": round(5 / 7, 6)}
    assert [window["coverage"] for window in measured["windows"]] == [0.75, round(2 / 3, 6)]
    unlabelled = performance(
        logged(scores), np.full(8, np.nan), "binary", "roc_auc", None, SETTINGS, 0.5, conformal
    )
    assert unlabelled["coverage"] == {"promised": 0.9, "realized": None}
