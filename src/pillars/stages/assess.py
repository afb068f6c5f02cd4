"""Pillar 9, assess: the selected model (and, for comparison, every candidate) on the test split.

Writes the full metric set, the plots that fit the task (ROC, precision-recall, confusion matrix and
calibration for classification; residuals for regression), permutation importance per input column,
metrics per slice, and a Markdown model card with the lineage of its inputs (content hashes).
"""

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

from pillars.bento.parity import offline_predictions
from pillars.core import layout
from pillars.core.errors import run_cli
from pillars.core.io import read_json, read_parquet, read_pickle, write_bytes, write_json, write_parquet
from pillars.core.lineage import lineage
from pillars.core.metrics import METRICS, evaluate, labels_from_scores, predict_scores, score
from pillars.core.params import Params, load_params
from pillars.training.slices import has_both_classes, slices

LINEAGE_INPUTS = (layout.CURATED_DIR, layout.FEATURES_DIR, layout.SELECTED_MODEL)  # declared deps of assess


def curves(y: np.ndarray, scores: np.ndarray, task: str, bins: int) -> dict[str, pd.DataFrame]:
    """The plot tables that fit the task."""
    if task == "regression":
        return {"residuals": pd.DataFrame({"predicted": scores, "residual": y - scores}).round(6)}
    labels = labels_from_scores(scores, task)
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


def permutation_importance(
    model: object, x: pd.DataFrame, y: np.ndarray, sources: dict[str, str], params: Params
) -> pd.DataFrame:
    """How much the primary metric drops when one input column's features are shuffled together."""
    task, metric_name = params.dataset.task, params.train.metric
    metric = METRICS[task][metric_name]
    baseline = score(metric_name, task, y, predict_scores(model, x.to_numpy(), task))
    generator = np.random.default_rng(params.assess.seed)
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


def slice_metrics(frame: pd.DataFrame, y: np.ndarray, scores: np.ndarray, params: Params) -> dict:
    """Every metric of the task per value of the slice columns (slices with one class are left out)."""
    task = params.dataset.task
    return {
        f"{column}={value}": {"rows": int(rows.sum())} | evaluate(task, y[rows], scores[rows])
        for column, value, rows in slices(frame, params.validate_model.slices.columns)
        if has_both_classes(task, y[rows])
    }


class CardInputs(NamedTuple):
    """What the model card reports besides the test results: selection, gate, tuning, split, lineage."""

    selection: dict[str, Any]
    validation: dict[str, Any]
    train_summary: dict[str, Any]  # metrics/train.json
    best_params: dict[str, Any]  # metrics/train/best_params.json
    split_rows: dict[str, int]  # metrics/curation.json's rows per split
    lineage: dict[str, str]  # content hashes of assess's inputs


