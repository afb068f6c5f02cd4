"""Benchmark: your own data in a time you choose, on tables sized like real exports (tests/shapes.py's
EXPORT_SHAPES: 10,000 x 50 with 7 classes and missing values; 300,000 rows with a date, a 4,000-valued
category and 3 % missing targets; 5,000 x 85 numeric with 6 % positives).

Run by `make bench` (not a pytest test; `python tests/benchmarks/bench_own_data.py [--minutes 5] [SHAPE ...]`).
Per shape, in a temporary copy of the working tree, as a user would:

1. `make init DATA=... TARGET=... BUDGET=<minutes>`: the counts init chose (trials, round caps, threads);
2. `make run`, timed, on an idle machine, and again from the same init in a second copy with one competing
   CPU-bound process running the whole time;
3. default (untuned) LightGBM and XGBoost on the same train rows, and FLAML AutoML given the idle train
   stage's wall time, both scored on the same test rows.

Targets: `make run` within 1.25x the budget idle and within 1.5x its idle time with the competing process;
the selected model's test metric at least the better default's. Results: tests/benchmarks/results/
own_data.{json,md}; exit status 1 when a target is missed.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import yaml
from bench_data_pillars import (
    BIN,
    CPU_LIMIT,
    REPO,
    RESULTS_DIR,
    BenchError,
    Target,
    child_env,
    copy_working_tree,
    machine_facts,
    pin_cpus,
    run_measured,
    write_results,
)
from bench_quality import Split, at_least, defaults, flaml

sys.path.insert(0, str(REPO))
from tests.shapes import EXPORT_SHAPES, write_shape

from pillars.core.lifetime import end_with_parent  # the competitor ends with this benchmark
from pillars.core.metrics import METRICS

RUN_LIMIT = 1.25  # make run's wall time over the budget init reported, idle
REFUSAL = re.compile(r"\d+ minutes is too little for this data[^\n]*?make budget MINUTES=(\d+)[^\n]*")
BUSY_LIMIT = 1.5  # make run's wall time with a competing CPU-bound process over its idle time
COMPETITOR = "while True: pass"
SHAPE_ORDER = ["wide_imbalanced", "loan_grades", "flight_delays"]  # the quickest first


def make_command(*arguments: str) -> list[str]:
    return [
        "make",
        "--no-print-directory",
        "-o",
        f"{BIN.parent}/.installed",
        f"VENV={BIN.parent}",
        *arguments,
    ]


def chosen_counts(params: dict) -> dict:
    """What init wrote for the budget: trial caps, round caps where lowered, threads, train's seconds."""
    train = params["train"]
    families = {name: train["families"][name] for name in train["candidates"]}
    return {
        "budget": train["budget"],
        "n_trials": {name: family["n_trials"] for name, family in families.items()},
        "fixed": {name: family.get("fixed", {}) for name, family in families.items()},
        "n_jobs": train["n_jobs"],
    }


def timed_run(work: Path, logs: Path, label: str) -> dict:
    """`make run` in `work`, timed as a whole; the train stage's own time from train.json is not timed, so
    train is run first on its own (`dvc repro train`, then `make run` for the rest)."""
    env = child_env(work)
    train = run_measured(
        f"{label} train", [str(BIN / "dvc"), "repro", "train"], work, env, logs / f"{label}-train.log"
    )
    rest = run_measured(f"{label} run", make_command("run"), work, env, logs / f"{label}-run.log")
    return {"train_s": round(train.seconds, 1), "make_run_s": round(train.seconds + rest.seconds, 1)}


def refusal(error: BenchError) -> tuple[str, float] | None:
    """The line in which `make init` refused a budget too small for the data, and the least minutes it
    names; None if init failed otherwise."""
    found = REFUSAL.search(str(error))
    return (found.group(0), float(found.group(1))) if found else None


def run_shapes(name: str, minutes: float, scratch: Path, busy_too: bool, flaml_too: bool) -> dict[str, dict]:
    """The shape at `minutes`; if init refuses that budget, the refusal, then the shape at the least
    minutes the refusal names, as a user would."""
    try:
        return {f"{name} {minutes:g}m": run_shape(name, minutes, scratch, busy_too, flaml_too)}
    except BenchError as error:
        if (refused := refusal(error)) is None:
            raise
    message, least = refused
    entry = {"shape": name, "budget_minutes": minutes, "refused": message, "least_minutes": least}
    return {f"{name} {minutes:g}m": entry, **run_shapes(name, least, scratch, busy_too, flaml_too)}


def run_shape(name: str, minutes: float, scratch: Path, busy_too: bool, flaml_too: bool) -> dict:
    work, busy = scratch / f"{name}-{minutes:g}", scratch / f"{name}-{minutes:g}-busy"
    copy_working_tree(work)
    logs = scratch / "logs"
    data, target = write_shape(name, scratch / "downloads")
    init = run_measured(
        f"{name} init",
        make_command("init", f"DATA={data}", f"TARGET={target}", f"BUDGET={minutes:g}m"),
        work,
        child_env(work),
        logs / f"{name}-{minutes:g}-init.log",
    )
    if busy_too:
        shutil.copytree(work, busy, symlinks=True)  # the same init (params, features in the DVC cache)
    idle_run = timed_run(work, logs, f"{name}-{minutes:g}-idle")
    busy_run = None
    if busy_too:
        competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR], preexec_fn=end_with_parent)
        try:
            busy_run = timed_run(busy, logs, f"{name}-{minutes:g}-busy")
        finally:
            competitor.kill()
            competitor.wait()
    params = yaml.safe_load((work / "params.yaml").read_text())
    task, metric = params["dataset"]["task"], params["train"]["metric"]
    split = Split(work, task)
    assessed = json.loads((work / "metrics/assess.json").read_text())
    trained = json.loads((work / "metrics/train.json").read_text())
    return {
        "shape": name,
        "task": task,
        "metric": metric,
        "greater_is_better": METRICS[task][metric].greater_is_better,
        "rows": json.loads((work / "metrics/curation.json").read_text())["rows"],
        "budget_minutes": minutes,
        "init_s": round(init.seconds, 1),
        "chosen": chosen_counts(params),
        "trials": {family: entry.get("trials") for family, entry in trained["candidates"].items()},
        "dropped": trained["tuning"].get("dropped", {}),
        "threads": trained["tuning"]["threads"],
        "idle": idle_run,
        "busy": busy_run,
        "selected": assessed["model"],
        "pillars": assessed["test"],
        "baseline": assessed["baseline"],
        "defaults": defaults(split),
        "flaml": flaml(split, metric, idle_run["train_s"]) if flaml_too else None,
    }


