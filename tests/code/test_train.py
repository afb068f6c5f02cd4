"""Pillar 7, train: seeded, pruned, resumable studies that give the same model every time; on small data,
trials scored by cross-validation on train + valid and the chosen configuration refit on train + valid."""

import dataclasses
from pathlib import Path

import numpy as np
import optuna
import pytest
from sklearn.metrics import f1_score

from pillars.core.errors import PillarsError
from pillars.core.metrics import measure, predict_scores
from pillars.core.params import TrainParams
from pillars.stages.train import train, trial_table
from pillars.training import tuning
from pillars.training.cv import FOLD_STEPS, cross_validate, pool, tuning_summary, uses_cv
from pillars.training.families import FAMILIES
from pillars.training.families.linear import linear_model
from pillars.training.families.spec import TrainingData
from pillars.training.oof import oof_scores
from pillars.training.tuning import finished_trials, run_study, study_name, suggest

HOLDOUT = {"small_data": {"max_rows": 0}}  # train + valid never count as small: one valid split


def toy_data(task: str = "binary", rows: int = 600) -> TrainingData:
    generator = np.random.default_rng(0)
    x = generator.normal(size=(rows, 4)).astype("float32")
    signal = x[:, 0] + 0.5 * x[:, 1] + generator.normal(scale=0.5, size=rows)
    y = signal if task == "regression" else (signal > 0).astype("int64")
    cut = int(rows * 0.75)
    return TrainingData(x[:cut], y[:cut], x[cut:], y[cut:], task)


def small_settings(make_params, tmp_path: Path, task: str = "binary", **train: object) -> TrainParams:
    families = {
        "xgboost": {"n_trials": 6, "fixed": {"n_estimators": 60, "early_stopping_rounds": 10}},
        "lightgbm": {"n_trials": 3, "fixed": {"n_estimators": 60, "early_stopping_rounds": 10}},
        "catboost": {"n_trials": 3, "fixed": {"iterations": 60, "early_stopping_rounds": 10}},
        "linear": {"n_trials": 3},
        "hist_gradient_boosting": {"n_trials": 3, "fixed": {"max_iter": 50}},
    }
    overrides = {"storage": f"sqlite:///{tmp_path}/studies.db", "families": families, "n_jobs": 1, **train}
    dataset = {"task": task, "positive_label": ">50K" if task == "binary" else None}
    return make_params(dataset=dataset, train=overrides).train


def test_study_name_follows_what_decides_the_trials(make_params, tmp_path: Path) -> None:
    settings = small_settings(make_params, tmp_path)
    name = study_name("xgboost", settings, "data-1")
    assert name == study_name("xgboost", settings, "data-1")
    assert name != study_name("xgboost", settings, "data-2")
    assert name != study_name("xgboost", settings.model_copy(update={"seed": 8}), "data-1")
    more_trials = settings.model_copy(
        update={
            "families": {
                **settings.families,
                "xgboost": settings.families["xgboost"].model_copy(update={"n_trials": 50}),
            }
        }
    )
    assert name == study_name("xgboost", more_trials, "data-1"), "a larger budget continues the same study"


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("task", ["binary", "regression"])
def test_every_family_reports_steps_and_fits(family: str, task: str, make_params, tmp_path: Path) -> None:
    settings = small_settings(make_params, tmp_path, task)
    data = toy_data(task)
    steps: list[tuple[int, float]] = []
    hyper = dict(settings.families[family].fixed)
    fitted = FAMILIES[family].fit(hyper, data, settings, lambda step, value: steps.append((step, value)))
    reported = [step for step, _ in steps]
    boosting = family in ("xgboost", "lightgbm", "catboost")
    every = settings.pruner.round_interval if boosting else 1  # the boosting libraries: every few rounds
    assert reported and reported == [every - 1 + every * index for index in range(len(reported))]
    assert fitted.value > 0.8 if task == "binary" else fitted.value < 1.0
    assert hyper == dict(settings.families[family].fixed), "the hyperparameters passed in are left unchanged"


