"""Pillar 15, monitoring: reading what production logged, and the ground truth that came back.

Reading is forgiving by design: a corrupt line, a line from another model version or a line whose inputs
do not match the model's fields is skipped, counted and reported with an example, never fatal. The rows
read here go to `pillars.monitoring.analysis`, which holds no I/O.
"""

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pillars.core.errors import PillarsError
from pillars.core.io import SUFFIX_FORMATS, read_file
from pillars.serve.capture import LOG_SUFFIX
from pillars.serve.model import ServingModel

KEY_COLUMNS = ["request_id", "row"]
LINE_KEYS = ("model_version", "request_id", "row", "inputs", "prediction", "probabilities")
MAX_EXAMPLES = 5  # examples kept per kind of skipped input
SKIP_REASONS = (  # lines for corrupt_lines and feedback_files, rows otherwise
    "corrupt_lines",
    "other_model_version",
    "schema_change",
    "feedback_files",
    "unknown_labels",
    "unmatched_feedback",
)


@dataclass
class Skipped:
    """Input the monitor could not use: counts per reason and a few examples ("file:line: why")."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, amount: int, where: str, why: str) -> None:
        self.counts[reason] += amount
        found = self.examples.setdefault(reason, [])
        if len(found) < MAX_EXAMPLES:
            found.append(f"{where}: {why}")


@dataclass(frozen=True)
class Logged:
    """The monitored rows: typed raw inputs per field, and per row its keys, time and outputs."""

    inputs: dict[str, np.ndarray]
    rows: pd.DataFrame  # request_id, row, time, prediction; in log order
    scores: np.ndarray  # as `assess` scores: positive-class probability, class probabilities, or values
    lines: int


def _parse_line(text: str) -> dict[str, Any]:
    """One log line, checked for shape (ValueError: corrupt)."""
    record = json.loads(text)
    if not isinstance(record, dict) or any(key not in record for key in LINE_KEYS):
        raise ValueError(f"not a prediction log record (needs {', '.join(LINE_KEYS)})")
    size = len(record["request_id"])
    columns = [record["row"], record["prediction"], *record["inputs"].values()]
    columns += list((record["probabilities"] or {}).values())
    if any(not isinstance(column, list) or len(column) != size for column in columns):
        raise ValueError(f"columns of unequal length (request_id has {size} values)")
    return record


def _call_scores(record: dict[str, Any], serving: ServingModel) -> np.ndarray:
    if serving.task == "regression":
        return np.asarray(record["prediction"], dtype="float64")
    probabilities = record["probabilities"] or {}
    missing = [label for label in serving.labels if label not in probabilities]
    if missing:
        raise ValueError(f"no probabilities for labels {missing}")
    by_class = np.column_stack(
        [np.asarray(probabilities[label], dtype="float64") for label in serving.labels]
    )
    return by_class[:, 1] if serving.task == "binary" else by_class


def log_lines(folder: Path, skipped: Skipped) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """Each line of every *.jsonl log under `folder` (file name, then line order): where it is (`path:line`)
    and its record, None for a corrupt line (counted in `skipped` as corrupt_lines); blank lines are not
    lines."""
    for path in sorted(folder.rglob(f"*{LOG_SUFFIX}")):
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, text in enumerate(handle, 1):
                if not text.strip():
                    continue
                where = f"{path}:{number}"
                record: dict[str, Any] | None = None
                try:
                    record = _parse_line(text)
                except (ValueError, TypeError, AttributeError) as error:
                    skipped.add("corrupt_lines", 1, where, str(error)[:200])
                yield where, record


def read_logs(folder: Path, serving: ServingModel, skipped: Skipped) -> Logged:
    """Every line of every *.jsonl file under `folder` (name order) that belongs to this model."""
    names = [item.name for item in serving.fields]
    inputs: dict[str, list[np.ndarray]] = {name: [] for name in names}
    keys: list[pd.DataFrame] = []
    scores: list[np.ndarray] = []
    lines = 0
    for where, record in log_lines(folder, skipped):
        lines += 1
        if record is None:
            continue
        size = len(record["request_id"])
        if record["model_version"] != serving.version:
            skipped.add(
                "other_model_version",
                size,
                where,
                f"model {record['model_version']!r}, not {serving.version!r}",
            )
            continue
        fields = set(record["inputs"])
        if fields != set(names):
            why = f"inputs lack {sorted(set(names) - fields)}, have extra {sorted(fields - set(names))}"
            skipped.add("schema_change", size, where, why)
            continue
        try:
            typed = serving.typed(record["inputs"])
            call_scores = _call_scores(record, serving)
            call_keys = pd.DataFrame(
                {
                    "request_id": pd.Series(record["request_id"], dtype=object).astype(str),
                    "row": pd.Series(record["row"], dtype="int64"),
                    "time": record.get("time"),
                    "prediction": pd.Series(record["prediction"], dtype=object),
                }
            )
        except (ValueError, TypeError) as error:
            skipped.add("schema_change", size, where, str(error)[:200])
            continue
        for name in names:
            inputs[name].append(typed[name])
        scores.append(call_scores)
        keys.append(call_keys)
    if not keys:
        empty = serving.typed({name: [] for name in names})
        return Logged(
            empty, pd.DataFrame(columns=["request_id", "row", "time", "prediction"]), np.array([]), lines
        )
    return Logged(
        inputs={name: np.concatenate(parts) for name, parts in inputs.items()},
        rows=pd.concat(keys, ignore_index=True),
        scores=np.concatenate(scores),
        lines=lines,
    )


def read_feedback(folder: Path, target: str, skipped: Skipped) -> pd.DataFrame:
    """Ground truth: every CSV/Parquet/JSONL file under `folder` with request_id, row (default 0) and the
    target column. A file without them is skipped and reported; for a repeated key the last label wins."""
    frames = []
    for path in sorted(path for path in folder.rglob("*") if path.suffix.lower() in SUFFIX_FORMATS):
        try:
            frame = read_file(path, "auto")
            missing = [column for column in ("request_id", target) if column not in frame]
            if missing:
                raise ValueError(f"columns {missing} missing (feedback needs request_id, {target}, row)")
            rows = frame["row"] if "row" in frame else pd.Series(0, index=frame.index)
            frames.append(
                pd.DataFrame(
                    {
                        "request_id": frame["request_id"].astype(str),
                        "row": pd.to_numeric(rows, errors="raise").astype("int64"),
                        "label": frame[target].astype(object),
                    }
                )
            )
        except (PillarsError, ValueError, TypeError) as error:
            skipped.add("feedback_files", 1, str(path), str(error)[:200])
    if not frames:
        return pd.DataFrame(columns=[*KEY_COLUMNS, "label"])
    return pd.concat(frames, ignore_index=True).drop_duplicates(KEY_COLUMNS, keep="last")


def encoded_labels(labels: pd.Series, serving: ServingModel) -> np.ndarray:
    """Ground truth as the model's targets: class codes (classification) or floats; NaN where unknown."""
    if serving.task == "regression":
        return pd.to_numeric(labels, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    codes = {label: float(code) for code, label in enumerate(serving.labels)}
    return labels.astype(str).where(labels.notna()).map(codes).to_numpy(dtype="float64", na_value=np.nan)


@dataclass(frozen=True)
class Monitored:
    """The logged rows of this model with the ground truth that arrived for them joined on."""

    logged: Logged
    labels: pd.Series  # per logged row, the label as reported (missing: none yet)
    encoded: np.ndarray  # the same as the model's targets (NaN: none, or a label the model does not know)
    skipped: Skipped


def read_monitored(logs: Path, feedback: Path, serving: ServingModel, target: str) -> Monitored:
    """Read the logs and the feedback and join them on (request_id, row), counting what does not fit."""
    skipped = Skipped()
    logged = read_logs(logs, serving, skipped)
    truth = read_feedback(feedback, target, skipped)
    labels = logged.rows[KEY_COLUMNS].merge(truth, on=KEY_COLUMNS, how="left")["label"]
    encoded = encoded_labels(labels, serving)
    unknown = labels.notna().to_numpy() & np.isnan(encoded)
    if unknown.any():
        examples = sorted({str(value) for value in labels[unknown]})[:MAX_EXAMPLES]
        skipped.add(
            "unknown_labels", int(unknown.sum()), str(feedback), f"labels {examples} are not the model's"
        )
    matched = truth.merge(logged.rows[KEY_COLUMNS].drop_duplicates(), on=KEY_COLUMNS, how="inner")
    if len(truth) > len(matched):
        skipped.add(
            "unmatched_feedback",
            len(truth) - len(matched),
            str(feedback),
            "no logged prediction has these keys",
        )
    return Monitored(logged, labels, encoded, skipped)
