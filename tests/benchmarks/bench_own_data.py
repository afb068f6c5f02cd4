"""Benchmark: your own data through `make init` and the pipeline, against default models on the same split.

Run by `make bench` (not a pytest test). For each dataset shape of tests/shapes.py, in a temporary copy of
the working tree: `make init DATA=... TARGET=...` with the default budget, then `dvc repro assess`; then a
default (untuned) LightGBM and a default XGBoost are fitted on the same feature matrix of the same train
split and scored on the same test split. The target: the selected model's primary test metric at least the
better of the two defaults' (for a metric where lower is better: at most). Results go to
tests/benchmarks/results/own_data.{json,md}; it exits with status 1 when a target is missed.
"""

import json
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from bench_data_pillars import (
    BIN,
    CPU_LIMIT,
    REPO,
    Target,
    child_env,
    copy_working_tree,
    machine_facts,
    pin_cpus,
    run_measured,
    write_results,
)

sys.path.insert(0, str(REPO))
from tests.shapes import SHAPES, write_shape

from pillars.core.metrics import METRICS, evaluate, predict_scores

SEED = 0


def default_models(task: str) -> dict[str, object]:
    """LightGBM and XGBoost as a user would first try them: library defaults, two threads, seeded."""
    import lightgbm
    import xgboost

    if task == "regression":
        return {
            "lightgbm": lightgbm.LGBMRegressor(n_jobs=2, random_state=SEED, verbose=-1),
            "xgboost": xgboost.XGBRegressor(n_jobs=2, random_state=SEED),
        }
    return {
        "lightgbm": lightgbm.LGBMClassifier(n_jobs=2, random_state=SEED, verbose=-1),
        "xgboost": xgboost.XGBClassifier(n_jobs=2, random_state=SEED),
    }


def baselines(work: Path, task: str) -> dict[str, dict]:
    """The default models' test metrics, fitted on the pipeline's own train feature matrix."""
    target = json.loads((work / "data/features/manifest.json").read_text())["target"]
    train = pd.read_parquet(work / "data/features/train.parquet")
    test = pd.read_parquet(work / "data/features/test.parquet")
    x_train, y_train = train.drop(columns=target).to_numpy(), train[target].to_numpy()
    x_test, y_test = test.drop(columns=target).to_numpy(), test[target].to_numpy()
    classes = int(max(y_train.max(), y_test.max())) + 1 if task != "regression" else 0
    results = {}
    for name, model in default_models(task).items():
        model.fit(x_train, y_train)
        scores = predict_scores(model, x_test, task)
        if task == "multiclass" and scores.shape[1] < classes:  # a class absent from train
            scores = np.pad(scores, ((0, 0), (0, classes - scores.shape[1])))
        results[name] = evaluate(task, y_test, scores).values
    return results


def run_shape(shape: str, scratch: Path) -> dict:
    """make init + dvc repro assess on one shape in a fresh copy; its results."""
    work = scratch / shape
    copy_working_tree(work)
    env = child_env(work)
    data, target = write_shape(shape, scratch / "downloads")
    logs = scratch / "logs"
    make = ["make", "--no-print-directory", "-o", f"{BIN.parent}/.installed", f"VENV={BIN.parent}"]
    init = run_measured(
        f"{shape} init",
        [*make, "init", f"DATA={data}", f"TARGET={target}"],
        work,
        env,
        logs / f"{shape}-init.log",
    )
    repro = run_measured(
        f"{shape} repro", [str(BIN / "dvc"), "repro", "assess"], work, env, logs / f"{shape}-repro.log"
    )
    params = yaml.safe_load((work / "params.yaml").read_text())
    task, metric = params["dataset"]["task"], params["train"]["metric"]
    assessed = json.loads((work / "metrics/assess.json").read_text())
    return {
        "task": task,
        "metric": metric,
        "greater_is_better": METRICS[task][metric].greater_is_better,
        "rows": json.loads((work / "metrics/curation.json").read_text())["rows"],
        "selected": assessed["model"],
        "pillars": assessed["test"],
        "defaults": baselines(work, task),
        "seconds": {"init": init.seconds, "repro_to_assess": repro.seconds},
    }


def targets_of(results: dict) -> dict[str, Target]:
    """Per shape: the selected model's primary metric against the better default's."""
    targets = {}
    for shape, found in results["shapes"].items():
        metric = found["metric"]
        ours = found["pillars"][metric]
        theirs = [values[metric] for values in found["defaults"].values()]
        if found["greater_is_better"]:
            targets[shape] = Target(f"{shape} test {metric}", ours, max(theirs), metric, kind="min")
        else:  # lower is better: ours must not exceed the best default (a tiny margin for rounding)
            targets[shape] = Target(f"{shape} test {metric}", -ours, -min(theirs), f"-{metric}", kind="min")
    return targets


def write_markdown(path: Path, results: dict, targets: dict[str, Target]) -> None:
    machine = results["machine"]
    lines = [
        f"Measured on {machine['cpus_used']} CPUs, Python {machine['python']} (`make bench`): `make init` with the "
        "default budget, `dvc repro assess`, and default LightGBM / XGBoost on the same train and test split.",
        "",
        "| dataset | task | rows (train/valid/test) | metric | pillars (selected) | default LightGBM | default XGBoost | init + repro s | result |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for shape, found in results["shapes"].items():
        metric, rows = found["metric"], found["rows"]
        lines.append(
            f"| {shape} | {found['task']} | {rows['train']}/{rows['valid']}/{rows['test']} | {metric} | "
            f"{found['pillars'][metric]:.4f} ({found['selected']}) | {found['defaults']['lightgbm'][metric]:.4f} | "
            f"{found['defaults']['xgboost'][metric]:.4f} | {sum(found['seconds'].values()):.0f} | "
            f"{'pass' if targets[shape].passed else 'FAIL'} |"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    cpus = pin_cpus(CPU_LIMIT)
    started = datetime.now(UTC)
    scratch = Path(tempfile.mkdtemp(prefix="pillars-bench-own-data-"))
    try:
        shapes = {shape: run_shape(shape, scratch) for shape in SHAPES}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results = {
        "started": started.isoformat(timespec="seconds"),
        "machine": machine_facts(cpus),
        "shapes": shapes,
    }
    return write_results("own_data", results, targets_of(results), write_markdown)


if __name__ == "__main__":
    sys.exit(main())
