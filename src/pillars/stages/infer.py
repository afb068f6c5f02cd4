"""Pillar 14, infer: score every file in the inference folder with the packaged model.

The model is read from the exported Bento (models/service.bento), so batch predictions come from exactly what
is served. Each file is read, typed and checked by the schema as validate_data does, and scored through the
same `ServingModel` as the service. Rows that cannot be scored (a value of the wrong type, a missing required
value, an impossible value) are written to `<file>.rejected.parquet` with the reason, never dropped silently.
Predictions carry the model version and the input file's fingerprint, and every scored row is logged for
the monitor stage as the service logs it (`pillars.serve.capture`; no time, so the log is reproducible), keyed by
request_id = the file's name and row = its position in the file.
"""

import hashlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from pillars.bento.archive import packaged_model
from pillars.core import layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import SUFFIX_FORMATS, read_file, write_json, write_parquet, write_text
from pillars.core.params import load_params
from pillars.core.schema import DataSchema, load_checked, parse_types
from pillars.serve.capture import LOG_SUFFIX, log_line
from pillars.serve.model import ServingModel, pin_threads

ROW_COLUMN = "_row"  # the row's position in its input file
REASON_COLUMN = "_reason"
PROBABILITY_PREFIX = "probability:"
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
    predictions = pd.DataFrame({ROW_COLUMN: np.flatnonzero(keep), "prediction": scored.predictions})
    for label, values in (scored.probabilities or {}).items():
        predictions[f"{PROBABILITY_PREFIX}{label}"] = values
    predictions["warnings"] = ["; ".join(messages) for messages in scored.row_warnings()]
    predictions["model_version"] = serving.version
    rejected = frame.loc[~keep].astype("str").reset_index(names=ROW_COLUMN)
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


def batch_log(name: str, predictions: pd.DataFrame, inputs: dict[str, np.ndarray], version: str) -> str:
    """The prediction log of one scored file: the service's log format, a line per LOG_CHUNK_ROWS rows."""
    labels = [column for column in predictions if column.startswith(PROBABILITY_PREFIX)]
    lines = []
    for start in range(0, len(predictions), LOG_CHUNK_ROWS):
        chunk = slice(start, start + LOG_CHUNK_ROWS)
        rows = predictions[ROW_COLUMN].to_numpy()[chunk]
        lines.append(
            log_line(
                source="batch",
                model_version=version,
                request_ids=[name] * len(rows),
                rows=rows.tolist(),
                inputs={field: values[chunk] for field, values in inputs.items()},
                predictions=predictions["prediction"].to_numpy()[chunk].tolist(),
                probabilities={
                    label.removeprefix(PROBABILITY_PREFIX): predictions[label].to_numpy()[chunk]
                    for label in labels
                }
                or None,
                time_utc=None,
            )
        )
    return "".join(lines)


def input_files(folder: Path) -> list[Path]:
    """The files to score: every file of a known format in the folder, in name order."""
    if not folder.is_dir():
        raise PillarsError(f"infer.inputs: {folder} is not a folder")
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in SUFFIX_FORMATS)


def main() -> None:
    params = load_params()
    schema = load_checked(params)
    serving = packaged_model(layout.SERVICE_ARCHIVE)
    pin_threads(serving.model, params.infer.threads)
    files = input_files(Path(params.infer.inputs))
    report: dict[str, Any] = {"model_version": serving.version, "files": {}}
    for path in files:
        fingerprint = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        try:
            predictions, rejected, summary, inputs = score_frame(
                read_file(path, params.infer.format), serving, schema, params.dataset.placeholders
            )
        except PillarsError as error:
            raise PillarsError(f"{path}: {error}") from None
        predictions["input_fingerprint"] = fingerprint
        write_parquet(layout.PREDICTIONS_DIR / f"{path.stem}.parquet", predictions)
        write_parquet(layout.PREDICTIONS_DIR / f"{path.stem}.rejected.parquet", rejected)
        write_text(
            layout.BATCH_LOG_DIR / f"{path.stem}{LOG_SUFFIX}",
            batch_log(path.name, predictions, inputs, serving.version),
        )
        report["files"][path.name] = summary | {"fingerprint": fingerprint}
        print(
            f"infer: {path.name}: {summary['scored']} scored, {summary['rejected']} rejected -> {layout.PREDICTIONS_DIR}"
        )
    write_json(layout.INFERENCE_REPORT, report)


if __name__ == "__main__":
    run_cli(main)
