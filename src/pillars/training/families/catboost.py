"""CatBoost: boosts on train with early stopping on valid (the model keeps its best round), reporting the
valid score to the pruner every `train.pruner.round_interval` rounds; splits on categories natively under
`categorical: native`. Deterministic for a seed and thread count, writing no files of its own, and saved
without what it stamps beyond the trees, so equal trees pickle to equal bytes."""

import catboost

from pillars.core.params import TrainParams
from pillars.serve.estimators import CatBoostModel
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

# CatBoost's per-round metric for each objective; its AUC-mu stands in for one-vs-rest ROC AUC.
EVAL_METRICS = {
    ("binary", "roc_auc"): "AUC",
    ("binary", "average_precision"): "PRAUC",
    ("binary", "log_loss"): "Logloss",
    ("multiclass", "log_loss"): "MultiClass",
    ("multiclass", "roc_auc_ovr"): "AUC:type=Mu",
    ("regression", "rmse"): "RMSE",
    ("regression", "mae"): "MAE",
}
STAMPS = ("train_finish_time", "model_guid", "training")  # a clock, a random id, the training log


def _model(hyper: dict, task: str, settings: TrainParams) -> catboost.CatBoost:
    estimator = catboost.CatBoostRegressor if task == "regression" else catboost.CatBoostClassifier
    return estimator(
        **hyper,
        eval_metric=EVAL_METRICS[task, settings.metric],
        random_seed=settings.seed,
        thread_count=settings.n_jobs,
        allow_writing_files=False,
        verbose=False,
    )


def _reproducible(model: catboost.CatBoost, n_jobs: int) -> CatBoostModel:
    """The fitted model without its metadata stamps (`STAMPS`), wrapped to predict with `n_jobs` threads."""
    metadata = model.get_metadata()
    for key in STAMPS:
        if key in metadata:
            del metadata[key]
    return CatBoostModel(model, n_jobs)


class _Reporter:
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


def fit(hyper: dict, data: TrainingData, settings: TrainParams, report: Report) -> Fitted:
    """Boost on train with early stopping on valid; the valid score goes to the pruner as it boosts."""
    arguments = library_arguments(FAMILY, hyper, data.y_train, data.task)
    inputs = encoding(FAMILY, hyper, data.categorical, data.x_train.shape[1])
    model = _model(arguments, data.task, settings)
    reporter = _Reporter(report, EVAL_METRICS[data.task, settings.metric], settings.pruner.round_interval)
    model.fit(
        inputs(data.x_train),
        data.y_train,
        eval_set=(inputs(data.x_valid), data.y_valid),
        callbacks=[reporter],
        **inputs.fit_arguments(),
    )
    reporter.raise_stop()
    fitted = inputs.wrap(_reproducible(model, settings.n_jobs))
    (value, undefined), scores = held_out_scores(fitted, data, settings.metric)
    return Fitted(fitted, value, scores, int(model.tree_count_), undefined)


def refit(hyper: dict, rows: Rows, settings: TrainParams, rounds: int | None) -> object:
    """The configuration boosted for exactly `rounds` rounds on all the rows given (no early stopping)."""
    arguments = refit_arguments(FAMILY, hyper, rounds, rows.y, rows.task)
    inputs = encoding(FAMILY, hyper, rows.categorical, rows.x.shape[1])
    model = _model(arguments, rows.task, settings).fit(inputs(rows.x), rows.y, **inputs.fit_arguments())
    return inputs.wrap(_reproducible(model, settings.n_jobs))


def prediction_cost(model: CatBoostModel) -> int:
    """Symmetric trees: every row tests `depth` nodes per tree."""
    return int(model.model.tree_count_) * int(model.model.get_all_params()["depth"])


FAMILY = Family(
    name="catboost",
    fit=defined_on_valid(fit),
    fold_fit=fit,
    refit=refit,
    model_types=(CatBoostModel,),
    prediction_cost=prediction_cost,
    eval_metrics=EVAL_METRICS,
    objective_key="loss_function",
    objective_names={
        "squared_error": "RMSE",
        "absolute_error": "MAE",
        "poisson": "Poisson",
        "tweedie": "Tweedie:variance_power=1.5",
    },
    native_categories="cat_features",
    rounds_key="iterations",
)
