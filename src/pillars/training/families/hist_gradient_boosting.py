"""scikit-learn's HistGradientBoosting: grows `train.warm_start_step` iterations at a time and reports the
valid score after each, stopping after `train.patience` steps without improvement (or at `max_iter`)."""

from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from pillars.core.metrics import METRICS
from pillars.core.params import TrainParams
from pillars.training.families.arguments import library_arguments, refit_arguments
from pillars.training.families.spec import (
    Family,
    Fitted,
    Report,
    Rows,
    TrainingData,
    defined_on_valid,
    held_out_scores,
)

Model = HistGradientBoostingClassifier | HistGradientBoostingRegressor


def _estimator(task: str) -> type[Model]:
    return HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier


def fit(hyper: dict, data: TrainingData, settings: TrainParams, report: Report) -> Fitted:
    """Grow step by step with warm start; a step where the metric is undefined shows no improvement."""
    max_iter = int(hyper.get("max_iter", 500))
    arguments = library_arguments(FAMILY, hyper, data.y_train, data.task)
    arguments = {key: value for key, value in arguments.items() if key != "max_iter"}
    model = _estimator(data.task)(
        **arguments, max_iter=0, warm_start=True, early_stopping=False, random_state=settings.seed
    )
    metric = METRICS[data.task][settings.metric]
    best, stale, step = None, 0, 0
    while model.max_iter < max_iter and stale < settings.patience:
        model.set_params(max_iter=min(model.max_iter + settings.warm_start_step, max_iter))
        model.fit(data.x_train, data.y_train)
        (value, undefined), scores = held_out_scores(model, data, settings.metric)
        if value is not None:
            report(step, value)
        improved = value is not None and (best is None or metric.better(value, best))
        best, stale = (value, 0) if improved else (best, stale + 1)
        step += 1
    return Fitted(model, value, scores, model.max_iter, undefined)


def refit(hyper: dict, rows: Rows, settings: TrainParams, rounds: int | None) -> Model:
    """The configuration grown to exactly `rounds` iterations on all the rows given."""
    arguments = refit_arguments(FAMILY, hyper, rounds, rows.y, rows.task)
    model = _estimator(rows.task)(**arguments, early_stopping=False, random_state=settings.seed)
    return model.fit(rows.x, rows.y)


def prediction_cost(model: Model) -> int:
    """The depth of every tree (one per class and iteration)."""
    return int(sum(tree.nodes["depth"].max() for trees in model._predictors for tree in trees))


def warm_start_rounds(settings: TrainParams) -> int:
    """Iterations per pruner step: the warm start's step."""
    return settings.warm_start_step


FAMILY = Family(
    name="hist_gradient_boosting",
    fit=defined_on_valid(fit),
    fold_fit=fit,
    refit=refit,
    model_types=(HistGradientBoostingClassifier, HistGradientBoostingRegressor),
    prediction_cost=prediction_cost,
    objective_key="loss",
    objective_names={
        "squared_error": "squared_error",
        "absolute_error": "absolute_error",
        "poisson": "poisson",
    },
    rounds_key="max_iter",
    step_rounds=warm_start_rounds,
    quick_trials=2,
)
