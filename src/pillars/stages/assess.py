"""Pillar 9, assess: the selected model (and, for comparison, every candidate) on the test split.

Writes the full metric set, the plots that fit the task (ROC, precision-recall, confusion matrix and
calibration for classification; residuals for regression), permutation importance per input column,
metrics per slice, and a Markdown model card with the lineage of its inputs (content hashes). Calibrates the
selected model's conformal intervals or class sets (`assess.conformal_alpha`) on rows it did not train on,
for package to serve (metrics/conformal.json), and reports their coverage on test.
"""

import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

from pillars.bento.parity import offline_predictions
from pillars.core import data_handoffs, layout, model_handoffs
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import (
    read_parquet,
    require,
    write_bytes,
    write_json,
    write_parquet,
)
from pillars.core.lineage import lineage
from pillars.core.metrics import (
    BINARY_THRESHOLD,
    METRICS,
    Evaluation,
    UndefinedMetricError,
    evaluate,
    labels_from_scores,
    predict_scores,
    score,
    shown,
)
from pillars.core.model_handoffs import (
    PAIRED,
    BestParams,
    ModelValidation,
    PairedCheck,
    Selection,
    TrainReport,
)
from pillars.core.params import ENSEMBLE, Params, load_params
from pillars.core.templates import render
from pillars.serve.conformal import Conformal, calibrate, covered, predicted_sets
from pillars.serve.estimators import load_model
from pillars.training.oof import oof_scores
from pillars.training.slices import judged_slices

LINEAGE_INPUTS = (layout.CURATED_DIR, layout.FEATURES_DIR, layout.SELECTED_MODEL)  # declared deps of assess

CARD_TEMPLATE = "model_card.md.j2"  # beside this module; a dep of the stage (stage_deps reads TEMPLATES)
TEMPLATES = (CARD_TEMPLATE,)


def curves(
    y: np.ndarray, scores: np.ndarray, task: str, bins: int, threshold: float
) -> dict[str, pd.DataFrame]:
    """The plot tables that fit the task (the confusion matrix of binary decisions at `threshold`)."""
    if task == "regression":
        return {"residuals": pd.DataFrame({"predicted": scores, "residual": y - scores}).round(6)}
    labels = labels_from_scores(scores, task, threshold)
    tables = {"confusion": pd.DataFrame({"actual": y, "predicted": labels})}
    if task == "binary":
        fpr, tpr, _ = roc_curve(y, scores)
        precision, recall, _ = precision_recall_curve(y, scores)
        observed, predicted = calibration_curve(y, scores, n_bins=bins)
        tables |= {
            "roc": pd.DataFrame({"fpr": fpr, "tpr": tpr}).round(6),
            "pr": pd.DataFrame({"recall": recall, "precision": precision}).round(6),
            "calibration": pd.DataFrame({"mean_predicted": predicted, "fraction_positive": observed}).round(
                6
            ),
        }
    return tables


def named_classes(confusion: pd.DataFrame, labels: dict[str, int]) -> pd.DataFrame:
    """The confusion table with each class code replaced by the target's own value (`labels`: value -> code),
    so the plot's axes read as the data does."""
    names = {code: label for label, code in labels.items()}
    return confusion.apply(lambda codes: codes.map(names))


def permutation_importance(
    model: object, x: pd.DataFrame, y: np.ndarray, sources: dict[str, str], params: Params
) -> pd.DataFrame:
    """How much the primary metric drops when one input column's features are shuffled together (on at most
    `assess.importance_rows` test rows: every column is predicted `importance_repeats` times)."""
    task, metric_name = params.dataset.task, params.train.metric
    metric = METRICS[task][metric_name]
    generator = np.random.default_rng(params.assess.seed)
    if len(x) > params.assess.importance_rows:  # a seeded sample in row order: the estimate needs no more
        kept = np.sort(generator.choice(len(x), params.assess.importance_rows, replace=False))
        x, y = x.iloc[kept].reset_index(drop=True), y[kept]
    try:  # shuffling features leaves the targets as they are: defined on the baseline, defined on every shuffle
        baseline = score(metric_name, task, y, predict_scores(model, x.to_numpy(), task))
    except UndefinedMetricError as error:
        raise PillarsError(f"assess: no permutation importance on the test split: {error}") from error
    rows = []
    for column in sorted(set(sources.values())):
        group = [feature for feature, source in sources.items() if source == column]
        drops = []
        for _ in range(params.assess.importance_repeats):
            shuffled = x.copy()
            shuffled[group] = x[group].to_numpy()[generator.permutation(len(x))]
            value = score(metric_name, task, y, predict_scores(model, shuffled.to_numpy(), task))
            drops.append(baseline - value if metric.greater_is_better else value - baseline)
        rows.append({"column": column, "importance": round(float(np.mean(drops)), 6)})
    return pd.DataFrame(rows).sort_values(
        ["importance", "column"], ascending=[False, True], ignore_index=True
    )


