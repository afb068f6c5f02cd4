"""Benchmark: the gate's paired comparison, calibrated against chance on the bundled data.

Run by `make bench` (not a pytest test). The bundled feature matrices (train + valid + test) are pooled and
resplit 200 times with seeds: an evaluation split of the bundled test size and a train split of the bundled
train size. On each resplit a cheap LightGBM (few trees, one thread, row and column subsampling so that the
seed matters) is fitted twice, with two seeds, and the gate's comparison (`pillars.training.evidence.compare`
with `validate_model.evidence` from params.yaml: DeLong's test for ROC AUC, the paired bootstrap interval)
judges them on the evaluation rows:

- null: the second seed against the first, the same model retrained: how often is it called `better`
  (target at most 5 %) or `worse`; and again with `min_gain` 0, the tests alone, to show what it is for;
- power: the second seed against the first with its scores made worse by seeded noise on the logit, scaled
  so that the mean difference of ROC AUC over the resplits is +0.010 (the scale is found on the first
  resplits, the gain reached over all of them is reported): how often is the candidate called `better`
  (target at least 80 %).

Results: tests/benchmarks/results/gate.{json,md}.
"""

import argparse
import os
import sys
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from bench_data_pillars import CPU_LIMIT, REPO, Target, machine_facts, pin_cpus, write_results

sys.path.insert(0, str(REPO / "src"))
from pillars.core import data_handoffs, layout
from pillars.core.metrics import score
from pillars.core.params import load_params
from pillars.training.evidence import BETTER, WORSE, compare

RESPLITS = 200
SCENARIOS = ("null", "null without min_gain", "power")
GAIN = 0.010
CALIBRATION_RESPLITS = 20
FALSE_BETTER_LIMIT = 0.05
POWER_TARGET = 0.80
MODEL = {  # cheap, and seed-dependent through its subsampling
    "n_estimators": 60,
    "learning_rate": 0.1,
    "num_leaves": 31,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "n_jobs": 1,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
}


