"""XGBoost on a train split larger than memory: its external memory, fed from the feature file's row groups.

When train has more rows than `train.external_memory_rows`, the train stage does not load its feature
matrix: a `FeatureFile` names the Parquet file, and XGBoost reads it one row group at a time into an
`ExtMemQuantileDMatrix`, which keeps the quantized rows in pages on disk (a temporary folder) and streams them
through every boosting round. Only XGBoost trains this way; the valid split, and train's target column, are
held in memory. A process builds the matrix once and its trials share it (building reads the whole file).
"""

import hashlib
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import xgboost as xgb

from pillars.core.io import parquet_rows


@dataclass(frozen=True)
class FeatureFile:
    """A feature matrix left on disk: a Parquet file's columns but the target, `rows` rows. The path is
    absolute, so cluster workers read the same file; `sha256`, its bytes' hash, tells a long-lived worker's
    cached matrix from the file's next version."""

    path: Path
    target: str
    columns: tuple[str, ...]
    rows: int
    sha256: str

    @classmethod
    def of(cls, path: Path, target: str, columns: list[str]) -> "FeatureFile":
        """The Parquet file at `path` with these feature columns and target."""
        rows = parquet_rows(path)
        with path.open("rb") as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()
        return cls(path.resolve(), target, tuple(columns), rows, digest)

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, len(self.columns)


class _RowGroups(xgb.DataIter):
    """The file's row groups in order, one batch each, with their target as the label."""

    def __init__(self, file: FeatureFile, cache_prefix: str) -> None:
        self.file = file
        self.group = 0
        self.groups = pq.ParquetFile(file.path).metadata.num_row_groups
        super().__init__(cache_prefix=cache_prefix)

    def next(self, input_data: Any) -> bool:
        if self.group == self.groups:
            return False
        table = pq.ParquetFile(self.file.path).read_row_group(self.group)
        features = np.column_stack([table.column(name).to_numpy() for name in self.file.columns])
        input_data(data=features, label=table.column(self.file.target).to_numpy())
        self.group += 1
        return True

    def reset(self) -> None:
        self.group = 0


@lru_cache(maxsize=1)  # trials in one process share it: building it reads the whole file
def external_matrix(file: FeatureFile, n_jobs: int, max_bin: int) -> xgb.ExtMemQuantileDMatrix:
    """The file as XGBoost's external-memory matrix, its pages in a temporary folder that goes with it."""
    folder = tempfile.mkdtemp(prefix="pillars-xgboost-")
    matrix = xgb.ExtMemQuantileDMatrix(
        _RowGroups(file, str(Path(folder) / "pages")), nthread=n_jobs, max_bin=max_bin
    )
    weakref.finalize(matrix, shutil.rmtree, folder, ignore_errors=True)
    return matrix


DEFAULT_MAX_BIN = 256  # XGBoost's own default for `max_bin`


def fit_external(
    model: xgb.XGBModel, file: FeatureFile, x_valid: np.ndarray, y_valid: np.ndarray, classes: int | None
) -> None:
    """Fit `model` (unfitted, configured as for `fit`) on the rows of `file`, evaluating on the valid split
    as `fit(..., eval_set=[(x_valid, y_valid)])` does, and load the booster into `model`. `classes`: how
    many class codes the target has (None: regression)."""
    parameters = model.get_xgb_params()
    if classes is not None and classes > 2:
        parameters |= {"objective": "multi:softprob", "num_class": classes}
    if model.eval_metric is not None:
        parameters["eval_metric"] = model.eval_metric
    train = external_matrix(file, model.n_jobs, model.max_bin or DEFAULT_MAX_BIN)
    valid = xgb.QuantileDMatrix(x_valid, y_valid, ref=train, nthread=model.n_jobs, max_bin=model.max_bin)
    booster = xgb.train(
        parameters,
        train,
        model.get_num_boosting_rounds(),
        evals=[(valid, "validation_0")],
        early_stopping_rounds=model.early_stopping_rounds,
        callbacks=model.callbacks,
        verbose_eval=False,
    )
    model.load_model(bytearray(booster.save_raw()))
