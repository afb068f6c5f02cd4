"""Benchmark of the Dask engine on this machine (2 cores, 24 GiB), run by `make bench` after `make run`.

1. Data: stages 1-6 and batch inference with `compute.engine: dask` (a local cluster of 2 worker processes)
   on 100x and 1000x upsampled copies of the bundled data (4.9 M and 49 M rows, as files of 10x each, the
   way large tables arrive), each stage a process as `dvc repro` runs it: wall time, rows per second, and
   the peak memory of all processes together (the stage, the scheduler, the nannies and workers: the sum
   of their resident memory, sampled every SAMPLE_S). Targets (issue 16): the 1000x run under 12 GiB and
   within 15 times the 100x run's wall time.
2. Train: the train stage's studies with `engine: dask` on 1 and 2 worker processes against `engine: local`,
   on the bundled data's feature matrices; every run uses the same params - the default budget with
   `train.round_size` ROUND_SIZE, a fresh Optuna storage - so every run must give the same models, trial
   tables and train metrics, byte for byte. Wall time beside it (on 2 cores, with `train.n_jobs: 2` threads
   per trial, two workers oversubscribe the machine).
3. External memory: the train stage (XGBoost alone, a fixed budget: EXTERNAL_XGBOOST) as a process on the
   features of the 100x copy (stages 1-6 on the local engine first), with the train matrix in memory
   (`train.external_memory_rows: null`, the alternative) and in XGBoost's external memory: wall time, peak
   memory and the valid metric of each.

Results go to tests/benchmarks/results/scale.{json,md}; it exits with status 1 when a target is missed.
`python tests/benchmarks/bench_scale.py data`, `train` or `external` runs one part (the others' last results
are kept).
"""

import contextlib
import hashlib
import json
import logging
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import yaml
from bench_data_pillars import (
    CPU_LIMIT,
    REPO,
    RESULTS_DIR,
    SEED,
    BenchError,
    Target,
    child_env,
    machine_facts,
    pin_cpus,
    upsample,
    write_results,
)

from pillars.core import data_handoffs, layout
from pillars.core.io import read_json
from pillars.core.params import ComputeParams, Params, load_params
from pillars.stages.train import Trained, train
from pillars.training.matrices import load_training_data
from pillars.training.tuning import trial_runner

ROUND_SIZE = 2
WORKERS = (1, 2)
DATA_STAGES = ("ingest", "validate_data", "cleanse", "standardize", "curate", "featurize", "infer")
FACTORS = (100, 1000)
FILE_FACTOR = 10  # each generated file holds 10x the bundled rows (~490 k)
SAMPLE_S = 0.2
EXTERNAL_FACTOR = 100
EXTERNAL_ROWS = 1_000_000  # train.external_memory_rows of the external run (train has about 2.9 M rows)
EXTERNAL_XGBOOST = {"n_trials": 2, "fixed": {"n_estimators": 200, "early_stopping_rounds": 20}}
PEAK_LIMIT_MIB = 12 * 1024.0
WALL_RATIO_LIMIT = 15.0
PARTS = ("data", "train", "external")


