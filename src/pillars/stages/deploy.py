"""Pillar 13, deploy: the built Bento, served on 127.0.0.1, must behave like the offline model, fast enough.

Beyond TFX's InfraValidator (does it load and answer?): the exported archive is imported into a fresh
BentoML home and served; the whole test split goes through both APIs (bulk, and batched records) and must give
the labels of `assess` exactly and its probabilities within `deploy.tolerance`; single-row latency is measured
at concurrency 1 (p50/p95/p99) and throughput at `deploy.concurrency`. The stage fails when parity breaks,
the latency budget is exceeded or throughput falls below `deploy.min_throughput_rps` (a model that collapses
under concurrent load fails here, before release: `make release-version` and the container build context
refuse an archive whose deploy check did not pass). metrics/deploy_check.json holds the verdicts and the budget (the same on every passing run);
the measurements behind them (timings, differences, counts) go to the untracked build/deploy_check.json.
"""

import re
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from pillars.bento.client import Client, as_json_columns, as_records, bulk_rate, latency, throughput
from pillars.bento.parity import bulk_uncertainty, parity, raw_rows, record_uncertainty
from pillars.bento.server import import_archive, served
from pillars.core import layout, model_handoffs
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import read_parquet, write_json
from pillars.core.params import DeployParams, load_params
from pillars.core.schema import ROW_COLUMN, load_checked
from pillars.serve.capture import DIR_ENV, logged_rows

RECORDS_PER_REQUEST = 64


def served_scores(
    client: Client, columns: dict[str, np.ndarray], params: DeployParams, labels: list[str]
) -> tuple[dict, dict]:
    """The test split through the bulk API and through the records API: labels, probabilities and conformal
    intervals or sets per API."""
    rows = len(next(iter(columns.values())))
    bulk: dict[str, list] = {"predictions": [], "probabilities": [], "uncertainty": []}
    for start in range(0, rows, params.bulk_rows):
        answer = client.post(
            "/predict_bulk", {"columns": as_json_columns(columns, start, start + params.bulk_rows)}
        )
        bulk["predictions"] += answer["predictions"]
        bulk["probabilities"].append(
            pd.DataFrame(answer["probabilities"]) if answer["probabilities"] else None
        )
        bulk["uncertainty"].append(bulk_uncertainty(answer))
    records: dict[str, list] = {"predictions": [], "probabilities": [], "uncertainty": []}
    for start in range(0, rows, RECORDS_PER_REQUEST):
        answer = client.post(
            "/predict", {"records": as_records(as_json_columns(columns, start, start + RECORDS_PER_REQUEST))}
        )
        records["predictions"] += [row["prediction"] for row in answer]
        records["probabilities"].append(
            pd.DataFrame([row["probabilities"] for row in answer]) if answer[0]["probabilities"] else None
        )
        records["uncertainty"].append(record_uncertainty(answer, labels))
    return bulk, records


