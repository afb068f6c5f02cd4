"""Benchmark of the whole pipeline (stages 1-10) on the bundled data with the default budget.

Run by `make bench` after the data-pillar benchmark (not a pytest test). In a temporary copy of the
working tree with no Optuna storage and its own DVC cache, it times a full `dvc repro` from scratch and
then a no-op `dvc repro` (median of three), on at most two CPUs. Results go to
tests/benchmarks/results/pipeline.{json,md}; it exits with status 1 when a target is missed.
"""

import json
import shutil
import statistics
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench_data_pillars import (
    BIN,
    CPU_LIMIT,
    BenchError,
    Target,
    child_env,
    copy_working_tree,
    machine_facts,
    pin_cpus,
    run_measured,
    write_results,
)

FULL_LIMIT_S = 300.0
NOOP_LIMIT_S = 5.0
NOOP_RUNS = 3


def write_markdown(path: Path, results: dict, targets: dict[str, Target]) -> None:
    machine = results["machine"]
    lines = [
        f"Measured on {machine['cpus_used']} CPUs, Python {machine['python']} (`make bench`).",
        "",
        "| run | wall s | peak MiB | target | result |",
        "| --- | ---: | ---: | --- | --- |",
        f"| full `dvc repro` (stages 1-10, default budget, from scratch) | {results['full']['seconds']:.1f} | "
        f"{results['full']['peak_mib']:,.0f} | < {FULL_LIMIT_S:.0f} s | {'pass' if targets['full'].passed else 'FAIL'} |",
        f"| no-op `dvc repro` (median of {NOOP_RUNS}) | {results['noop_median_s']:.2f} | "
        f"{results['noop'][0]['peak_mib']:,.0f} | < {NOOP_LIMIT_S:.0f} s | {'pass' if targets['noop'].passed else 'FAIL'} |",
        "",
        f"Selected model: {results['selected']['model']}, test ROC AUC {results['test_roc_auc']:.4f}.",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    """Time the full and the no-op `dvc repro`, write the results, and return 1 if a target is missed."""
    cpus = pin_cpus(CPU_LIMIT)
    started = datetime.now(UTC)
    scratch = Path(tempfile.mkdtemp(prefix="pillars-bench-pipeline-"))
    work, logs = scratch / "repo", scratch / "logs"
    print(f"benchmark copy: {work} (CPUs {cpus})", flush=True)
    try:
        copy_working_tree(work)
        env = child_env(work)
        dvc = [str(BIN / "dvc"), "repro"]
        full = run_measured("full dvc repro", dvc, work, env, logs / "full.log")
        print(f"full dvc repro: {full.seconds:.1f} s", flush=True)
        noop = [
            run_measured("no-op dvc repro", dvc, work, env, logs / f"noop-{run}.log")
            for run in range(NOOP_RUNS)
        ]
        selected = json.loads((work / "metrics/selection.json").read_text())
        assessed = json.loads((work / "metrics/assess.json").read_text())
    except BenchError as error:
        print(f"benchmark failed: {error}\n(logs in {logs})", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    noop_median = statistics.median(run.seconds for run in noop)
    targets = {
        "full": Target("full_dvc_repro_s", full.seconds, FULL_LIMIT_S, "s"),
        "noop": Target("noop_dvc_repro_s", noop_median, NOOP_LIMIT_S, "s"),
    }
    results = {
        "started": started.isoformat(timespec="seconds"),
        "machine": machine_facts(cpus),
        "full": asdict(full),
        "noop": [asdict(run) for run in noop],
        "noop_median_s": noop_median,
        "selected": {"model": selected["model"], "valid": selected["valid"]},
        "test_roc_auc": assessed["test"].get("roc_auc"),
    }
    return write_results("pipeline", results, targets, write_markdown)


if __name__ == "__main__":
    sys.exit(main())
