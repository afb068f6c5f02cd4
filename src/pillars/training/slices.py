"""Slices of the evaluation rows by the values of the columns named in `validate_model.slices.columns`:
one definition, and one rule for which slices are judged, so the gate (validate_model) and the report
(assess) judge, show and skip the same slices for the same reasons."""

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import pandas as pd

from pillars.core import layout
from pillars.core.errors import PillarsError
from pillars.core.params import SliceCheck
from pillars.core.schema import canonical_name

MISSING = "missing"
ONE_CLASS = "one class only"


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


def skip_reason(task: str, y: np.ndarray, min_rows: int) -> str | None:
    """Why a slice with these targets is not judged, or None when it is: fewer than `min_rows` rows, or
    (classification) a single class, where most metrics are undefined and the others say little."""
    if len(y) < min_rows:
        return f"fewer than {min_rows} rows"
    if task != "regression" and len(present := np.unique(y)) < 2:
        return f"{ONE_CLASS} (every row is class {int(present[0])})"
    return None


class Slice(NamedTuple):
    """One slice of the evaluation rows, and why it is not judged (None: it is)."""

    column: str
    value: str
    rows: np.ndarray  # boolean mask over the evaluation rows
    skipped: str | None

    @property
    def name(self) -> str:
        return f"{self.column}={self.value}"

    @property
    def size(self) -> int:
        return int(self.rows.sum())


def judged_slices(frame: pd.DataFrame, y: np.ndarray, task: str, settings: SliceCheck) -> Iterator[Slice]:
    """Every slice of the columns in `settings`, each with the reason it is skipped (or None)."""
    for column, value, rows in slices(frame, settings.columns):
        yield Slice(column, value, rows, skip_reason(task, y[rows], settings.min_rows))
