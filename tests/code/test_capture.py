"""Prediction capture: strict JSON lines, one per call, rotated by size, every row counted."""

import json
from pathlib import Path

import numpy as np

from pillars.serve.capture import PredictionLog, log_line, logged_rows


def line(rows: int, age: list | np.ndarray) -> str:
    return log_line(
        source="predict",
        model_version="v1",
        request_ids=[f"id{row}" for row in range(rows)],
        rows=list(range(rows)),
        inputs={"age": age, "job": np.array(["a", None, np.nan][:rows], dtype=object)},
        predictions=["yes"] * rows,
        probabilities={"no": np.full(rows, 0.25), "yes": np.full(rows, 0.75)},
        time_utc=None,
    )


def test_a_call_is_one_strict_json_line_with_missing_values_as_null() -> None:
    for age in (np.array([30.0, np.nan, 41.0]), [30.0, float("nan"), 41.0]):
        text = line(3, age)
        assert text.endswith("\n") and text.count("\n") == 1
        assert "NaN" not in text
        record = json.loads(text)
        assert record["inputs"] == {"age": [30.0, None, 41.0], "job": ["a", None, None]}
        assert record["probabilities"] == {"no": [0.25] * 3, "yes": [0.75] * 3}
        assert record["request_id"] == ["id0", "id1", "id2"] and record["row"] == [0, 1, 2]


def test_the_log_rotates_by_size_and_counts_every_row(tmp_path: Path) -> None:
    text = line(2, [1.0, 2.0])
    log = PredictionLog(tmp_path, max_bytes=len(text) * 3)
    for _ in range(7):
        log.write(text)
    log.close()
    files = sorted(tmp_path.glob("*.jsonl"))
    assert [len(path.read_text().splitlines()) for path in files] == [3, 3, 1]
    assert logged_rows(tmp_path) == 14
