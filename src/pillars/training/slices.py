"""Slices of the evaluation rows by the values of the columns named in `validate_model.slices.columns`:
one definition, so the gate (validate_model) and the report (assess) judge and show the same slices."""

from collections.abc import Iterator

import numpy as np
import pandas as pd

from pillars.core import layout
from pillars.core.errors import PillarsError
from pillars.core.schema import canonical_name

MISSING = "missing"


def slices(frame: pd.DataFrame, columns: list[str]) -> Iterator[tuple[str, str, np.ndarray]]:
    """(column, value, row mask) for every value of every slice column; missing values form one slice."""
    for column in columns:
        name = canonical_name(column)
        if name not in frame:
            raise PillarsError(
                f"params.yaml: validate_model.slices.columns: {column!r} is not in the curated data "
                f"(curate dropped it: see {layout.COLUMN_SELECTION})"
            )
        values = frame[name].astype("str").fillna(MISSING).to_numpy()
        for value in np.unique(values):
            yield column, str(value), values == value


def has_both_classes(task: str, y: np.ndarray) -> bool:
    """Classification metrics need more than one class in a slice; regression metrics do not."""
    return task == "regression" or len(np.unique(y)) > 1
