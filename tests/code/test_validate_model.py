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
from pillars.serve.conformal import calibrate
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
    from pillars.stages.validate_model import champion_reference, champion_value
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
    assert champion_value(champion_reference(frame, params), y, params)[0] is None
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    (tmp_path / "feature_pipeline.pkl").write_bytes(pickle.dumps(pipeline))
    value, how = champion_value(champion_reference(frame.assign(extra=1), params), y, params)
    assert how == "measured" and value > 0.85
    with pytest.raises(PillarsError, match=r"the champion in .* cannot score this data"):
        champion_reference(frame.drop(columns="city"), params)


def test_small_data_judges_out_of_fold_predictions_and_the_champion_on_valid_rows(make_params) -> None:
    """After cross-validated tuning the refit model has seen valid: its out-of-fold predictions of train +
    valid are judged, and the champion comparison uses the valid rows only."""
    from pillars.stages.validate_model import Reference, validate_out_of_fold

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
    champion = Reference(generator.random(100), "measured")  # scores of the valid rows only: no skill
    report = validate_out_of_fold(
        {"linear": perfect_on_valid},
        y,
        frames,
        params,
        (0.995, "measured"),
        tuning,
        {"linear": 0.5},
        {"champion": champion},
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
    paired = result["checks"]["vs_champion:roc_auc"]
    assert (paired["rows"], paired["verdict"], paired["value"]) == (100, "better", 1.0), (
        "paired on valid rows"
    )
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


@pytest.fixture
def paired() -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """4,000 valid rows of 4 features; slices by gender (one all-negative slice) and race (a tiny one)."""
    generator = np.random.default_rng(8)
    rows = 4_000
    x = generator.normal(size=(rows, 4))
    y = (x[:, 0] + 0.8 * x[:, 1] + generator.normal(scale=0.8, size=rows) > 0).astype("int64")
    gender = np.where(np.arange(rows) < 3_700, "female", "male")
    y[gender == "male"] = 0  # a slice with one class: nothing to compare there
    race = np.where(np.arange(rows) % 100 == 0, "other", "white")  # 40 rows: too few
    return x, y, pd.DataFrame({"gender": gender, "race": race})


def fitted(x: np.ndarray, y: np.ndarray, seed: int, shuffled: int | None = None) -> np.ndarray:
    """A forest's probabilities on `x` (fitted on its own train rows), optionally with column `shuffled`
    permuted in training: the faulty challenger."""
    from sklearn.ensemble import RandomForestClassifier

    generator = np.random.default_rng(seed)
    train = generator.normal(size=(3_000, x.shape[1]))
    target = (train[:, 0] + 0.8 * train[:, 1] + generator.normal(scale=0.8, size=3_000) > 0).astype("int64")
    if shuffled is not None:
        train[:, shuffled] = generator.permutation(train[:, shuffled])
    model = RandomForestClassifier(n_estimators=60, min_samples_leaf=20, random_state=seed, n_jobs=1)
    return model.fit(train, target).predict_proba(x)[:, 1]


def test_evidence_passes_a_seed_only_retrain_and_blocks_a_faulty_challenger(make_params, paired) -> None:
    """Against the champion and the defaults, on the same rows: another seed of the same model is `not
    worse` (within the margin); a model trained with a shuffled feature is `worse` and fails the gate; a
    one-class slice and a tiny slice are `insufficient`, not judged; every difference has its interval."""
    from pillars.stages.validate_model import Reference, validate_scores

    x, y, frame = paired
    params = make_params(validate_model={"evidence": {"resamples": 300, "margin": 0.01}})
    champion = Reference(fitted(x, y, seed=1), "measured")
    references = {"champion": champion, "defaults": champion}
    retrain = validate_scores(fitted(x, y, seed=2), y, frame, params, (None, "-"), references=references)
    check = retrain["checks"]["vs_champion:roc_auc"]
    assert (
        check["verdict"] in {"not worse", "better"} and check["passed"] and check["required"] == "not worse"
    )
    low, high = check["interval"]
    assert low <= check["difference"] <= high and check["rows"] == len(y)
    assert retrain["passed"]

    faulty = validate_scores(
        fitted(x, y, seed=2, shuffled=1), y, frame, params, (None, "-"), references=references
    )
    checks = faulty["checks"]
    assert (
        checks["vs_champion:roc_auc"]["verdict"] == "worse"
        and checks["vs_champion:roc_auc"]["passed"] is False
    )
    assert checks["vs_defaults:roc_auc"]["passed"] is False and not faulty["passed"]
    low, high = checks["vs_champion:roc_auc"]["interval"]
    assert (
        f"vs_champion:roc_auc worse ({checks['vs_champion:roc_auc']['difference']:+.4f}, interval "
        f"[{low:+.4f}, {high:+.4f}])" in summary({"candidates": {"faulty": faulty}})
    )
    assert checks["vs_champion:slice:gender=female:roc_auc"]["verdict"] == "worse"
    one_class = checks["vs_champion:slice:gender=male:roc_auc"]
    assert one_class["verdict"] == "insufficient" and one_class["passed"] is None
    assert one_class["skipped"] == "one class only (every row is class 0)"
    assert checks["vs_champion:slice:race=other:roc_auc"]["skipped"] == "fewer than 100 rows (40)"
    json.dumps(faulty, allow_nan=False)


def test_evidence_requirements_and_a_skipped_comparison(make_params, paired) -> None:
    """No champion: its comparison says `skipped`, never passed. Requiring `better` than the defaults refuses
    a candidate that only equals them; `any` reports without judging."""
    from pillars.stages.validate_model import Reference, validate_scores

    x, y, frame = paired
    scores = fitted(x, y, seed=1)
    references = {"champion": Reference(None, "no champion yet"), "defaults": Reference(scores, "measured")}

    def checks(require: str) -> dict:
        settings = {"resamples": 200, "require": {"defaults": require}, "metrics": ["roc_auc", "accuracy"]}
        params = make_params(validate_model={"evidence": settings})
        return validate_scores(scores, y, frame, params, (None, "-"), references=references)

    same = checks("better")
    assert same["checks"]["vs_champion:roc_auc"] == {
        "verdict": "skipped",
        "passed": None,
        "skipped": "no champion yet",
    }
    equal = same["checks"]["vs_defaults:roc_auc"]
    assert (equal["verdict"], equal["difference"], equal["interval"]) == ("not worse", 0.0, [0.0, 0.0])
    assert equal["passed"] is False and not same["passed"]
    assert same["checks"]["vs_defaults:accuracy"]["test"].startswith("mcnemar")
    assert checks("any")["checks"]["vs_defaults:roc_auc"]["passed"] is True


def test_the_report_is_typed_and_the_model_card_shows_each_difference_with_its_interval(
    make_params, paired
) -> None:
    """The paired checks are part of the hand-off's contract, and the model card lists them."""
    from pillars.core.metrics import evaluate
    from pillars.core.model_handoffs import MODEL_VALIDATION
    from pillars.stages.assess import block, conformal_report, model_card
    from pillars.stages.validate_model import Reference, validate_scores
    from tests.helpers import card_inputs

    x, y, frame = paired
    params = make_params(validate_model={"evidence": {"resamples": 200}})
    scores = fitted(x, y, seed=2)
    references = {
        "champion": Reference(None, "no champion yet"),
        "defaults": Reference(fitted(x, y, 1), "ok"),
    }
    result = validate_scores(scores, y, frame, params, (None, "-"), references=references)
    validation = MODEL_VALIDATION.check(
        {"metric": "roc_auc", "eligible": ["linear"], "candidates": {"linear": result}}
    )
    compared = validation.candidates["linear"].comparisons()["vs_defaults:roc_auc"]
    assert (
        compared.interval is not None
        and compared.verdict == result["checks"]["vs_defaults:roc_auc"]["verdict"]
    )
    broken = result | {"checks": {"vs_defaults:roc_auc": {"passed": True}}}  # no verdict
    with pytest.raises(PillarsError, match="verdict"):
        MODEL_VALIDATION.check({"metric": "roc_auc", "eligible": [], "candidates": {"linear": broken}})

    measured = block(evaluate("binary", y, scores))
    report = {
        "model": "linear",
        "test": measured,
        "candidates": {"linear": measured},
        "baseline": {"family": "linear", **measured},
        "slices": {},
        "conformal": conformal_report(calibrate("binary", y, scores, 0.1, 0.5), y, scores, 0.5, "valid"),
    }
    rows = {"train": 3000, "valid": 4000, "test": 4000}
    inputs = card_inputs(validation, "linear", rows, trials=1, best_is_defaults=False)
    card = model_card(params, inputs, report, pd.DataFrame({"column": [], "importance": []}))
    low, high = compared.interval
    assert (
        f"| defaults:roc_auc | {compared.verdict} | {compared.difference:+.4f} | [{low:+.4f}, {high:+.4f}] | not worse |"
        in card
    )
    assert "| champion:roc_auc | skipped: no champion yet |" in card
    assert (
        "| defaults:slice:gender=male:roc_auc | insufficient: one class only (every row is class 0) |" in card
    )
