"""Retrain on what production taught us (`make retrain`): labelled logged rows become training data.

When the monitor decides "retrain", this folds every logged prediction whose ground truth has arrived into
the data as a new ingestion source, versioned by DVC (`data/external/monitoring/labelled.parquet` +
its .dvc file), and reruns the pipeline up to `assess` as a DVC experiment named after the data, in a
temporary workspace (the DVC queue), so the workspace is left as it was but for the new data. The
current model stays what it is: the experiment sits beside HEAD in `dvc exp show`, to be compared and, if
better, promoted (`dvc exp branch`, pull request, `make register`).

The labelled rows carry the raw values the service logged for the model's inputs and the label as clients
reported it; columns the model does not use were never logged and are missing (validate_data reports them).
"""

import argparse
import hashlib
import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import write_parquet
from pillars.core.params import Params, load_params
from pillars.core.process import run
from pillars.core.schema import DataSchema, load_checked
from pillars.lifecycle.sweep import SWEEP_TARGET, dvc, set_arguments, show_experiments
from pillars.monitoring.logs import Monitored
from pillars.monitoring.workspace import monitor_workspace

logger = logging.getLogger(__name__)
LABELLED_DATA = Path("data/external/monitoring/labelled.parquet")
SOURCE_NAME = "monitoring"


def labelled_rows(monitored: Monitored, schema: DataSchema, target: str) -> pd.DataFrame:
    """Logged rows with a label the model knows, as raw rows of the schema (unlogged columns missing)."""
    known = ~np.isnan(monitored.encoded)
    rows = {}
    for name, column in schema.columns.items():
        if name == target:
            values = monitored.labels.to_numpy(dtype=object)
        elif name in monitored.logged.inputs:
            values = monitored.logged.inputs[name]
        else:
            values = np.full(len(known), None, dtype=object)
        kind = "float64" if column.dtype in ("integer", "float") else object
        rows[name] = pd.Series(values[known], dtype=kind)
    return pd.DataFrame(rows)


def with_source(params: Params) -> list[dict]:
    """ingest.sources plus the labelled data (once)."""
    sources = [
        source.model_dump(by_alias=True) for source in params.ingest.sources if source.name != SOURCE_NAME
    ]
    return [*sources, {"name": SOURCE_NAME, "kind": "file", "path": str(LABELLED_DATA), "format": "parquet"}]


class Retrain(NamedTuple):
    """A queued and run retrain experiment, and why the monitor asked for it."""

    name: str
    reasons: list[str]


def retrain(logs: Path, feedback: Path, force: bool, params: Params) -> Retrain:
    """Fold the labelled logged rows into the data (DVC-tracked) and run the experiment up to assess."""
    report, _, monitored = monitor_workspace(logs, feedback, params)
    decision = report["decision"]
    if decision["action"] != "retrain" and not force:
        raise PillarsError(
            f"the monitor says {decision['action']!r} for {logs}: {'; '.join(decision['reasons'])} "
            "(--force retrains anyway)"
        )
    labelled = labelled_rows(monitored, load_checked(params), params.dataset.target)
    if labelled.empty:
        raise PillarsError(f"no logged prediction in {logs} has a label in {feedback}: nothing to learn from")
    write_parquet(LABELLED_DATA, labelled)
    dvc("add", str(LABELLED_DATA))
    run(["git", "add", f"{LABELLED_DATA}.dvc", str(LABELLED_DATA.parent / ".gitignore")])
    digest = hashlib.sha256(LABELLED_DATA.read_bytes()).hexdigest()[:8]
    name = f"retrain-{digest}"
    logger.info("retrain: %d labelled rows -> %s; experiment %s", len(labelled), LABELLED_DATA, name)
    run(["dvc", "exp", "remove", name], check=False)  # a rerun replaces it
    overrides = set_arguments({"ingest.sources": with_source(params)})
    dvc("exp", "run", "--queue", "--name", name, *overrides, SWEEP_TARGET)  # in a temporary workspace
    dvc("exp", "run", "--run-all", "--jobs", "1")
    return Retrain(name, decision["reasons"])


def arguments(description: str) -> argparse.ArgumentParser:
    """The options of `make retrain` (and of `make retrain-pr`, which adds none)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--logs", type=Path, help="prediction logs (default: monitor.logs)")
    parser.add_argument("--feedback", type=Path, help="ground truth files (default: monitor.feedback)")
    parser.add_argument("--force", action="store_true", help="retrain even if the monitor does not say so")
    return parser


def retrain_from_arguments(args: argparse.Namespace, params: Params) -> Retrain:
    """Retrain on the logs and feedback the options name (default: params' monitor section)."""
    logs = args.logs or Path(params.monitor.logs)
    feedback = args.feedback or Path(params.monitor.feedback)
    return retrain(logs, feedback, args.force, params)


def main() -> None:
    args = arguments(__doc__.splitlines()[0]).parse_args()
    params = load_params()
    experiment = retrain_from_arguments(args, params)
    print(show_experiments(params))
    print(
        f"retrain: compare {experiment.name} with HEAD above; "
        f"promote it with `dvc exp branch {experiment.name} <branch>`"
    )


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
