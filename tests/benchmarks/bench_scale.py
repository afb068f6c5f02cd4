"""Benchmark of tuning on Dask: the train stage's studies with `compute.engine: dask` on a local cluster of 1
and 2 worker processes against `engine: local`, on the bundled data's feature matrices.

Run by `make bench` (not a pytest test), after `make run` (it reads data/features). Every run uses the same
params - the default budget with `train.round_size` ROUND_SIZE, a fresh Optuna storage - so every run must
give the same models, trial tables and train metrics, byte for byte: that is the target. Wall time is
reported beside it (on 2 cores, with `train.n_jobs: 2` threads per trial, two workers oversubscribe the
machine: the speed-up needs more cores than one trial's threads). Results go to
tests/benchmarks/results/scale.{json,md}; it exits with status 1 when the bytes differ.

Not measured yet: stages 1-6 and batch inference on Dask DataFrames (100x and 1000x data) - those stages
run in one process with pandas whatever the engine (see the README).
"""

import hashlib
import logging
import pickle
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench_data_pillars import CPU_LIMIT, REPO, Target, machine_facts, pin_cpus, write_results

from pillars.core import layout
from pillars.core.io import read_json
from pillars.core.params import ComputeParams, Params, load_params
from pillars.stages.train import Trained, load_training_data, train
from pillars.training.tuning import trial_runner

ROUND_SIZE = 2
WORKERS = (1, 2)


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
    data = load_training_data(read_json(layout.FEATURE_MANIFEST), params.dataset.task)
    started = time.perf_counter()
    with trial_runner(compute) as execute:
        trained = train(settings, data, "bench", execute)
    seconds = time.perf_counter() - started
    print(f"{label}: {seconds:.1f} s", flush=True)
    return {"seconds": round(seconds, 1), "fingerprint": fingerprint(trained)}


def write_markdown(path: Path, results: dict, targets: dict[str, Target]) -> None:
    machine = results["machine"]
    lines = [
        f"Measured on {machine['cpus_used']} CPUs, Python {machine['python']} (`make bench`): the train stage's "
        f"studies on the bundled data, default budget, `round_size: {ROUND_SIZE}`, `n_jobs: 2` per trial.",
        "",
        "| engine | train s | same bytes as local |",
        "| --- | ---: | --- |",
    ]
    local = results["runs"]["local"]["fingerprint"]
    for label, run in results["runs"].items():
        lines.append(f"| {label} | {run['seconds']:.1f} | {'yes' if run['fingerprint'] == local else 'NO'} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    """Train on each engine, write the results, and return 1 if an engine's bytes differ from local's."""
    logging.basicConfig(level=logging.WARNING)
    cpus = pin_cpus(CPU_LIMIT)
    started = datetime.now(UTC)
    params = load_params(REPO / "params.yaml")
    scratch = Path(tempfile.mkdtemp(prefix="pillars-bench-scale-"))
    runs = {"local": timed_train(params, ComputeParams(engine="local"), scratch, "local")}
    for workers in WORKERS:
        compute = ComputeParams(engine="dask", workers=workers, threads_per_worker=1)
        runs[f"dask, {workers} worker{'s' if workers > 1 else ''}"] = timed_train(
            params, compute, scratch, f"dask-{workers}"
        )
    differing = sum(run["fingerprint"] != runs["local"]["fingerprint"] for run in runs.values())
    targets = {"bytes": Target("engines whose outputs differ from local", differing, 1, "runs")}
    results = {
        "started": started.isoformat(timespec="seconds"),
        "machine": machine_facts(cpus),
        "round_size": ROUND_SIZE,
        "runs": runs,
    }
    return write_results("scale", results, targets, write_markdown)


if __name__ == "__main__":
    sys.exit(main())
