"""XGBoost: boosts on train with early stopping on valid (`early_stopping_rounds` among the family's `fixed`
arguments), reporting the valid score to the pruner every `train.pruner.round_interval` rounds; the one
family that trains from a matrix left on disk (external memory). Deterministic with `train.n_jobs` threads."""

import re

import xgboost as xgb

from pillars.core.params import TrainParams
from pillars.training.external import fit_external
from pillars.training.families.arguments import library_arguments, refit_arguments
from pillars.training.families.spec import (
    Family,
    Fitted,
    Report,
    Rows,
    TrainingData,
    classes,
    defined_on_valid,
    held_out_scores,
)

# The metric XGBoost reports per round for each objective (the trial's value is always ours); its
# multiclass AUC stands in for one-vs-rest ROC AUC.
EVAL_METRICS = {
    ("binary", "roc_auc"): "auc",
    ("binary", "average_precision"): "aucpr",
    ("binary", "log_loss"): "logloss",
    ("multiclass", "log_loss"): "mlogloss",
    ("multiclass", "roc_auc_ovr"): "auc",
    ("regression", "rmse"): "rmse",
    ("regression", "mae"): "mae",
}
DEPTH = re.compile(r'"depth"\s*:\s*(\d+)')  # of a split node, in XGBoost's JSON dump of a tree


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


def _model(hyper: dict, task: str, settings: TrainParams, **extra: object) -> xgb.XGBModel:
    estimator = xgb.XGBRegressor if task == "regression" else xgb.XGBClassifier
    return estimator(
        **hyper,
        eval_metric=EVAL_METRICS[task, settings.metric],
        random_state=settings.seed,
        n_jobs=settings.n_jobs,
        tree_method="hist",
        **extra,
    )


def fit(hyper: dict, data: TrainingData, settings: TrainParams, report: Report) -> Fitted:
    """Boost on train with early stopping on valid; the valid score goes to the pruner as it boosts."""
    reporter = _RoundReporter(
        report, EVAL_METRICS[data.task, settings.metric], settings.pruner.round_interval
    )
    arguments = library_arguments(FAMILY, hyper, data.y_train, data.task)
    model = _model(arguments, data.task, settings, callbacks=[reporter])
    if data.in_external_memory:
        fit_external(model, data.x_train, data.x_valid, data.y_valid, classes(data))
    else:
        model.fit(data.x_train, data.y_train, eval_set=[(data.x_valid, data.y_valid)], verbose=False)
    model.set_params(callbacks=None)  # the reporter holds the Optuna trial: keep it out of the saved model
    early_stopped = model.get_params().get("early_stopping_rounds") is not None
    rounds = model.best_iteration + 1 if early_stopped else model.get_booster().num_boosted_rounds()
    (value, undefined), scores = held_out_scores(model, data, settings.metric)
    return Fitted(model, value, scores, rounds, undefined)


def refit(hyper: dict, rows: Rows, settings: TrainParams, rounds: int | None) -> xgb.XGBModel:
    """The configuration boosted for exactly `rounds` rounds on all the rows given (no early stopping)."""
    arguments = refit_arguments(FAMILY, hyper, rounds, rows.y, rows.task)
    return _model(arguments, rows.task, settings).fit(rows.x, rows.y, verbose=False)


def prediction_cost(model: xgb.XGBModel) -> int:
    """Summed over the trees predictions use (up to the best round after early stopping): the node tests on
    the longest path (a split at depth d puts its leaves at d + 1)."""
    booster = model.get_booster()
    best = getattr(model, "best_iteration", None)
    used = booster if best is None else booster[: best + 1]
    dumps = used.get_dump(dump_format="json")
    return sum(max((int(depth) + 1 for depth in DEPTH.findall(tree)), default=0) for tree in dumps)


FAMILY = Family(
    name="xgboost",
    fit=defined_on_valid(fit),
    fold_fit=fit,
    refit=refit,
    model_types=(xgb.XGBModel,),
    prediction_cost=prediction_cost,
    eval_metrics=EVAL_METRICS,
    objective_key="objective",
    objective_names={
        "squared_error": "reg:squarederror",
        "absolute_error": "reg:absoluteerror",
        "poisson": "count:poisson",
        "tweedie": "reg:tweedie",
    },
    rounds_key="n_estimators",
    out_of_core=True,
    quick_trials=3,
)
