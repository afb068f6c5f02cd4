"""Pillar 14, infer: score every file in the inference folder with the packaged model.

The model is read from the exported Bento (models/service.bento), so batch predictions come from exactly what
is served. Each file is read, typed and checked by the schema as validate_data does, and scored through the
same `ServingModel` as the service. Rows that cannot be scored (a value of the wrong type, a missing required
value, an impossible value) are written to `<file>.rejected.parquet` with the reason, never dropped silently.
Predictions carry the conformal interval (`lower`, `upper`) or class set (`in_set:<label>`), the model
version and the input file's fingerprint, and every scored row is logged for
the monitor stage as the service logs it (`pillars.serve.capture`; no time, so the log is reproducible), keyed by
request_id = the file's name and row = its position in the file.

A Parquet file is scored partition by partition (its row groups; on Dask, by the workers), other formats a file
at a time; outputs are written as the partitions arrive, so a batch never needs to fit in memory.
"""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
import pandas as pd
from distributed import Client

from pillars.bento.archive import packaged_model
from pillars.compute.cluster import engine_client
from pillars.compute.partitions import InMemory, Table, open_table, row_group_writer
from pillars.core import layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import SUFFIX_FORMATS, atomic_path, read_file, write_json
from pillars.core.params import InferParams, load_params
from pillars.core.schema import DataSchema, load_checked, parse_types
from pillars.serve.capture import LOG_SUFFIX, log_line
from pillars.serve.model import ServingModel, pin_threads

ROW_COLUMN = "_row"  # the row's position in its input file
REASON_COLUMN = "_reason"
PROBABILITY_PREFIX = "probability:"
IN_SET_PREFIX = "in_set:"  # conformal: whether the label is in the row's set (regression: lower, upper)
LOG_CHUNK_ROWS = 10_000  # rows per log line


class ScoredBatch(NamedTuple):
    predictions: pd.DataFrame  # one row per scored input row
    rejected: pd.DataFrame  # the rows that could not be scored, with the original values and the reason
    summary: dict[str, Any]
    inputs: dict[str, np.ndarray]  # the scored rows' typed input values, for the prediction log


def score_frame(
    frame: pd.DataFrame, serving: ServingModel, schema: DataSchema, placeholders: list[str]
) -> ScoredBatch:
    """Predictions for the rows that can be scored, the rejected rows with reasons, and a summary."""
    missing = [item.name for item in serving.fields if item.name not in frame]
    if missing:
        raise PillarsError(
            f"columns {missing} are missing (the model needs {[f.name for f in serving.fields]})"
        )
    typed, unparsable = parse_types(frame, schema, placeholders)
    columns = {item.name: typed[item.name].to_numpy(dtype=object) for item in serving.fields}
    reasons = pd.Series(None, index=range(len(frame)), dtype=object)
    for name, bad in unparsable.items():  # first: an unparsable value would otherwise look missing
        if name in columns:
            wrong = f"{name}: not a valid {schema.columns[name].dtype}"
            reasons = reasons.mask(reasons.isna() & bad.to_numpy(), wrong)
    reasons = reasons.fillna(serving.rejections(serving.typed(columns)))
    keep = reasons.isna().to_numpy()
    inputs = serving.typed({name: values[keep] for name, values in columns.items()})
    scored = serving.score(inputs)
    predictions = pd.DataFrame(
        {ROW_COLUMN: frame.index[keep].to_numpy(dtype="int64"), "prediction": scored.predictions}
    )
    for label, values in (scored.probabilities or {}).items():
        predictions[f"{PROBABILITY_PREFIX}{label}"] = values
    if scored.intervals is not None:
        predictions["lower"], predictions["upper"] = scored.intervals
    if scored.sets is not None:
        for label, inside in zip(serving.labels, scored.sets.T, strict=True):
            predictions[f"{IN_SET_PREFIX}{label}"] = inside
    predictions["warnings"] = ["; ".join(messages) for messages in scored.row_warnings()]
    predictions["model_version"] = serving.version
    rejected = frame.loc[~keep].astype("str").reset_index(names=ROW_COLUMN)
    rejected[ROW_COLUMN] = rejected[ROW_COLUMN].astype("int64")
    rejected[REASON_COLUMN] = reasons[~keep].to_numpy()
    summary = {
        "rows": len(frame),
        "scored": int(keep.sum()),
        "rejected": int((~keep).sum()),
        "rejected_by_reason": {
            str(k): int(v) for k, v in rejected[REASON_COLUMN].value_counts().sort_index().items()
        },
        "warnings": len(scored.warnings),
        "reconciled": len(frame) == int(keep.sum()) + int((~keep).sum()),
    }
    return ScoredBatch(predictions, rejected, summary, inputs)


def score_part(
    frame: pd.DataFrame, serving: ServingModel, schema: DataSchema, placeholders: list[str], threads: int
) -> ScoredBatch:
    """`score_frame` with the model's thread pools pinned in the process that scores (a worker's own)."""
    pin_threads(serving.model, threads)
    return score_frame(frame, serving, schema, placeholders)


