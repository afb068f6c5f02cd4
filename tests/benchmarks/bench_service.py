"""Benchmark of the served model: the exported Bento against the issue's latency and throughput targets.

Not a pytest test. Run `python tests/benchmarks/bench_service.py` after `dvc repro package` (it needs
models/service.bento and the curated test split). The archive is imported into a temporary BentoML home
and served on 127.0.0.1 with `pillars.local_server.served`; the client side is the deploy stage's
(`pillars.stages.deploy`), so this measures what `dvc repro deploy` measures, with more requests and
against the tighter targets:

- single-row `/predict` at concurrency 1: p50 at most 1.5x the in-process p50 of the same rows;
- single-row `/predict` at concurrency 32: >= 500 requests/s;
- `/predict_bulk` with 10,000-row requests: at least 0.8x the in-process rows/s.

In the same run it times in-process baselines on the same rows: `ServingModel.typed` + `score` (what the
service calls per request) on one row and on 10,000 rows, and the selected model's own native predict on the
feature matrix (whatever the pipeline selected: a blend's members each, weighted), so the served numbers are
read as ratios of the in-process ones. The serving model is loaded straight from the archive. `--smoke`
(the suite runs it) measures a few requests and does not enforce the targets: it proves the benchmark still
runs on what the pipeline ships. Client and server share the machine (at most two CPUs, as in the other
benchmarks). Results go to tests/benchmarks/results/service.{json,md}; it exits with status 1 when a target
is missed.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bench_data_pillars import CPU_LIMIT, REPO, RESULTS_DIR, Target, machine_facts, pin_cpus

from pillars.bento.archive import packaged_model
from pillars.bento.client import (
    Client,
    as_json_columns,
    as_records,
    bulk_rate,
    latency,
    percentiles_ms,
    seconds_of,
    throughput,
)
from pillars.bento.parity import raw_rows
from pillars.bento.server import import_archive, served
from pillars.core import layout
from pillars.core.io import read_parquet
from pillars.core.params import load_params
from pillars.core.schema import load_checked
from pillars.serve.capture import DIR_ENV, PredictionLog, log_line, logged_rows
from pillars.serve.estimators import Blend, CatBoostModel, NativeCategorical
from pillars.serve.model import ServingModel

CONCURRENCY = 32
BULK_ROWS = 10_000
IN_PROCESS_WARMUP = 20  # untimed single-row in-process calls before the timed ones
READY_TIMEOUT_S = 120.0
LATENCY_RATIO_LIMIT = 1.5  # served single-row p50 at most this many times the in-process p50
BULK_RATIO_FLOOR = 0.8  # served bulk rows/s at least this share of the in-process rows/s
RPS_FLOOR = 500.0  # single-row requests/s at concurrency 32


@dataclass(frozen=True)
class Counts:
    """How much is measured: the full benchmark, or the suite's smoke run that only proves it still runs."""

    latency_requests: int  # single-row requests at concurrency 1, after deploy.latency's 20 warm-up requests
    throughput_requests: int
    in_process_calls: int  # single-row in-process calls timed
    in_process_repeats: int  # 10,000-row in-process calls: best and median


FULL = Counts(latency_requests=1000, throughput_requests=4000, in_process_calls=1000, in_process_repeats=5)
SMOKE = Counts(latency_requests=30, throughput_requests=100, in_process_calls=30, in_process_repeats=2)


def rates(rows: int, seconds: np.ndarray) -> dict[str, float]:
    """Rows per second of repeated calls on `rows` rows: best and median."""
    return {
        "best_rows_per_s": round(rows / float(seconds.min()), 1),
        "median_rows_per_s": round(rows / float(np.median(seconds)), 1),
    }


