"""Candidate model families: how each is built from hyperparameters and trained while reporting progress.

Every family trains in steps and reports the validation score after each step, which is what Optuna's
pruner needs: XGBoost every `train.pruner.round_interval` boosting rounds, HistGradientBoosting after every
`warm_start_step` iterations, and the linear model after every cross-validation fold on train.

For small data (`training.cv`), each family also fits one fold (`FOLD_FITS`: fit on the fold's training
rows, score its held-out rows) and refits a chosen configuration on train + valid (`REFITS`) with the
number of boosting rounds the folds found.

Objectives use the undefined-aware metric (`core.metrics.measure`): on the valid split an undefined objective
stops the run naming the split; a cross-validation fold where it is undefined is left out of the mean
(`fold_mean`), and a trial whose every fold is undefined stops naming the rows.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xgboost as xgb
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold

from pillars.core.errors import PillarsError
from pillars.core.metrics import METRICS, XGBOOST_EVAL_METRIC, Measurement, measure, predict_scores
from pillars.core.params import TrainParams

Report = Callable[[int, float], None]  # (step, validation score) -> may raise optuna.TrialPruned


@dataclass(frozen=True)
class Fitted:
    """A trained model and its objective value: the score the study optimises (None where the metric is
    undefined on the held-out rows, `undefined` saying why). `scores` are the predictions on `x_valid` that
    the value measures (None when the value is not measured on x_valid), `rounds` the boosting rounds the
    model uses (None for the linear model)."""

    model: BaseEstimator
    value: float | None
    scores: np.ndarray | None = None
    rounds: int | None = None
    undefined: str | None = None


@dataclass(frozen=True)
class TrainingData:
    """Feature matrices and encoded targets of the train and valid splits."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    task: str


class _RoundReporter(xgb.callback.TrainingCallback):
    """Hands XGBoost's validation score to the pruner every `interval` rounds: a report writes to the study's
    storage and the pruning check reads every trial back, which costs more than a round on small data."""

    def __init__(self, report: Report, eval_metric: str, interval: int) -> None:
        super().__init__()
        self.report, self.eval_metric, self.interval = report, eval_metric, interval

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict) -> bool:
        if (epoch + 1) % self.interval == 0:
            self.report(epoch, float(evals_log["validation_0"][self.eval_metric][-1]))
        return False


def _held_out_scores(model: BaseEstimator, data: TrainingData, metric: str) -> tuple[Measurement, np.ndarray]:
    """The metric on the held-out rows (x_valid: the valid split, or a fold's held-out rows) and the scores it
    measures, on the task's full label set; the value is None, with the reason, where it is undefined: a
    fold's caller leaves such a fold out, a holdout caller stops (`_defined_on_valid`)."""
    scores = predict_scores(model, data.x_valid, data.task)
    return measure(metric, data.task, data.y_valid, scores), scores


def _classes(data: TrainingData) -> int | None:
    """How many class codes the task has (None for regression): train holds every class (curate checks)."""
    return None if data.task == "regression" else int(np.max(data.y_train)) + 1


def fold_mean(family: str, metric: str, folds: list[Measurement], rows: str) -> float:
    """A cross-validation objective: the mean over the folds where the metric is defined (a fold where it is
    undefined says nothing either way, so it is left out); undefined on every fold of `rows` stops the trial."""
    values = [fold.value for fold in folds if fold.value is not None]
    if not values:
        raise PillarsError(
            f"train: {family}: {metric} is undefined on every cross-validation fold of {rows}: "
            f"{folds[0].undefined}"
        )
    return float(np.mean(values))


def _xgboost(hyper: dict, task: str, settings: TrainParams, **extra: object) -> BaseEstimator:
    estimator = xgb.XGBRegressor if task == "regression" else xgb.XGBClassifier
    return estimator(
        **hyper,
        eval_metric=XGBOOST_EVAL_METRIC[task, settings.metric],
        random_state=settings.seed,
        n_jobs=settings.n_jobs,
        tree_method="hist",
        **extra,
    )


