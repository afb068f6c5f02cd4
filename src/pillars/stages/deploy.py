"""Pillar 13, deploy: the built Bento, served on 127.0.0.1, must behave like the offline model, fast enough.

Beyond TFX's InfraValidator (does it load and answer?): the exported archive is imported into a fresh
BentoML home and served; the whole test split goes through both APIs (bulk, and batched records) and must give
the labels of `assess` exactly and its probabilities within `deploy.tolerance`; single-row latency is measured
at concurrency 1 (p50/p95/p99) and throughput at `deploy.concurrency`. The stage fails when parity breaks or
the latency budget is exceeded. metrics/deploy_check.json holds timings, so it differs from run to run.
"""

import http.client
import json
import re
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pillars import layout
from pillars.capture import DIR_ENV, logged_rows
from pillars.errors import PillarsError, run_cli
from pillars.io import read_parquet, write_json
from pillars.local_server import import_archive, served
from pillars.params import DeployParams, load_params
from pillars.schema import load_checked
from pillars.stages.package import raw_rows

RECORDS_PER_REQUEST = 64
OVERLOAD_RETRIES = 5  # of a request answered 503, waiting 0.05, 0.1, 0.2 ... s in between
OVERLOAD_BACKOFF_S = 0.05


class Client:
    """A keep-alive JSON client for one served Bento (one per thread)."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)

    def post(self, path: str, payload: Any) -> Any:
        """POST a payload (or JSON already encoded, as bytes) and return the decoded answer.

        A 503 is retried with backoff: BentoML's adaptive batching sheds load with it ("process is
        overloaded") before scoring, so a retry is a new request, not a duplicate."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload)
        for attempt in range(OVERLOAD_RETRIES + 1):
            self.connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = self.connection.getresponse()
            answer = response.read()
            if response.status != HTTPStatus.SERVICE_UNAVAILABLE or attempt == OVERLOAD_RETRIES:
                break
            time.sleep(OVERLOAD_BACKOFF_S * 2**attempt)
        if response.status != HTTPStatus.OK:
            raise PillarsError(
                f"deploy: {path} answered {response.status}: {answer[:500].decode(errors='replace')}"
            )
        return json.loads(answer)


def as_json_columns(columns: dict[str, np.ndarray], start: int, stop: int) -> dict[str, list]:
    """A slice of typed columns as JSON values: NaN and None become null, whole floats of integer fields stay."""
    return {
        name: pd.Series(values[start:stop], dtype=object)
        .pipe(lambda part: part.where(part.notna(), None))
        .tolist()
        for name, values in columns.items()
    }


def as_records(columns: dict[str, list]) -> list[dict[str, Any]]:
    """Columns as a list of row objects."""
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def served_scores(client: Client, columns: dict[str, np.ndarray], params: DeployParams) -> tuple[dict, dict]:
    """The test split through the bulk API and through the records API: (labels, probabilities) per API."""
    rows = len(next(iter(columns.values())))
    bulk: dict[str, list] = {"predictions": [], "probabilities": []}
    for start in range(0, rows, params.bulk_rows):
        answer = client.post(
            "/predict_bulk", {"columns": as_json_columns(columns, start, start + params.bulk_rows)}
        )
        bulk["predictions"] += answer["predictions"]
        bulk["probabilities"].append(
            pd.DataFrame(answer["probabilities"]) if answer["probabilities"] else None
        )
    records: dict[str, list] = {"predictions": [], "probabilities": []}
    for start in range(0, rows, RECORDS_PER_REQUEST):
        answer = client.post(
            "/predict", {"records": as_records(as_json_columns(columns, start, start + RECORDS_PER_REQUEST))}
        )
        records["predictions"] += [row["prediction"] for row in answer]
        records["probabilities"].append(
            pd.DataFrame([row["probabilities"] for row in answer]) if answer[0]["probabilities"] else None
        )
    return bulk, records


def parity(answer: dict, offline: pd.DataFrame, labels: list[str], tolerance: float) -> dict[str, Any]:
    """How the served answers compare with assess's offline predictions."""
    if "label" not in offline:
        # Regression: values, compared relative to their size. Float32 features give float32 sums whose last
        # bit depends on how BLAS splits the work across threads, and the server runs fewer threads.
        served = np.asarray(answer["predictions"], dtype="float64")
        expected = offline["score"].to_numpy()
        relative = np.abs(served - expected) / np.maximum(1.0, np.abs(expected))
        largest = float(relative.max()) if len(served) else 0.0
        return {"rows": len(served), "max_relative_difference": largest, "passed": largest <= tolerance}
    served_codes = pd.Series(answer["predictions"]).map({label: code for code, label in enumerate(labels)})
    probabilities = pd.concat(answer["probabilities"], ignore_index=True)[labels].to_numpy()
    if "score" in offline:
        expected = offline["score"].to_numpy()
        difference = np.abs(probabilities[:, 1] - expected)
    else:
        expected = offline[[f"score_{code}" for code in range(len(labels))]].to_numpy()
        difference = np.abs(probabilities - expected).max(axis=1)
    mismatched = int((served_codes.to_numpy() != offline["label"].to_numpy()).sum())
    largest = float(difference.max()) if len(difference) else 0.0
    return {
        "rows": len(served_codes),
        "label_mismatches": mismatched,
        "max_difference": largest,
        "passed": mismatched == 0 and largest <= tolerance,
    }


