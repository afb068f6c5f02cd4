"""What a model family is: one `Family` declaration names everything the project needs to tune, refit,
price and budget it; the types its fits take and return; and the parts every family's fit shares.

Every family trains in steps and reports the validation score after each step, which is what Optuna's
pruner needs (boosting: every few rounds; a family without rounds: after each fold or once). Objectives use
the undefined-aware metric (`core.metrics.measure`): on the valid split an undefined objective stops the run
naming the split (`defined_on_valid`); a cross-validation fold where it is undefined is left out of the mean
(`fold_mean`), and a trial whose every fold is undefined stops naming the rows.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pillars.core.errors import PillarsError
from pillars.core.metrics import OBJECTIVES, Measurement, measure, predict_scores
from pillars.core.params import TrainParams
from pillars.training.external import FeatureFile

Report = Callable[[int, float], None]  # (step, validation score) -> may raise optuna.TrialPruned
NON_NEGATIVE = ("poisson", "tweedie")  # losses of counts and amounts: a negative target has no likelihood


@dataclass(frozen=True)
class Fitted:
    """A trained model and its objective value: the score the study optimises (None where the metric is
    undefined on the held-out rows, `undefined` saying why). `scores` are the predictions on `x_valid` that
    the value measures (None when the value is not measured on x_valid), `rounds` the boosting rounds the
    model uses (None for a family without rounds)."""

    model: Any
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


FitFamily = Callable[[dict, TrainingData, TrainParams, Report], Fitted]
RefitFamily = Callable[[dict, Rows, TrainParams, int | None], Any]


def pruner_rounds(settings: TrainParams) -> int:
    """Boosting rounds per pruner step of a library that reports every `train.pruner.round_interval`."""
    return settings.pruner.round_interval


def one_step(settings: TrainParams) -> int:
    """Pruner steps of a trial whose rounds are not capped: counted as one."""
    return 1


@dataclass(frozen=True)
class Family:
    """A model family, declared once in a module of this package as `FAMILY = Family(...)`: the name
    params.yaml lists under `train.candidates` and `train.families`, and

    - `fit`: tuning's trial (fit on train, the objective on valid, or the family's own scheme);
      `fold_fit`: one cross-validation fold for small data (fit on its training rows, score its held-out
      rows as x_valid); `refit`: the chosen configuration on train + valid for `rounds` rounds;
    - `model_types` and `prediction_cost`: the fitted models it makes and what one costs to score a row
      (counted: node tests or multiply-adds), which `select` breaks ties with;
    - `eval_metrics`: the library's own per-round metric for (task, train.metric), for early stopping and the
      pruner (every objective in `core.metrics.OBJECTIVES`, or none when the family measures with ours);
    - `objective_key` and `objective_names`: the argument taking a regression loss and what the library
      calls each of ours (squared_error, absolute_error, poisson, tweedie); none when it has no choice;
    - `native_categories`: the fit argument naming category columns, when the library splits on them;
    - `rounds_key`, `step_rounds`, `uncapped_steps`: the argument capping boosting rounds (None: no rounds),
      rounds per pruner step, and steps of a trial without a cap, for `make budget`;
    - `out_of_core`: trains from a matrix left on disk; `quick_trials`: trials under `make init`'s quick
      budget.

    The fitted models must unpickle from the libraries and `pillars.serve` alone: they ship in the Bento.
    """

    name: str
    fit: FitFamily
    fold_fit: FitFamily
    refit: RefitFamily
    model_types: tuple[type, ...]
    prediction_cost: Callable[[Any], int]
    eval_metrics: Mapping[tuple[str, str], str] = field(default_factory=dict)
    objective_key: str | None = None
    objective_names: Mapping[str, str] = field(default_factory=dict)
    native_categories: str | None = None
    rounds_key: str | None = None
    step_rounds: Callable[[TrainParams], int] = pruner_rounds
    uncapped_steps: Callable[[TrainParams], int] = one_step
    out_of_core: bool = False
    quick_trials: int = 1

    def __post_init__(self) -> None:
        every = {(task, metric) for task, metrics in OBJECTIVES.items() for metric in metrics}
        if self.eval_metrics and (missing := sorted(every - set(self.eval_metrics))):
            raise PillarsError(f"model family {self.name}: eval_metrics has no entry for {missing}")

    @property
    def count_losses(self) -> list[str]:
        """The losses worth searching for a target that is never negative: squared error and those of
        counts and amounts the library has."""
        return [loss for loss in self.objective_names if loss == "squared_error" or loss in NON_NEGATIVE]


def held_out_scores(model: Any, data: TrainingData, metric: str) -> tuple[Measurement, np.ndarray]:
    """The metric on the held-out rows (x_valid: the valid split, or a fold's held-out rows) and the scores it
    measures, on the task's full label set; the value is None, with the reason, where it is undefined: a
    fold's caller leaves such a fold out, a holdout caller stops (`defined_on_valid`)."""
    scores = predict_scores(model, data.x_valid, data.task)
    return measure(metric, data.task, data.y_valid, scores), scores


def classes(data: TrainingData) -> int | None:
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


def defined_on_valid(fit: FitFamily) -> FitFamily:
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
