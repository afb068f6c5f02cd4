"""Fitted models of our own making that ship in the Bento beside the libraries' own: they predict like a
scikit-learn estimator (`predict`, `predict_proba`, `classes_`) and take their thread count the way the
others do (`get_params()["n_jobs"]`, `set_params(n_jobs=...)`), so scoring, thread pinning and pickling treat
every candidate alike.

- `CatBoostModel`: CatBoost predicts on every core unless each call says otherwise (its `thread_count=-1`),
  whatever it was trained with; this wrapper passes its own count to every call.
- `Blend`: the ensemble candidate, a weighted average of fitted models' probabilities (classification) or
  values (regression).
- `NativeCategorical`: a LightGBM or CatBoost model that splits on categories natively, fitted on
  `CategoryCodes` of the feature matrix: it takes the one-hot matrix the serving path builds, like any model.

A pickle may name these classes, so whatever reads a fitted model reads it through `load_model`: this module
is then in the reader's import closure, and a declared dependency of every stage that reads models.
"""

import pickle
from typing import Any

import numpy as np
import pandas as pd


def load_model(payload: bytes) -> Any:
    """A fitted model (or a serving model holding one) from its pickle: trusted input, written by train or
    package, never foreign files."""
    return pickle.loads(payload)


def blend_scores(scores: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """The weighted average of candidates' scores (or predictions), in the order of `weights`."""
    return np.asarray(
        sum(weight * np.asarray(scores[name], dtype="float64") for name, weight in weights.items())
    )


class CatBoostModel:
    """A fitted CatBoost classifier or regressor that predicts with `n_jobs` threads."""

    def __init__(self, model: Any, n_jobs: int) -> None:
        self.model, self.n_jobs = model, n_jobs

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.model.classes_)

    def get_params(self, deep: bool = True) -> dict[str, int]:
        return {"n_jobs": self.n_jobs}

    def set_params(self, n_jobs: int) -> "CatBoostModel":
        self.n_jobs = n_jobs
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(features, thread_count=self.n_jobs))

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_proba(features, thread_count=self.n_jobs))


class Blend:
    """A weighted average of fitted models (`members`, by candidate name) with weights summing to 1.

    Classification averages the members' class probabilities (every member was fitted on the same class
    codes), regression their predicted values."""

    def __init__(
        self, members: dict[str, Any], weights: dict[str, float], regression: bool, n_jobs: int
    ) -> None:
        self.members, self.weights, self.regression, self.n_jobs = members, weights, regression, n_jobs

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(next(iter(self.members.values())).classes_)

    def get_params(self, deep: bool = True) -> dict[str, int]:
        return {"n_jobs": self.n_jobs}

    def set_params(self, n_jobs: int) -> "Blend":
        """Every member predicts with `n_jobs` threads (those that take a count: the others follow the
        native thread pools, which the caller pins)."""
        self.n_jobs = n_jobs
        for model in self.members.values():
            if "n_jobs" in model.get_params():
                model.set_params(n_jobs=n_jobs)
        return self

    def _average(self, method: str, features: np.ndarray) -> np.ndarray:
        predictions = {name: getattr(model, method)(features) for name, model in self.members.items()}
        return blend_scores(predictions, self.weights)

    def predict(self, features: np.ndarray) -> np.ndarray:
        if self.regression:
            return self._average("predict", features)
        return np.asarray(self.classes_[self.predict_proba(features).argmax(axis=1)])

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return self._average("predict_proba", features)


class CategoryCodes:
    """The one-hot matrix with each categorical column's block of indicator columns (`blocks`: their
    positions) turned back into one integer code: the form in which LightGBM and CatBoost split on categories
    natively. The other columns come first, unchanged; then one code column per block (`names`), the position
    of the hot column in its block, or -1 where none is (a category train never saw and no `infrequent`
    column took: missing to LightGBM, a category of its own to CatBoost)."""

    def __init__(self, blocks: list[list[int]], n_features: int) -> None:
        in_blocks = {position for block in blocks for position in block}
        self.blocks = blocks
        self.others = [position for position in range(n_features) if position not in in_blocks]

    @property
    def names(self) -> list[str]:
        return [f"category_{index}" for index in range(len(self.blocks))]

    def __call__(self, features: np.ndarray) -> pd.DataFrame:
        features = np.asarray(features)
        columns = {f"feature_{position}": features[:, position] for position in self.others}
        for name, block in zip(self.names, self.blocks, strict=True):
            hot = features[:, block]
            codes = hot.argmax(axis=1).astype("int32")
            codes[hot.max(axis=1) <= 0] = -1
            columns[name] = codes
        return pd.DataFrame(columns, index=pd.RangeIndex(len(features)))


class NativeCategorical:
    """A model fitted on `codes` of the one-hot feature matrix: it predicts from the one-hot matrix."""

    def __init__(self, model: Any, codes: CategoryCodes) -> None:
        self.model, self.codes = model, codes

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.model.classes_)

    def get_params(self, deep: bool = True) -> dict[str, int]:
        return {"n_jobs": self.model.get_params()["n_jobs"]}

    def set_params(self, n_jobs: int) -> "NativeCategorical":
        self.model.set_params(n_jobs=n_jobs)
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(self.codes(features)))

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_proba(self.codes(features)))
