"""From a configuration (params' and the sampler's hyperparameters) to what a family's library takes: our
regression loss names become the library's (`Family.objective_names`), and `categorical` (ours alone) picks
the matrix the library fits on.

A regression family may search its loss (`objective`: squared_error, absolute_error, poisson, tweedie);
poisson and tweedie need a target that is never negative. LightGBM and CatBoost may split on categories
natively (`categorical: native`, fixed or searched; `onehot`, the default, fits the one-hot matrix as it is):
they fit on `CategoryCodes` of the matrix and are saved as a `NativeCategorical`, which takes the one-hot
matrix, so serving is unchanged.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pillars.core.errors import PillarsError
from pillars.serve.estimators import CategoryCodes, NativeCategorical
from pillars.training.families.spec import NON_NEGATIVE, Family


def _encoding_name(family: Family, hyper: dict) -> str:
    """The configuration's `categorical` encoding, checked to be one the family has."""
    name = hyper.get("categorical", "onehot")
    if name != "onehot" and (name != "native" or family.native_categories is None):
        has = "onehot or native" if family.native_categories else "onehot only"
        raise PillarsError(
            f"params.yaml: train.families.{family.name}: categorical {name!r} is not an encoding this family "
            f"has ({has})"
        )
    return name


@dataclass(frozen=True)
class Encoding:
    """What a configuration fits on: the one-hot matrix as it is (`codes` None), or native category codes
    passed to the library under `argument`."""

    argument: str | None
    codes: CategoryCodes | None

    def __call__(self, features: np.ndarray) -> np.ndarray | pd.DataFrame:
        return features if self.codes is None else self.codes(features)

    def fit_arguments(self) -> dict:
        """The library's fit argument naming the category columns (none for the one-hot matrix)."""
        return {} if self.codes is None else {self.argument: self.codes.names}

    def wrap(self, model: object) -> object:
        """The fitted model as it is saved: one that takes the one-hot matrix."""
        return model if self.codes is None else NativeCategorical(model, self.codes)


def encoding(
    family: Family, hyper: dict, categorical: tuple[tuple[int, ...], ...], n_features: int
) -> Encoding:
    """How the configuration sees the categorical columns: `categorical: native` codes them when the data
    has any (`categorical`: their one-hot blocks), else the one-hot matrix."""
    if _encoding_name(family, hyper) == "onehot" or not categorical:
        return Encoding(None, None)
    return Encoding(
        family.native_categories, CategoryCodes([list(block) for block in categorical], n_features)
    )


def library_arguments(family: Family, hyper: dict, data_y: np.ndarray, task: str) -> dict:
    """The hyperparameters as the family's library takes them: our `objective` name becomes the library's
    own argument (checked to fit the task and the target), and `categorical` (checked) is ours alone."""
    _encoding_name(family, hyper)
    hyper = {key: value for key, value in hyper.items() if key != "categorical"}
    if "objective" not in hyper:
        return hyper
    objective = hyper["objective"]
    names = family.objective_names
    if task != "regression" or objective not in names or family.objective_key is None:
        raise PillarsError(
            f"params.yaml: train.families.{family.name}: objective {objective!r} is not a loss this family has "
            f"for a {task} task (regression: one of {sorted(names)}; classification: leave objective out)"
        )
    if objective in NON_NEGATIVE and len(data_y) and float(np.min(data_y)) < 0:
        raise PillarsError(
            f"params.yaml: train.families.{family.name}: objective {objective!r} needs a target that is never "
            f"negative; the training target goes down to {float(np.min(data_y)):g}"
        )
    arguments = {key: value for key, value in hyper.items() if key != "objective"}
    return arguments | {family.objective_key: names[objective]}


def refit_arguments(family: Family, hyper: dict, rounds: int, y: np.ndarray, task: str) -> dict:
    """A boosting configuration as its library takes it, for exactly `rounds` rounds (`Family.rounds_key`)
    instead of early stopping."""
    fixed = {key: value for key, value in hyper.items() if key != "early_stopping_rounds"}
    return library_arguments(family, fixed | {family.rounds_key: rounds}, y, task)