def rows_served(url: str) -> int:
    """Rows the service scored, summed over APIs, from its Prometheus counter."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return int(
        sum(float(value) for value in re.findall(r"^pillars_rows_scored_total\{[^}]*\} (\S+)$", text, re.M))
    )


class Served(NamedTuple):
    """What the served Bento answered and how fast, from one session against it."""

    bento: str
    model_version: str
    labels: list[str]
    bulk: dict[str, list]
    records: dict[str, list]
    ready_s: float
    latency: dict[str, float]
    throughput_rps: float
    bulk_rows_per_s: float
    served_rows: int
    logged_rows: int


def measure(archive: Path, columns: dict[str, np.ndarray], settings: DeployParams) -> Served:
    """Serve the archive from a private BentoML home, send it the test rows and the load, stop it."""
    with tempfile.TemporaryDirectory(prefix="pillars-deploy-") as home:
        tag = import_archive(archive, Path(home))
        logs = Path(home) / "prediction-logs"
        with served(tag, Path(home), settings.ready_timeout_s, {DIR_ENV: str(logs)}) as (url, ready_s):
            client = Client(url)
            about = client.post("/model", {})
            bulk, records = served_scores(client, columns, settings, about["labels"])
            record = as_records(as_json_columns(columns, 0, 1))[0]
            single = latency(url, record, settings.latency_requests)
            rate = throughput(url, record, settings.throughput_requests, settings.concurrency)
            rows_per_s = bulk_rate(url, columns, settings.bulk_rows)
            served_rows = rows_served(url)
        logged = logged_rows(logs)  # after the load: every served row must be in the prediction log
    return Served(
        tag,
        about["model_version"],
        about["labels"],
        bulk,
        records,
        ready_s,
        single,
        rate,
        rows_per_s,
        served_rows,
        logged,
    )


def reports(measured: Served, offline: pd.DataFrame, settings: DeployParams) -> tuple[dict, dict]:
    """The verdicts (tracked: the same whenever the checks pass) and the measurements behind them (timings,
    differences and counts: they vary from run to run and machine to machine, so they are not tracked)."""
    parity_bulk = parity(measured.bulk, offline, measured.labels, settings.tolerance)
    parity_records = parity(measured.records, offline, measured.labels, settings.tolerance)
    single = measured.latency
    passed = {
        "parity_bulk": parity_bulk["passed"],
        "parity_records": parity_records["passed"],
        "capture": measured.served_rows == measured.logged_rows,
        "latency": single["p50_ms"] <= settings.budget.p50_ms and single["p99_ms"] <= settings.budget.p99_ms,
        "throughput": measured.throughput_rps >= settings.min_throughput_rps,
    }
    verdicts = {
        "bento": measured.bento,
        "model_version": measured.model_version,
        "rows": parity_bulk["rows"],
        "tolerance": settings.tolerance,
        "budget": settings.budget.model_dump(),
        "min_throughput_rps": settings.min_throughput_rps,
        "checks": passed,
        "passed": all(passed.values()),
    }
    measurements = {
        "bento": measured.bento,
        "ready_s": round(measured.ready_s, 3),
        "parity_bulk": parity_bulk,
        "parity_records": parity_records,
        "capture": {"served_rows": measured.served_rows, "logged_rows": measured.logged_rows},
        "latency": single,
        "throughput_rps": measured.throughput_rps,
        "concurrency": settings.concurrency,
        "bulk_rows_per_s": measured.bulk_rows_per_s,
        "bulk_rows": settings.bulk_rows,
    }
    return verdicts, measurements


def main() -> None:
    params = load_params()
    settings = params.deploy
    schema = load_checked(params)
    curated = read_parquet(layout.curated_split("test"))
    offline = read_parquet(layout.TEST_PREDICTIONS)
    if not offline[ROW_COLUMN].equals(curated[ROW_COLUMN]):
        raise PillarsError(f"{layout.TEST_PREDICTIONS}: rows differ from the test split; rerun assess")
    columns = raw_rows(read_parquet(layout.RAW_DATA), curated, schema, params.dataset.placeholders)
    measured = measure(layout.SERVICE_ARCHIVE, columns, settings)
    verdicts, measurements = reports(measured, offline, settings)
    model_handoffs.DEPLOY_REPORT.write(verdicts)
    write_json(layout.DEPLOY_TIMINGS, measurements)
    single = measured.latency
    print(
        f"deploy: {measured.bento} ready in {measured.ready_s:.1f} s; parity "
        f"{verdicts['checks']['parity_bulk'] and verdicts['checks']['parity_records']}; "
        f"p50 {single['p50_ms']} ms, p99 {single['p99_ms']} ms; {measured.throughput_rps} requests/s at "
        f"{settings.concurrency}; bulk {measured.bulk_rows_per_s} rows/s (measurements: {layout.DEPLOY_TIMINGS})"
    )
    if not verdicts["passed"]:
        failed = [name for name, passed in verdicts["checks"].items() if not passed]
        raise PillarsError(f"deploy: checks failed: {failed}; see {layout.DEPLOY_TIMINGS}")


if __name__ == "__main__":
    run_cli(main)
