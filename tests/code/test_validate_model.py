"""Pillar 8, validate_model: absolute thresholds, the champion comparison and slices decide eligibility."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from pillars.core.errors import PillarsError
from pillars.core.metrics import evaluate
from pillars.stages.validate_model import champion_check, slice_checks, validate_candidate


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
    assert checks["champion"] == {"passed": True, "skipped": "no champion yet"}
    assert (
        checks["slice:gender=female:roc_auc"]["rows"] == 950
        and "value" in checks["slice:gender=female:roc_auc"]
    )
    assert checks["slice:gender=male:roc_auc"]["skipped"] == "fewer than 100 rows"
    assert set(result["valid"]) >= {"roc_auc", "f1", "precision", "recall"}


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
    assert checks["slice:gender=female:roc_auc"]["skipped"].startswith("one class only")


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
        {"linear": perfect_on_valid}, y, frames, params, (0.995, "measured"), tuning
    )

    assert report["evaluated_on"] == "out_of_fold" and report["tuning"] == tuning
    result = report["candidates"]["linear"]
    pooled = np.concatenate([y["train"], y["valid"]])
    assert result["out_of_fold"] == evaluate("binary", pooled, perfect_on_valid)
    assert "valid" not in result
    assert result["checks"]["champion"]["value"] == 1.0, "compared on the valid rows only"
    assert result["checks"]["champion"]["passed"]
    assert result["checks"]["slice:gender=female:roc_auc"]["rows"] == 400, "slices over train + valid"
    assert report["eligible"] == ["linear"]