def block(evaluation: Evaluation) -> dict[str, Any]:
    """Metrics as the reports hold them: every metric (null where undefined) and the reasons."""
    return {"metrics": evaluation.values, "undefined": evaluation.undefined}


def slice_metrics(
    frame: pd.DataFrame, y: np.ndarray, scores: np.ndarray, params: Params, threshold: float
) -> dict:
    """Every metric of the task per value of the slice columns; a slice the shared rule skips (fewer than
    `validate_model.slices.min_rows` rows, one class) is listed with its rows and the reason instead."""
    task, report = params.dataset.task, {}
    for piece in judged_slices(frame, y, task, params.validate_model.slices):
        report[piece.name] = {"rows": piece.size} | (
            {"skipped": piece.skipped}
            if piece.skipped is not None
            else block(evaluate(task, y[piece.rows], scores[piece.rows], threshold))
        )
    return report


def held_out(
    model: Any, task: str, target: str, selected: str, train_report: TrainReport
) -> tuple[np.ndarray, np.ndarray, str]:
    """The selected model's scores on rows it did not train on, their truth, and which rows: the valid split,
    or after small-data tuning (refit on train + valid) the out-of-fold predictions of train + valid."""
    if train_report.tuning.method == "cv":
        y = {
            split: read_parquet(layout.feature_split(split))[target].to_numpy()
            for split in ("train", "valid")
        }
        path = layout.candidate_oof(selected)
        scores = oof_scores(read_parquet(path), len(y["train"]), len(y["valid"]), str(path))
        return np.concatenate([y["train"], y["valid"]]), scores, "out_of_fold"
    valid = read_parquet(layout.feature_split("valid"))
    return (
        valid[target].to_numpy(),
        predict_scores(model, valid.drop(columns=target).to_numpy(), task),
        "valid",
    )


def conformal_report(
    conformal: Conformal, y: np.ndarray, scores: np.ndarray, threshold: float, held_out_on: str
) -> dict:
    """The coverage of the intervals or sets on test (expected: at least 1 - alpha), and their mean size."""
    report: dict[str, Any] = {
        "alpha": conformal.alpha,
        "calibrated_on": held_out_on,
        "calibration_rows": conformal.rows,
        "test_coverage": round(float(covered(conformal, y, scores, threshold).mean()), 6) if len(y) else None,
    }
    if math.isinf(conformal.threshold):
        report["unbounded"] = (
            f"{conformal.rows} held-out rows are too few for alpha {conformal.alpha} (at least "
            f"{math.ceil(1 / conformal.alpha) - 1}): every interval is unbounded, every set whole"
        )
    elif conformal.task == "regression":
        report["interval_width"] = round(2 * conformal.threshold, 6)
    else:
        report["mean_set_size"] = round(
            float(predicted_sets(conformal, scores, threshold).sum(axis=1).mean()), 6
        )
    return report


def headline(model: str, test: Evaluation, slices: dict, metric: str, baseline: dict) -> dict:
    """The DVC metrics (metrics/assess.json): the test metrics, `metric` of the baseline (train's library
    defaults) and per judged slice, null where undefined, with the reasons under `undefined`; skipped slices
    with theirs. Every metric of every candidate and slice: details.json."""
    judged = {name: entry for name, entry in slices.items() if "skipped" not in entry}
    return {
        "model": model,
        "test": test.values,
        "baseline": {"family": baseline["family"], metric: baseline["metrics"][metric]},
        "slices": {name: entry["metrics"][metric] for name, entry in judged.items()},
        "undefined": {
            "test": test.undefined,
            "slices": {
                name: entry["undefined"][metric]
                for name, entry in judged.items()
                if metric in entry["undefined"]
            },
        },
        "skipped_slices": {name: entry["skipped"] for name, entry in slices.items() if "skipped" in entry},
    }


