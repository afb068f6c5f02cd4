"""The monitoring demo (`make monitor-demo`): replay traffic through a served model, then monitor it.

Two replays of `monitor.replay.rows` held-out rows, one record per request as a client would send them,
through the packaged model served on 127.0.0.1 (a real `bentoml serve`): once drawn as they are (the
training distribution), once with `monitor.replay.shift` added to numeric columns (e.g. an older
population working more hours). The ground truth of every answered request is dropped in as a feedback
file keyed by the request ids the service returned, and the monitor runs on each replay's log: it should
stay quiet on the first and flag the shifted columns on the second. Everything goes to
data/monitoring/demo/<replay>/ (logs, feedback, monitoring.json, monitoring.html).
"""

import argparse
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pillars.bento.archive import packaged_model
from pillars.bento.client import Client, as_json_columns, as_records
from pillars.bento.parity import as_sent, raw_rows
from pillars.bento.server import import_archive, served
from pillars.core import layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import read_parquet, write_json, write_parquet, write_text
from pillars.core.params import Params, load_params
from pillars.core.schema import load_checked
from pillars.monitoring.analysis import monitor
from pillars.monitoring.logs import read_monitored
from pillars.monitoring.report import render_html
from pillars.serve.capture import DIR_ENV
from pillars.serve.model import ServingModel

DEMO_DIR = layout.MONITORING_DIR / "demo"
REPLAYS = ("drawn", "shifted")


def sample_rows(
    columns: dict[str, np.ndarray], labels: np.ndarray, rows: int, seed: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """`rows` rows drawn at random (with replacement only when more are asked for than there are)."""
    available = len(labels)
    picked = np.random.default_rng(seed).choice(available, rows, replace=rows > available)
    return {name: values[picked] for name, values in columns.items()}, labels[picked]


def shifted(
    columns: dict[str, np.ndarray], shift: dict[str, float], serving: ServingModel
) -> dict[str, np.ndarray]:
    """The columns with `shift` added, kept within what the model can score (its impossible-value limits)."""
    fields = {item.name: item for item in serving.fields}
    moved = dict(columns)
    for name, amount in shift.items():
        if name not in fields or not fields[name].is_numeric:
            raise PillarsError(f"monitor.replay.shift: {name!r} is not a numeric input of the model")
        low, high = fields[name].limits
        values = (pd.to_numeric(pd.Series(columns[name]), errors="coerce") + amount).clip(low, high)
        moved[name] = as_sent(
            values.round() if fields[name].dtype == "integer" else values, fields[name].dtype
        )
    return moved


def replay(url: str, columns: dict[str, np.ndarray], concurrency: int) -> list[str]:
    """Send every row as its own /predict request; the request ids the service answered, in row order."""
    records = as_records(as_json_columns(columns, 0, len(next(iter(columns.values())))))
    local = threading.local()

    def send(record: dict[str, Any]) -> str:
        if not hasattr(local, "client"):
            local.client = Client(url)
        return local.client.post("/predict", {"records": [record]})[0]["request_id"]

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(send, records))


def ground_truth(curated: pd.DataFrame, serving: ServingModel, target: str) -> np.ndarray:
    """The curated split's target as the raw labels clients would report (class names or values)."""
    values = curated[target].to_numpy()
    if serving.task == "regression":
        return values
    return np.asarray(serving.labels, dtype=object)[values.astype("int64")]


def run_demo(params: Params, out: Path) -> dict[str, dict[str, Any]]:
    """Both replays through one served model; the monitoring report of each."""
    settings = params.monitor.replay
    serving = packaged_model(layout.SERVICE_ARCHIVE)
    curated = read_parquet(layout.curated_split("holdout"))
    columns, labels = sample_rows(
        raw_rows(read_parquet(layout.RAW_DATA), curated, load_checked(params), params.dataset.placeholders),
        ground_truth(curated, serving, params.dataset.target),
        settings.rows,
        settings.seed,
    )
    traffic = {"drawn": columns, "shifted": shifted(columns, settings.shift, serving)}
    reference = read_parquet(layout.curated_split("train"))
    test_predictions = read_parquet(layout.TEST_PREDICTIONS)
    reports = {}
    with tempfile.TemporaryDirectory(prefix="pillars-replay-") as home:
        tag = import_archive(layout.SERVICE_ARCHIVE, Path(home))
        for name in REPLAYS:
            folder = out / name
            logs, feedback = folder / "logs", folder / "feedback"
            environment = {DIR_ENV: str(logs.resolve())}
            with served(tag, Path(home), params.deploy.ready_timeout_s, environment) as (url, _ready_s):
                request_ids = replay(url, traffic[name], settings.concurrency)
            write_parquet(
                feedback / "labels.parquet",
                pd.DataFrame({"request_id": request_ids, "row": 0, params.dataset.target: labels}),
            )
            monitored = read_monitored(logs, feedback, serving, params.dataset.target)
            report, distributions = monitor(monitored, reference, test_predictions, serving, params)
            write_json(folder / "monitoring.json", report)
            write_text(folder / "monitoring.html", render_html(report, distributions))
            reports[name] = report
    return reports


def summary(reports: dict[str, dict[str, Any]]) -> str:
    """A Markdown table of the replays: what the monitor decided and why."""
    lines = [
        "| replay | rows | drifted features | prediction drift | performance | decision |",
        "|---|---:|---|---|---|---|",
    ]
    for name, report in reports.items():
        measured = report["performance"]
        drifted_outputs = [key for key, drift in report["drift"]["prediction"].items() if drift["drifted"]]
        lines.append(
            f"| {name} | {report['rows']['monitored']} | {', '.join(report['drift']['drifted_features']) or '-'} "
            f"| {', '.join(drifted_outputs) or '-'} "
            f"| {report['metric']} {measured['current']} (test {measured['reference']}) "
            f"| {report['decision']['action']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pillars.monitoring.replay", description=__doc__)
    parser.add_argument("--out", type=Path, default=DEMO_DIR)
    args = parser.parse_args()
    reports = run_demo(load_params(), args.out)
    print(summary(reports))
    for name in reports:
        print(f"{name}: {args.out / name / 'monitoring.html'}")


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
