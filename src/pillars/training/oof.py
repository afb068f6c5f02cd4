"""Out-of-fold predictions on disk: what train writes for small-data tuning and validate_model reads.

One Parquet table per family (`models/candidates/<family>.oof.parquet`), one row per train + valid row:
`split` (train or valid), `row` (its position in that split's feature matrix), `fold` (the fold that held it
out) and the scores, named as assess names them: `score` (the positive class's probability, or the value
for regression) or `score_<code>` per class (multiclass). Light on imports: validate_model reads it.
"""

import numpy as np
import pandas as pd

from pillars.core.errors import PillarsError

SPLITS = ("train", "valid")


def oof_table(scores: np.ndarray, folds: np.ndarray, train_rows: int) -> pd.DataFrame:
    """The out-of-fold scores of train + valid (train rows first) as a table keyed by split and row."""
    total = len(scores)
    table = pd.DataFrame(
        {
            "split": np.where(np.arange(total) < train_rows, SPLITS[0], SPLITS[1]),
            "row": np.concatenate([np.arange(train_rows), np.arange(total - train_rows)]).astype("int64"),
            "fold": folds.astype("int64"),
        }
    )
    if scores.ndim == 2:
        for code in range(scores.shape[1]):
            table[f"score_{code}"] = scores[:, code]
    else:
        table["score"] = scores
    return table


def oof_scores(table: pd.DataFrame, train_rows: int, valid_rows: int, source: str) -> np.ndarray:
    """The scores in train + valid order, after checking that every row is there exactly once."""
    position = table["split"].map({SPLITS[0]: 0, SPLITS[1]: train_rows}).to_numpy(dtype="float64")
    position = position + table["row"].to_numpy(dtype="float64")
    total = train_rows + valid_rows
    if len(table) != total or not np.array_equal(np.sort(position), np.arange(total, dtype="float64")):
        raise PillarsError(
            f"{source}: the out-of-fold predictions do not cover the {train_rows} train and {valid_rows} "
            "valid rows exactly once; rerun train (`dvc repro train`)"
        )
    order = np.argsort(position, kind="stable")
    if "score" in table:
        return table["score"].to_numpy(dtype="float64")[order]
    columns = sorted(
        (name for name in table.columns if name.startswith("score_")),
        key=lambda name: int(name.removeprefix("score_")),
    )
    return table[columns].to_numpy(dtype="float64")[order]
