"""Candidate model families: how each is built from hyperparameters and trained while reporting progress.

Every family trains in steps and reports the validation score after each step, which is what Optuna's
pruner needs: XGBoost after every boosting round, HistGradientBoosting after every `warm_start_step`
iterations, and the linear model after every cross-validation fold on train.

For small data (`training.cv`), each family also fits one fold (`FOLD_FITS`: fit on the fold's training
rows, score its held-out rows) and refits a chosen configuration on train + valid (`REFITS`) with the
number of boosting rounds the folds found.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xgboost as xgb
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold

from pillars.core.metrics import METRICS, XGBOOST_EVAL_METRIC, predict_scores, score
from pillars.core.params import TrainParams

Report = Callable[[int, float], None]  # (step, validation score) -> may raise optuna.TrialPruned


@dataclass(frozen=True)
class Fitted:
    """A trained model and its objective value: the score the study optimises. `scores` are the predictions
    on `x_valid` that the value measures (None when the value is not measured on x_valid), `rounds` the
    boosting rounds the model uses (None for the linear model)."""

    model: BaseEstimator
    value: float
    scores: np.ndarray | None = None
    rounds: int | None = None


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


def _valid_scores(model: BaseEstimator, data: TrainingData, metric: str) -> tuple[float, np.ndarray]:
    scores = predict_scores(model, data.x_valid, data.task)
    return score(metric, data.task, data.y_valid, scores), scores


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
    """Boost on train with early stopping on valid; every round's valid score goes to the pruner."""
    eval_metric = XGBOOST_EVAL_METRIC[data.task, settings.metric]
    model = _xgboost(hyper, data.task, settings, callbacks=[_RoundReporter(report, eval_metric)])
    model.fit(data.x_train, data.y_train, eval_set=[(data.x_valid, data.y_valid)], verbose=False)
    model.set_params(callbacks=None)  # the reporter holds the Optuna trial: keep it out of the saved model
    early_stopped = model.get_params().get("early_stopping_rounds") is not None
    rounds = model.best_iteration + 1 if early_stopped else model.get_booster().num_boosted_rounds()
    return Fitted(model, *_valid_scores(model, data, settings.metric), rounds=rounds)


def refit_xgboost(hyper: dict, x: np.ndarray, y: np.ndarray, task: str, settings: TrainParams, rounds: int):
    """The configuration boosted for exactly `rounds` rounds on all the rows given (no early stopping)."""
    fixed = {key: value for key, value in hyper.items() if key != "early_stopping_rounds"}
    return _xgboost(fixed | {"n_estimators": rounds}, task, settings).fit(x, y, verbose=False)


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
        value, scores = _valid_scores(model, data, settings.metric)
        report(step, value)
        best, stale = (value, 0) if best is None or metric.better(value, best) else (best, stale + 1)
        step += 1
    return Fitted(model, value, scores, rounds=model.max_iter)


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
    sees its running mean); then the model is fitted on all of train."""

    def make() -> BaseEstimator:
        return linear_model(hyper, data.task, settings.seed)

    if data.task == "regression":
        folds = KFold(settings.cv_folds, shuffle=True, random_state=settings.seed)
    else:
        folds = StratifiedKFold(settings.cv_folds, shuffle=True, random_state=settings.seed)
    values = []
    for step, (fit_rows, check_rows) in enumerate(folds.split(data.x_train, data.y_train)):
        fold_model = make().fit(data.x_train[fit_rows], data.y_train[fit_rows])
        scores = predict_scores(fold_model, data.x_train[check_rows], data.task)
        values.append(score(settings.metric, data.task, data.y_train[check_rows], scores))
        report(step, float(np.mean(values)))
    return Fitted(make().fit(data.x_train, data.y_train), float(np.mean(values)))


def fit_linear_fold(hyper: dict, data: TrainingData, settings: TrainParams, report: Report) -> Fitted:
    """The linear model fitted on x_train and scored on x_valid (one fold of small-data tuning)."""
    model = linear_model(hyper, data.task, settings.seed).fit(data.x_train, data.y_train)
    value, scores = _valid_scores(model, data, settings.metric)
    report(0, value)
    return Fitted(model, value, scores)


def refit_linear(
    hyper: dict, x: np.ndarray, y: np.ndarray, task: str, settings: TrainParams, rounds: int | None
) -> BaseEstimator:
    """The linear model fitted on all the rows given (it has no rounds)."""
    return linear_model(hyper, task, settings.seed).fit(x, y)


FitFamily = Callable[[dict, TrainingData, TrainParams, Report], Fitted]
RefitFamily = Callable[[dict, np.ndarray, np.ndarray, str, TrainParams, int | None], BaseEstimator]

FAMILIES: dict[str, FitFamily] = {
    "xgboost": fit_xgboost,
    "hist_gradient_boosting": fit_hist_gradient_boosting,
    "linear": fit_linear,
}
FOLD_FITS: dict[str, FitFamily] = {  # small data: one fold, scored on its held-out rows (x_valid)
    "xgboost": fit_xgboost,
    "hist_gradient_boosting": fit_hist_gradient_boosting,
    "linear": fit_linear_fold,
}
REFITS: dict[str, RefitFamily] = {  # small data: the chosen configuration on train + valid
    "xgboost": refit_xgboost,
    "hist_gradient_boosting": refit_hist_gradient_boosting,
    "linear": refit_linear,
}