def fit_xgboost(hyper: dict, data: TrainingData, settings: TrainParams, report: Report) -> Fitted:
    """Boost on train with early stopping on valid; the valid score goes to the pruner as it boosts."""
    eval_metric = XGBOOST_EVAL_METRIC[data.task, settings.metric]
    reporter = _RoundReporter(report, eval_metric, settings.pruner.round_interval)
    model = _xgboost(hyper, data.task, settings, callbacks=[reporter])
    model.fit(data.x_train, data.y_train, eval_set=[(data.x_valid, data.y_valid)], verbose=False)
    model.set_params(callbacks=None)  # the reporter holds the Optuna trial: keep it out of the saved model
    early_stopped = model.get_params().get("early_stopping_rounds") is not None
    rounds = model.best_iteration + 1 if early_stopped else model.get_booster().num_boosted_rounds()
    (value, undefined), scores = _held_out_scores(model, data, settings.metric)
    return Fitted(model, value, scores, rounds, undefined)


def refit_xgboost(hyper: dict, x: np.ndarray, y: np.ndarray, task: str, settings: TrainParams, rounds: int):
    """The configuration boosted for exactly `rounds` rounds on all the rows given (no early stopping)."""
    fixed = {key: value for key, value in hyper.items() if key != "early_stopping_rounds"}
    return _xgboost(fixed | {"n_estimators": rounds}, task, settings).fit(x, y, verbose=False)


def fit_hist_gradient_boosting(
    hyper: dict, data: TrainingData, settings: TrainParams, report: Report
) -> Fitted:
    """Grow `warm_start_step` iterations at a time, report the valid score, stop after `patience` steps
    without improvement (or at `max_iter`); a step where the metric is undefined shows no improvement."""
    estimator = HistGradientBoostingRegressor if data.task == "regression" else HistGradientBoostingClassifier
    max_iter = int(hyper.get("max_iter", 500))
    arguments = {key: value for key, value in hyper.items() if key != "max_iter"}
    model = estimator(
        **arguments, max_iter=0, warm_start=True, early_stopping=False, random_state=settings.seed
    )
    metric = METRICS[data.task][settings.metric]
    best, stale, step = None, 0, 0
    while model.max_iter < max_iter and stale < settings.patience:
        model.set_params(max_iter=min(model.max_iter + settings.warm_start_step, max_iter))
        model.fit(data.x_train, data.y_train)
        (value, undefined), scores = _held_out_scores(model, data, settings.metric)
        if value is not None:
            report(step, value)
        improved = value is not None and (best is None or metric.better(value, best))
        best, stale = (value, 0) if improved else (best, stale + 1)
        step += 1
    return Fitted(model, value, scores, model.max_iter, undefined)


def refit_hist_gradient_boosting(
    hyper: dict, x: np.ndarray, y: np.ndarray, task: str, settings: TrainParams, rounds: int
) -> BaseEstimator:
    """The configuration grown to exactly `rounds` iterations on all the rows given."""
    estimator = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    arguments = {key: value for key, value in hyper.items() if key != "max_iter"}
    return estimator(**arguments, max_iter=rounds, early_stopping=False, random_state=settings.seed).fit(x, y)


def linear_model(hyper: dict, task: str, seed: int) -> BaseEstimator:
    """Logistic regression (classification) or ridge (regression, with alpha = 1 / C, so one search space
    serves both)."""
    arguments = {key: value for key, value in hyper.items() if key != "C"}
    strength = float(hyper.get("C", 1.0))
    if task == "regression":
        return Ridge(alpha=1.0 / strength, **arguments, random_state=seed)
    return LogisticRegression(C=strength, **arguments, random_state=seed)


