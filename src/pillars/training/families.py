"""Candidate model families: how each is built from hyperparameters and trained while reporting progress.

Every family trains in steps and reports the validation score after each step, which is what Optuna's
pruner needs: the boosting libraries (XGBoost, LightGBM, CatBoost) every `train.pruner.round_interval`
rounds, HistGradientBoosting after every `warm_start_step` iterations, and the linear model after every
cross-validation fold on train. The boosting libraries stop early on the valid split
(`early_stopping_rounds` in a family's `fixed` arguments) and train deterministically with `train.n_jobs`
threads.

A regression family may search its loss (`objective`: squared_error, absolute_error, poisson, tweedie),
named once for every library (`OBJECTIVE_NAMES` says what each library calls it); poisson and tweedie need a
target that is never negative.

LightGBM and CatBoost may split on categories natively (`categorical: native` among a family's arguments,
fixed or searched; `onehot`, the default, fits the one-hot matrix as it is): they fit on `CategoryCodes` of the
matrix and are saved as a `NativeCategorical`, which takes the one-hot matrix, so serving is unchanged.

For small data (`training.cv`), each family also fits one fold (`FOLD_FITS`: fit on the fold's training
rows, score its held-out rows) and refits a chosen configuration on train + valid (`REFITS`) with the
number of boosting rounds the folds found.

Objectives use the undefined-aware metric (`core.metrics.measure`): on the valid split an undefined objective
stops the run naming the split; a cross-validation fold where it is undefined is left out of the mean
(`fold_mean`), and a trial whose every fold is undefined stops naming the rows.
"""

from collections.abc import Callable
from dataclasses import dataclass

import catboost
import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold

from pillars.core.errors import PillarsError
from pillars.core.metrics import EVAL_METRICS, METRICS, Measurement, measure, predict_scores
from pillars.core.params import TrainParams
from pillars.serve.estimators import CatBoostModel, CategoryCodes, NativeCategorical
from pillars.training.external import FeatureFile, fit_external

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
    """Feature matrices and encoded targets of the train and valid splits (x_train a `FeatureFile` when it
    is left on disk for XGBoost's external memory); `categorical`: the positions of each categorical
    column's one-hot block in the matrix."""

    x_train: np.ndarray | FeatureFile
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    task: str
    categorical: tuple[tuple[int, ...], ...] = ()

    @property
    def in_external_memory(self) -> bool:
        """Whether train is left on disk for XGBoost's external memory."""
        return isinstance(self.x_train, FeatureFile)


@dataclass(frozen=True)
class Rows:
    """Rows to fit on with nothing held out (a refit): as TrainingData without the valid split."""

    x: np.ndarray
    y: np.ndarray
    task: str
    categorical: tuple[tuple[int, ...], ...]


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


OBJECTIVE_NAMES: dict[str, dict[str, str]] = {  # a regression loss, as each library names it
    "xgboost": {
        "squared_error": "reg:squarederror",
        "absolute_error": "reg:absoluteerror",
        "poisson": "count:poisson",
        "tweedie": "reg:tweedie",
    },
    "lightgbm": {
        "squared_error": "regression",
        "absolute_error": "l1",
        "poisson": "poisson",
        "tweedie": "tweedie",
    },
    "catboost": {
        "squared_error": "RMSE",
        "absolute_error": "MAE",
        "poisson": "Poisson",
        "tweedie": "Tweedie:variance_power=1.5",
    },
    "hist_gradient_boosting": {
        "squared_error": "squared_error",
        "absolute_error": "absolute_error",
        "poisson": "poisson",
    },
}
NON_NEGATIVE = ("poisson", "tweedie")  # losses of counts and amounts: a negative target has no likelihood
OBJECTIVE_KEYS = {  # the argument that takes the loss
    "xgboost": "objective",
    "lightgbm": "objective",
    "catboost": "loss_function",
    "hist_gradient_boosting": "loss",
}


NATIVE_CATEGORIES = {"lightgbm": "categorical_feature", "catboost": "cat_features"}  # their fit argument


def _encoding_name(family: str, hyper: dict) -> str:
    """The configuration's `categorical` encoding, checked to be one the family has."""
    name = hyper.get("categorical", "onehot")
    if name != "onehot" and (name != "native" or family not in NATIVE_CATEGORIES):
        raise PillarsError(
            f"params.yaml: train.families.{family}: categorical {name!r} is not an encoding this family has "
            f"(onehot; native for {' and '.join(NATIVE_CATEGORIES)})"
        )
    return name


