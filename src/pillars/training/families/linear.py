"""The linear model: logistic regression (classification) or ridge (regression, with alpha = 1 / C, so one
search space serves both). It has no rounds: its objective is the mean score over cross-validation folds on
train, one pruner step per fold."""

from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold

from pillars.core.metrics import Measurement, measure, predict_scores
from pillars.core.params import TrainParams
from pillars.training.families.spec import (
    Family,
    Fitted,
    Report,
    Rows,
    TrainingData,
    classes,
    fold_mean,
    held_out_scores,
)

Model = LogisticRegression | Ridge


def linear_model(hyper: dict, task: str, seed: int) -> Model:
    """The model of a configuration: `C` is the inverse strength of either regularisation."""
    arguments = {key: value for key, value in hyper.items() if key != "C"}
    strength = float(hyper.get("C", 1.0))
    if task == "regression":
        return Ridge(alpha=1.0 / strength, **arguments, random_state=seed)
    return LogisticRegression(C=strength, **arguments, random_state=seed)


def fit(hyper: dict, data: TrainingData, settings: TrainParams, report: Report) -> Fitted:
    """The objective is the mean score over cross-validation folds on train (the pruner sees its running
    mean); then the model is fitted on all of train. A fold whose model never saw a class (a class with fewer
    rows than folds) scores it with probability 0; a fold where the metric is undefined (such a class absent
    from its check rows, for one-vs-rest ROC AUC) is left out of the mean."""
    if data.task == "regression":
        folds = KFold(settings.cv_folds, shuffle=True, random_state=settings.seed)
    else:
        folds = StratifiedKFold(settings.cv_folds, shuffle=True, random_state=settings.seed)
    measured: list[Measurement] = []
    step = 0
    for fit_rows, check_rows in folds.split(data.x_train, data.y_train):
        fold_model = linear_model(hyper, data.task, settings.seed).fit(
            data.x_train[fit_rows], data.y_train[fit_rows]
        )
        scores = predict_scores(fold_model, data.x_train[check_rows], data.task, classes(data))
        measured.append(measure(settings.metric, data.task, data.y_train[check_rows], scores))
        if measured[-1].value is not None:  # the pruner sees the running mean of the defined folds
            report(step, fold_mean(FAMILY.name, settings.metric, measured, "train"))
            step += 1
    model = linear_model(hyper, data.task, settings.seed).fit(data.x_train, data.y_train)
    return Fitted(model, fold_mean(FAMILY.name, settings.metric, measured, "train"))


def fold_fit(hyper: dict, data: TrainingData, settings: TrainParams, report: Report) -> Fitted:
    """Fitted on x_train and scored on x_valid (one fold of small-data tuning)."""
    model = linear_model(hyper, data.task, settings.seed).fit(data.x_train, data.y_train)
    (value, undefined), scores = held_out_scores(model, data, settings.metric)
    if value is not None:
        report(0, value)
    return Fitted(model, value, scores, undefined=undefined)


def refit(hyper: dict, rows: Rows, settings: TrainParams, rounds: int | None) -> Model:
    """Fitted on all the rows given (it has no rounds)."""
    return linear_model(hyper, rows.task, settings.seed).fit(rows.x, rows.y)


def prediction_cost(model: Model) -> int:
    """One multiply-add per coefficient."""
    return int(model.coef_.size)


def fold_steps(settings: TrainParams) -> int:
    """A trial reports once per cross-validation fold on train."""
    return settings.cv_folds


FAMILY = Family(
    name="linear",
    fit=fit,
    fold_fit=fold_fit,
    refit=refit,
    model_types=(LogisticRegression, Ridge),
    prediction_cost=prediction_cost,
    uncapped_steps=fold_steps,
    quick_trials=2,
)
