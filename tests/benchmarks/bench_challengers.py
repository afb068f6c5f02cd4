"""Benchmark: does the shadow replay block faulty challengers and pass retrains that changed only their seed?

Run by `make bench` after `make run` (not a pytest test). The champion is the model the pipeline packaged
(models/service.bento), served by a real `bentoml serve` that answers every holdout row as its own request and
logs it; the holdout's labels arrive as feedback for those requests. Challengers are the selected model
retrained by the pipeline's own code (`fit_final` of every family in it with its tuned parameters, the
ensemble's weights selected again on the held-out rows, the decision threshold tuned again), each put in the
champion's serving path and judged by the shadow stage's function with params.yaml's settings:

- 20 seed-only retrains: `train.seed` changed, nothing else (target: at least 19 pass);
- planted faults, each a real way a training set goes wrong, on the columns that matter most to the model
  (`metrics/assess/importance.csv`): the most important column shuffled (rows misaligned by a join), the
  second shuffled, the most important numeric column in other units, the most important set to its mean
  (lost upstream and imputed), 25 % of the labels flipped, the train split cut to its first 5 % of rows (a
  truncated extract). Target: every fault that truly costs more than the gate's non-inferiority margin on the
  test split is blocked, and at least 5 do (a fault the retrained model shrugs off should pass).

Before that, the retrain with the pipeline's own seed must score the test split exactly as the packaged model
does (so the retrains are the pipeline's), and the replay must give back every logged answer. Each verdict
is shown with what the challenger truly costs: its ROC AUC (train.metric) minus the champion's on the test
split, which the shadow never sees. The first challenger's report is computed twice and must be the same
bytes. Results: tests/benchmarks/results/challengers.{json,md}.
"""

import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from bench_data_pillars import CPU_LIMIT, REPO, BenchError, Target, machine_facts, pin_cpus, write_results

sys.path.insert(0, str(REPO / "src"))
from pillars.bento import server
from pillars.bento.archive import packaged_model
from pillars.bento.parity import raw_rows
from pillars.core import data_handoffs, layout, model_handoffs
from pillars.core.io import read_parquet
from pillars.core.metrics import METRICS, predict_scores, score
from pillars.core.params import ENSEMBLE, Params, load_params
from pillars.core.schema import load_checked
from pillars.monitoring.logs import read_feedback
from pillars.monitoring.replay import ground_truth, replay
from pillars.monitoring.shadow import LoggedRequests, read_requests
from pillars.serve.capture import DIR_ENV
from pillars.serve.estimators import Blend, blend_scores
from pillars.serve.model import ServingModel
from pillars.stages.shadow import shadow_as_params_set
from pillars.stages.train import fit_final
from pillars.training.cv import pool, uses_cv
from pillars.training.ensemble import select_weights
from pillars.training.families.spec import TrainingData
from pillars.training.matrices import load_training_data
from pillars.training.threads import with_threads
from pillars.training.threshold import tune_threshold

SEED_RETRAINS = 20
FAULT_SHARE = {"flipped": 0.25, "truncated": 0.05}
MIN_PASSED = 19
MIN_HARMFUL = 5  # planted faults that truly cost more than validate_model.evidence.margin
UNITS = 1000  # a numeric column recorded in other units in the training data
CONCURRENCY = 8
Fault = Callable[[TrainingData], TrainingData]


def matrix_columns(source: str) -> list[int]:
    """The positions in the feature matrix of the columns made from one curated column."""
    manifest = data_handoffs.FEATURE_MANIFEST.read()
    names = [name for name in pq.read_schema(layout.feature_split("valid")).names if name != manifest.target]
    return [names.index(feature.name) for feature in manifest.features if feature.source == source]


def with_train(data: TrainingData, x: np.ndarray | None = None, y: np.ndarray | None = None) -> TrainingData:
    return replace(data, x_train=data.x_train if x is None else x, y_train=data.y_train if y is None else y)


def shuffled(source: str) -> Fault:
    def fault(data: TrainingData) -> TrainingData:
        x = np.array(data.x_train, copy=True)
        columns = matrix_columns(source)
        x[:, columns] = x[np.random.default_rng(1).permutation(len(x))][:, columns]
        return with_train(data, x=x)

    return fault