def native_predict(model: Any) -> Callable[[np.ndarray], Any]:
    """The library's own fastest predict of a fitted model on the feature matrix, one thread: what the served
    model is compared with. A Blend: each member's, then their weighted sum."""
    if isinstance(model, Blend):
        members = {name: native_predict(member) for name, member in model.members.items()}
        return lambda matrix: sum(
            weight * np.asarray(members[name](matrix)) for name, weight in model.weights.items()
        )
    if isinstance(model, NativeCategorical):
        inner = native_predict(model.model)
        return lambda matrix: inner(model.codes(matrix))
    if isinstance(model, CatBoostModel):
        return lambda matrix: model.model.predict(matrix, prediction_type="RawFormulaVal", thread_count=1)
    if hasattr(model, "get_booster"):  # XGBoost
        booster = model.get_booster()
        return lambda matrix: booster.inplace_predict(matrix)
    if hasattr(model, "booster_"):  # LightGBM
        return lambda matrix: model.booster_.predict(matrix, num_threads=1)
    if hasattr(model, "decision_function"):  # a linear model, or scikit-learn's boosting
        return lambda matrix: model.decision_function(matrix)
    return lambda matrix: model.predict(matrix)


def in_process(
    serving: ServingModel, one: dict[str, list], bulk: dict[str, list], counts: Counts
) -> dict[str, Any]:
    """The baselines: what the service does per request, and the bare model, without HTTP or pydantic."""
    rows = len(next(iter(bulk.values())))
    native = native_predict(serving.model)
    matrix = serving.features.transform(serving.standardized(serving.typed(bulk)), rows)
    one_matrix = matrix[:1]
    calls, warmup, repeats = counts.in_process_calls, IN_PROCESS_WARMUP, counts.in_process_repeats
    return {
        "model": type(serving.model).__name__,
        "score_1_row": percentiles_ms(seconds_of(lambda: serving.score(serving.typed(one)), calls, warmup)),
        "native_1_row": percentiles_ms(seconds_of(lambda: native(one_matrix), calls, warmup)),
        "score_bulk": rates(rows, seconds_of(lambda: serving.score(serving.typed(bulk)), repeats, warmup=1)),
        "native_bulk": rates(rows, seconds_of(lambda: native(matrix), repeats, warmup=1)),
        # the client's share of a served bulk call: encoding the request, decoding the answer
        "client_json_bulk_ms": client_json_ms(serving, bulk, counts),
        "capture": capture_ms(serving, one, bulk, counts),
    }


def capture_ms(
    serving: ServingModel, one: dict[str, list], bulk: dict[str, list], counts: Counts
) -> dict[str, Any]:
    """What logging a scored call adds to the request path: the log line built and written (flushed)."""
    with tempfile.TemporaryDirectory(prefix="pillars-bench-capture-") as folder:
        log = PredictionLog(Path(folder), 64 * 1024 * 1024)

        def logged(columns: dict[str, list]) -> Any:
            scored = serving.score(serving.typed(columns))
            rows = len(scored.predictions)
            return lambda: log.write(
                log_line(
                    source="bench",
                    model_version=serving.version,
                    request_ids=["0" * 32] * rows,
                    rows=list(range(rows)),
                    inputs=columns,
                    predictions=scored.predictions,
                    probabilities=scored.probabilities,
                    time_utc="2026-01-01T00:00:00.000000Z",
                )
            )

        single = percentiles_ms(seconds_of(logged(one), counts.in_process_calls, IN_PROCESS_WARMUP))
        many = seconds_of(logged(bulk), counts.in_process_repeats, warmup=1)
        log.close()
    return {"1_row": single, "bulk_best_ms": round(float(many.min()) * 1000, 2)}