class CardInputs(NamedTuple):
    """What the model card reports besides the test results: selection, gate, tuning, split, lineage."""

    selection: Selection
    validation: ModelValidation
    train_summary: TrainReport
    best_params: BestParams
    split_rows: dict[str, int]  # metrics/curation.json's rows per split
    lineage: dict[str, str]  # content hashes of assess's inputs


def _hyperparameters(
    params: Params, family: str, best: dict[str, Any], member: bool
) -> list[tuple[str, str]]:
    """A family's tuned and fixed hyperparameters (prefixed with the family when it is an ensemble member)."""
    prefix = f"{family}." if member else ""
    return [(f"{prefix}{name}", f"{value}") for name, value in best.items()] + [
        (f"{prefix}{name}", f"{value} (fixed)") for name, value in params.train.families[family].fixed.items()
    ]


def _shown(block: dict[str, Any], metric: str) -> str:
    return shown(block["metrics"][metric], block["undefined"].get(metric))


def _evidence(check: PairedCheck) -> tuple[str, str, str, str]:
    """A paired comparison for people: the verdict, the difference with its interval, what was required."""
    if check.interval is None or check.difference is None:
        return f"{check.verdict}: {check.skipped}", "", "", check.required or ""
    low, high = check.interval
    return check.verdict, f"{check.difference:+.4f}", f"[{low:+.4f}, {high:+.4f}]", check.required or ""


def model_card(params: Params, inputs: CardInputs, report: dict, importance: pd.DataFrame) -> str:
    """A Markdown model card (the template holds the layout): what the model is, what made it, how well it
    does, and where it is weak."""
    chosen = inputs.selection.model
    summary = inputs.train_summary.candidates[chosen]
    names, metric = list(METRICS[params.dataset.task]), params.train.metric
    tuning = inputs.train_summary.tuning
    if tuning.method == "cv":
        tuned_on = (
            f"{tuning.folds}-fold cross-validation on train + valid ({tuning.rows} rows, small data: "
            f"at most {tuning.max_rows}), then refit on train + valid"
        )
        selected_on = "out-of-fold predictions of train + valid"
    else:
        tuned_on, selected_on = "the valid split (holdout)", "the valid split"
    threshold = summary.threshold
    return render(
        Path(__file__).parent,
        CARD_TEMPLATE,
        dataset=params.dataset,
        chosen=chosen,
        selection=inputs.selection,
        selected_on=selected_on,
        tuned_on=tuned_on,
        ensemble=chosen == ENSEMBLE,
        ensemble_size=params.train.ensemble.size,
        weights=", ".join(f"{family} {weight:.2f}" for family, weight in (summary.weights or {}).items()),
        summary=summary,
        at_defaults=[
            family
            for family in summary.weights or {}
            if inputs.train_summary.candidates[family].best_is_defaults
        ],
        seed=params.train.seed,
        threshold_tuned=None
        if threshold is None
        else "0.5, not tuned (train.threshold.objective: fixed)"
        if threshold.objective == "fixed"
        else f"tuned on {selected_on} for {threshold.objective} ({threshold.valid_value} there)",
        split_rows=", ".join(f"{split} {rows}" for split, rows in inputs.split_rows.items()),
        hyperparameters=[
            entry
            for family in summary.weights or {chosen: 1.0}
            for entry in _hyperparameters(params, family, inputs.best_params.root[family], chosen == ENSEMBLE)
        ],
        lineage=inputs.lineage,
        test_metrics=[(name, _shown(report["test"], name)) for name in names],
        metric=metric,
        selected_value=_shown(report["test"], metric),
        baseline_value=_shown(report["baseline"], metric),
        baseline_family=report["baseline"]["family"],
        conformal=report["conformal"],
        metric_names=names,
        candidates=[
            (
                family,
                "yes" if family in inputs.validation.eligible else "no",
                [_shown(entry, name) for name in names],
            )
            for family, entry in report["candidates"].items()
        ],
        slices=[
            (
                name,
                entry["rows"],
                f"skipped: {entry['skipped']}" if "skipped" in entry else _shown(entry, metric),
            )
            for name, entry in report["slices"].items()
        ],
        importance=[(row.column, row.importance) for row in importance.head(10).itertuples()],
        min_slice_rows=params.validate_model.slices.min_rows,
        evidence=[
            (name.removeprefix(PAIRED), *_evidence(check))
            for name, check in inputs.validation.candidates[chosen].comparisons().items()
        ],
        confidence=params.validate_model.evidence.confidence,
        margin=params.validate_model.evidence.margin,
        min_gain=params.validate_model.evidence.min_gain,
    )