def rescaled(source: str) -> Fault:
    def fault(data: TrainingData) -> TrainingData:
        x = np.array(data.x_train, copy=True)
        x[:, matrix_columns(source)] *= UNITS
        return with_train(data, x=x)

    return fault


def imputed(source: str) -> Fault:
    def fault(data: TrainingData) -> TrainingData:
        x = np.array(data.x_train, copy=True)
        columns = matrix_columns(source)
        x[:, columns] = np.nanmean(x[:, columns], axis=0)
        return with_train(data, x=x)

    return fault


def flipped(data: TrainingData) -> TrainingData:
    """A share of the labels replaced by another class (regression: another row's target)."""
    y = np.array(data.y_train, copy=True)
    generator = np.random.default_rng(2)
    rows = generator.random(len(y)) < FAULT_SHARE["flipped"]
    if data.task == "regression":
        y[rows] = generator.permutation(y[rows])
    else:
        classes = int(y.max()) + 1
        y[rows] = (y[rows] + generator.integers(1, classes, rows.sum())) % classes
    return with_train(data, y=y)


def truncated(data: TrainingData) -> TrainingData:
    rows = int(len(data.y_train) * FAULT_SHARE["truncated"])
    return with_train(data, x=np.asarray(data.x_train)[:rows], y=data.y_train[:rows])


def faults() -> dict[str, Fault]:
    """The planted faults, on the columns that matter most to the model."""
    ranked = pd.read_csv(layout.ASSESS_PLOTS_DIR / "importance.csv").sort_values(
        "importance", ascending=False
    )
    first, second = ranked["column"].iloc[0], ranked["column"].iloc[1]
    roles = data_handoffs.FEATURE_MANIFEST.read().inputs
    numeric = next(column for column in ranked["column"] if roles.get(column) == "numeric")
    return {
        f"{first} shuffled": shuffled(first),
        f"{second} shuffled": shuffled(second),
        f"{numeric} in other units (x{UNITS:,} in train)": rescaled(numeric),
        f"{first} set to its mean": imputed(first),
        f"{FAULT_SHARE['flipped']:.0%} of labels flipped": flipped,
        f"train cut to its first {FAULT_SHARE['truncated']:.0%} of rows": truncated,
    }


class Retrainer:
    """The selected model fitted again by the pipeline's code, with another seed or on faulty data."""

    def __init__(self, params: Params, champion: ServingModel) -> None:
        self.params, self.champion = params, champion
        manifest = data_handoffs.FEATURE_MANIFEST.read()
        self.data = load_training_data(manifest, params.dataset.task, params.train.external_memory_rows)
        selected = model_handoffs.SELECTION.read().model
        report = model_handoffs.TRAIN_REPORT.read().candidates
        self.families = list(report[ENSEMBLE].weights) if selected == ENSEMBLE else [selected]
        self.ensemble = selected == ENSEMBLE
        best = model_handoffs.BEST_PARAMS.read().root
        self.hyper = {
            family: {**params.train.families[family].fixed, **best[family]} for family in self.families
        }

    def model(self, seed: int, fault: Fault | None = None) -> tuple[ServingModel, object]:
        """The challenger's serving model and its fitted model."""
        data = self.data if fault is None else fault(self.data)
        settings = with_threads(
            self.params.train.model_copy(update={"seed": seed}), len(data.y_train), data.x_valid.shape[1]
        )
        pooled = pool(data, settings) if uses_cv(data, settings) else None
        finals = {
            family: fit_final(family, self.hyper[family], data, pooled, settings) for family in self.families
        }
        held_out = {family: final.held_out for family, final in finals.items()}
        y_held_out = data.y_valid if pooled is None else pooled.y
        if self.ensemble:
            weights = select_weights(
                held_out, y_held_out, data.task, settings.metric, settings.ensemble.size
            ).weights
            fitted = Blend(
                {name: finals[name].model for name in weights},
                weights,
                data.task == "regression",
                settings.n_jobs,
            )
            scores = blend_scores(held_out, weights)
        else:
            fitted, scores = finals[self.families[0]].model, held_out[self.families[0]]
        serving = replace(self.champion, model=fitted, version=f"challenger-{seed}-{fault is not None}")
        if data.task == "binary":
            serving = replace(serving, threshold=tune_threshold(y_held_out, scores, settings.threshold).value)
        return serving, fitted


