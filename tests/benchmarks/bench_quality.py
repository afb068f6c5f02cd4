"""Benchmark: the selected model against AutoML and default models, on the same split, at the same cost.

Run by `make bench` (not a pytest test). For the bundled default data and for each generated dataset shape of
tests/shapes.py (binary, multiclass, count regression), in a temporary copy of the working tree (the shapes
through `make init DATA=... TARGET=...` with the default budget):

1. `dvc repro featurize`, then `dvc repro train` timed: its wall time is the budget B;
2. `dvc repro assess`: the selected model's test metrics;
3. FLAML AutoML on the same train rows, choosing on the same valid rows, with `time_budget` B and 2 B
   (the stretch), scored on the same test rows;
4. default (untuned) LightGBM and XGBoost fitted on the same train rows.

Targets: on the default data, the selected model's test metric (train.metric) and log loss at least FLAML's
at budget B (`min` targets); FLAML at 2 B is reported beside it as the stretch. On every shape, the selected
model's primary metric at least the better default's. Results go to tests/benchmarks/results/quality.{json,md};
it exits with status 1 when a target is missed.
"""

import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from bench_data_pillars import (
    BIN,
    CPU_LIMIT,
    REPO,
    RESULTS_DIR,
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
DEFAULT_DATA = "default"
STRETCH = 2  # FLAML's second run gets this many times the train stage's wall time
FLAML_METRICS = {  # our metric -> FLAML's name for it
    "roc_auc": "roc_auc",
    "average_precision": "ap",
    "log_loss": "log_loss",
    "roc_auc_ovr": "roc_auc_ovr",
    "rmse": "rmse",
    "mae": "mae",
}


class Split:
    """The pipeline's own feature matrices of train, valid and test."""

    def __init__(self, work: Path, task: str) -> None:
        target = json.loads((work / "data/features/manifest.json").read_text())["target"]
        frames = {
            name: pd.read_parquet(work / f"data/features/{name}.parquet")
            for name in ("train", "valid", "test")
        }
        self.x = {name: frame.drop(columns=target).to_numpy() for name, frame in frames.items()}
        self.y = {name: frame[target].to_numpy() for name, frame in frames.items()}
        self.task = task
        self.classes = 0 if task == "regression" else int(max(y.max() for y in self.y.values())) + 1

    def test_metrics(self, scores: np.ndarray) -> dict:
        """Every metric of the task on the test rows (a class a model never saw scores 0)."""
        if self.task == "multiclass" and scores.shape[1] < self.classes:
            scores = np.pad(scores, ((0, 0), (0, self.classes - scores.shape[1])))
        return evaluate(self.task, self.y["test"], scores).values


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


def defaults(split: Split) -> dict[str, dict]:
    """The default models' test metrics, fitted on the pipeline's own train feature matrix."""
    results = {}
    for name, model in default_models(split.task).items():
        model.fit(split.x["train"], split.y["train"])
        results[name] = split.test_metrics(predict_scores(model, split.x["test"], split.task))
    return results


def flaml(split: Split, metric: str, budget_s: float) -> dict:
    """FLAML AutoML with `budget_s` seconds, searching on train and choosing on valid; its test metrics."""
    from flaml import AutoML

    automl = AutoML()
    started = time.monotonic()
    automl.fit(
        X_train=split.x["train"],
        y_train=split.y["train"],
        X_val=split.x["valid"],
        y_val=split.y["valid"],
        task="regression" if split.task == "regression" else "classification",
        metric=FLAML_METRICS[metric],
        time_budget=budget_s,
        n_jobs=CPU_LIMIT,
        seed=SEED,
        verbose=0,
    )
    seconds = time.monotonic() - started
    if split.task == "regression":
        scores = np.asarray(automl.predict(split.x["test"]), dtype="float64")
    else:
        probabilities = np.asarray(automl.predict_proba(split.x["test"]), dtype="float64")
        scores = probabilities[:, 1] if split.task == "binary" else probabilities
    return {
        "budget_s": round(budget_s, 1),
        "seconds": round(seconds, 1),
        "best_estimator": automl.best_estimator,
        "test": split.test_metrics(scores),
    }


def run_dataset(name: str, scratch: Path) -> dict:
    """The pipeline to assess in a fresh copy (the shapes through make init), then FLAML and the defaults."""
    work = scratch / name
    copy_working_tree(work)
    env = child_env(work)
    logs = scratch / "logs"
    seconds = {}
    if name != DEFAULT_DATA:
        data, target = write_shape(name, scratch / "downloads")
        make = ["make", "--no-print-directory", "-o", f"{BIN.parent}/.installed", f"VENV={BIN.parent}"]
        command = [*make, "init", f"DATA={data}", f"TARGET={target}"]
        seconds["init"] = run_measured(f"{name} init", command, work, env, logs / f"{name}-init.log").seconds
    dvc = str(BIN / "dvc")
    for stage in ("featurize", "train", "assess"):
        command = [dvc, "repro", stage]
        seconds[stage] = run_measured(
            f"{name} {stage}", command, work, env, logs / f"{name}-{stage}.log"
        ).seconds
    params = yaml.safe_load((work / "params.yaml").read_text())
    task, metric = params["dataset"]["task"], params["train"]["metric"]
    split = Split(work, task)
    budget = seconds["train"]
    return {
        "task": task,
        "metric": metric,
        "greater_is_better": METRICS[task][metric].greater_is_better,
        "rows": json.loads((work / "metrics/curation.json").read_text())["rows"],
        "candidates": params["train"]["candidates"],
        "selected": json.loads((work / "metrics/assess.json").read_text())["model"],
        "pillars": json.loads((work / "metrics/assess.json").read_text())["test"],
        "flaml": flaml(split, metric, budget),
        "flaml_stretch": flaml(split, metric, STRETCH * budget),
        "defaults": defaults(split),
        "seconds": {stage: round(value, 1) for stage, value in seconds.items()},
    }


def at_least(name: str, ours: float, theirs: float, metric: str, greater_is_better: bool) -> Target:
    """Ours at least as good as theirs (for a metric where lower is better: at most)."""
    if greater_is_better:
        return Target(name, ours, theirs, metric, kind="min")
    return Target(name, -ours, -theirs, f"-{metric}", kind="min")


def targets_of(results: dict) -> dict[str, Target]:
    """The default data: the primary metric and log loss against FLAML at the same budget; every dataset:
    the primary metric against the better default model."""
    targets = {}
    for name, found in results["datasets"].items():
        metric, better = found["metric"], found["greater_is_better"]
        ours = found["pillars"][metric]
        best_default = (max if better else min)(values[metric] for values in found["defaults"].values())
        targets[f"{name} vs defaults"] = at_least(f"{name} test {metric}", ours, best_default, metric, better)
        if name == DEFAULT_DATA:
            flaml_test = found["flaml"]["test"]
            targets[f"{name} vs FLAML {metric}"] = at_least(
                f"{name} test {metric} vs FLAML", ours, flaml_test[metric], metric, better
            )
            if "log_loss" in found["pillars"] and metric != "log_loss":
                targets[f"{name} vs FLAML log_loss"] = at_least(
                    f"{name} test log_loss vs FLAML",
                    found["pillars"]["log_loss"],
                    flaml_test["log_loss"],
                    "log_loss",
                    False,
                )
    return targets


def write_markdown(path: Path, results: dict, targets: dict[str, Target]) -> None:
    machine = results["machine"]
    lines = [
        f"Measured on {machine['cpus_used']} CPUs, Python {machine['python']} (`make bench`): the pipeline with "
        "its default budget (the shapes through `make init`), FLAML AutoML given the train stage's wall time "
        f"(B) and {STRETCH} B on the same split, and default LightGBM / XGBoost; test split.",
        "",
        "| dataset | task | rows (train/valid/test) | metric | pillars (selected) | FLAML, B | FLAML, 2 B | "
        "default LightGBM | default XGBoost | B (train s) | result |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, found in results["datasets"].items():
        rows = found["rows"]
        shown = [found["metric"]] + (
            ["log_loss"] if "log_loss" in found["pillars"] and found["metric"] != "log_loss" else []
        )
        for metric in shown:
            passed = all(target.passed for key, target in targets.items() if key.startswith(f"{name} "))
            lines.append(
                f"| {name} | {found['task']} | {rows['train']}/{rows['valid']}/{rows['test']} | {metric} | "
                f"{found['pillars'][metric]:.4f} ({found['selected']}) | "
                f"{found['flaml']['test'][metric]:.4f} ({found['flaml']['best_estimator']}) | "
                f"{found['flaml_stretch']['test'][metric]:.4f} ({found['flaml_stretch']['best_estimator']}) | "
                f"{found['defaults']['lightgbm'][metric]:.4f} | {found['defaults']['xgboost'][metric]:.4f} | "
                f"{found['seconds']['train']:.0f} | {'pass' if passed else 'FAIL'} |"
            )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    cpus = pin_cpus(CPU_LIMIT)
    started = datetime.now(UTC)
    scratch = Path(tempfile.mkdtemp(prefix="pillars-bench-quality-"))
    names = [DEFAULT_DATA, *SHAPES] if len(sys.argv) < 2 else sys.argv[1:]
    # datasets named on the command line replace their entries in the last results; the others are kept
    previous = RESULTS_DIR / "quality.json"
    datasets = json.loads(previous.read_text())["datasets"] if len(sys.argv) > 1 and previous.exists() else {}
    try:
        for name in names:
            datasets[name] = run_dataset(name, scratch) | {
                "started": datetime.now(UTC).isoformat(timespec="seconds")
            }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results = {
        "started": started.isoformat(timespec="seconds"),
        "machine": machine_facts(cpus),
        "datasets": datasets,
    }
    return write_results("quality", results, targets_of(results), write_markdown)


if __name__ == "__main__":
    sys.exit(main())