def main() -> None:
    params = load_params()
    task = params.dataset.task
    manifest = data_handoffs.FEATURE_MANIFEST.read()
    target = manifest.target
    test = read_parquet(layout.feature_split("test"))
    x, y = test.drop(columns=target), test[target].to_numpy()
    frame = read_parquet(layout.curated_split("test"))
    selection, validation = model_handoffs.SELECTION.read(), model_handoffs.MODEL_VALIDATION.read()
    model = load_model(require(layout.SELECTED_MODEL).read_bytes())
    scores = predict_scores(model, x.to_numpy(), task)
    train_summary = model_handoffs.TRAIN_REPORT.read()
    threshold = train_summary.threshold(selection.model)
    held_y, held_scores, held_out_on = held_out(model, task, target, selection.model, train_summary)
    conformal = calibrate(task, held_y, held_scores, params.assess.conformal_alpha, threshold)
    candidates = {
        family: block(
            evaluate(
                task,
                y,
                predict_scores(
                    load_model(require(layout.candidate_model(family)).read_bytes()), x.to_numpy(), task
                ),
                train_summary.threshold(family),
            )
        )
        for family in params.train.candidate_names
    }
    baseline = predict_scores(load_model(require(layout.BASELINE_MODEL).read_bytes()), x.to_numpy(), task)
    baseline_family = train_summary.tuning.baseline.family
    sources = {entry.name: entry.source for entry in manifest.features}
    importance = permutation_importance(model, x, y, sources, params)
    test_metrics = evaluate(task, y, scores, threshold)
    report = {
        "model": selection.model,
        "test": block(test_metrics),
        "candidates": candidates,
        "baseline": {"family": baseline_family, **block(evaluate(task, y, baseline, BINARY_THRESHOLD))},
        "slices": slice_metrics(frame, y, scores, params, threshold),
    }
    tables = curves(y, scores, task, params.assess.calibration_bins, threshold) | {"importance": importance}
    if "confusion" in tables:
        tables["confusion"] = named_classes(tables["confusion"], data_handoffs.TARGET_ENCODING.read().labels)
    for name, table in tables.items():
        write_bytes(
            layout.ASSESS_PLOTS_DIR / f"{name}.csv", lambda path, table=table: table.to_csv(path, index=False)
        )
    write_parquet(layout.TEST_PREDICTIONS, offline_predictions(frame, scores, task, threshold, conformal))
    model_handoffs.CONFORMAL.write(
        {
            "alpha": conformal.alpha,
            "task": task,
            "threshold": None if math.isinf(conformal.threshold) else conformal.threshold,
            "rows": conformal.rows,
            "evaluated_on": held_out_on,
        }
    )
    write_json(
        layout.ASSESS_DETAILS,
        {"candidates": candidates, "baseline": report["baseline"], "slices": report["slices"]},
    )
    report["conformal"] = conformal_report(conformal, y, scores, threshold, held_out_on)
    model_handoffs.ASSESS_REPORT.write(
        headline(selection.model, test_metrics, report["slices"], params.train.metric, report["baseline"])
        | {"conformal": report["conformal"]},
    )
    card_inputs = CardInputs(
        selection=selection,
        validation=validation,
        train_summary=train_summary,
        best_params=model_handoffs.BEST_PARAMS.read(),
        split_rows=data_handoffs.CURATION_REPORT.read().rows,
        lineage=lineage(LINEAGE_INPUTS),
    )
    card = model_card(params, card_inputs, report, importance)
    write_bytes(layout.MODEL_CARD, lambda path: path.write_text(card, encoding="utf-8"))
    print(
        f"assess: {selection.model} on test: "
        + ", ".join(
            f"{name} {shown(value, test_metrics.undefined.get(name))}"
            for name, value in test_metrics.values.items()
        )
    )


if __name__ == "__main__":
    run_cli(main)