def served_traffic(params: Params, champion: ServingModel, logs: Path, feedback: Path) -> int:
    """Every holdout row sent to a real `bentoml serve` of the champion as its own request (logged under
    `logs`); the holdout's labels written under `feedback` for those requests. The rows sent."""
    curated = read_parquet(layout.curated_split("holdout"))
    raw = raw_rows(read_parquet(layout.RAW_DATA), curated, load_checked(params), params.dataset.placeholders)
    columns = {item.name: raw[item.name] for item in champion.fields}
    with tempfile.TemporaryDirectory(prefix="pillars-challengers-") as home:
        tag = server.import_archive(layout.SERVICE_ARCHIVE, Path(home))
        with server.served(tag, Path(home), params.deploy.ready_timeout_s, {DIR_ENV: str(logs)}) as (url, _):
            request_ids = replay(url, columns, CONCURRENCY)
    feedback.mkdir(parents=True)
    labels = ground_truth(curated, champion, params.dataset.target)
    pd.DataFrame({"request_id": request_ids, "row": 0, params.dataset.target: labels}).to_parquet(
        feedback / "labels.parquet"
    )
    return len(request_ids)


class TestSplit:
    """The test split's feature matrix: what a challenger truly costs, on rows the shadow never sees."""

    def __init__(self, params: Params, champion_model: object) -> None:
        test = read_parquet(layout.feature_split("test"))
        target = data_handoffs.FEATURE_MANIFEST.read().target
        self.x, self.y = test.drop(columns=target).to_numpy(), test[target].to_numpy()
        self.task, self.metric = params.dataset.task, params.train.metric
        self.champion = predict_scores(champion_model, self.x, self.task)

    def same_as_champion(self, fitted: object) -> bool:
        return bool(np.array_equal(predict_scores(fitted, self.x, self.task), self.champion))

    def cost(self, fitted: object) -> float:
        """The challenger's train.metric minus the champion's."""
        measured = (
            score(self.metric, self.task, self.y, s)
            for s in (predict_scores(fitted, self.x, self.task), self.champion)
        )
        return next(measured) - next(measured)


def judged(
    params: Params,
    logged: LoggedRequests,
    truth: pd.DataFrame,
    candidate: ServingModel,
    champion: ServingModel,
) -> dict:
    """The shadow stage's report on one challenger."""
    return shadow_as_params_set(params, logged, truth, candidate, champion).report


def summary(name: str, kind: str, report: dict, cost: float, params: Params) -> dict:
    """One challenger's row: the shadow's verdict and why, and whether it truly is worse than the champion
    beyond the gate's non-inferiority margin on the test split."""
    labelled = report.get("labelled", {})
    better_is = 1.0 if METRICS[params.dataset.task][params.train.metric].greater_is_better else -1.0
    return {
        "challenger": name,
        "kind": kind,
        "verdict": report["verdict"],
        "blocked_by": report.get("blocked", []),
        "agreement": report["champion"].get("agreement"),
        "labelled": labelled.get("verdict"),
        "difference": labelled.get("difference"),
        "interval": labelled.get("interval"),
        "test_cost": round(cost, 6),
        "harmful": better_is * cost < -params.validate_model.evidence.margin,
    }