@dataclass(frozen=True)
class Encoding:
    """What a configuration fits on: the one-hot matrix as it is (`codes` None), or native category codes."""

    family: str
    codes: CategoryCodes | None

    def __call__(self, features: np.ndarray) -> np.ndarray | pd.DataFrame:
        return features if self.codes is None else self.codes(features)

    def fit_arguments(self) -> dict:
        """The library's fit argument naming the category columns (none for the one-hot matrix)."""
        return {} if self.codes is None else {NATIVE_CATEGORIES[self.family]: self.codes.names}

    def wrap(self, model: object) -> object:
        """The fitted model as it is saved: one that takes the one-hot matrix."""
        return model if self.codes is None else NativeCategorical(model, self.codes)


def encoding(family: str, hyper: dict, categorical: tuple[tuple[int, ...], ...], n_features: int) -> Encoding:
    """How the configuration sees the categorical columns: `categorical: native` codes them when the data
    has any (`categorical`: their one-hot blocks), else the one-hot matrix."""
    if _encoding_name(family, hyper) == "onehot" or not categorical:
        return Encoding(family, None)
    return Encoding(family, CategoryCodes([list(block) for block in categorical], n_features))


def library_arguments(family: str, hyper: dict, data_y: np.ndarray, task: str) -> dict:
    """The hyperparameters as the family's library takes them: our `objective` name becomes the library's
    own argument (checked to fit the task and the target), and `categorical` (checked) is ours alone."""
    _encoding_name(family, hyper)
    hyper = {key: value for key, value in hyper.items() if key != "categorical"}
    if "objective" not in hyper:
        return hyper
    objective = hyper["objective"]
    names = OBJECTIVE_NAMES.get(family, {})
    if task != "regression" or objective not in names:
        raise PillarsError(
            f"params.yaml: train.families.{family}: objective {objective!r} is not a loss this family has for "
            f"a {task} task (regression: one of {sorted(names)}; classification: leave objective out)"
        )
    if objective in NON_NEGATIVE and len(data_y) and float(np.min(data_y)) < 0:
        raise PillarsError(
            f"params.yaml: train.families.{family}: objective {objective!r} needs a target that is never "
            f"negative; the training target goes down to {float(np.min(data_y)):g}"
        )
    arguments = {key: value for key, value in hyper.items() if key != "objective"}
    return arguments | {OBJECTIVE_KEYS[family]: names[objective]}


def _refit_arguments(family: str, hyper: dict, rounds: dict[str, int], y: np.ndarray, task: str) -> dict:
    """A boosting configuration as its library takes it, for a fixed number of rounds (`rounds`: the
    library's argument for it) instead of early stopping."""
    fixed = {key: value for key, value in hyper.items() if key != "early_stopping_rounds"}
    return library_arguments(family, fixed | rounds, y, task)


def _xgboost(hyper: dict, task: str, settings: TrainParams, **extra: object) -> BaseEstimator:
    estimator = xgb.XGBRegressor if task == "regression" else xgb.XGBClassifier
    return estimator(
        **hyper,
        eval_metric=EVAL_METRICS["xgboost"][task, settings.metric],
        random_state=settings.seed,
        n_jobs=settings.n_jobs,
        tree_method="hist",
        **extra,
    )


def fit_xgboost(hyper: dict, data: TrainingData, settings: TrainParams, report: Report) -> Fitted:
    """Boost on train with early stopping on valid; the valid score goes to the pruner as it boosts."""
    eval_metric = EVAL_METRICS["xgboost"][data.task, settings.metric]
    reporter = _RoundReporter(report, eval_metric, settings.pruner.round_interval)
    arguments = library_arguments("xgboost", hyper, data.y_train, data.task)
    model = _xgboost(arguments, data.task, settings, callbacks=[reporter])
    if data.in_external_memory:
        fit_external(model, data.x_train, data.x_valid, data.y_valid, _classes(data))
    else:
        model.fit(data.x_train, data.y_train, eval_set=[(data.x_valid, data.y_valid)], verbose=False)
    model.set_params(callbacks=None)  # the reporter holds the Optuna trial: keep it out of the saved model
    early_stopped = model.get_params().get("early_stopping_rounds") is not None
    rounds = model.best_iteration + 1 if early_stopped else model.get_booster().num_boosted_rounds()
    (value, undefined), scores = _held_out_scores(model, data, settings.metric)
    return Fitted(model, value, scores, rounds, undefined)