def model_card(params: Params, inputs: CardInputs, report: dict, importance: pd.DataFrame) -> str:
    """A Markdown model card: what the model is, what made it, how well it does, and where it is weak."""
    selection, validation = inputs.selection, inputs.validation
    chosen = selection["model"]
    train_summary = inputs.train_summary["candidates"][chosen]
    best_params = inputs.best_params[chosen]
    test = report["test"]
    tuning = inputs.train_summary["tuning"]
    if tuning["method"] == "cv":
        tuned_on = (
            f"{tuning['folds']}-fold cross-validation on train + valid ({tuning['rows']} rows, small data: "
            f"at most {tuning['max_rows']}), then refit on train + valid"
        )
        selected_on = "out-of-fold predictions of train + valid"
    else:
        tuned_on = "the valid split (holdout)"
        selected_on = "the valid split"
    lines = [
        f"# Model card: {params.dataset.name} / {chosen}",
        "",
        f"- Task: {params.dataset.task}, target `{params.dataset.target}`"
        + (f" (positive label `{params.dataset.positive_label}`)" if params.dataset.positive_label else ""),
        f"- Selected on {selected_on} by {selection['metric']}: {selection['reason']}.",
        f"- Tuned by Optuna on {tuned_on}: {train_summary['trials']} trials ({train_summary['pruned']} pruned), seed {params.train.seed}.",
        "- Rows: " + ", ".join(f"{split} {rows}" for split, rows in inputs.split_rows.items()) + ".",
        "",
        "## Hyperparameters",
        "",
        *[f"- `{name}`: {value}" for name, value in best_params.items()],
        *[f"- `{name}`: {value} (fixed)" for name, value in params.train.families[chosen].fixed.items()],
        "",
        "## Data lineage (content hashes of the inputs)",
        "",
        *[f"- `{path}`: `{digest}`" for path, digest in inputs.lineage.items()],
        "",
        "## Test metrics",
        "",
        "| metric | test |",
        "|---|---:|",
        *[f"| {name} | {value:.4f} |" for name, value in test.items()],
        "",
        f"## Candidates on the test split (for information; selection used {selected_on})",
        "",
        "| family | eligible | " + " | ".join(test) + " |",
        "|---|---|" + "---:|" * len(test),
        *[
            f"| {family} | {'yes' if family in validation['eligible'] else 'no'} | "
            + " | ".join(f"{value:.4f}" for value in metrics.values())
            + " |"
            for family, metrics in report["candidates"].items()
        ],
        "",
        f"## Slices (test, {params.train.metric})",
        "",
        "| slice | rows | value |",
        "|---|---:|---:|",
        *[
            f"| {name} | {values['rows']} | {values[params.train.metric]:.4f} |"
            for name, values in report["slices"].items()
        ],
        "",
        "## Most important input columns (permutation, test)",
        "",
        *[f"- `{row.column}`: {row.importance:.4f}" for row in importance.head(10).itertuples()],
        "",
        "## Limitations",
        "",
        "- Measured on a held-out test split drawn from the same sources as training: it says nothing about",
        "  populations or periods the data does not cover. Watch drift in production (monitor pillar).",
        "- Slices with few rows have wide uncertainty; slices with one class are not reported.",
        *(
            [
                "- Classification metrics that use labels (accuracy, F1, precision, recall) use a 0.5 threshold."
            ]
            if params.dataset.task != "regression"
            else []
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    params = load_params()
    task = params.dataset.task
    manifest = read_json(layout.FEATURE_MANIFEST)
    target = manifest["target"]
    test = read_parquet(layout.feature_split("test"))
    x, y = test.drop(columns=target), test[target].to_numpy()
    frame = read_parquet(layout.curated_split("test"))
    selection, validation = read_json(layout.SELECTION_REPORT), read_json(layout.MODEL_VALIDATION_REPORT)
    model = read_pickle(layout.SELECTED_MODEL)
    scores = predict_scores(model, x.to_numpy(), task)
    candidates = {
        family: evaluate(
            task, y, predict_scores(read_pickle(layout.candidate_model(family)), x.to_numpy(), task)
        )
        for family in params.train.candidates
    }
    sources = {entry["name"]: entry["source"] for entry in manifest["features"]}
    importance = permutation_importance(model, x, y, sources, params)
    report = {
        "model": selection["model"],
        "test": evaluate(task, y, scores),
        "candidates": candidates,
        "slices": slice_metrics(frame, y, scores, params),
    }
    metric = params.train.metric
    headline = {  # the DVC metrics; every metric of every candidate and slice: details.json
        "model": selection["model"],
        "test": report["test"],
        "slices": {name: values[metric] for name, values in report["slices"].items()},
    }
    for name, table in {
        **curves(y, scores, task, params.assess.calibration_bins),
        "importance": importance,
    }.items():
        write_bytes(
            layout.ASSESS_PLOTS_DIR / f"{name}.csv", lambda path, table=table: table.to_csv(path, index=False)
        )
    write_parquet(layout.TEST_PREDICTIONS, offline_predictions(frame, scores, task))
    write_json(layout.ASSESS_DETAILS, {"candidates": candidates, "slices": report["slices"]})
    write_json(layout.ASSESS_REPORT, headline)
    card_inputs = CardInputs(
        selection=selection,
        validation=validation,
        train_summary=read_json(layout.TRAIN_REPORT),
        best_params=read_json(layout.BEST_PARAMS),
        split_rows=read_json(layout.CURATION_REPORT)["rows"],
        lineage=lineage(LINEAGE_INPUTS),
    )
    card = model_card(params, card_inputs, report, importance)
    write_bytes(layout.MODEL_CARD, lambda path: path.write_text(card, encoding="utf-8"))
    print(
        f"assess: {selection['model']} on test: "
        + ", ".join(f"{k} {v:.4f}" for k, v in report["test"].items())
    )


if __name__ == "__main__":
    run_cli(main)
