"""LightGBM: boosts on train with early stopping on valid, reporting the valid score to the pruner every
`train.pruner.round_interval` rounds; splits on categories natively under `categorical: native`.
Deterministic (the same trees for the same data, seed and thread count)."""

import lightgbm as lgb

from pillars.core.params import TrainParams
from pillars.training.families.arguments import encoding, library_arguments, refit_arguments
from pillars.training.families.spec import (
    Family,
    Fitted,
    Report,
    Rows,
    TrainingData,
    defined_on_valid,
    held_out_scores,
)

# LightGBM's per-round metric for each objective; its AUC-mu stands in for one-vs-rest ROC AUC.
EVAL_METRICS = {
    ("binary", "roc_auc"): "auc",
    ("binary", "average_precision"): "average_precision",
    ("binary", "log_loss"): "binary_logloss",
    ("multiclass", "log_loss"): "multi_logloss",
    ("multiclass", "roc_auc_ovr"): "auc_mu",
    ("regression", "rmse"): "rmse",
    ("regression", "mae"): "l1",
}


def _model(hyper: dict, task: str, settings: TrainParams) -> lgb.LGBMModel:
    estimator = lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier
    return estimator(
        **hyper,
        metric=EVAL_METRICS[task, settings.metric],
        random_state=settings.seed,
        n_jobs=settings.n_jobs,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )


class _Reporter:
    """LightGBM's callback: the valid score to the pruner every `interval` rounds."""

    order = 40  # after LightGBM's own early stopping check (30)

    def __init__(self, report: Report, interval: int) -> None:
        self.report, self.interval = report, interval

    def __call__(self, env: lgb.callback.CallbackEnv) -> None:
        if (env.iteration + 1) % self.interval == 0:
            self.report(env.iteration, float(env.evaluation_result_list[0][2]))


def fit(hyper: dict, data: TrainingData, settings: TrainParams, report: Report) -> Fitted:
    """Boost on train with early stopping on valid; the valid score goes to the pruner as it boosts."""
    arguments = library_arguments(FAMILY, hyper, data.y_train, data.task)
    inputs = encoding(FAMILY, hyper, data.categorical, data.x_train.shape[1])
    model = _model(arguments, data.task, settings)
    model.fit(
        inputs(data.x_train),
        data.y_train,
        eval_X=(inputs(data.x_valid),),
        eval_y=(data.y_valid,),
        callbacks=[_Reporter(report, settings.pruner.round_interval)],
        **inputs.fit_arguments(),
    )
    rounds = model.best_iteration_ or model.booster_.current_iteration()  # 0: no early stopping
    fitted = inputs.wrap(model)
    (value, undefined), scores = held_out_scores(fitted, data, settings.metric)
    return Fitted(fitted, value, scores, rounds, undefined)


def refit(hyper: dict, rows: Rows, settings: TrainParams, rounds: int | None) -> object:
    """The configuration boosted for exactly `rounds` rounds on all the rows given (no early stopping)."""
    arguments = refit_arguments(FAMILY, hyper, rounds, rows.y, rows.task)
    inputs = encoding(FAMILY, hyper, rows.categorical, rows.x.shape[1])
    model = _model(arguments, rows.task, settings).fit(inputs(rows.x), rows.y, **inputs.fit_arguments())
    return inputs.wrap(model)


def _depth(node: dict) -> int:
    """The node tests on the longest path below a node of LightGBM's tree dump (a leaf: none)."""
    if "split_index" not in node:
        return 0
    return 1 + max(_depth(node["left_child"]), _depth(node["right_child"]))


def prediction_cost(model: lgb.LGBMModel) -> int:
    """The longest path of every tree (the dump holds the trees up to the best round, which predict uses)."""
    return sum(_depth(tree["tree_structure"]) for tree in model.booster_.dump_model()["tree_info"])


FAMILY = Family(
    name="lightgbm",
    fit=defined_on_valid(fit),
    fold_fit=fit,
    refit=refit,
    model_types=(lgb.LGBMModel,),
    prediction_cost=prediction_cost,
    eval_metrics=EVAL_METRICS,
    objective_key="objective",
    objective_names={
        "squared_error": "regression",
        "absolute_error": "l1",
        "poisson": "poisson",
        "tweedie": "tweedie",
    },
    native_categories="categorical_feature",
    rounds_key="n_estimators",
    quick_trials=3,
)