def write_markdown(path: Path, results: dict, targets: dict[str, Target]) -> None:
    machine = results["machine"]
    lines = [
        f"Measured on {machine['cpus_used']} of {machine['cpu_count']} CPUs, Python {machine['python']} "
        f"(`python tests/benchmarks/bench_challengers.py`): the champion {results['champion']} served by "
        f"`bentoml serve`, {results['rows']:,} holdout rows sent as single requests and logged, their labels "
        f"as feedback; challengers retrained by the pipeline's code ({', '.join(results['families'])}) and "
        f"judged by the shadow stage with params.yaml (checked first: the retrain with the pipeline's own "
        f"seed scores the test split exactly as the packaged model). Replay faithful: {results['faithful']}; "
        f"a report computed twice is the same bytes: {results['same_bytes']}.",
        "",
        "| challenger | shadow verdict | decision agreement | labelled traffic: verdict, difference [95 % interval] "
        "| test-split cost | truly worse | blocked on |",
        "| --- | --- | ---: | --- | ---: | --- | --- |",
    ]
    for row in results["challengers"]:
        interval = row["interval"] or [None, None]
        labelled = f"{row['labelled']}, {row['difference']:+.4f} [{interval[0]:+.4f}, {interval[1]:+.4f}]"
        lines.append(
            f"| {row['challenger']} | {row['verdict']} | {row['agreement']} | {labelled} | "
            f"{row['test_cost']:+.4f} | {'yes' if row['harmful'] else 'no'} | {', '.join(reason.split(':')[0] for reason in row['blocked_by']) or '-'} |"
        )
    lines += ["", "| target | measured | limit | result |", "| --- | ---: | ---: | --- |"]
    for target in targets.values():
        bound = ">=" if target.kind == "min" else "<"
        verdict = "pass" if target.passed else "FAIL"
        lines.append(f"| {target.name} | {target.measured:g} | {bound} {target.limit:g} | {verdict} |")
    lines += [
        "",
        f"`test-split cost` is the challenger's {results['metric']} minus the champion's on the test split (rows "
        "the shadow never sees): what the fault truly costs, and how far a seed moves the model; `truly worse`: "
        f"a cost beyond the gate's non-inferiority margin ({results['margin']}). A planted fault that costs "
        "nothing (a column the retrained model can do without: another carries the same information) should "
        "pass, and is not counted.",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    cpus = pin_cpus(CPU_LIMIT)
    os.chdir(REPO)
    started = datetime.now(UTC)
    params = load_params()
    champion = packaged_model(layout.SERVICE_ARCHIVE)
    retrainer = Retrainer(params, champion)
    with tempfile.TemporaryDirectory(prefix="pillars-challengers-") as home:
        logs, feedback = Path(home) / "logs", Path(home) / "feedback"
        rows = served_traffic(params, champion, logs, feedback)
        logged = read_requests(logs, params.shadow.window_rows)
        truth = read_feedback(feedback, params.dataset.target, logged.skipped)
    test = TestSplit(params, champion.model)
    if not test.same_as_champion(retrainer.model(params.train.seed)[1]):
        raise BenchError(
            "the retrain with train.seed does not score the test split as the packaged model does"
        )
    runs, reports = [], []
    challengers = [
        (f"seed {params.train.seed + k}", "seed only", params.train.seed + k, None)
        for k in range(1, SEED_RETRAINS + 1)
    ]
    challengers += [(name, "fault", params.train.seed, fault) for name, fault in faults().items()]
    for name, kind, seed, fault in challengers:
        candidate, fitted = retrainer.model(seed, fault)
        report = judged(params, logged, truth, candidate, champion)
        reports.append(report)
        runs.append(summary(name, kind, report, test.cost(fitted), params))
        print(runs[-1], flush=True)
    again = judged(params, logged, truth, retrainer.model(challengers[0][2])[0], champion)
    same_bytes = json.dumps(again, sort_keys=True) == json.dumps(reports[0], sort_keys=True)
    faithful = all(report["faithful"]["champion"]["differ"] == 0 for report in reports)
    passed = sum(run["verdict"] == "passed" for run in runs if run["kind"] == "seed only")
    harmful = [run for run in runs if run["harmful"] and run["kind"] == "fault"]
    blocked = sum(run["verdict"] == "blocked" for run in harmful)
    results = {
        "started": started.isoformat(timespec="seconds"),
        "machine": machine_facts(cpus),
        "champion": f"{champion.version} ({type(champion.model).__name__})",
        "families": retrainer.families,
        "metric": params.train.metric,
        "margin": params.validate_model.evidence.margin,
        "rows": rows,
        "faithful": faithful,
        "same_bytes": same_bytes,
        "challengers": runs,
    }
    targets = {
        "seed_only_passed": Target(
            f"seed-only retrains passed (of {SEED_RETRAINS})", passed, MIN_PASSED, "", "min"
        ),
        "harmful_faults": Target(
            "planted faults that truly cost beyond the margin", len(harmful), MIN_HARMFUL, "", "min"
        ),
        "harmful_blocked": Target(f"of them blocked (of {len(harmful)})", blocked, len(harmful), "", "min"),
        "faithful": Target(
            "replay faithful and the report the same bytes", int(faithful and same_bytes), 1, "", "min"
        ),
    }
    return write_results("challengers", results, targets, write_markdown)


if __name__ == "__main__":
    sys.exit(main())