def client_json_ms(serving: ServingModel, bulk: dict[str, list], counts: Counts) -> dict[str, float]:
    """Milliseconds the deploy Client spends on JSON for one bulk call (best of the repeats)."""
    scored = serving.score(serving.typed(bulk))
    answer = json.dumps(
        {
            "model_version": serving.version,
            "predictions": scored.predictions,
            "probabilities": {
                label: values.tolist() for label, values in (scored.probabilities or {}).items()
            },
            "warnings": scored.warnings,
        }
    )
    request = {"columns": bulk}
    encode = seconds_of(lambda: json.dumps(request), counts.in_process_repeats, warmup=1)
    decode = seconds_of(lambda: json.loads(answer), counts.in_process_repeats, warmup=1)
    return {
        "encode_ms": round(float(encode.min()) * 1000, 2),
        "decode_ms": round(float(decode.min()) * 1000, 2),
    }


def measure_served(
    archive: Path, columns: dict[str, np.ndarray], record: dict[str, Any], counts: Counts
) -> dict[str, Any]:
    """Import and serve the Bento; latency, throughput and bulk rate through the deploy stage's client."""
    with tempfile.TemporaryDirectory(prefix="pillars-bench-service-") as home:
        started = time.perf_counter()
        tag = import_archive(archive, Path(home))
        import_s = time.perf_counter() - started
        print(f"imported {tag} in {import_s:.1f} s; serving", flush=True)
        logs = Path(home) / "prediction-logs"
        with served(tag, Path(home), READY_TIMEOUT_S, {DIR_ENV: str(logs)}) as (url, ready_s):
            print(f"ready in {ready_s:.1f} s at {url}", flush=True)
            version = Client(url).post("/model", {})["model_version"]
            cpu = time.process_time()
            single = latency(url, record, counts.latency_requests)
            cpu_single, cpu = time.process_time() - cpu, time.process_time()
            print(f"/predict at concurrency 1: {single}", flush=True)
            rate = throughput(url, record, counts.throughput_requests, CONCURRENCY)
            cpu_rate = time.process_time() - cpu
            print(f"/predict at concurrency {CONCURRENCY}: {rate} requests/s", flush=True)
            bulk = bulk_rate(url, columns, BULK_ROWS)
            print(f"/predict_bulk, {BULK_ROWS:,} rows a request: {bulk} rows/s", flush=True)
        logged = logged_rows(logs)
    return {
        "logged_rows": logged,  # every row served, the warm-ups included, is in the prediction log
        "bento": tag,
        "model_version": version,
        "import_s": round(import_s, 3),
        "ready_s": round(ready_s, 3),
        # client_cpu_ms: this process's CPU time per request (all threads), taken from the CPUs it shares
        "predict_1_row_concurrency_1": single
        | {
            "requests": counts.latency_requests,
            "client_cpu_ms": round(cpu_single * 1000 / (counts.latency_requests + 20), 3),  # with the warm-up
        },
        "predict_1_row_concurrency_32": {
            "requests_per_s": rate,
            "requests": counts.throughput_requests,
            "concurrency": CONCURRENCY,
            "client_cpu_ms": round(cpu_rate * 1000 / counts.throughput_requests, 3),
        },
        "predict_bulk": {"rows_per_request": BULK_ROWS, "best_rows_per_s": bulk, "of": 3},
    }