def seconds_of(call: Callable[[], Any], repeats: int, warmup: int = 0) -> np.ndarray:
    """Wall seconds of each of `repeats` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return np.array(times)


def percentiles_ms(seconds: np.ndarray) -> dict[str, float]:
    """p50, p95 and p99 of timings, in milliseconds."""
    p50, p95, p99 = np.percentile(seconds * 1000, [50, 95, 99])
    return {"p50_ms": round(float(p50), 3), "p95_ms": round(float(p95), 3), "p99_ms": round(float(p99), 3)}


def latency(url: str, record: dict[str, Any], requests: int) -> dict[str, float]:
    """Single-row request latency at concurrency 1, in milliseconds (after a short warm-up)."""
    client = Client(url)
    body = json.dumps({"records": [record]}).encode()
    return percentiles_ms(seconds_of(lambda: client.post("/predict", body), requests, warmup=20))


def throughput(url: str, record: dict[str, Any], requests: int, concurrency: int) -> float:
    """Single-row requests per second with `concurrency` requests in flight."""
    per_worker = max(1, requests // concurrency)

    def worker() -> None:
        client = Client(url)
        for _ in range(per_worker):
            client.post("/predict", {"records": [record]})

    with ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        list(pool.map(lambda _: worker(), range(concurrency)))
        elapsed = time.perf_counter() - started
    return round(per_worker * concurrency / elapsed, 1)


def bulk_rate(url: str, columns: dict[str, np.ndarray], rows: int) -> float:
    """Rows per second through the bulk API, `rows` rows per request (test rows repeated as needed)."""
    client = Client(url)
    repeated = {name: np.resize(values, rows) for name, values in columns.items()}
    body = json.dumps({"columns": as_json_columns(repeated, 0, rows)}).encode()  # the client's cost, once
    seconds = seconds_of(lambda: client.post("/predict_bulk", body), 3, warmup=1).min()
    return round(rows / float(seconds), 1)


def rows_served(url: str) -> int:
    """Rows the service scored, summed over APIs, from its Prometheus counter."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return int(
        sum(float(value) for value in re.findall(r"^pillars_rows_scored_total\{[^}]*\} (\S+)$", text, re.M))
    )


def main() -> None:
    params = load_params()
    settings = params.deploy
    schema = load_checked(params)
    curated = read_parquet(layout.curated_split("test"))
    offline = read_parquet(layout.TEST_PREDICTIONS)
    if not offline["_row"].equals(curated["_row"]):
        raise PillarsError(f"{layout.TEST_PREDICTIONS}: rows differ from the test split; rerun assess")
    columns = raw_rows(curated, schema, params)
    with tempfile.TemporaryDirectory(prefix="pillars-deploy-") as home:
        tag = import_archive(layout.SERVICE_ARCHIVE, Path(home))
        logs = Path(home) / "prediction-logs"
        with served(tag, Path(home), settings.ready_timeout_s, {DIR_ENV: str(logs)}) as (url, ready_s):
            client = Client(url)
            about = client.post("/model", {})
            version, labels = about["model_version"], about["labels"]
            bulk, records = served_scores(client, columns, settings)
            record = as_records(as_json_columns(columns, 0, 1))[0]
            single = latency(url, record, settings.latency_requests)
            rate = throughput(url, record, settings.throughput_requests, settings.concurrency)
            rows_per_s = bulk_rate(url, columns, settings.bulk_rows)
            served_rows = rows_served(url)
        logged = logged_rows(logs)  # after the load: every served row must be in the prediction log
    checks = {
        "parity_bulk": parity(bulk, offline, labels, settings.tolerance),
        "parity_records": parity(records, offline, labels, settings.tolerance),
        "capture": {"served_rows": served_rows, "logged_rows": logged, "passed": served_rows == logged},
        "latency": single
        | {"budget": settings.budget.model_dump()}
        | {
            "passed": single["p50_ms"] <= settings.budget.p50_ms
            and single["p99_ms"] <= settings.budget.p99_ms
        },
    }
    report = {
        "bento": tag,
        "model_version": version,
        "ready_s": round(ready_s, 3),
        "throughput_rps": rate,
        "concurrency": settings.concurrency,
        "bulk_rows_per_s": rows_per_s,
        "bulk_rows": settings.bulk_rows,
        "checks": checks,
        "passed": all(check["passed"] for check in checks.values()),
    }
    write_json(layout.DEPLOY_REPORT, report)
    print(
        f"deploy: {tag} ready in {ready_s:.1f} s; parity {checks['parity_bulk']['passed'] and checks['parity_records']['passed']}; "
        f"p50 {single['p50_ms']} ms, p99 {single['p99_ms']} ms; {rate} requests/s at {settings.concurrency}; "
        f"bulk {rows_per_s} rows/s"
    )
    if not report["passed"]:
        failed = [name for name, check in checks.items() if not check["passed"]]
        raise PillarsError(f"deploy: checks failed: {failed}; see {layout.DEPLOY_REPORT}")


if __name__ == "__main__":
    run_cli(main)