def test_resumed_study_matches_an_uninterrupted_one(make_params, tmp_path: Path) -> None:
    data = toy_data()
    settings = small_settings(make_params, tmp_path)
    interrupted = settings.model_copy(
        update={"families": {"xgboost": settings.families["xgboost"].model_copy(update={"n_trials": 3})}}
    )
    run_study("xgboost", data, interrupted, "resumed")
    resumed = run_study("xgboost", data, settings, "resumed")
    straight = run_study("xgboost", data, settings, "straight")
    assert len(finished_trials(resumed)) == len(finished_trials(straight)) == 6
    assert trial_table(finished_trials(resumed), "maximize").equals(
        trial_table(finished_trials(straight), "maximize")
    )


class StoppedError(Exception):
    """A run stopped (killed) while proposing a trial."""


@pytest.mark.parametrize("proposal", [1, 3], ids=["the start point", "a sampled trial"])
def test_a_run_stopped_while_proposing_resumes_to_the_same_study(
    proposal: int, make_params, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped after a trial was created and some of its hyperparameters stored: the next run must not run
    it half-proposed, but propose it again, as an uninterrupted run does."""
    settings = small_settings(make_params, tmp_path, **HOLDOUT)
    data = toy_data()
    straight = run_study("xgboost", data, settings, "straight")
    proposals: list[int] = []

    def stops_partway(trial: optuna.Trial, space: dict) -> dict:
        proposals.append(trial.number)
        if len(proposals) < proposal:
            return suggest(trial, space)
        first = next(iter(space))
        suggest(trial, {first: space[first]})  # one hyperparameter stored, then the stop
        raise StoppedError

    monkeypatch.setattr(tuning, "suggest", stops_partway)
    with pytest.raises(StoppedError):
        run_study("xgboost", data, settings, "stopped")
    monkeypatch.undo()
    resumed = run_study("xgboost", data, settings, "stopped")
    assert len(finished_trials(resumed)) == settings.families["xgboost"].n_trials
    assert trial_table(finished_trials(resumed), "maximize").equals(
        trial_table(finished_trials(straight), "maximize")
    )


def test_trial_table_tracks_the_best_value() -> None:
    study = optuna.create_study(direction="maximize")
    for value in (0.5, 0.7, 0.6):
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": value},
                distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
                value=value,
            )
        )
    table = trial_table(finished_trials(study), "maximize")
    assert table["best_value"].tolist() == [0.5, 0.7, 0.7]
    assert table.columns.tolist() == ["trial", "state", "value", "best_value", "param_x"]


def test_train_is_deterministic(make_params, tmp_path: Path) -> None:
    import pickle

    data = toy_data()
    first = make_params(
        train={
            **HOLDOUT,
            "storage": f"sqlite:///{tmp_path}/a.db",
            "candidates": ["xgboost", "lightgbm", "catboost", "linear"],
            "families": {
                "xgboost": {"n_trials": 4, "fixed": {"n_estimators": 40}},
                "lightgbm": {"n_trials": 3, "fixed": {"n_estimators": 40, "early_stopping_rounds": 10}},
                "catboost": {"n_trials": 2, "fixed": {"iterations": 40, "early_stopping_rounds": 10}},
                "linear": {"n_trials": 2},
            },
        }
    )
    second = first.model_copy(
        update={"train": first.train.model_copy(update={"storage": f"sqlite:///{tmp_path}/b.db"})}
    )
    a, b = train(first, data, "fingerprint"), train(second, data, "fingerprint")
    assert a.summary == b.summary
    assert list(a.models) == ["xgboost", "lightgbm", "catboost", "linear", "ensemble"]
    weights = a.summary["ensemble"]["weights"]
    assert sum(weights.values()) == pytest.approx(1.0) and set(weights) <= set(first.train.candidates)
    blended = sum(
        weight * predict_scores(a.models[name], data.x_valid, "binary") for name, weight in weights.items()
    )
    assert np.allclose(predict_scores(a.models["ensemble"], data.x_valid, "binary"), blended)
    assert a.summary["ensemble"]["best_value"] == round(
        measure("roc_auc", "binary", data.y_valid, blended).value, 6
    )
    for name in a.models:  # binary: every candidate's decision threshold, tuned for F1 on valid
        threshold = a.summary[name]["threshold"]
        decided = predict_scores(a.models[name], data.x_valid, "binary") >= threshold["value"]
        f1 = f1_score(data.y_valid, decided)
        assert threshold["objective"] == "f1" and threshold["valid_value"] == pytest.approx(f1, abs=1e-6)
    holdout = {"method": "holdout", "rows": {"train": 450, "valid": 150}}
    assert a.tuning == b.tuning and a.tuning["baseline"]["family"] in first.train.candidates
    expected = holdout | {"threads": 1, "dropped": {}}  # n_jobs auto: 1 thread for 450 x 4
    assert {key: a.tuning[key] for key in expected} == expected
    assert a.out_of_fold == {}, "one valid split: no out-of-fold predictions"
    assert all(a.tables[family].equals(b.tables[family]) for family in a.tables)
    assert all(pickle.dumps(a.models[family]) == pickle.dumps(b.models[family]) for family in a.models)
    linear = linear_model({"max_iter": 2000, **a.summary["linear"]["best_params"]}, "binary", 7)
    fitted_on_train = linear.fit(data.x_train, data.y_train)
    assert np.array_equal(a.models["linear"].coef_, fitted_on_train.coef_), "large data: fitted on train"


CV_FAMILIES = {
    "xgboost": {"n_trials": 2, "fixed": {"n_estimators": 12, "early_stopping_rounds": 4}},
    "linear": {"n_trials": 2, "fixed": {"max_iter": 500}},
}


def test_small_data_tunes_by_cross_validation_and_refits_on_train_and_valid(
    make_params, tmp_path: Path
) -> None:
    import pickle

    data = toy_data(rows=400)  # 300 train + 100 valid: under train.small_data.max_rows (2000)
    params = make_params(
        train={
            "storage": f"sqlite:///{tmp_path}/cv.db",
            "candidates": ["xgboost", "linear"],
            "families": CV_FAMILIES,
            "small_data": {"max_rows": 2000, "folds": 4},
        }
    )
    trained = train(params, data, "fingerprint")
    expected = {
        "method": "cv",
        "folds": 4,
        "rows": 400,
        "max_rows": 2000,
        "threads": 1,
        "dropped": {},
    }
    assert {key: trained.tuning[key] for key in expected} == expected

    x = np.concatenate([data.x_train, data.x_valid])
    y = np.concatenate([data.y_train, data.y_valid])
    for family, table in trained.out_of_fold.items():
        scores = oof_scores(table, 300, 100, family)  # raises unless every row is there exactly once
        assert len(table) == 400 and scores.shape == (400,)
        assert sorted(table["fold"].value_counts().tolist()) == [100] * 4
        assert set(table.loc[table["split"] == "valid", "row"]) == set(range(100))

    hyper = {**CV_FAMILIES["linear"]["fixed"], **trained.summary["linear"]["best_params"]}
    refit = linear_model(hyper, "binary", params.train.seed).fit(x, y)
    assert np.array_equal(trained.models["linear"].coef_, refit.coef_), "refit on train + valid"
    on_train = linear_model(hyper, "binary", params.train.seed).fit(data.x_train, data.y_train)
    assert not np.array_equal(trained.models["linear"].coef_, on_train.coef_)

    rounds = trained.summary["xgboost"]["refit_rounds"]
    booster = trained.models["xgboost"].get_booster()
    assert booster.num_boosted_rounds() == rounds and booster.num_features() == 4
    assert trained.models["xgboost"].get_params()["early_stopping_rounds"] is None

    checked = cross_validate(
        "linear", hyper, pool(data, params.train), params.train, lambda step, value: None
    )
    assert trained.summary["linear"]["best_value"] == round(checked.value, 6), "mean of the folds"
    again = train(params, data, "fingerprint")  # resumes the finished studies: the same outputs
    assert all(again.out_of_fold[family].equals(trained.out_of_fold[family]) for family in CV_FAMILIES)
    assert pickle.dumps(again.models["xgboost"]) == pickle.dumps(trained.models["xgboost"])
    weights = trained.summary["ensemble"]["weights"]  # the ensemble: weights from the out-of-fold scores
    pooled = {family: oof_scores(trained.out_of_fold[family], 300, 100, family) for family in weights}
    blended = oof_scores(trained.out_of_fold["ensemble"], 300, 100, "ensemble")
    assert np.allclose(blended, sum(weight * pooled[family] for family, weight in weights.items()))


def test_cross_validated_trials_report_every_fold_to_the_pruner(make_params, tmp_path: Path) -> None:
    settings = small_settings(make_params, tmp_path, small_data={"folds": 3})
    steps: list[int] = []
    hyper = {"n_estimators": 20, "max_depth": 2}
    result = cross_validate(
        "xgboost", hyper, pool(toy_data(rows=300), settings), settings, lambda s, v: steps.append(s)
    )
    every = settings.pruner.round_interval
    assert steps == [fold * FOLD_STEPS + step for fold in range(3) for step in range(every - 1, 20, every)]
    assert result.rounds == [20, 20, 20] and result.refit_rounds == 20
    assert result.out_of_fold.shape == (300,)


def test_study_name_says_when_trials_are_cross_validated(make_params, tmp_path: Path) -> None:
    settings = small_settings(make_params, tmp_path)
    holdout = study_name("linear", settings, "data")
    assert holdout == study_name("linear", settings, "data", None), "holdout names do not change"
    assert (
        len({holdout, study_name("linear", settings, "data", 5), study_name("linear", settings, "data", 3)})
        == 3
    )


def test_a_rare_class_means_fewer_folds_and_a_single_row_no_cross_validation(
    make_params, tmp_path: Path
) -> None:
    data = toy_data(rows=200)
    settings = small_settings(make_params, tmp_path, small_data={"folds": 5})
    y_train = data.y_train.copy()
    y_train[:3] = 2  # a third class with 3 rows: every fold must hold it, so 3 folds
    rare = TrainingData(data.x_train, y_train, data.x_valid, data.y_valid, "multiclass")
    assert pool(rare, settings).k == 3 and tuning_summary(rare, settings)["folds"] == 3
    y_train[:3] = data.y_train[:3]
    y_train[0] = 2  # one row: no stratified fold can hold it, so the valid split tunes
    single = TrainingData(data.x_train, y_train, data.x_valid, data.y_valid, "multiclass")
    assert not uses_cv(single, settings) and tuning_summary(single, settings)["method"] == "holdout"


def test_wrong_estimator_argument_names_the_family(make_params, tmp_path: Path) -> None:
    params = make_params(
        train={
            "storage": f"sqlite:///{tmp_path}/c.db",
            "candidates": ["linear"],
            "families": {"linear": {"n_trials": 1, "fixed": {"max_iter": 100, "colour": "red"}}},
        }
    )
    with pytest.raises(PillarsError, match=r"train.families.linear: .*colour"):
        train(params, toy_data(), "fingerprint")


def test_journal_file_storage_resumes_too(make_params, tmp_path: Path) -> None:
    """`journal:///path` gives a journal file that several processes can share."""
    data = toy_data()
    settings = small_settings(make_params, tmp_path, storage=f"journal:///{tmp_path}/journal/studies.log")
    interrupted = settings.model_copy(
        update={"families": {"xgboost": settings.families["xgboost"].model_copy(update={"n_trials": 2})}}
    )
    run_study("xgboost", data, interrupted, "journaled")
    study = run_study("xgboost", data, settings, "journaled")
    assert len(finished_trials(study)) == 6
    assert (tmp_path / "journal/studies.log").stat().st_size > 0


def three_classes(rows: int = 600) -> TrainingData:
    """Three classes in train; the valid rows hold classes 0 and 1 only."""
    generator = np.random.default_rng(1)
    x = generator.normal(size=(rows, 3)).astype("float32")
    y = np.digitize(x[:, 0] + generator.normal(scale=0.3, size=rows), [-0.5, 0.5]).astype("int64")
    cut = int(rows * 0.75)
    valid = y[cut:] < 2
    return TrainingData(x[:cut], y[:cut], x[cut:][valid], y[cut:][valid], "multiclass")


def test_objective_on_a_valid_split_lacking_a_class(make_params, tmp_path: Path) -> None:
    """log_loss is scored on all three classes; one-vs-rest ROC AUC is undefined there: a clear error."""
    data = three_classes()
    settings = small_settings(make_params, tmp_path, "multiclass", metric="log_loss")
    hyper = {"max_iter": 10}
    fitted = FAMILIES["hist_gradient_boosting"].fit(hyper, data, settings, lambda step, value: None)
    assert 0 < fitted.value < 1.0
    by_auc = settings.model_copy(update={"metric": "roc_auc_ovr"})
    with pytest.raises(PillarsError, match=r"undefined on the valid split: .*class \[2\] absent"):
        FAMILIES["hist_gradient_boosting"].fit(hyper, data, by_auc, lambda step, value: None)


@pytest.mark.filterwarnings("ignore:The least populated class in y has only 1 members")
def test_linear_folds_cope_with_a_class_rarer_than_the_folds(make_params, tmp_path: Path) -> None:
    """A class with one row in train: the fold model that never saw it scores it 0, no crash."""
    data = three_classes()
    y_train = np.where(data.y_train == 2, 1, data.y_train)
    y_train[0] = 2  # the only row of class 2
    data = TrainingData(data.x_train, y_train, data.x_valid, data.y_valid, "multiclass")
    settings = small_settings(make_params, tmp_path, "multiclass", metric="log_loss")
    steps: list[tuple[int, float]] = []
    fitted = FAMILIES["linear"].fit({}, data, settings, lambda step, value: steps.append((step, value)))
    assert [step for step, _ in steps] == list(range(settings.cv_folds))
    assert np.isfinite(fitted.value) and fitted.value > 0


def test_a_cross_validated_fold_without_a_value_is_left_out_of_the_mean(
    make_params, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small data: a fold where the metric is undefined on its held-out rows still predicts them (its
    out-of-fold scores are kept) but is left out of the objective."""
    from pillars.training import cv
    from pillars.training.families.spec import Fitted

    values = iter([None, 0.8, 0.9])

    def fit_fold(hyper: dict, data: TrainingData, settings: TrainParams, report) -> Fitted:
        value = next(values)
        undefined = None if value is not None else "one class only (every row is class 0)"
        return Fitted(None, value, np.full(len(data.y_valid), 0.5), undefined=undefined)

    monkeypatch.setitem(cv.FAMILIES, "linear", dataclasses.replace(cv.FAMILIES["linear"], fold_fit=fit_fold))
    settings = small_settings(make_params, tmp_path, small_data={"folds": 3})
    result = cross_validate("linear", {}, pool(toy_data(rows=300), settings), settings, lambda s, v: None)
    assert result.value == pytest.approx(0.85) and result.out_of_fold.shape == (300,)


def test_a_metric_undefined_on_every_fold_stops_the_trial_naming_the_rows(
    make_params, tmp_path: Path
) -> None:
    """A constant target: R2 is undefined on every fold, of train + valid (small data) or of train (the
    linear model's folds in holdout tuning). R2 is not an objective params allow (the allowed ones are
    defined on every stratified fold): it stands in for any metric without a value on the held-out rows."""
    data = toy_data("regression", rows=300)
    constant = TrainingData(
        data.x_train, np.ones_like(data.y_train), data.x_valid, np.ones_like(data.y_valid), "regression"
    )
    settings = small_settings(make_params, tmp_path, "regression", small_data={"folds": 3})
    settings = settings.model_copy(update={"metric": "r2"})
    with pytest.raises(
        PillarsError,
        match=r"linear: r2 is undefined on every cross-validation fold of train \+ valid: the target",
    ):
        cross_validate("linear", {}, pool(constant, settings), settings, lambda step, value: None)
    with pytest.raises(PillarsError, match=r"r2 is undefined on every cross-validation fold of train: the"):
        FAMILIES["linear"].fit({}, constant, settings, lambda step, value: None)


def counts(rows: int = 800) -> TrainingData:
    """A count target: Poisson with a log-linear rate."""
    generator = np.random.default_rng(4)
    x = generator.normal(size=(rows, 3)).astype("float32")
    y = generator.poisson(np.exp(0.8 * x[:, 0] + 0.3)).astype("float64")
    cut = int(rows * 0.75)
    return TrainingData(x[:cut], y[:cut], x[cut:], y[cut:], "regression")


@pytest.mark.parametrize("family", ["xgboost", "lightgbm", "catboost", "hist_gradient_boosting"])
def test_a_count_target_may_be_fitted_with_a_poisson_loss(family: str, make_params, tmp_path: Path) -> None:
    settings = small_settings(make_params, tmp_path, "regression", metric="rmse")
    data = counts()
    hyper = dict(settings.families[family].fixed)
    squared = FAMILIES[family].fit(hyper | {"objective": "squared_error"}, data, settings, lambda *_: None)
    poisson = FAMILIES[family].fit(hyper | {"objective": "poisson"}, data, settings, lambda *_: None)
    predicted = predict_scores(poisson.model, data.x_valid, "regression")
    assert (predicted > 0).all(), "a Poisson model predicts a positive rate"
    assert not np.allclose(predicted, predict_scores(squared.model, data.x_valid, "regression"))
    assert poisson.value < np.std(data.y_valid), "better than predicting the mean"


def test_a_count_loss_on_a_negative_target_names_the_key(make_params, tmp_path: Path) -> None:
    settings = small_settings(make_params, tmp_path, "regression", metric="rmse")
    data = toy_data("regression")  # a normal target: negative values
    with pytest.raises(
        PillarsError,
        match=r"train\.families\.lightgbm: objective 'tweedie' needs a target that is never negative",
    ):
        FAMILIES["lightgbm"].fit({"objective": "tweedie"}, data, settings, lambda *_: None)
    with pytest.raises(
        PillarsError, match=r"train\.families\.hist_gradient_boosting: objective 'tweedie' is not a loss"
    ):
        FAMILIES["hist_gradient_boosting"].fit({"objective": "tweedie"}, counts(), settings, lambda *_: None)
    binary = small_settings(make_params, tmp_path)
    with pytest.raises(PillarsError, match="classification: leave objective out"):
        FAMILIES["xgboost"].fit({"objective": "poisson"}, toy_data(), binary, lambda *_: None)


def test_a_smaller_budget_on_a_larger_study_gives_what_a_fresh_one_gives(make_params, tmp_path: Path) -> None:
    """Storage that once ran 6 trials, then n_trials 3: the first 3 decide, as on a fresh machine."""
    data = toy_data()

    def settings(trials: int, database: str) -> object:
        families = {"xgboost": {"n_trials": trials, "fixed": {"n_estimators": 30}}}
        storage = f"sqlite:///{tmp_path}/{database}.db"
        return make_params(
            train={**HOLDOUT, "storage": storage, "candidates": ["xgboost"], "families": families}
        )

    train(settings(6, "used"), data, "fingerprint")
    reused, fresh = (
        train(settings(3, "used"), data, "fingerprint"),
        train(settings(3, "fresh"), data, "fingerprint"),
    )
    assert reused.summary == fresh.summary and reused.summary["xgboost"]["trials"] == 3
    assert reused.tables["xgboost"].equals(fresh.tables["xgboost"])


def categorical_data(rows: int = 900) -> TrainingData:
    """One numeric column and one 6-valued categorical column (one-hot, positions 1-6) whose categories
    carry the signal in no order: a tree on codes must split on sets of categories to use it."""
    generator = np.random.default_rng(3)
    category = generator.integers(0, 6, size=rows)
    numeric = generator.normal(size=rows)
    effect = np.array([1.5, -1.0, 0.8, -1.6, 0.2, -0.4])[category]
    y = (effect + 0.5 * numeric + generator.normal(scale=0.5, size=rows) > 0).astype("int64")
    x = np.column_stack([numeric, np.eye(6)[category]]).astype("float32")
    cut = int(rows * 0.75)
    return TrainingData(x[:cut], y[:cut], x[cut:], y[cut:], "binary", categorical=((1, 2, 3, 4, 5, 6),))


@pytest.mark.parametrize("family", ["lightgbm", "catboost"])
def test_native_categories_fit_on_codes_and_predict_from_the_one_hot_matrix(
    family: str, make_params, tmp_path: Path
) -> None:
    import pickle

    from pillars.serve.estimators import NativeCategorical

    settings = small_settings(make_params, tmp_path)
    data = categorical_data()
    hyper = {**settings.families[family].fixed, "categorical": "native"}
    fitted = FAMILIES[family].fit(hyper, data, settings, lambda step, value: None)
    model = fitted.model
    assert isinstance(model, NativeCategorical)
    codes = model.codes(data.x_valid)
    assert list(codes.columns) == ["feature_0", "category_0"]
    assert np.array_equal(codes["category_0"], data.x_valid[:, 1:].argmax(axis=1))
    assert np.array_equal(model.predict_proba(data.x_valid), model.model.predict_proba(codes))
    assert fitted.value > 0.8
    if family == "lightgbm":  # a split on a set of categories, not on a threshold of one indicator
        trees = model.model.booster_.dump_model()["tree_info"]
        assert '"decision_type": "=="' in str(trees).replace("'", '"')
    unseen = data.x_valid.copy()
    unseen[:, 1:] = 0  # a category train never saw, with no `infrequent` column: code -1
    assert (model.codes(unseen)["category_0"] == -1).all()
    assert model.predict_proba(unseen).shape == (len(unseen), 2)
    restored = pickle.loads(pickle.dumps(model))
    assert np.array_equal(restored.predict_proba(data.x_valid), model.predict_proba(data.x_valid))
    assert FAMILIES[family].fit(hyper, data, settings, lambda step, value: None).value == fitted.value


def test_native_categories_in_small_data_tuning_refit_on_codes_too(make_params, tmp_path: Path) -> None:
    from pillars.serve.estimators import NativeCategorical

    data = categorical_data(rows=400)
    lightgbm = {
        "n_trials": 2,
        "fixed": {"n_estimators": 40, "early_stopping_rounds": 10},
        "space": {"categorical": {"type": "categorical", "choices": ["native"]}},
    }
    params = make_params(
        train={
            "storage": f"sqlite:///{tmp_path}/cv.db",
            "candidates": ["lightgbm"],
            "families": {"lightgbm": lightgbm},
            "small_data": {"max_rows": 2000, "folds": 3},
        }
    )
    trained = train(params, data, "fingerprint")
    assert trained.tuning["method"] == "cv"
    assert isinstance(trained.models["lightgbm"], NativeCategorical)
    booster = trained.models["lightgbm"].model.booster_
    assert booster.current_iteration() == trained.summary["lightgbm"]["refit_rounds"]


@pytest.mark.parametrize(("family", "encoding"), [("xgboost", "native"), ("lightgbm", "ordinal")])
def test_an_encoding_the_family_lacks_names_the_key(
    family: str, encoding: str, make_params, tmp_path: Path
) -> None:
    settings = small_settings(make_params, tmp_path)
    hyper = {**settings.families[family].fixed, "categorical": encoding}
    with pytest.raises(PillarsError, match=rf"train.families.{family}: categorical '{encoding}' .*onehot"):
        FAMILIES[family].fit(hyper, categorical_data(), settings, lambda step, value: None)