def pooled() -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Every labelled row of the bundled feature matrices, and the bundled split sizes."""
    target = data_handoffs.FEATURE_MANIFEST.read().target
    frame = pd.concat([pd.read_parquet(layout.feature_split(split)) for split in ("train", "valid", "test")])
    sizes = data_handoffs.CURATION_REPORT.read().rows
    return frame.drop(columns=target).to_numpy("float32"), frame[target].to_numpy(), sizes


def scores_of(x: np.ndarray, y: np.ndarray, sizes: dict[str, int], resplit: int) -> tuple[np.ndarray, ...]:
    """One seeded resplit: the evaluation truth and the probabilities of two seeds of the same model."""
    import lightgbm

    order = np.random.default_rng(resplit).permutation(len(y))
    evaluation, train = order[: sizes["test"]], order[sizes["test"] : sizes["test"] + sizes["train"]]
    fitted = [
        lightgbm.LGBMClassifier(**MODEL, random_state=1000 * resplit + seed).fit(x[train], y[train])
        for seed in (1, 2)
    ]
    return (y[evaluation], *(model.predict_proba(x[evaluation])[:, 1] for model in fitted))


def degraded(scores: np.ndarray, scale: float, resplit: int) -> np.ndarray:
    """Probabilities with seeded normal noise of `scale` added on the logit: a truly worse model."""
    clipped = np.clip(scores, 1e-7, 1 - 1e-7)
    noise = np.random.default_rng(10_000 + resplit).normal(size=len(scores))
    return 1 / (1 + np.exp(-(np.log(clipped / (1 - clipped)) + scale * noise)))


def mean_gain(runs: list[tuple[np.ndarray, ...]], scale: float) -> float:
    """The mean ROC AUC of the candidate minus its degraded reference over the given resplits."""
    return float(
        np.mean(
            [
                score("roc_auc", "binary", y, candidate)
                - score("roc_auc", "binary", y, degraded(reference, scale, resplit))
                for resplit, (y, reference, candidate) in enumerate(runs)
            ]
        )
    )


def calibrate(runs: list[tuple[np.ndarray, ...]]) -> float:
    """The noise scale whose mean gain over `runs` is GAIN (bisection; the gain grows with the scale)."""
    low, high = 0.0, 4.0
    for _ in range(30):
        middle = (low + high) / 2
        low, high = (middle, high) if mean_gain(runs, middle) < GAIN else (low, middle)
    return (low + high) / 2


def share(verdicts: list[str], verdict: str) -> float:
    return sum(found == verdict for found in verdicts) / len(verdicts)


def write_markdown(path, results: dict, targets: dict[str, Target]) -> None:
    machine, null, power = results["machine"], results["null"], results["power"]
    settings = results["settings"]
    lines = [
        f"Measured on {machine['cpus_used']} CPUs, Python {machine['python']} (`make bench`), in "
        f"{results['seconds']:.0f} s: {results['resplits']} seeded resplits of the bundled data "
        f"({results['evaluation_rows']:,} evaluation rows, the test size; {results['train_rows']:,} train rows), "
        f"LightGBM with {MODEL['n_estimators']} trees and row and column subsampling, two seeds per resplit. "
        f"The gate as params.yaml sets it: {settings['resamples']:,} paired bootstrap resamples, "
        f"{settings['confidence']:.0%} intervals, margin {settings['margin']}, min_gain {settings['min_gain']}; ROC AUC "
        "decided by DeLong's test.",
        "",
        "| candidate vs reference | mean ROC AUC difference | mean interval width | better | not worse | worse | target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, run, target in (
        ("same model, another seed", null, targets["false better"]),
        ("the same, with min_gain 0 (the tests alone)", results["null_without_min_gain"], None),
        (f"a true gain (noise scale {power['noise_scale']:.3f} on the reference)", power, targets["power"]),
    ):
        goal = "-" if target is None else f"better {target.stated}: {'pass' if target.passed else 'FAIL'}"
        lines.append(
            f"| {name} | {run['mean_difference']:+.5f} (± {run['difference_se']:.5f}) | "
            f"{run['mean_interval_width']:.4f} | {run['better']:.1%} | {run['not_worse']:.1%} | {run['worse']:.1%} | "
            f"{goal} |"
        )
    lines += [
        "",
        "The ± is the standard error of the mean difference over the resplits: the true gain reached. Two seeds "
        "of one model differ a little on the population itself, and the tests are conditional on the fitted "
        "models: without `min_gain` the gate finds those true but seed-made differences.",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def summary(differences: list[float], widths: list[float], verdicts: list[str]) -> dict:
    return {
        "mean_difference": round(float(np.mean(differences)), 6),
        "difference_se": round(float(np.std(differences, ddof=1) / np.sqrt(len(differences))), 6),
        "mean_interval_width": round(float(np.mean(widths)), 6),
        "better": share(verdicts, BETTER),
        "not_worse": share(verdicts, "not worse"),
        "worse": share(verdicts, WORSE),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resplits", type=int, default=RESPLITS, help="seeded resplits (a quick look: 5)")
    resplits = parser.parse_args().resplits
    cpus = pin_cpus(CPU_LIMIT)
    os.chdir(REPO)  # params.yaml and the data are read relative to the repository
    started, clock = datetime.now(UTC), time.perf_counter()
    settings = load_params().validate_model.evidence
    x, y, sizes = pooled()
    runs = []
    for resplit in range(resplits):
        runs.append(scores_of(x, y, sizes, resplit))
        if resplit % 20 == 0:
            print(f"resplit {resplit}: fitted", flush=True)
    scale = calibrate(runs[:CALIBRATION_RESPLITS])
    outcomes: dict[str, tuple[list[float], list[float], list[str]]] = {
        name: ([], [], []) for name in SCENARIOS
    }
    without_min_gain = settings.model_copy(update={"min_gain": 0.0})
    for resplit, (truth, reference, candidate) in enumerate(runs):
        cases = (
            ("null", reference, settings),
            ("null without min_gain", reference, without_min_gain),
            ("power", degraded(reference, scale, resplit), settings),
        )
        for name, theirs, gate in cases:
            result = compare("roc_auc", "binary", truth, candidate, theirs, gate)
            low, high = result.interval
            outcomes[name][0].append(result.difference)
            outcomes[name][1].append(high - low)
            outcomes[name][2].append(result.verdict)
        if resplit % 20 == 0:
            print(f"resplit {resplit}: judged", flush=True)
    null, bare, power = (summary(*outcomes[name]) for name in SCENARIOS)
    power["noise_scale"] = round(scale, 6)
    results = {
        "started": started.isoformat(timespec="seconds"),
        "machine": machine_facts(cpus),
        "seconds": round(time.perf_counter() - clock, 1),
        "resplits": resplits,
        "evaluation_rows": sizes["test"],
        "train_rows": sizes["train"],
        "model": MODEL,
        "settings": settings.model_dump(mode="json"),
        "null": null,
        "null_without_min_gain": bare,
        "power": power,
    }
    targets = {
        "false better": Target(
            "same model, another seed: called better",
            100 * null["better"],
            100 * FALSE_BETTER_LIMIT,
            "%",
            kind="max",
        ),
        "power": Target(
            "a +0.010 ROC AUC gain: called better", 100 * power["better"], 100 * POWER_TARGET, "%", kind="min"
        ),
    }
    return write_results("gate", results, targets, write_markdown)


if __name__ == "__main__":
    sys.exit(main())
