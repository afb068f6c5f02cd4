"""The metric registry: every task gets its full metric set on the task's full label set, labels come from
scores the same way, and a metric undefined on some rows is None with the reason, never a crash or NaN."""

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from pillars.core.metrics import (
    METRICS,
    UndefinedMetricError,
    evaluate,
    labels_from_scores,
    measure,
    predict_scores,
    score,
    shown,
)


def test_binary_metrics_and_threshold() -> None:
    y = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.6, 0.4, 0.9])
    assert labels_from_scores(scores, "binary").tolist() == [0, 1, 0, 1]
    measured = evaluate("binary", y, scores)
    assert set(measured.values) == set(METRICS["binary"])
    assert measured.values["roc_auc"] == 0.75
    assert measured.values["accuracy"] == 0.5
    assert measured.undefined == {}


def test_multiclass_uses_the_most_probable_class() -> None:
    y = np.array([0, 1, 2])
    scores = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4]])
    assert labels_from_scores(scores, "multiclass").tolist() == [0, 1, 0]
    assert score("accuracy", "multiclass", y, scores) == pytest.approx(2 / 3)


def test_regression_metrics() -> None:
    measured = evaluate("regression", np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert measured.values["mae"] == pytest.approx(2 / 3, abs=1e-6)
    assert measured.values["rmse"] == pytest.approx(np.sqrt(4 / 3), abs=1e-6)
    assert not METRICS["regression"]["rmse"].greater_is_better


# Three classes; this subset holds rows of classes 0 and 1 only (the traceback of issue 13:
# "y_true and y_prob contain different number of classes: 2 vs 3")
TWO_OF_THREE_Y = np.array([0, 1, 1, 0])
TWO_OF_THREE_SCORES = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4]])


def test_a_multiclass_subset_missing_a_class_is_scored_on_every_class() -> None:
    measured = evaluate("multiclass", TWO_OF_THREE_Y, TWO_OF_THREE_SCORES)
    expected_log_loss = -np.mean(np.log([0.7, 0.7, 0.6, 0.3]))  # each row's probability of its own class
    assert measured.values["log_loss"] == pytest.approx(expected_log_loss, abs=1e-6)
    assert measured.values["accuracy"] == 0.75  # the last row is predicted as class 2
    # F1: class 0 is 2/3 (one of its rows went to class 2), class 1 is 1, class 2 (predicted, absent) is 0
    assert measured.values["f1_macro"] == pytest.approx((2 / 3 + 1 + 0) / 3, abs=1e-6)
    assert measured.values["roc_auc_ovr"] is None
    assert measured.undefined == {
        "roc_auc_ovr": "class [2] absent: one-vs-rest ROC AUC needs rows of every class"
    }


def test_macro_f1_leaves_out_a_class_neither_present_nor_predicted() -> None:
    scores = TWO_OF_THREE_SCORES[:3]  # rows of classes 0 and 1, all predicted right; class 2 nowhere
    assert score("f1_macro", "multiclass", TWO_OF_THREE_Y[:3], scores) == 1.0


def test_one_class_binary_rows_keep_the_metrics_that_are_defined() -> None:
    y, scores = np.array([1, 1, 1]), np.array([0.9, 0.4, 0.8])
    measured = evaluate("binary", y, scores)
    assert measured.values["roc_auc"] is None
    assert measured.undefined["roc_auc"] == "one class only (every row is class 1)"
    assert measured.values["accuracy"] == pytest.approx(2 / 3, abs=1e-6)
    assert measured.values["recall"] == pytest.approx(2 / 3, abs=1e-6)
    assert measured.values["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.8])), abs=1e-6)
    assert measured.values["average_precision"] == 1.0
    negatives = evaluate("binary", np.array([0, 0]), np.array([0.1, 0.2]))
    assert negatives.undefined == {
        "roc_auc": "one class only (every row is class 0)",
        "average_precision": "no positive rows (class 1)",
        "f1": "no positive rows and none predicted positive (class 1)",
        "precision": "no row predicted positive (class 1)",
        "recall": "no positive rows (class 1)",
    }
    assert negatives.values["accuracy"] == 1.0 and negatives.values["brier"] == pytest.approx(0.025)


def test_r2_of_one_row_or_a_constant_target_is_undefined() -> None:
    one_row = evaluate("regression", np.array([3.0]), np.array([2.5]))
    assert one_row.values == {"rmse": 0.5, "mae": 0.5, "r2": None}
    assert one_row.undefined == {"r2": "fewer than 2 rows (1)"}
    constant = evaluate("regression", np.array([4.0, 4.0, 4.0]), np.array([4.0, 3.0, 5.0]))
    assert constant.values["r2"] is None and constant.values["mae"] == pytest.approx(2 / 3, abs=1e-6)
    assert constant.undefined == {"r2": "the target is constant (4) in these rows"}


@pytest.mark.parametrize(
    ("task", "scores"),
    [("binary", np.array([])), ("multiclass", np.empty((0, 3))), ("regression", np.array([]))],
)
def test_no_rows_gives_every_metric_none_with_the_reason(task: str, scores: np.ndarray) -> None:
    measured = evaluate(task, np.array([], dtype="int64"), scores)
    assert measured.values == dict.fromkeys(METRICS[task])
    assert measured.undefined == dict.fromkeys(METRICS[task], "no rows")
    json.dumps(measured.values, allow_nan=False)  # null in the reports, never NaN


def test_score_raises_where_a_number_is_needed_and_measure_does_not() -> None:
    assert measure("roc_auc", "binary", np.array([0, 0]), np.array([0.2, 0.4])) == (
        None,
        "one class only (every row is class 0)",
    )
    with pytest.raises(UndefinedMetricError, match=r"roc_auc is undefined on these rows: one class only"):
        score("roc_auc", "binary", np.array([0, 0]), np.array([0.2, 0.4]))


def test_a_model_that_never_saw_a_class_scores_it_zero() -> None:
    x = np.array([[0.0], [0.1], [1.0], [1.1]])
    model = LogisticRegression().fit(x, np.array([0, 0, 2, 2]))  # class 1 of three never seen
    scores = predict_scores(model, x, "multiclass", n_classes=3)
    assert scores.shape == (4, 3) and (scores[:, 1] == 0).all()
    assert score("log_loss", "multiclass", np.array([0, 0, 2, 2]), scores) < 1.0


def test_undefined_values_are_shown_with_their_reason() -> None:
    assert shown(0.91234) == "0.9123"
    assert shown(None, "no rows") == "n/a: no rows"


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_scores_of_no_rows_are_empty_whatever_the_model(task: str) -> None:
    """LightGBM and scikit-learn refuse zero rows; an empty request must still get an empty answer."""
    import lightgbm

    generator = np.random.default_rng(0)
    x = generator.normal(size=(60, 2))
    y = x[:, 0] if task == "regression" else np.arange(60) % (3 if task == "multiclass" else 2)
    estimator = lightgbm.LGBMRegressor if task == "regression" else lightgbm.LGBMClassifier
    model = estimator(n_estimators=3, verbose=-1).fit(x, y)
    scores = predict_scores(model, np.zeros((0, 2)), task)
    assert scores.shape == ((0, 3) if task == "multiclass" else (0,))