def add_summaries(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One file's summary from its partitions'."""
    reasons: dict[str, int] = {}
    for summary in summaries:
        for reason, count in summary["rejected_by_reason"].items():
            reasons[reason] = reasons.get(reason, 0) + count
    total = {
        key: sum(summary[key] for summary in summaries) for key in ("rows", "scored", "rejected", "warnings")
    }
    return total | {
        "rejected_by_reason": dict(sorted(reasons.items())),
        "reconciled": all(summary["reconciled"] for summary in summaries)
        and total["rows"] == total["scored"] + total["rejected"],
    }


class BatchLog:
    """The prediction log of one scored file in the service's log format, a line per LOG_CHUNK_ROWS rows
    whatever the partitions, written as they arrive (the rows short of a line wait for the next)."""

    def __init__(self, out: IO[str], name: str, version: str) -> None:
        self.out, self.name, self.version = out, name, version
        self.predictions: list[pd.DataFrame] = []
        self.inputs: list[dict[str, np.ndarray]] = []

    def add(self, predictions: pd.DataFrame, inputs: dict[str, np.ndarray]) -> None:
        self.predictions.append(predictions)
        self.inputs.append(inputs)
        buffered = sum(len(frame) for frame in self.predictions)
        if buffered >= LOG_CHUNK_ROWS:
            self._lines(buffered - buffered % LOG_CHUNK_ROWS)

    def close(self) -> None:
        if rows := sum(len(frame) for frame in self.predictions):
            self._lines(rows)

    def _lines(self, rows: int) -> None:
        """Write the first `rows` buffered rows, LOG_CHUNK_ROWS to a line, and keep the rest."""
        predictions = pd.concat(self.predictions, ignore_index=True)
        inputs = {name: np.concatenate([part[name] for part in self.inputs]) for name in self.inputs[0]}
        labels = [column for column in predictions if column.startswith(PROBABILITY_PREFIX)]
        for start in range(0, rows, LOG_CHUNK_ROWS):
            line = slice(start, min(start + LOG_CHUNK_ROWS, rows))
            self.out.write(
                log_line(
                    source="batch",
                    model_version=self.version,
                    request_ids=[self.name] * (line.stop - line.start),
                    rows=predictions[ROW_COLUMN].to_numpy()[line].tolist(),
                    inputs={field: values[line] for field, values in inputs.items()},
                    predictions=predictions["prediction"].to_numpy()[line].tolist(),
                    probabilities={
                        label.removeprefix(PROBABILITY_PREFIX): predictions[label].to_numpy()[line]
                        for label in labels
                    }
                    or None,
                    time_utc=None,
                )
            )
        self.predictions = [predictions.iloc[rows:]] if len(predictions) > rows else []
        self.inputs = [{name: values[rows:] for name, values in inputs.items()}] if self.predictions else []


@contextmanager
def batch_log(path: Path, name: str, version: str) -> Iterator[BatchLog]:
    """A `BatchLog` whose file replaces `path` atomically when the block succeeds."""
    with atomic_path(path) as temporary, temporary.open("w", encoding="utf-8") as out:
        log = BatchLog(out, name, version)
        yield log
        log.close()


def input_files(folder: Path) -> list[Path]:
    """The files to score: every file of a known format in the folder, in name order."""
    if not folder.is_dir():
        raise PillarsError(f"infer.inputs: {folder} is not a folder")
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in SUFFIX_FORMATS)


def input_table(path: Path, settings: InferParams, client: Client | None) -> Table:
    """A file to score: its row groups as partitions on Dask when it is Parquet, else one partition."""
    if client is not None and (
        settings.format == "parquet"
        or (settings.format == "auto" and SUFFIX_FORMATS.get(path.suffix.lower()) == "parquet")
    ):
        return open_table(path, client)
    return InMemory(read_file(path, settings.format))


def main() -> None:
    params = load_params()
    schema = load_checked(params)
    serving = packaged_model(layout.SERVICE_ARCHIVE)
    files = input_files(Path(params.infer.inputs))
    report: dict[str, Any] = {"model_version": serving.version, "files": {}}
    score = partial(
        score_part, schema=schema, placeholders=params.dataset.placeholders, threads=params.infer.threads
    )
    rows_per_group = params.compute.partition_rows
    with engine_client(params.compute) as client:
        for path in files:
            with path.open("rb") as handle:
                fingerprint = "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()
            summaries = []
            with (
                row_group_writer(
                    layout.PREDICTIONS_DIR / f"{path.stem}.parquet", rows_per_group
                ) as predictions,
                row_group_writer(
                    layout.PREDICTIONS_DIR / f"{path.stem}.rejected.parquet", rows_per_group
                ) as rejected,
                batch_log(
                    layout.BATCH_LOG_DIR / f"{path.stem}{LOG_SUFFIX}", path.name, serving.version
                ) as log,
            ):
                try:
                    for batch in input_table(path, params.infer, client).stream(score, serving=serving):
                        batch.predictions["input_fingerprint"] = fingerprint
                        predictions.write(batch.predictions)
                        rejected.write(batch.rejected)
                        log.add(batch.predictions, batch.inputs)
                        summaries.append(batch.summary)
                except PillarsError as error:
                    raise PillarsError(f"{path}: {error}") from None
            summary = add_summaries(summaries)
            report["files"][path.name] = summary | {"fingerprint": fingerprint}
            print(
                f"infer: {path.name}: {summary['scored']} scored, {summary['rejected']} rejected -> {layout.PREDICTIONS_DIR}"
            )
    write_json(layout.INFERENCE_REPORT, report)


if __name__ == "__main__":
    run_cli(main)
