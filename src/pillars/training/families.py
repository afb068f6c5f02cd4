"""Candidate model families: how each is built from hyperparameters and trained while reporting progress.

Every family trains in steps and reports the validation score after each step, which is what Optuna's
pruner needs: XGBoost after every boosting round, HistGradientBoosting after every `warm_start_step`
iterations, and the linear model after every cross-validation fold on train.
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
from pillars.core.metrics import (
    METRICS,
    XGBOOST_EVAL_METRIC,
    UndefinedMetricError,
    measure,
    predict_scores,
    score,
)
from pillars.core.params import TrainParams

Report = Callable[[int, float], None]  # (step, validation score) -> may raise optuna.TrialPruned


@dataclass(frozen=True)
class Fitted:
    """A trained model and its objective value: the score the study optimises."""

    model: BaseEstimator
    value: float


@dataclass(frozen=True)
class TrainingData:
    """Feature matrices and encoded targets of the train and valid splits."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    task: str


class _RoundReporter(xgb.callback.TrainingCallback):
    """Hands XGBoost's per-round validation score to the pruner."""

    def __init__(self, report: Report, eval_metric: str) -> None:
        super().__init__()
        self.report, self.eval_metric = report, eval_metric

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict) -> bool:
        self.report(epoch, float(evals_log["validation_0"][self.eval_metric][-1]))
        return False


def _valid_score(model: BaseEstimator, data: TrainingData, metric: str) -> float:
    """The objective on the valid split, on the task's full label set (curate puts every class in it)."""
    try:
        return score(metric, data.task, data.y_valid, predict_scores(model, data.x_valid, data.task))
    except UndefinedMetricError as error:
        raise PillarsError(
            f"train: the objective train.metric is undefined on the valid split: {error}"
        ) from error


def _classes(data: TrainingData) -> int | None:
    """How many class codes the task has (None for regression): train holds every class (curate checks)."""
    return None if data.task == "regression" else int(np.max(data.y_train)) + 1


def fit_xgboost(hyper: dict, data: TrainingData, settings: TrainParams, report: Report) -> Fitted:
    """Boost on train with early stopping on valid; every round's valid score goes to the pruner."""
    eval_metric = XGBOOST_EVAL_METRIC[data.task, settings.metric]
    estimator = xgb.XGBRegressor if data.task == "regression" else xgb.XGBClassifier
    model = estimator(
        **hyper,
        eval_metric=eval_metric,
        random_state=settings.seed,
        n_jobs=settings.n_jobs,
        tree_method="hist",
        callbacks=[_RoundReporter(report, eval_metric)],
    )
    model.fit(data.x_train, data.y_train, eval_set=[(data.x_valid, data.y_valid)], verbose=False)
    model.set_params(callbacks=None)  # the reporter holds the Optuna trial: keep it out of the saved model
    return Fitted(model, _valid_score(model, data, settings.metric))


def fit_hist_gradient_boosting(
    hyper: dict, data: TrainingData, settings: TrainParams, report: Report
) -> Fitted:
    """Grow `warm_start_step` iterations at a time, report the valid score, stop after `patience` steps
    without improvement (or at `max_iter`)."""
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
        value = _valid_score(model, data, settings.metric)
        report(step, value)
        best, stale = (value, 0) if best is None or metric.better(value, best) else (best, stale + 1)
        step += 1
    return Fitted(model, value)


def fit_linear(hyper: dict, data: TrainingData, settings: TrainParams, report: Report) -> Fitted:
    """Logistic regression (classification) or ridge (regression, with alpha = 1 / C, so one search space
    serves both). The objective is the mean score over cross-validation folds on train (the pruner sees its
    running mean); then the model is fitted on all of train. A fold whose model never saw a class (a class
    with fewer rows than folds) scores it with probability 0; a fold where the metric is undefined (such a
    class absent from its check rows, for one-vs-rest ROC AUC) is left out of the mean."""
    arguments = {key: value for key, value in hyper.items() if key != "C"}
    strength = float(hyper.get("C", 1.0))
    if data.task == "regression":

        def make() -> BaseEstimator:
            return Ridge(alpha=1.0 / strength, **arguments, random_state=settings.seed)

        folds = KFold(settings.cv_folds, shuffle=True, random_state=settings.seed)
    else:

        def make() -> BaseEstimator:
            return LogisticRegression(C=strength, **arguments, random_state=settings.seed)

        folds = StratifiedKFold(settings.cv_folds, shuffle=True, random_state=settings.seed)
    values: list[float] = []
    undefined: list[str | None] = []
    for fit_rows, check_rows in folds.split(data.x_train, data.y_train):
        fold_model = make().fit(data.x_train[fit_rows], data.y_train[fit_rows])
        scores = predict_scores(fold_model, data.x_train[check_rows], data.task, _classes(data))
        value, reason = measure(settings.metric, data.task, data.y_train[check_rows], scores)
        if value is None:
            undefined.append(reason)
            continue
        values.append(value)
        report(len(values) - 1, float(np.mean(values)))
    if not values:
        raise PillarsError(
            f"train: linear: {settings.metric} is undefined on every cross-validation fold of train: {undefined[0]}"
        )
    return Fitted(make().fit(data.x_train, data.y_train), float(np.mean(values)))


FAMILIES: dict[str, Callable[[dict, TrainingData, TrainParams, Report], Fitted]] = {
    "xgboost": fit_xgboost,
    "hist_gradient_boosting": fit_hist_gradient_boosting,
    "linear": fit_linear,
}
