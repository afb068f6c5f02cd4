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
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from pillars.ci_remote import URL_ENV, configure_remote
from pillars.errors import PillarsError, run_cli
from pillars.github import upsert_pull_request
from pillars.io import write_parquet
from pillars.monitoring import Monitored
from pillars.params import Params, load_params
from pillars.schema import DataSchema, load_checked
from pillars.stages.monitor import monitor_workspace
from pillars.sweep import SWEEP_TARGET, dvc, experiments_table, set_arguments, show_experiments

LABELLED_DATA = Path("data/external/monitoring/labelled.parquet")
RETRAIN_BRANCH_PREFIX = "retrain/"
GIT_REMOTE = "origin"
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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pillars.retrain", description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=Path, help="prediction logs (default: monitor.logs)")
    parser.add_argument("--feedback", type=Path, help="ground truth files (default: monitor.feedback)")
    parser.add_argument("--force", action="store_true", help="retrain even if the monitor does not say so")
    parser.add_argument(
        "--pull-request",
        action="store_true",
        help="then push the experiment as a branch (data to the DVC_REMOTE_URL remote) and open a pull request",
    )
    args = parser.parse_args()
    params = load_params()
    logs = args.logs or Path(params.monitor.logs)
    feedback = args.feedback or Path(params.monitor.feedback)
    report, _, monitored = monitor_workspace(logs, feedback, params)
    decision = report["decision"]
    if args.pull_request and not configure_remote():
        raise PillarsError(
            f"--pull-request needs the DVC remote in {URL_ENV}: the pull request's CI must pull the labelled data"
        )
    if decision["action"] != "retrain" and not args.force:
        raise PillarsError(
            f"the monitor says {decision['action']!r} for {logs}: {'; '.join(decision['reasons'])} "
            "(--force retrains anyway)"
        )
    labelled = labelled_rows(monitored, load_checked(params), params.dataset.target)
    if labelled.empty:
        raise PillarsError(f"no logged prediction in {logs} has a label in {feedback}: nothing to learn from")
    write_parquet(LABELLED_DATA, labelled)
    dvc("add", str(LABELLED_DATA))
    subprocess.run(
        ["git", "add", f"{LABELLED_DATA}.dvc", str(LABELLED_DATA.parent / ".gitignore")], check=True
    )
    digest = hashlib.sha256(LABELLED_DATA.read_bytes()).hexdigest()[:8]
    name = f"retrain-{digest}"
    print(f"retrain: {len(labelled)} labelled rows -> {LABELLED_DATA}; experiment {name}")
    subprocess.run(["dvc", "exp", "remove", name], check=False, capture_output=True)  # a rerun replaces it
    overrides = set_arguments({"ingest.sources": with_source(params)})
    dvc("exp", "run", "--queue", "--name", name, *overrides, SWEEP_TARGET)  # in a temporary workspace
    dvc("exp", "run", "--run-all", "--jobs", "1")
    show_experiments(params)
    if args.pull_request:
        number = propose(name, decision["reasons"], experiments_table(params))
        print(f"retrain: experiment {name} is pull request #{number}")
    else:
        print(f"retrain: compare {name} with HEAD above; promote it with `dvc exp branch {name} <branch>`")


def propose(name: str, reasons: list[str], comparison: str) -> int:
    """The experiment as a branch on the Git remote, its data on the DVC remote, and a pull request that
    says why and compares it with its baseline (the PR's own CI then adds the full report)."""
    branch = f"{RETRAIN_BRANCH_PREFIX}{name}"
    base = subprocess.run(
        ["git", "branch", "--show-current"], capture_output=True, text=True, check=True
    ).stdout
    dvc("exp", "branch", name, branch)
    dvc("exp", "push", GIT_REMOTE, name)  # the experiment's outputs to the default (CI) DVC remote
    subprocess.run(["git", "push", "--force", GIT_REMOTE, f"refs/heads/{branch}"], check=True)
    body = "\n".join(
        [
            "The monitor asked for retraining:",
            "",
            *(f"- {reason}" for reason in reasons),
            "",
            f"This branch adds the labelled logged rows ({LABELLED_DATA}, DVC-tracked) as an ingestion source "
            f"and carries the DVC experiment `{name}`, which reran the pipeline up to `assess`:",
            "",
            comparison,
        ]
    )
    return upsert_pull_request(branch, base.strip() or "main", f"Retrain on monitored data ({name})", body)


if __name__ == "__main__":
    run_cli(main)
