"""Pillar 9, assess: plots that fit the task, permutation importance per input column, metrics per slice
(skipped slices and undefined metrics with their reasons) and the model card."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from pillars.core.metrics import METRICS, evaluate
from pillars.serve.conformal import calibrate
from pillars.stages.assess import (
    block,
    conformal_report,
    curves,
    headline,
    model_card,
    permutation_importance,
    slice_metrics,
)
from tests.helpers import card_inputs, gate_report


def test_binary_curves() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    tables = curves(y, np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9]), "binary", bins=3, threshold=0.5)
    assert set(tables) == {"confusion", "roc", "pr", "calibration"}
    assert tables["roc"][["fpr", "tpr"]].iloc[-1].tolist() == [1.0, 1.0]
    assert tables["confusion"]["predicted"].tolist() == [0, 0, 0, 1, 0, 1]
    lower = curves(y, np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9]), "binary", bins=3, threshold=0.3)
    assert lower["confusion"]["predicted"].tolist() == [0, 1, 1, 1, 0, 1], "decisions at the tuned threshold"


def test_regression_gets_residuals_only() -> None:
    tables = curves(np.array([1.0, 2.0]), np.array([1.5, 1.0]), "regression", bins=3, threshold=0.5)
    assert list(tables) == ["residuals"]
    assert tables["residuals"]["residual"].tolist() == [-0.5, 1.0]


def test_importance_groups_features_by_input_column(make_params) -> None:
    generator = np.random.default_rng(0)
    x = pd.DataFrame(generator.normal(size=(800, 3)), columns=["signal", "colour_red", "colour_blue"])
    y = (x["signal"] > 0).astype("int64").to_numpy()
    model = LogisticRegression().fit(x.to_numpy(), y)
    importance = permutation_importance(
        model, x, y, {"signal": "signal", "colour_red": "colour", "colour_blue": "colour"}, make_params()
    )
    assert importance["column"].tolist() == ["signal", "colour"]
    assert importance["importance"].iloc[0] > 0.3 > abs(importance["importance"].iloc[1])


class CountingModel:
    """A model that counts the rows it is asked to score."""

    def __init__(self) -> None:
        self.rows: list[int] = []

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.rows.append(len(x))
        return np.column_stack([1 - x[:, 0], x[:, 0]])


def test_permutation_importance_predicts_at_most_importance_rows(make_params) -> None:
    """A large test split costs what `assess.importance_rows` rows cost: every prediction is of the sample."""
    generator = np.random.default_rng(1)
    x = pd.DataFrame({"signal": generator.uniform(size=5000), "noise": generator.uniform(size=5000)})
    y = (x["signal"] > 0.5).astype("int64").to_numpy()
    model = CountingModel()
    params = make_params(assess={"importance_rows": 400, "importance_repeats": 2})
    importance = permutation_importance(model, x, y, {"signal": "signal", "noise": "noise"}, params)
    assert model.rows == [400] * (1 + 2 * 2), "the baseline, then 2 repeats of 2 columns, on 400 rows each"
    assert importance["column"].tolist() == ["signal", "noise"] and importance["importance"].iloc[0] > 0.2


def binary_slices() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """40 rows: the female slice (30) holds both classes, the male slice (6) only class 1, the other
    slice (4) both classes but fewer rows than min_rows."""
    gender = ["female"] * 30 + ["male"] * 6 + ["other"] * 4
    y = np.array([0, 1] * 15 + [1] * 6 + [0, 1] * 2)
    scores = np.where(y == 1, 0.8, 0.3)
    scores[:2] = [0.6, 0.2]  # one mistake in the female slice
    return pd.DataFrame({"gender": gender}), y, scores


def test_slices_too_small_or_with_one_class_are_skipped_with_the_reason(make_params) -> None:
    frame, y, scores = binary_slices()
    params = make_params(validate_model={"slices": {"columns": ["gender"], "min_rows": 5}})
    report = slice_metrics(frame, y, scores, params, threshold=0.5)
    assert report["gender=male"] == {"rows": 6, "skipped": "one class only (every row is class 1)"}
    assert report["gender=other"] == {"rows": 4, "skipped": "fewer than 5 rows"}
    female = report["gender=female"]
    assert female["rows"] == 30 and female["undefined"] == {}
    assert female["metrics"]["accuracy"] == pytest.approx(28 / 30, abs=1e-6)
    assert set(female["metrics"]) == set(METRICS["binary"])
    test = evaluate("binary", y, scores)
    defaults = {"family": "lightgbm", "metrics": {"roc_auc": 0.5}, "undefined": {}}
    top = headline("xgboost", test, report, "roc_auc", defaults)
    assert top["baseline"] == {"family": "lightgbm", "roc_auc": 0.5}
    assert top["slices"] == {"gender=female": female["metrics"]["roc_auc"]}
    assert top["skipped_slices"] == {
        "gender=male": "one class only (every row is class 1)",
        "gender=other": "fewer than 5 rows",
    }
    assert top["undefined"] == {"test": {}, "slices": {}}
    json.dumps(top, allow_nan=False)


def test_multiclass_slice_with_two_of_three_classes_gets_its_metrics(make_params) -> None:
    """The reported case: one slice held only some of the classes and assess stopped with a traceback."""
    y = np.array([0, 1, 0, 1, 2, 2, 0, 1])
    two_classes = [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.3, 0.6, 0.1]]
    three_classes = [[0.1, 0.2, 0.7], [0.2, 0.2, 0.6], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]
    scores = np.array(two_classes + three_classes)
    frame = pd.DataFrame({"gender": ["female"] * 4 + ["male"] * 4})
    params = make_params(
        dataset={"task": "multiclass", "positive_label": None},
        train={"metric": "roc_auc_ovr"},
        validate_model={"slices": {"columns": ["gender"], "min_rows": 2}},
    )
    report = slice_metrics(frame, y, scores, params, threshold=0.5)
    female_slice = report["gender=female"]  # classes 0 and 1 only
    assert female_slice["metrics"]["accuracy"] == 1.0
    assert female_slice["metrics"]["log_loss"] == pytest.approx(
        -np.mean(np.log([0.6, 0.7, 0.5, 0.6])), abs=1e-6
    )
    assert female_slice["metrics"]["f1_macro"] == 1.0
    assert female_slice["metrics"]["roc_auc_ovr"] is None
    assert female_slice["undefined"] == {
        "roc_auc_ovr": "class [2] absent: one-vs-rest ROC AUC needs rows of every class"
    }
    assert report["gender=male"]["metrics"]["roc_auc_ovr"] == 1.0, "all three classes: defined"
    defaults = {"family": "xgboost", "metrics": {"roc_auc_ovr": None}, "undefined": {}}
    top = headline("xgboost", evaluate("multiclass", y, scores), report, "roc_auc_ovr", defaults)
    assert top["slices"] == {"gender=female": None, "gender=male": 1.0}
    assert top["undefined"]["slices"] == {"gender=female": female_slice["undefined"]["roc_auc_ovr"]}


def test_the_model_card_shows_undefined_metrics_and_skipped_slices(make_params) -> None:
    frame, y, scores = binary_slices()
    params = make_params(validate_model={"slices": {"columns": ["gender"], "min_rows": 5}})
    negatives = y == 0
    one_class = block(evaluate("binary", y[negatives], scores[negatives]))  # roc_auc etc. undefined
    report = {
        "model": "linear",
        "test": block(evaluate("binary", y, scores)),
        "candidates": {"linear": block(evaluate("binary", y, scores)), "xgboost": one_class},
        "baseline": {"family": "xgboost", **one_class},
        "slices": slice_metrics(frame, y, scores, params, threshold=0.5),
        "conformal": conformal_report(calibrate("binary", y, scores, 0.1, 0.5), y, scores, 0.5, "valid"),
    }
    validation = gate_report("linear", "xgboost", eligible=["linear"])
    rows = {"train": 100, "valid": 40, "test": 40}
    inputs = card_inputs(validation, "xgboost", rows, trials=3, best_is_defaults=True)
    card = model_card(params, inputs, report, pd.DataFrame({"column": ["gender"], "importance": [0.1]}))
    assert "| xgboost | no | n/a: one class only (every row is class 0) |" in card
    assert "- The selected settings are the library's defaults: no tuned trial beat the first" in card
    assert "| gender=male | 6 | skipped: one class only (every row is class 1) |" in card
    assert "| gender=other | 4 | skipped: fewer than 5 rows |" in card
    assert "| gender=female | 30 | 0." in card
    assert "vs n/a: one class only (every row is class 0) for xgboost with its library's default" in card
    coverage = report["conformal"]["test_coverage"]
    assert (
        f"Uncertainty (conformal, alpha 0.1, calibrated on {len(y)} rows of valid): class sets cover {coverage}"
        in card
    )
    assert coverage >= 0.9, "calibrated and measured on the same rows: at least the promised rate"