def table(results: dict, targets: dict[str, Target]) -> str:
    """The Markdown table: measure | value | target | ok; the targets are ratios to the in-process figures."""
    machine, served_, local = results["machine"], results["served"], results["in_process"]
    single, ratios = served_["predict_1_row_concurrency_1"], results["ratios"]
    repeats, model = results["counts"]["in_process_repeats"], local["model"]

    def row(measure: str, value: str, name: str | None = None) -> str:
        if name is None:
            return f"| {measure} | {value} | | |"
        target = targets[name]
        verdict = "pass" if target.passed else f"FAIL ({target.shortfall} off)"
        return f"| {measure} | {value} | {target.stated} | {verdict} |"

    lines = [
        f"Measured on {machine['cpus_used']} of {machine['cpu_count']} CPUs (client and server together), "
        f"Python {machine['python']}, {machine['platform'].split('-')[0]} {machine['machine']} "
        f"(`python tests/benchmarks/bench_service.py`), the selected model ({model}).",
        "",
        "| measure | value | target | ok |",
        "| --- | ---: | --- | --- |",
        row(
            f"served `/predict`, 1 row, concurrency 1, p50 ({single['requests']:,} requests)",
            f"{single['p50_ms']:.2f} ms",
        ),
        row(
            "served `/predict`, 1 row, concurrency 1, p95 / p99",
            f"{single['p95_ms']:.2f} / {single['p99_ms']:.2f} ms",
        ),
        row(
            f"served `/predict`, 1 row, concurrency {CONCURRENCY} "
            f"({served_['predict_1_row_concurrency_32']['requests']:,} requests)",
            f"{served_['predict_1_row_concurrency_32']['requests_per_s']:,.0f} requests/s",
            "requests_per_s",
        ),
        row(
            f"served `/predict_bulk`, {BULK_ROWS:,} rows a request (best of 3)",
            f"{served_['predict_bulk']['best_rows_per_s']:,.0f} rows/s",
        ),
        row(
            "in-process `typed` + `score`, 1 row, p50 / p99",
            f"{local['score_1_row']['p50_ms']:.3f} / {local['score_1_row']['p99_ms']:.3f} ms",
        ),
        row(
            f"in-process `typed` + `score`, {BULK_ROWS:,} rows (best / median of {repeats})",
            f"{local['score_bulk']['best_rows_per_s']:,.0f} / {local['score_bulk']['median_rows_per_s']:,.0f} rows/s",
        ),
        row(
            f"the library's own predict ({model}), 1-row matrix, p50",
            f"{local['native_1_row']['p50_ms']:.3f} ms",
        ),
        row(
            f"the library's own predict ({model}), {BULK_ROWS:,}-row matrix (best / median of {repeats})",
            f"{local['native_bulk']['best_rows_per_s']:,.0f} / {local['native_bulk']['median_rows_per_s']:,.0f} rows/s",
        ),
        row(
            f"client JSON for one {BULK_ROWS:,}-row bulk call (encode + decode)",
            f"{local['client_json_bulk_ms']['encode_ms']:.1f} + {local['client_json_bulk_ms']['decode_ms']:.1f} ms",
        ),
        row(
            f"client CPU per `/predict` request, concurrency 1 / {CONCURRENCY}",
            f"{single['client_cpu_ms']:.2f} / "
            f"{served_['predict_1_row_concurrency_32']['client_cpu_ms']:.2f} ms",
        ),
        row(
            "prediction capture (log line built + flushed write), 1 row p50 / "
            f"{BULK_ROWS:,} rows: included in the served figures above",
            f"{local['capture']['1_row']['p50_ms']:.3f} / {local['capture']['bulk_best_ms']:.1f} ms",
        ),
        row(
            "ratio: served p50 / in-process p50, 1 row",
            f"{ratios['latency_served_over_in_process']:.2f}x",
            "latency_ratio",
        ),
        row(
            "ratio: served bulk rows/s / in-process `score` rows/s",
            f"{ratios['bulk_served_over_in_process']:.2f}",
            "bulk_ratio",
        ),
        row(
            "ratio: served bulk rows/s / the library's own rows/s", f"{ratios['bulk_served_over_native']:.3f}"
        ),
        row(
            "ratio: in-process `score` rows/s / the library's own rows/s",
            f"{ratios['score_over_native']:.2f}",
        ),
        "",
        f"Bento {served_['bento']} (model {served_['model_version']}): imported in "
        f"{served_['import_s']:.1f} s, ready in {served_['ready_s']:.1f} s; 1-minute load average "
        f"{results['load_average_1m_at_start']} at the start. In-process rates use the best call; ratios "
        "compare best with best and p50 with p50. The library's own predict is the fitted model's native call "
        "on the feature matrix, one thread (a blend: each member's, weighted).",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    """Measure the served Bento and the in-process baselines, write the results; 1 if a target is missed
    (`--smoke`: a short run that proves the benchmark runs on the selected model; targets shown only)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--smoke", action="store_true", help="a few requests: does it run (targets not enforced)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where service.json and .md go")
    arguments = parser.parse_args()
    counts = SMOKE if arguments.smoke else FULL
    cpus = pin_cpus(CPU_LIMIT)
    load_at_start = round(os.getloadavg()[0], 2)
    os.chdir(REPO)  # the pipeline's paths are relative to the repository root
    archive = layout.SERVICE_ARCHIVE
    if not archive.is_file():
        print(f"{archive} is missing: run `dvc repro package` first", file=sys.stderr)
        return 1
    params = load_params()
    columns = raw_rows(
        read_parquet(layout.RAW_DATA),
        read_parquet(layout.curated_split("test")),
        load_checked(params),
        params.dataset.placeholders,
    )
    repeated = {name: np.resize(values, BULK_ROWS) for name, values in columns.items()}
    one = as_json_columns(columns, 0, 1)
    record = as_records(one)[0]
    serving = packaged_model(archive)
    print(f"in-process baselines (model {serving.version}, CPUs {cpus})", flush=True)
    local = in_process(serving, one, as_json_columns(repeated, 0, BULK_ROWS), counts)
    print(json.dumps(local), flush=True)
    served_ = measure_served(archive, columns, record, counts)
    if served_["model_version"] != serving.version:
        print(
            f"served model {served_['model_version']} is not the archive's {serving.version}", file=sys.stderr
        )
        return 1
    single = served_["predict_1_row_concurrency_1"]
    bulk = served_["predict_bulk"]["best_rows_per_s"]
    ratios = {
        "latency_served_over_in_process": round(single["p50_ms"] / local["score_1_row"]["p50_ms"], 2),
        "bulk_served_over_in_process": round(bulk / local["score_bulk"]["best_rows_per_s"], 3),
        "bulk_served_over_native": round(bulk / local["native_bulk"]["best_rows_per_s"], 4),
        "score_over_native": round(
            local["score_bulk"]["best_rows_per_s"] / local["native_bulk"]["best_rows_per_s"], 3
        ),
    }
    targets = {
        "latency_ratio": Target(
            "served_over_in_process_1_row_p50",
            ratios["latency_served_over_in_process"],
            LATENCY_RATIO_LIMIT,
            "x",
            "max",
        ),
        "requests_per_s": Target(
            f"predict_1_row_concurrency_{CONCURRENCY}_requests_per_s",
            served_["predict_1_row_concurrency_32"]["requests_per_s"],
            RPS_FLOOR,
            "requests/s",
            "min",
        ),
        "bulk_ratio": Target(
            "served_over_in_process_bulk_rows_per_s",
            ratios["bulk_served_over_in_process"],
            BULK_RATIO_FLOOR,
            "",
            "min",
        ),
    }
    results = {
        "machine": machine_facts(cpus),
        "load_average_1m_at_start": load_at_start,  # the machine may be shared: read the numbers with it
        "counts": asdict(counts),
        "served": served_,
        "in_process": local,
        "ratios": ratios,
        "targets": {name: asdict(target) | {"passed": target.passed} for name, target in targets.items()},
        "passed": all(target.passed for target in targets.values()),
    }
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "service.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    markdown = table(results, targets)
    (arguments.out / "service.md").write_text(markdown, encoding="utf-8")
    print(f"\n{markdown}\nresults: {arguments.out / 'service'}.json, .md")
    missed = [target for target in targets.values() if not target.passed]
    for target in missed:
        print(
            f"target missed: {target.name}: {target.measured:,.2f} {target.unit}, target {target.stated} "
            f"({target.shortfall} off)"
        )
    return 1 if missed and not arguments.smoke else 0


if __name__ == "__main__":
    sys.exit(main())
