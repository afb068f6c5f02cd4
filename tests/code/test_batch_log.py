"""Batch inference's prediction log: a line per LOG_CHUNK_ROWS scored rows in row order, whatever partitions
the rows arrived in."""

import io
import json

import numpy as np
import pandas as pd

from pillars.stages.infer import LOG_CHUNK_ROWS, PROBABILITY_PREFIX, ROW_COLUMN, BatchLog

ROWS = 2 * LOG_CHUNK_ROWS + 4_321


def scored(rows: np.ndarray) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Predictions and inputs of the scored rows `rows` (positions in the file)."""
    predictions = pd.DataFrame({ROW_COLUMN: rows, "prediction": rows % 2})
    predictions[f"{PROBABILITY_PREFIX}1"] = (rows % 7) / 7
    return predictions, {"age": rows % 90, "job": np.where(rows % 3 == 0, "a", "b").astype(object)}


def logged(cuts: list[int]) -> str:
    """The log of ROWS scored rows (every tenth rejected) arriving in partitions cut at `cuts`."""
    rows = np.arange(ROWS)
    rows = rows[rows % 10 != 3]
    out = io.StringIO()
    log = BatchLog(out, "batch.parquet", "v1")
    for part in np.split(rows, cuts):
        log.add(*scored(part))
    log.close()
    return out.getvalue()


def test_lines_do_not_depend_on_the_partitions() -> None:
    whole = logged([])
    assert logged([1, 9_999, 10_000, 17_000, 17_000, 20_500]) == whole
    lines = [json.loads(line) for line in whole.splitlines()]
    kept = ROWS - len(range(3, ROWS, 10))
    assert [len(line["row"]) for line in lines] == [LOG_CHUNK_ROWS, LOG_CHUNK_ROWS, kept - 2 * LOG_CHUNK_ROWS]
    rows = [row for line in lines for row in line["row"]]
    assert rows == [row for row in range(ROWS) if row % 10 != 3]  # every scored row once, in order
    assert [value for line in lines for value in line["inputs"]["age"]] == [row % 90 for row in rows]
    assert all(line["request_id"] == ["batch.parquet"] * len(line["row"]) for line in lines)
