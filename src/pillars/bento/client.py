"""The JSON client every caller of a served Bento uses (deploy, replay, the container smoke test), and the
load it times (deploy and `make bench`)."""

import http.client
import json
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

import numpy as np
import pandas as pd

from pillars.core.errors import PillarsError
from pillars.core.rules import DATETIME_KINDS

ISO_FORMAT = "%Y-%m-%dT%H:%M:%S"
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
            raise PillarsError(f"{path} answered {response.status}: {answer[:500].decode(errors='replace')}")
        return json.loads(answer)


def as_json_columns(columns: dict[str, np.ndarray], start: int, stop: int) -> dict[str, list]:
    """A slice of typed columns as JSON values: NaN and None become null, dates and times become ISO 8601
    text (which the service always reads)."""
    return {
        name: _json_values(pd.Series(values[start:stop], dtype=object)) for name, values in columns.items()
    }


def _json_values(part: pd.Series) -> list:
    if pd.api.types.infer_dtype(part, skipna=True) in DATETIME_KINDS:
        part = pd.to_datetime(part, utc=True).dt.tz_localize(None).dt.strftime(ISO_FORMAT).astype(object)
    return part.where(part.notna(), None).tolist()


def as_records(columns: dict[str, list]) -> list[dict[str, Any]]:
    """Columns as a list of row objects."""
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


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