def fit_linear(hyper: dict, data: TrainingData, settings: TrainParams, report: Report) -> Fitted:
    """The linear model. The objective is the mean score over cross-validation folds on train (the pruner
    sees its running mean); then the model is fitted on all of train. A fold whose model never saw a class (a
    class with fewer rows than folds) scores it with probability 0; a fold where the metric is undefined (such
    a class absent from its check rows, for one-vs-rest ROC AUC) is left out of the mean."""

    def make() -> BaseEstimator:
        return linear_model(hyper, data.task, settings.seed)

    if data.task == "regression":
        folds = KFold(settings.cv_folds, shuffle=True, random_state=settings.seed)
    else:
        folds = StratifiedKFold(settings.cv_folds, shuffle=True, random_state=settings.seed)
    measured: list[Measurement] = []
    step = 0
    for fit_rows, check_rows in folds.split(data.x_train, data.y_train):
        fold_model = make().fit(data.x_train[fit_rows], data.y_train[fit_rows])
        scores = predict_scores(fold_model, data.x_train[check_rows], data.task, _classes(data))
        measured.append(measure(settings.metric, data.task, data.y_train[check_rows], scores))
        if measured[-1].value is not None:  # the pruner sees the running mean of the defined folds
            report(step, fold_mean("linear", settings.metric, measured, "train"))
            step += 1
    return Fitted(
        make().fit(data.x_train, data.y_train), fold_mean("linear", settings.metric, measured, "train")
    )


def fit_linear_fold(hyper: dict, data: TrainingData, settings: TrainParams, report: Report) -> Fitted:
    """The linear model fitted on x_train and scored on x_valid (one fold of small-data tuning)."""
    model = linear_model(hyper, data.task, settings.seed).fit(data.x_train, data.y_train)
    (value, undefined), scores = _held_out_scores(model, data, settings.metric)
    if value is not None:
        report(0, value)
    return Fitted(model, value, scores, undefined=undefined)


def refit_linear(
    hyper: dict, x: np.ndarray, y: np.ndarray, task: str, settings: TrainParams, rounds: int | None
) -> BaseEstimator:
    """The linear model fitted on all the rows given (it has no rounds)."""
    return linear_model(hyper, task, settings.seed).fit(x, y)


FitFamily = Callable[[dict, TrainingData, TrainParams, Report], Fitted]
RefitFamily = Callable[[dict, np.ndarray, np.ndarray, str, TrainParams, int | None], BaseEstimator]


def _defined_on_valid(fit: FitFamily) -> FitFamily:
    """`fit` with the valid split as its held-out rows: there the objective must have a value (curate puts
    every class in valid), so an undefined one stops the run naming the split instead of ranking trials on
    nothing."""

    def fit_on_valid(hyper: dict, data: TrainingData, settings: TrainParams, report: Report) -> Fitted:
        fitted = fit(hyper, data, settings, report)
        if fitted.value is None:
            raise PillarsError(
                f"train: the objective train.metric ({settings.metric}) is undefined on the valid split: "
                f"{fitted.undefined}"
            )
        return fitted

    return fit_on_valid


FAMILIES: dict[str, FitFamily] = {  # holdout: fit on train, the objective on valid (linear: folds of train)
    "xgboost": _defined_on_valid(fit_xgboost),
    "hist_gradient_boosting": _defined_on_valid(fit_hist_gradient_boosting),
    "linear": fit_linear,
}
FOLD_FITS: dict[str, FitFamily] = {  # small data: one fold, scored on its held-out rows (x_valid), maybe None
    "xgboost": fit_xgboost,
    "hist_gradient_boosting": fit_hist_gradient_boosting,
    "linear": fit_linear_fold,
}
REFITS: dict[str, RefitFamily] = {  # small data: the chosen configuration on train + valid
    "xgboost": refit_xgboost,
    "hist_gradient_boosting": refit_hist_gradient_boosting,
    "linear": refit_linear,
}