def targets_of(results: dict) -> dict[str, Target]:
    targets = {}
    for name, found in results["datasets"].items():
        if "refused" in found:
            continue
        budget_s = found["budget_minutes"] * 60
        targets[f"{name} idle"] = Target(
            f"{name}: make run s", found["idle"]["make_run_s"], RUN_LIMIT * budget_s, "s", kind="max"
        )
        if found["busy"] is not None:
            targets[f"{name} busy"] = Target(
                f"{name}: make run s, one competing process",
                found["busy"]["make_run_s"],
                BUSY_LIMIT * found["idle"]["make_run_s"],
                "s",
                kind="max",
            )
        metric, better = found["metric"], found["greater_is_better"]
        best_default = (max if better else min)(values[metric] for values in found["defaults"].values())
        targets[f"{name} vs defaults"] = at_least(
            f"{name} test {metric}", found["pillars"][metric], best_default, metric, better
        )
    return targets


def write_markdown(path: Path, results: dict, targets: dict[str, Target]) -> None:
    machine = results["machine"]
    lines = [
        f"Measured on {machine['cpus_used']} CPUs, Python {machine['python']} "
        "(`python tests/benchmarks/bench_own_data.py`): `make init ... BUDGET=<minutes>`, then `make run`, "
        "idle and with one competing CPU-bound process; test split. FLAML got the idle train stage's wall time.",
        "",
        "| shape | task | rows (train/valid/test) | budget | make run idle | with a competing process | "
        "trials per family (init's caps) | metric | pillars (selected) | library defaults (train's baseline) | "
        "default LightGBM | default XGBoost | FLAML | result |",
        "| --- | --- | --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, found in results["datasets"].items():
        if "refused" in found:
            lines.append(
                f"| {found['shape']} | | | {found['budget_minutes']:g} min | refused by make init: "
                f"{found['refused']} | | | | | | | | | |"
            )
            continue
        rows, metric = found["rows"], found["metric"]
        budget_s = found["budget_minutes"] * 60
        trials = ", ".join(
            f"{family} {count}/{found['chosen']['n_trials'][family]}"
            for family, count in found["trials"].items()
            if family in found["chosen"]["n_trials"]
        )
        passed = all(target.passed for key, target in targets.items() if key.startswith(f"{name} "))
        busy = found["busy"]
        competed = (
            "-"
            if busy is None
            else f"{busy['make_run_s']:.0f} s ({busy['make_run_s'] / found['idle']['make_run_s']:.2f}x idle)"
        )
        automl = found["flaml"]
        flaml_cell = "-" if automl is None else f"{automl['test'][metric]:.4f} ({automl['best_estimator']})"
        lines.append(
            f"| {found['shape']} | {found['task']} | {rows['train']}/{rows['valid']}/{rows['test']} | "
            f"{found['budget_minutes']:g} min | {found['idle']['make_run_s']:.0f} s "
            f"({found['idle']['make_run_s'] / budget_s:.2f}x) | {competed} | {trials} | {metric} | "
            f"{found['pillars'][metric]:.4f} ({found['selected']}) | "
            f"{found['baseline'][metric]:.4f} ({found['baseline']['family']}) | "
            f"{found['defaults']['lightgbm'][metric]:.4f} | {found['defaults']['xgboost'][metric]:.4f} | "
            f"{flaml_cell} | {'pass' if passed else 'FAIL'} |"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[5.0], help="budgets given to make init")
    parser.add_argument("--idle-only", action="store_true", help="no run with a competing process")
    parser.add_argument("--no-flaml", action="store_true", help="no FLAML (it takes the train stage's time)")
    parser.add_argument("shapes", nargs="*", default=sorted(EXPORT_SHAPES, key=SHAPE_ORDER.index))
    args = parser.parse_args()
    cpus = pin_cpus(CPU_LIMIT)
    started = datetime.now(UTC)
    scratch = Path(tempfile.mkdtemp(prefix="pillars-bench-own-data-"))
    previous = RESULTS_DIR / "own_data.json"  # entries of other shapes and budgets are kept
    datasets = json.loads(previous.read_text())["datasets"] if previous.exists() else {}
    try:
        for name in args.shapes:
            for minutes in args.minutes:
                datasets |= run_shapes(
                    name, minutes, scratch, busy_too=not args.idle_only, flaml_too=not args.no_flaml
                )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results = {
        "started": started.isoformat(timespec="seconds"),
        "machine": machine_facts(cpus),
        "datasets": datasets,
    }
    return write_results("own_data", results, targets_of(results), write_markdown)


if __name__ == "__main__":
    sys.exit(main())
