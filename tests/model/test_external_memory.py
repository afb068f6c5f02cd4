"""XGBoost in external memory (a train split larger than `train.external_memory_rows`): trained from the
feature file's row groups, with pages on disk, to a model as good as the in-memory one, the same bytes every
time the matrix is built; other families are refused by name."""

import gc
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pillars.compute.partitions import write_table
from pillars.core.errors import PillarsError
from pillars.core.metrics import measure, predict_scores
from pillars.core.params import TrainParams
from pillars.stages.train import train
from pillars.training.external import FeatureFile, external_matrix
from pillars.training.families.spec import TrainingData
from pillars.training.families.xgboost import fit as fit_xgboost

TARGET = "label"
ROWS, VALID_ROWS, GROUP_ROWS = 4_000, 1_000, 700  # train in 6 row groups
HYPER = {"n_estimators": 80, "early_stopping_rounds": 10, "learning_rate": 0.2, "max_depth": 4}


def target(task: str, signal: np.ndarray) -> np.ndarray:
    if task == "regression":
        return signal
    if task == "binary":
        return (signal > 0).astype("int64")
    return np.digitize(signal, [-0.8, 0.8]).astype("int64")


def in_memory(task: str) -> TrainingData:
    generator = np.random.default_rng(3)
    x = generator.normal(size=(ROWS + VALID_ROWS, 8)).astype("float32")
    x[generator.random(x.shape) < 0.05] = np.nan  # missing values cross the file too
    signal = (
        np.nan_to_num(x[:, 0]) + 0.6 * np.nan_to_num(x[:, 1] * x[:, 2]) + generator.normal(0, 0.5, len(x))
    )
    y = target(task, signal)
    return TrainingData(x[:ROWS], y[:ROWS], x[ROWS:], y[ROWS:], task)


def on_disk(data: TrainingData, folder: Path) -> TrainingData:
    """The same data with train written as a feature file of several row groups."""
    columns = [f"f{index}" for index in range(data.x_valid.shape[1])]
    frame = pd.DataFrame(data.x_train, columns=columns).assign(**{TARGET: data.y_train})
    path = folder / "train.parquet"
    write_table(path, frame, GROUP_ROWS)
    file = FeatureFile.of(path, TARGET, columns)
    return TrainingData(file, data.y_train, data.x_valid, data.y_valid, data.task)


def settings(make_params, tmp_path: Path, task: str, **train: object) -> TrainParams:
    overrides = {
        "storage": f"sqlite:///{tmp_path}/studies.db",
        "small_data": {"max_rows": 0},
        "n_jobs": 2,
        **train,
    }
    dataset = {"task": task, "positive_label": ">50K" if task == "binary" else None}
    metric = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}[task]
    return make_params(dataset=dataset, train=overrides | {"metric": metric}).train


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_a_model_trained_in_external_memory_is_as_good_as_in_memory(
    task: str, make_params, tmp_path: Path
) -> None:
    data = in_memory(task)
    params = settings(make_params, tmp_path, task)
    held = fit_xgboost(HYPER, data, params, lambda step, value: None)
    external = fit_xgboost(HYPER, on_disk(data, tmp_path), params, lambda step, value: None)
    scores = predict_scores(external.model, data.x_valid, task)
    assert scores.shape == predict_scores(held.model, data.x_valid, task).shape
    assert external.value == measure(params.metric, task, data.y_valid, scores).value
    assert external.value == pytest.approx(held.value, rel=0.02)  # quantiles from row groups, not all rows
    assert 10 < external.rounds <= HYPER["n_estimators"]  # early stopping on valid worked


def test_the_matrix_is_paged_on_disk_and_its_pages_go_with_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = on_disk(in_memory("binary"), tmp_path)
    temporary = tmp_path / "temporary"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))  # where mkdtemp makes the pages' folder
    external_matrix.cache_clear()
    matrix = external_matrix(data.x_train, 1, 256)
    assert (matrix.num_row(), matrix.num_col()) == data.x_train.shape
    [pages] = temporary.glob("pillars-xgboost-*")
    assert any(pages.iterdir()), "XGBoost writes its pages to the folder"
    del matrix
    external_matrix.cache_clear()
    gc.collect()
    assert not pages.exists()


def test_building_the_matrix_again_gives_the_same_model(make_params, tmp_path: Path) -> None:
    data = on_disk(in_memory("binary"), tmp_path)
    params = settings(make_params, tmp_path, "binary")
    external_matrix.cache_clear()
    first = fit_xgboost(HYPER, data, params, lambda step, value: None)
    external_matrix.cache_clear()
    again = fit_xgboost(HYPER, data, params, lambda step, value: None)
    assert pickle.dumps(first.model) == pickle.dumps(again.model)


def test_a_new_version_of_the_file_is_read_again(tmp_path: Path) -> None:
    """A long-lived process (a cluster's worker) must not train on a matrix of the file's last version."""
    data = in_memory("binary")
    before = on_disk(data, tmp_path)
    first = external_matrix(before.x_train, 1, 256)
    flipped = TrainingData(data.x_train, 1 - data.y_train, data.x_valid, data.y_valid, "binary")
    after = on_disk(flipped, tmp_path)  # the same path, rows and columns
    assert after.x_train.path == before.x_train.path
    again = external_matrix(after.x_train, 1, 256)
    assert again is not first
    assert np.array_equal(again.get_label(), 1 - data.y_train)


def test_train_in_external_memory_tunes_xgboost_and_says_so(make_params, tmp_path: Path) -> None:
    data = on_disk(in_memory("binary"), tmp_path)
    families = {"xgboost": {"n_trials": 3, "fixed": {"n_estimators": 40, "early_stopping_rounds": 10}}}
    params = make_params(
        train={
            "storage": f"sqlite:///{tmp_path}/studies.db",
            "small_data": {"max_rows": 0},
            "candidates": ["xgboost"],
            "families": families,
            "external_memory_rows": 1_000,
        }
    )
    trained = train(params, data, "fingerprint")
    expected = {
        "method": "holdout",
        "rows": {"train": ROWS, "valid": VALID_ROWS},
        "train_matrix": "external_memory",
        "threads": 1,  # n_jobs auto: 4,000 rows are a small round's work
        "dropped": {},
    }
    assert {key: trained.tuning[key] for key in expected} == expected
    assert trained.tuning["baseline"]["family"] == "xgboost", "the one candidate's defaults"
    assert trained.summary["xgboost"]["trials"] == 3
    assert 0 < trained.summary["xgboost"]["threshold"]["value"] < 1  # tuned on the valid scores


def test_other_families_in_external_memory_are_refused_by_name(make_params, tmp_path: Path) -> None:
    data = on_disk(in_memory("binary"), tmp_path)
    params = make_params(
        train={
            "candidates": ["xgboost", "lightgbm"],
            "external_memory_rows": 2_000,
            "small_data": {"max_rows": 0},
        }
    )
    with pytest.raises(PillarsError) as caught:
        train(params, data, "fingerprint")
    message = str(caught.value)
    assert "train.external_memory_rows (2000)" in message
    assert "which only xgboost can: set train.candidates to ['xgboost'] (now also ['lightgbm'])" in message
