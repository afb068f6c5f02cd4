"""Pillar 8, validate_model: absolute thresholds, the champion comparison and slices decide eligibility;
an undefined metric fails a threshold with its reason, and a slice that cannot be judged is skipped with
its reason, never a crash."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from pillars.core.errors import PillarsError
from pillars.core.metrics import evaluate
from pillars.stages.validate_model import champion_check, slice_checks, summary, validate_candidate


@pytest.fixture
def valid() -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    generator = np.random.default_rng(1)
    rows = 1_000
    x = generator.normal(size=(rows, 3))
    y = (x[:, 0] + generator.normal(scale=0.7, size=rows) > 0).astype("int64")
    frame = pd.DataFrame({"gender": np.where(np.arange(rows) < 950, "female", "male"), "race": "white"})
    return x, y, frame


def test_thresholds_slices_and_no_champion(make_params, valid) -> None:
    x, y, frame = valid
    model = LogisticRegression().fit(x, y)
    params = make_params(
        validate_model={
            "thresholds": {"roc_auc": {"min": 0.8}, "recall": {"min": 0.99}},
            "slices": {"min_rows": 100},
        }
    )
    result = validate_candidate(model, x, y, frame, params, (None, "no champion yet"))
    checks = result["checks"]
    assert checks["roc_auc"]["passed"] and checks["roc_auc"]["min"] == 0.8
    assert not checks["recall"]["passed"], "a recall of 0.99 is out of reach"
    assert not result["passed"]
    assert checks["champion"] == {"passed": None, "skipped": "no champion yet"}, "skipped is never passed"
    assert (
        checks["slice:gender=female:roc_auc"]["rows"] == 950
        and "value" in checks["slice:gender=female:roc_auc"]
    )
    assert checks["slice:gender=male:roc_auc"]["skipped"] == "fewer than 100 rows"
    assert set(result["valid"]) >= {"roc_auc", "f1", "precision", "recall"}
    assert result["undefined"] == {}


def test_champion_comparison(make_params) -> None:
    params = make_params(validate_model={"champion": {"max_drop": 0.01}})
    assert champion_check(0.915, 0.92, params, "measured")["passed"]
    worse = champion_check(0.90, 0.92, params, "measured")
    assert not worse["passed"] and worse["drop"] == pytest.approx(0.02)


def test_champion_comparison_for_a_metric_to_minimise(make_params) -> None:
    params = make_params(
        dataset={"task": "regression", "positive_label": None}, validate_model={"champion": {"max_drop": 1.0}}
    )
    assert champion_check(10.5, 10.0, params, "measured")["passed"]
    assert not champion_check(12.0, 10.0, params, "measured")["passed"]


def test_slice_with_one_class_is_not_judged(make_params, valid) -> None:
    _, y, frame = valid
    y = y.copy()
    y[frame["gender"] == "female"] = 1
    checks = slice_checks(
        frame, y, np.linspace(0, 1, len(y)), make_params(validate_model={"slices": {"min_rows": 10}})
    )
    assert checks["slice:gender=female:roc_auc"] == {
        "rows": 950,
        "passed": None,
        "skipped": "one class only (every row is class 1)",
    }
    assert "value" in checks["slice:gender=male:roc_auc"], "the other slice is still judged"


def test_undefined_metric_on_the_valid_split_fails_its_threshold_with_the_reason(make_params) -> None:
    generator = np.random.default_rng(3)
    x = generator.normal(size=(400, 2))
    y = (np.arange(400) % 20 == 0).astype("int64")  # 5% positives, unrelated to x
    model = LogisticRegression().fit(x, y)  # never reaches a probability of 0.5: no row predicted positive
    frame = pd.DataFrame({"gender": "female"}, index=range(400))
    params = make_params(
        validate_model={
            "thresholds": {"precision": {"min": 0.5}, "accuracy": {"min": 0.9}},
            "slices": {"columns": ["gender"], "metric": "precision", "min_rows": 10},
        }
    )
    result = validate_candidate(model, x, y, frame, params, (None, "no champion yet"))
    reason = "no row predicted positive (class 1)"
    assert result["checks"]["precision"] == {"value": None, "min": 0.5, "passed": False, "undefined": reason}
    assert result["checks"]["accuracy"]["passed"], "the defined metrics are still judged"
    assert result["valid"]["precision"] is None and result["undefined"] == {"precision": reason}
    assert result["valid"]["f1"] == 0.0, "F1 is defined (there are positive rows): none of them was found"
    assert result["checks"]["slice:gender=female:precision"] == {
        "rows": 400,
        "value": None,
        "passed": None,
        "skipped": f"precision undefined: {reason}",
    }
    assert not result["passed"]
    assert f"precision undefined ({reason})" in summary({"candidates": {"linear": result}})
    json.dumps(result, allow_nan=False)  # metrics/model_validation.json: null, never NaN


def test_champion_check_fails_a_candidate_without_a_value(make_params) -> None:
    params = make_params()
    check = champion_check(None, 0.92, params, "measured", "one class only (every row is class 0)")
    assert check == {
        "value": None,
        "champion": 0.92,
        "passed": False,
        "undefined": "one class only (every row is class 0)",
    }


def test_multiclass_slices_with_some_classes_or_one_class(make_params) -> None:
    """Three classes; the female slice holds classes 0 and 1, the male slice class 2 only."""
    y = np.array([0, 1, 0, 1, 0, 1, 2, 2, 2])
    scores = np.array(
        [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.3, 0.6, 0.1], [0.4, 0.3, 0.3], [0.1, 0.8, 0.1]]
        + [[0.1, 0.1, 0.8]] * 3
    )
    frame = pd.DataFrame({"gender": ["female"] * 6 + ["male"] * 3})
    multiclass = {"task": "multiclass", "positive_label": None}

    def checks(metric: str) -> dict:
        settings = {"columns": ["gender"], "metric": metric, "limit": {"min": 0.5}, "min_rows": 3}
        return slice_checks(
            frame, y, scores, make_params(dataset=multiclass, validate_model={"slices": settings})
        )

    by_accuracy = checks("accuracy")
    assert by_accuracy["slice:gender=female:accuracy"] == {"rows": 6, "value": 1.0, "passed": True}
    assert by_accuracy["slice:gender=male:accuracy"]["skipped"] == "one class only (every row is class 2)"
    by_auc = checks("roc_auc_ovr")["slice:gender=female:roc_auc_ovr"]
    assert by_auc["value"] is None and by_auc["passed"] is None, "not judged: neither passed nor failed"
    assert (
        by_auc["skipped"]
        == "roc_auc_ovr undefined: class [2] absent: one-vs-rest ROC AUC needs rows of every class"
    )


def test_slice_column_dropped_by_curate(make_params, valid) -> None:
    _, y, frame = valid
    params = make_params(validate_model={"slices": {"columns": ["age"]}})
    with pytest.raises(
        PillarsError, match=r"validate_model\.slices\.columns: 'age' is not in the curated data"
    ):
        slice_checks(frame, y, np.zeros(len(y)), params)


def test_champion_is_scored_through_its_own_pipeline(make_params, tmp_path, monkeypatch) -> None:
    import pickle

    from pillars.core import layout
    from pillars.stages.validate_model import champion_value
    from pillars.training.features import build_pipeline

    generator = np.random.default_rng(2)
    frame = pd.DataFrame(
        {"age": generator.normal(40, 10, 600), "city": generator.choice(["oslo", "rome"], 600)}
    )
    y = ((frame["age"] > 40) ^ (generator.random(600) < 0.1)).astype("int64").to_numpy()
    params = make_params()
    pipeline = build_pipeline({"age": "numeric", "city": "categorical"}, params.featurize).fit(frame)
    model = LogisticRegression().fit(pipeline.transform(frame), y)
    monkeypatch.setattr(layout, "CHAMPION_DIR", tmp_path)
    assert champion_value(frame, y, params)[0] is None
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    (tmp_path / "feature_pipeline.pkl").write_bytes(pickle.dumps(pipeline))
    value, how = champion_value(frame.assign(extra=1), y, params)
    assert how == "measured" and value > 0.85
    with pytest.raises(PillarsError, match=r"the champion in .* cannot score this data"):
        champion_value(frame.drop(columns="city"), y, params)


def test_small_data_judges_out_of_fold_predictions_and_the_champion_on_valid_rows(make_params) -> None:
    """After cross-validated tuning the refit model has seen valid: its out-of-fold predictions of train +
    valid are judged, and the champion comparison uses the valid rows only."""
    from pillars.stages.validate_model import validate_out_of_fold

    generator = np.random.default_rng(3)
    y = {"train": generator.integers(0, 2, 300), "valid": generator.integers(0, 2, 100)}
    frames = {
        split: pd.DataFrame({"gender": "female", "race": "white"}, index=range(len(y[split]))) for split in y
    }
    noisy = {split: y[split] * 0.5 + generator.random(len(y[split])) * 0.5 for split in y}
    perfect_on_valid = np.concatenate([noisy["train"], y["valid"].astype("float64")])
    params = make_params(
        validate_model={
            "thresholds": {"roc_auc": {"min": 0.8}},
            "champion": {"max_drop": 0.01},
            "slices": {"min_rows": 50},
        }
    )
    tuning = {"method": "cv", "folds": 5, "rows": 400, "max_rows": 2000}
    report = validate_out_of_fold(
        {"linear": perfect_on_valid}, y, frames, params, (0.995, "measured"), tuning, {"linear": 0.5}
    )

    assert report["evaluated_on"] == "out_of_fold" and report["tuning"] == tuning
    result = report["candidates"]["linear"]
    pooled = np.concatenate([y["train"], y["valid"]])
    evaluation = evaluate("binary", pooled, perfect_on_valid)
    assert result["out_of_fold"] == evaluation.values and result["undefined"] == evaluation.undefined == {}
    assert "valid" not in result
    assert result["checks"]["champion"]["value"] == 1.0, "compared on the valid rows only"
    assert result["checks"]["champion"]["passed"]
    assert result["checks"]["slice:gender=female:roc_auc"]["rows"] == 400, "slices over train + valid"
    assert report["eligible"] == ["linear"]


def test_small_data_out_of_fold_metrics_follow_the_undefined_metric_rules(make_params) -> None:
    """On out-of-fold predictions too: an undefined metric is null with the reason and fails its threshold,
    and slices of train + valid are skipped by the shared rule (here: one class only)."""
    from pillars.stages.validate_model import validate_out_of_fold

    generator = np.random.default_rng(4)
    y = {"train": generator.integers(0, 2, 300), "valid": generator.integers(0, 2, 100)}
    frames = {
        split: pd.DataFrame(
            {
                "gender": np.where((labels == 0) & (np.arange(len(labels)) % 2 == 0), "male", "female"),
                "race": "white",
            }
        )
        for split, labels in y.items()
    }
    pooled = np.concatenate([y["train"], y["valid"]])
    never_positive = 0.4 * pooled + 0.05 * generator.random(len(pooled))  # ranks well, never reaches 0.5
    params = make_params(
        validate_model={
            "thresholds": {"roc_auc": {"min": 0.8}, "precision": {"min": 0.5}},
            "slices": {"columns": ["gender"], "min_rows": 10},
        }
    )
    report = validate_out_of_fold(
        {"linear": never_positive},
        y,
        frames,
        params,
        (None, "no champion yet"),
        {"method": "cv"},
        {"linear": 0.5},
    )

    result, reason = report["candidates"]["linear"], "no row predicted positive (class 1)"
    assert result["out_of_fold"]["precision"] is None and result["undefined"]["precision"] == reason
    assert result["checks"]["precision"] == {"value": None, "min": 0.5, "passed": False, "undefined": reason}
    assert result["checks"]["roc_auc"]["passed"], "the defined metrics are still judged"
    males = int((np.concatenate([frames["train"]["gender"], frames["valid"]["gender"]]) == "male").sum())
    assert result["checks"]["slice:gender=male:roc_auc"] == {
        "rows": males,
        "passed": None,
        "skipped": "one class only (every row is class 0)",
    }
    assert "value" in result["checks"]["slice:gender=female:roc_auc"]
    assert report["eligible"] == [] and f"precision undefined ({reason})" in summary(report)
    json.dumps(report, allow_nan=False)