def refit_xgboost(hyper: dict, rows: Rows, settings: TrainParams, rounds: int):
    """The configuration boosted for exactly `rounds` rounds on all the rows given (no early stopping)."""
    arguments = _refit_arguments("xgboost", hyper, {"n_estimators": rounds}, rows.y, rows.task)
    return _xgboost(arguments, rows.task, settings).fit(rows.x, rows.y, verbose=False)


def _lightgbm(hyper: dict, task: str, settings: TrainParams) -> BaseEstimator:
    """Deterministic LightGBM (the same trees for the same data, seed and thread count)."""
    estimator = lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier
    return estimator(
        **hyper,
        metric=EVAL_METRICS["lightgbm"][task, settings.metric],
        random_state=settings.seed,
        n_jobs=settings.n_jobs,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )


class _LightGBMReporter:
    """LightGBM's callback: the valid score to the pruner every `interval` rounds."""

    order = 40  # after LightGBM's own early stopping check (30)

    def __init__(self, report: Report, interval: int) -> None:
        self.report, self.interval = report, interval

    def __call__(self, env: lgb.callback.CallbackEnv) -> None:
        if (env.iteration + 1) % self.interval == 0:
            self.report(env.iteration, float(env.evaluation_result_list[0][2]))


def fit_lightgbm(hyper: dict, data: TrainingData, settings: TrainParams, report: Report) -> Fitted:
    """Boost on train with early stopping on valid; the valid score goes to the pruner as it boosts."""
    arguments = library_arguments("lightgbm", hyper, data.y_train, data.task)
    inputs = encoding("lightgbm", hyper, data.categorical, data.x_train.shape[1])
    model = _lightgbm(arguments, data.task, settings)
    reporter = _LightGBMReporter(report, settings.pruner.round_interval)
    model.fit(
        inputs(data.x_train),
        data.y_train,
        eval_X=(inputs(data.x_valid),),
        eval_y=(data.y_valid,),
        callbacks=[reporter],
        **inputs.fit_arguments(),
    )
    rounds = model.best_iteration_ or model.booster_.current_iteration()  # 0: no early stopping
    fitted = inputs.wrap(model)
    (value, undefined), scores = _held_out_scores(fitted, data, settings.metric)
    return Fitted(fitted, value, scores, rounds, undefined)


def refit_lightgbm(hyper: dict, rows: Rows, settings: TrainParams, rounds: int):
    """The configuration boosted for exactly `rounds` rounds on all the rows given (no early stopping)."""
    arguments = _refit_arguments("lightgbm", hyper, {"n_estimators": rounds}, rows.y, rows.task)
    inputs = encoding("lightgbm", hyper, rows.categorical, rows.x.shape[1])
    model = _lightgbm(arguments, rows.task, settings).fit(inputs(rows.x), rows.y, **inputs.fit_arguments())
    return inputs.wrap(model)


def _catboost(hyper: dict, task: str, settings: TrainParams) -> catboost.CatBoost:
    """CatBoost, deterministic for a seed and thread count, writing no files of its own."""
    estimator = catboost.CatBoostRegressor if task == "regression" else catboost.CatBoostClassifier
    return estimator(
        **hyper,
        eval_metric=EVAL_METRICS["catboost"][task, settings.metric],
        random_seed=settings.seed,
        thread_count=settings.n_jobs,
        allow_writing_files=False,
        verbose=False,
    )


CATBOOST_STAMPS = ("train_finish_time", "model_guid", "training")  # a clock, a random id, the training log


def _reproducible(model: catboost.CatBoost, n_jobs: int) -> CatBoostModel:
    """The fitted model without what CatBoost stamps on it beyond the trees (its metadata: when training
    finished, a random id, the per-round metric log), so equal trees pickle to equal bytes; wrapped to predict
    with `n_jobs` threads."""
    metadata = model.get_metadata()
    for key in CATBOOST_STAMPS:
        if key in metadata:
            del metadata[key]
    return CatBoostModel(model, n_jobs)


class _CatBoostReporter:
    """CatBoost's callback: the valid score to the pruner every `interval` rounds. CatBoost calls it from
    native code, where an exception cannot pass: a stop (the pruner's) is kept, training told to end, and
    `raise_stop` raises it afterwards."""

    def __init__(self, report: Report, eval_metric: str, interval: int) -> None:
        self.report, self.eval_metric, self.interval = report, eval_metric, interval
        self.stop: BaseException | None = None

    def after_iteration(self, info: object) -> bool:
        if info.iteration % self.interval == 0:  # iterations count from 1
            try:
                self.report(info.iteration - 1, float(info.metrics["validation"][self.eval_metric][-1]))
            except Exception as stop:  # kept, and raised by raise_stop once CatBoost returns
                self.stop = stop
                return False
        return True

    def raise_stop(self) -> None:
        if self.stop is not None:
            raise self.stop


