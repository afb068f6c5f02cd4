"""Pillar 7, train: seeded, pruned, resumable studies that give the same model every time."""

from pathlib import Path

import numpy as np
import optuna
import pytest

from pillars.core.errors import PillarsError
from pillars.core.params import TrainParams
from pillars.stages.train import finished_trials, open_storage, run_study, study_name, train, trial_table
from pillars.training.families import FAMILIES, TrainingData


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
        "linear": {"n_trials": 3},
        "hist_gradient_boosting": {"n_trials": 3, "fixed": {"max_iter": 50}},
    }
    overrides = {"storage": f"sqlite:///{tmp_path}/studies.db", "families": families, **train}
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
    fitted = FAMILIES[family](hyper, data, settings, lambda step, value: steps.append((step, value)))
    assert steps and [step for step, _ in steps] == list(range(len(steps)))
    assert fitted.value > 0.8 if task == "binary" else fitted.value < 1.0
    assert hyper == dict(settings.families[family].fixed), "the hyperparameters passed in are left unchanged"


def test_resumed_study_matches_an_uninterrupted_one(make_params, tmp_path: Path) -> None:
    data = toy_data()
    settings = small_settings(make_params, tmp_path)
    interrupted = settings.model_copy(
        update={"families": {"xgboost": settings.families["xgboost"].model_copy(update={"n_trials": 3})}}
    )
    run_study("xgboost", data, interrupted, settings.storage, "resumed")
    resumed = run_study("xgboost", data, settings, settings.storage, "resumed")
    straight = run_study("xgboost", data, settings, settings.storage, "straight")
    assert len(finished_trials(resumed)) == len(finished_trials(straight)) == 6
    assert trial_table(resumed, "maximize").equals(trial_table(straight, "maximize"))


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
    table = trial_table(study, "maximize")
    assert table["best_value"].tolist() == [0.5, 0.7, 0.7]
    assert table.columns.tolist() == ["trial", "state", "value", "best_value", "param_x"]


def test_train_is_deterministic(make_params, tmp_path: Path) -> None:
    import pickle

    data = toy_data()
    first = make_params(
        train={
            "storage": f"sqlite:///{tmp_path}/a.db",
            "candidates": ["xgboost", "linear"],
            "families": {
                "xgboost": {"n_trials": 4, "fixed": {"n_estimators": 40}},
                "linear": {"n_trials": 2},
            },
        }
    )
    second = first.model_copy(
        update={"train": first.train.model_copy(update={"storage": f"sqlite:///{tmp_path}/b.db"})}
    )
    models_a, tables_a, summary_a = train(first, data, "fingerprint")
    models_b, tables_b, summary_b = train(second, data, "fingerprint")
    assert summary_a == summary_b
    assert all(tables_a[family].equals(tables_b[family]) for family in tables_a)
    assert all(pickle.dumps(models_a[family]) == pickle.dumps(models_b[family]) for family in models_a)


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
    settings = small_settings(make_params, tmp_path)
    storage = open_storage(f"journal:///{tmp_path}/journal/studies.log")
    interrupted = settings.model_copy(
        update={"families": {"xgboost": settings.families["xgboost"].model_copy(update={"n_trials": 2})}}
    )
    run_study("xgboost", data, interrupted, storage, "journaled")
    reopened = open_storage(f"journal:///{tmp_path}/journal/studies.log")
    study = run_study("xgboost", data, settings, reopened, "journaled")
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
    fitted = FAMILIES["hist_gradient_boosting"](hyper, data, settings, lambda step, value: None)
    assert 0 < fitted.value < 1.0
    by_auc = settings.model_copy(update={"metric": "roc_auc_ovr"})
    with pytest.raises(PillarsError, match=r"undefined on the valid split: .*class \[2\] absent"):
        FAMILIES["hist_gradient_boosting"](hyper, data, by_auc, lambda step, value: None)


@pytest.mark.filterwarnings("ignore:The least populated class in y has only 1 members")
def test_linear_folds_cope_with_a_class_rarer_than_the_folds(make_params, tmp_path: Path) -> None:
    """A class with one row in train: the fold model that never saw it scores it 0, no crash."""
    data = three_classes()
    y_train = np.where(data.y_train == 2, 1, data.y_train)
    y_train[0] = 2  # the only row of class 2
    data = TrainingData(data.x_train, y_train, data.x_valid, data.y_valid, "multiclass")
    settings = small_settings(make_params, tmp_path, "multiclass", metric="log_loss")
    steps: list[tuple[int, float]] = []
    fitted = FAMILIES["linear"]({}, data, settings, lambda step, value: steps.append((step, value)))
    assert [step for step, _ in steps] == list(range(settings.cv_folds))
    assert np.isfinite(fitted.value) and fitted.value > 0