def generate(folder: Path, factor: int) -> int:
    """`factor` x the bundled rows as files of FILE_FACTOR x each (bench_data_pillars' upsampling, seeded
    per file); the rows written."""
    source = pd.read_parquet(REPO / "data/external/adult/adult.parquet")
    folder.mkdir(parents=True)
    rows = 0
    for number in range(factor // FILE_FACTOR):
        part = upsample(source, FILE_FACTOR, np.random.default_rng([SEED, number]))
        part.to_parquet(folder / f"part-{number:04d}.parquet", index=False)
        rows += len(part)
    return rows


def data_workspace(root: Path, factor: int, engine: str) -> int:
    """What stages 1-6 and infer read, with the source `factor` x the bundled data; the rows."""
    (root / "data").mkdir(parents=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["compute"] |= {"engine": engine, "workers": 2, "threads_per_worker": 1}
    params["ingest"]["sources"][0] |= {"path": "data/external/parts/part-*.parquet"}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    shutil.copy(REPO / "data/schema.yaml", root / "data/schema.yaml")
    (root / "models").mkdir()
    shutil.copy(REPO / layout.SERVICE_ARCHIVE, root / layout.SERVICE_ARCHIVE)
    return generate(root / "data/external/parts", factor)


def tree_rss(process: psutil.Process) -> int:
    """The resident memory of a process and all its descendants, in bytes."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:  # ended between the listing and the reading
            continue
    return total


def run_sampled(stage: str, root: Path, log: Path) -> dict:
    """Run one stage as a process: its wall time and the peak summed memory of its process tree."""
    peak = 0
    with log.open("wb") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", f"pillars.stages.{stage}"],
            cwd=root,
            env=child_env(REPO),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        watched = psutil.Process(process.pid)
        while process.poll() is None:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, tree_rss(watched))
            time.sleep(SAMPLE_S)
        seconds = time.perf_counter() - started
    if process.returncode:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise BenchError(f"{stage} exited with {process.returncode}:\n{tail}")
    return {"name": stage, "seconds": round(seconds, 1), "peak_mib": round(peak / 2**20, 1)}


def outputs_digest(root: Path) -> str:
    """One hash of every file the data stages and infer wrote (names and bytes)."""
    digest = hashlib.sha256()
    written = [*(root / "data").rglob("*"), *(root / "metrics").rglob("*"), root / layout.FEATURE_PIPELINE]
    for path in sorted(path for path in written if path.is_file() and "external" not in path.parts):
        digest.update(
            str(path.relative_to(root)).encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest()
        )
    return digest.hexdigest()


def timed_data(factor: int, engine: str, scratch: Path) -> dict:
    """Stages 1-6 and infer on `factor` x the bundled data on an engine."""
    root = scratch / f"x{factor}-{engine}"
    started = time.perf_counter()
    rows = data_workspace(root, factor, engine)
    generate_s = time.perf_counter() - started
    print(f"{factor}x, {engine}: {rows:,} rows generated in {generate_s:.0f} s", flush=True)
    stages = []
    for stage in DATA_STAGES:
        stages.append(run_sampled(stage, root, scratch / f"x{factor}-{engine}-{stage}.log"))
        print(f"  {stage:<14} {stages[-1]['seconds']:8.1f} s {stages[-1]['peak_mib']:9.0f} MiB", flush=True)
    wall = sum(stage["seconds"] for stage in stages)
    cleanse = json.loads((root / layout.CLEANSE_REPORT).read_text(encoding="utf-8"))
    inference = json.loads((root / layout.INFERENCE_REPORT).read_text(encoding="utf-8"))
    scored = sum(summary["rows"] for summary in inference["files"].values())
    result = {
        "factor": factor,
        "engine": engine,
        "outputs": outputs_digest(root),
        "rows": rows,
        "clean_rows": cleanse["rows"]["clean"],
        "inferred_rows": scored,
        "wall_s": round(wall, 1),
        "rows_per_s": round(rows / wall),
        "peak_mib": max(stage["peak_mib"] for stage in stages),
        "stages": stages,
    }
    shutil.rmtree(root)
    return result


def fingerprint(trained: Trained) -> str:
    """One hash of everything train writes: the models' pickles, the trial tables and the summary."""
    digest = hashlib.sha256()
    for name in sorted(trained.models):
        digest.update(pickle.dumps(trained.models[name]))
    for family in sorted(trained.tables):
        digest.update(trained.tables[family].to_csv(index=False).encode())
    digest.update(repr(sorted(trained.summary.items())).encode())
    return digest.hexdigest()


def timed_train(params: Params, compute: ComputeParams, scratch: Path, label: str) -> dict:
    """Train with a fresh storage on the given engine: wall time and the outputs' fingerprint."""
    storage = f"sqlite:///{scratch / label}.db"
    settings = params.model_copy(
        update={"train": params.train.model_copy(update={"storage": storage, "round_size": ROUND_SIZE})}
    )
    manifest = data_handoffs.FEATURE_MANIFEST.read()
    data = load_training_data(manifest, params.dataset.task, params.train.external_memory_rows)
    started = time.perf_counter()
    with trial_runner(compute) as execute:
        trained = train(settings, data, "bench", execute)
    seconds = time.perf_counter() - started
    print(f"{label}: {seconds:.1f} s", flush=True)
    return {"seconds": round(seconds, 1), "fingerprint": fingerprint(trained)}


def write_markdown(path: Path, results: dict, targets: dict[str, Target]) -> None:
    machine = results["machine"]
    lines = [
        f"Measured on {machine['cpus_used']} CPUs, Python {machine['python']} (`make bench`).",
        "",
        "Stages 1-6 and infer on upsampled data (files of 10x the bundled rows), `compute.engine: local` "
        "and `dask` (a local cluster of 2 worker processes x 1 thread):",
        "",
        "| run | rows | clean rows | rows scored by infer | wall s | rows / s | peak MiB (all processes) | "
        "same bytes as local |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    data = results.get("data", {})
    local = {run["factor"]: run["outputs"] for run in data.values() if run["engine"] == "local"}
    for label, run in data.items():
        same = (
            {True: "yes", False: "NO"}.get(run["outputs"] == local[run["factor"]], "-")
            if run["factor"] in local
            else "- (not run)"
        )
        lines.append(
            f"| {label} | {run['rows']:,} | {run['clean_rows']:,} | {run['inferred_rows']:,} | "
            f"{run['wall_s']:,.1f} | {run['rows_per_s']:,} | {run['peak_mib']:,.0f} | {same} |"
        )
    if results.get("data"):
        names = [stage["name"] for stage in next(iter(results["data"].values()))["stages"]]
        lines += ["", "| stage | " + " | ".join(f"{key} s / peak MiB" for key in results["data"]) + " |"]
        lines.append("| --- |" + " ---: |" * len(results["data"]))
        for position, name in enumerate(names):
            cells = [
                f"{run['stages'][position]['seconds']:,.1f} / {run['stages'][position]['peak_mib']:,.0f}"
                for run in results["data"].values()
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"The train stage's studies on the bundled data, default budget, `round_size: {ROUND_SIZE}`, "
        "`n_jobs: 2` per trial:",
        "",
        "| engine | train s | same bytes as local |",
        "| --- | ---: | --- |",
    ]
    runs = results.get("train", {})
    for label, run in runs.items():
        same = run["fingerprint"] == runs["local"]["fingerprint"]
        lines.append(f"| {label} | {run['seconds']:.1f} | {'yes' if same else 'NO'} |")
    external = results.get("external")
    if external:
        lines += [
            "",
            f"The train stage, XGBoost alone ({EXTERNAL_XGBOOST['n_trials']} trials of at most "
            f"{EXTERNAL_XGBOOST['fixed']['n_estimators']} rounds), on the features of the "
            f"{EXTERNAL_FACTOR}x copy ({external['train_rows']:,} train rows):",
            "",
            "| train matrix | train s | peak MiB | valid metric |",
            "| --- | ---: | ---: | ---: |",
        ]
        for label in ("in memory", "external memory"):
            run = external[label]
            lines.append(
                f"| {label} | {run['seconds']:.1f} | {run['peak_mib']:,.0f} | {run['valid_value']} |"
            )
    lines += ["", "| target | measured | limit | result |", "| --- | ---: | ---: | --- |"]
    for name, target in targets.items():
        lines.append(
            f"| {name} | {target.measured:,.1f} {target.unit} | {target.stated} | "
            f"{'pass' if target.passed else 'MISSED'} |"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def data_part(scratch: Path) -> dict:
    """Each factor on Dask, and the smallest also on the local engine (the alternative; the largest would
    need about ten times its memory, more than the machine has), whose outputs must be the same bytes."""
    runs = {f"{FACTORS[0]}x, local": timed_data(FACTORS[0], "local", scratch)}
    runs |= {f"{factor}x, dask": timed_data(factor, "dask", scratch) for factor in FACTORS}
    return runs


def train_part(scratch: Path) -> dict:
    params = load_params(REPO / "params.yaml")
    runs = {"local": timed_train(params, ComputeParams(engine="local"), scratch, "local")}
    for workers in WORKERS:
        compute = ComputeParams(engine="dask", workers=workers, threads_per_worker=1)
        runs[f"dask, {workers} worker{'s' if workers > 1 else ''}"] = timed_train(
            params, compute, scratch, f"dask-{workers}"
        )
    return runs


def external_part(scratch: Path) -> dict:
    """Stages 1-6 on the 100x copy, then the train stage with its matrix in memory and in external memory."""
    root = scratch / "external"
    rows = data_workspace(root, EXTERNAL_FACTOR, "local")
    for stage in DATA_STAGES[:-1]:
        run_sampled(stage, root, scratch / f"external-{stage}.log")
    train_rows = read_json(root / layout.CURATION_REPORT)["rows"]["train"]
    runs = {"rows": rows, "train_rows": train_rows}
    for label, limit in (("in memory", None), ("external memory", EXTERNAL_ROWS)):
        params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
        params["train"] |= {
            "candidates": ["xgboost"],
            "external_memory_rows": limit,
            "storage": f"sqlite:///{scratch / label.replace(' ', '-')}.db",
        }
        params["train"]["families"]["xgboost"] |= EXTERNAL_XGBOOST
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
        run = run_sampled("train", root, scratch / f"external-train-{limit}.log")
        report = read_json(root / layout.TRAIN_REPORT)
        runs[label] = {
            "seconds": run["seconds"],
            "peak_mib": run["peak_mib"],
            "matrix": report["tuning"].get("train_matrix", "in_memory"),
            "valid_value": report["candidates"]["xgboost"]["best_value"],
        }
        print(f"train, {label}: {run['seconds']:.1f} s {run['peak_mib']:.0f} MiB", flush=True)
    shutil.rmtree(root)
    return runs


def main() -> int:
    """Run the parts named on the command line (default both), write the results, and return 1 if a target
    is missed."""
    logging.basicConfig(level=logging.WARNING)
    cpus = pin_cpus(CPU_LIMIT)
    parts = sys.argv[1:] or list(PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise SystemExit(f"unknown part(s) {unknown}: {', '.join(PARTS)}")
    last = RESULTS_DIR / "scale.json"
    results = json.loads(last.read_text(encoding="utf-8")) if last.exists() else {}
    results = {key: results[key] for key in PARTS if key in results and key not in parts}
    scratch = Path(tempfile.mkdtemp(prefix="pillars-bench-scale-"))
    started = datetime.now(UTC)
    if "data" in parts:
        results["data"] = data_part(scratch)
    if "train" in parts:
        results["train"] = train_part(scratch)
    if "external" in parts:
        results["external"] = external_part(scratch)
    targets = {}
    if "train" in results:
        local = results["train"]["local"]["fingerprint"]
        differing = sum(run["fingerprint"] != local for run in results["train"].values())
        targets["train engines whose bytes differ from local"] = Target("train bytes", differing, 1, "runs")
    if "data" in results:
        small, large = results["data"][f"{FACTORS[0]}x, dask"], results["data"][f"{FACTORS[-1]}x, dask"]
        local = results["data"][f"{FACTORS[0]}x, local"]
        differing = int(small["outputs"] != local["outputs"])
        targets["dask data outputs that differ from local"] = Target("data bytes", differing, 1, "runs")
        targets["1000x peak memory, all processes"] = Target("peak", large["peak_mib"], PEAK_LIMIT_MIB, "MiB")
        ratio = large["wall_s"] / small["wall_s"]
        targets["1000x wall / 100x wall"] = Target("wall ratio", ratio, WALL_RATIO_LIMIT, "x")
    if "external" in results:
        held, external = results["external"]["in memory"], results["external"]["external memory"]
        targets["external memory train peak (below in memory's)"] = Target(
            "external peak", external["peak_mib"], held["peak_mib"], "MiB"
        )
    results |= {"started": started.isoformat(timespec="seconds"), "machine": machine_facts(cpus)}
    return write_results("scale", results, targets, write_markdown)


if __name__ == "__main__":
    sys.exit(main())