def fit_catboost(hyper: dict, data: TrainingData, settings: TrainParams, report: Report) -> Fitted:
    """Boost on train with early stopping on valid (the model keeps its best round); the valid score goes to
    the pruner as it boosts."""
    arguments = library_arguments("catboost", hyper, data.y_train, data.task)
    inputs = encoding("catboost", hyper, data.categorical, data.x_train.shape[1])
    model = _catboost(arguments, data.task, settings)
    eval_metric = EVAL_METRICS["catboost"][data.task, settings.metric]
    reporter = _CatBoostReporter(report, eval_metric, settings.pruner.round_interval)
    model.fit(
        inputs(data.x_train),
        data.y_train,
        eval_set=(inputs(data.x_valid), data.y_valid),
        callbacks=[reporter],
        **inputs.fit_arguments(),
    )
    reporter.raise_stop()
    fitted = inputs.wrap(_reproducible(model, settings.n_jobs))
    (value, undefined), scores = _held_out_scores(fitted, data, settings.metric)
    return Fitted(fitted, value, scores, int(model.tree_count_), undefined)


def refit_catboost(hyper: dict, rows: Rows, settings: TrainParams, rounds: int):
    """The configuration boosted for exactly `rounds` rounds on all the rows given (no early stopping)."""
    arguments = _refit_arguments("catboost", hyper, {"iterations": rounds}, rows.y, rows.task)
    inputs = encoding("catboost", hyper, rows.categorical, rows.x.shape[1])
    model = _catboost(arguments, rows.task, settings).fit(inputs(rows.x), rows.y, **inputs.fit_arguments())
    return inputs.wrap(_reproducible(model, settings.n_jobs))


def fit_hist_gradient_boosting(
    hyper: dict, data: TrainingData, settings: TrainParams, report: Report
) -> Fitted:
    """Grow `warm_start_step` iterations at a time, report the valid score, stop after `patience` steps
    without improvement (or at `max_iter`); a step where the metric is undefined shows no improvement."""
    estimator = HistGradientBoostingRegressor if data.task == "regression" else HistGradientBoostingClassifier
    max_iter = int(hyper.get("max_iter", 500))
    arguments = library_arguments("hist_gradient_boosting", hyper, data.y_train, data.task)
    arguments = {key: value for key, value in arguments.items() if key != "max_iter"}
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
    hyper: dict, rows: Rows, settings: TrainParams, rounds: int
) -> BaseEstimator:
    """The configuration grown to exactly `rounds` iterations on all the rows given."""
    regression = rows.task == "regression"
    estimator = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
    arguments = library_arguments("hist_gradient_boosting", hyper, rows.y, rows.task)
    arguments = {key: value for key, value in arguments.items() if key != "max_iter"}
    model = estimator(**arguments, max_iter=rounds, early_stopping=False, random_state=settings.seed)
    return model.fit(rows.x, rows.y)


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


def refit_linear(hyper: dict, rows: Rows, settings: TrainParams, rounds: int | None) -> BaseEstimator:
    """The linear model fitted on all the rows given (it has no rounds)."""
    return linear_model(hyper, rows.task, settings.seed).fit(rows.x, rows.y)


FitFamily = Callable[[dict, TrainingData, TrainParams, Report], Fitted]
RefitFamily = Callable[[dict, Rows, TrainParams, int | None], BaseEstimator]


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
    "lightgbm": _defined_on_valid(fit_lightgbm),
    "catboost": _defined_on_valid(fit_catboost),
    "hist_gradient_boosting": _defined_on_valid(fit_hist_gradient_boosting),
    "linear": fit_linear,
}
FOLD_FITS: dict[str, FitFamily] = {  # small data: one fold, scored on its held-out rows (x_valid), maybe None
    "xgboost": fit_xgboost,
    "lightgbm": fit_lightgbm,
    "catboost": fit_catboost,
    "hist_gradient_boosting": fit_hist_gradient_boosting,
    "linear": fit_linear_fold,
}
REFITS: dict[str, RefitFamily] = {  # small data: the chosen configuration on train + valid
    "xgboost": refit_xgboost,
    "lightgbm": refit_lightgbm,
    "catboost": refit_catboost,
    "hist_gradient_boosting": refit_hist_gradient_boosting,
    "linear": refit_linear,
}
