"""Small-data tuning: k-fold cross-validation on train + valid instead of the one valid split.

With few rows, one valid split is a noisy judge (a few dozen rows decide the tuning and the selection). When
train + valid have at most `train.small_data.max_rows` rows, every trial is scored by the mean metric over
k folds of train + valid (stratified for classification, seeded), and the chosen configuration is refit on
train + valid, boosting for the mean number of rounds its folds used. Its out-of-fold predictions (each
row predicted by the fold model that did not see it) are what validate_model and select judge, since the
refit model has seen the valid split.

Fold f reports its steps to the pruner as `f * FOLD_STEPS + step`, so trials are compared at the same fold
and the same round: pruning works as with one split.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import KFold, StratifiedKFold

from pillars.core.errors import PillarsError
from pillars.core.metrics import Measurement
from pillars.core.params import TrainParams
from pillars.training.families import FAMILIES
from pillars.training.families.spec import Report, Rows, TrainingData, fold_mean

MIN_FOLDS = 2
FOLD_STEPS = 1_000_000  # pruner steps per fold: more than any fold reports


def fold_count(data: TrainingData, settings: TrainParams) -> int:
    """The folds small-data CV can use: `train.small_data.folds`, fewer when a class has fewer rows in train
    + valid (every fold holds every class), 0 when CV cannot run (a class with one row, or too few rows)."""
    y = np.concatenate([data.y_train, data.y_valid])
    k = min(settings.small_data.folds, len(y))
    if data.task != "regression" and len(y):
        k = min(k, int(np.unique(y, return_counts=True)[1].min()))
    return k if k >= MIN_FOLDS else 0


def uses_cv(data: TrainingData, settings: TrainParams) -> bool:
    """Whether train + valid are small enough for cross-validated tuning, and it can run on them."""
    small = len(data.y_train) + len(data.y_valid) <= settings.small_data.max_rows
    return small and fold_count(data, settings) > 0


def tuning_summary(data: TrainingData, settings: TrainParams) -> dict:
    """What metrics/train.json records about the tuning: holdout on valid, or k-fold CV on train + valid."""
    rows = {"train": len(data.y_train), "valid": len(data.y_valid)}
    if uses_cv(data, settings):
        return {
            "method": "cv",
            "folds": fold_count(data, settings),
            "rows": rows["train"] + rows["valid"],
            "max_rows": settings.small_data.max_rows,
        }
    if data.in_external_memory:
        return {"method": "holdout", "rows": rows, "train_matrix": "external_memory"}
    return {"method": "holdout", "rows": rows}


@dataclass(frozen=True)
class Pooled:
    """Train + valid as one set of rows (train rows first, in their order), and its folds."""

    x: np.ndarray
    y: np.ndarray
    task: str
    folds: np.ndarray  # the fold of every row: the fold model that did not see it predicts it
    categorical: tuple[tuple[int, ...], ...]  # as in TrainingData

    @property
    def k(self) -> int:
        return int(self.folds.max()) + 1

    def fold(self, index: int) -> TrainingData:
        """Fold `index`: fit on the other folds (x_train), score this one (x_valid)."""
        held = self.folds == index
        return TrainingData(
            self.x[~held], self.y[~held], self.x[held], self.y[held], self.task, self.categorical
        )


def pool(data: TrainingData, settings: TrainParams) -> Pooled:
    """Train + valid with a seeded fold for every row (stratified by class for classification)."""
    x, y = np.concatenate([data.x_train, data.x_valid]), np.concatenate([data.y_train, data.y_valid])
    k = fold_count(data, settings)
    if k < MIN_FOLDS:
        raise PillarsError(f"train: cross-validation needs {MIN_FOLDS} rows of every class in train + valid")
    if data.task == "regression":
        splitter = KFold(k, shuffle=True, random_state=settings.seed)
    else:
        splitter = StratifiedKFold(k, shuffle=True, random_state=settings.seed)
    folds = np.empty(len(y), dtype="int64")
    for index, (_, held) in enumerate(splitter.split(x, y)):
        folds[held] = index
    return Pooled(x, y, data.task, folds, data.categorical)


@dataclass(frozen=True)
class CrossValidated:
    """One configuration over the folds: the mean fold score (the objective), every row's out-of-fold
    prediction, and each fold's boosting rounds."""

    value: float
    out_of_fold: np.ndarray
    rounds: list[int | None]

    @property
    def refit_rounds(self) -> int | None:
        """The rounds for the refit on train + valid: the mean over the folds, rounded (None: no rounds)."""
        if any(rounds is None for rounds in self.rounds):
            return None
        return max(1, int(np.rint(np.mean(self.rounds))))


def cross_validate(
    family: str, hyper: dict, pooled: Pooled, settings: TrainParams, report: Report
) -> CrossValidated:
    """Fit the configuration on each fold's training rows, score its held-out rows; report every step. The
    objective is the mean over the folds where the metric is defined (`fold_mean`)."""
    measured, rounds, pieces = [], [], []
    for index in range(pooled.k):

        def fold_report(step: int, value: float, index: int = index) -> None:
            report(index * FOLD_STEPS + step, value)

        fitted = FAMILIES[family].fold_fit(hyper, pooled.fold(index), settings, fold_report)
        measured.append(Measurement(fitted.value, fitted.undefined))
        rounds.append(fitted.rounds)
        pieces.append(fitted.scores)
    out_of_fold = np.empty((len(pooled.y), *pieces[0].shape[1:]), dtype="float64")
    for index, scores in enumerate(pieces):
        out_of_fold[pooled.folds == index] = scores
    value = fold_mean(family, settings.metric, measured, "train + valid")
    return CrossValidated(value, out_of_fold, rounds)


def refit(
    family: str, hyper: dict, pooled: Pooled, settings: TrainParams, rounds: int | None
) -> BaseEstimator:
    """The chosen configuration fitted on all of train + valid."""
    rows = Rows(pooled.x, pooled.y, pooled.task, pooled.categorical)
    return FAMILIES[family].refit(hyper, rows, settings, rounds)
