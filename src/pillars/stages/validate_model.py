"""Pillar 8, validate_model: the gate a candidate must pass before it may be selected (TFX's "blessing").

Checks on the valid split: absolute thresholds per metric (metrics of decisions, such as F1, at the
candidate's decision threshold that train tuned), no more than `champion.max_drop` worse than the
production model (the champion in models/champion/, when there is one), and a threshold on every slice of
the columns named in params. Beside the point values, evidence (`validate_model.evidence`,
pillars.training.evidence): the candidate paired with the champion and with the best family's library defaults
(models/baseline.pkl) on the same rows, overall and per slice (Holm across slices), each difference with its
bootstrap interval and a verdict (better, not worse, worse, insufficient) that must reach what
`evidence.require` asks; a comparison without its reference says `skipped`. A candidate that fails a check is not eligible; if none passes, the pipeline
stops with a summary of what failed. A metric undefined on the whole valid split is a failed check with the
reason; a slice the shared rule skips (too few rows, one class) or whose metric is undefined is reported with
the reason and not judged.

After small-data tuning (metrics/train.json: `tuning.method` cv) the candidate was refit on train + valid, so
the valid split is no longer unseen: the checks judge the out-of-fold predictions of its configuration on
every train + valid row instead, and the champion is compared with the candidate on the valid rows only
(where the out-of-fold predictions are out-of-sample for both). The report then says `evaluated_on:
out_of_fold` and holds each candidate's metrics under `out_of_fold` instead of `valid`. The same rules for
undefined metrics and skipped slices apply to those rows.
"""

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd

from pillars.core import data_handoffs, layout, model_handoffs
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import read_parquet, read_pickle, require
from pillars.core.metrics import (
    BINARY_THRESHOLD,
    METRICS,
    Measurement,
    evaluate,
    measure,
    predict_scores,
)
from pillars.core.params import Bounds, Params, load_params
from pillars.serve.estimators import load_model
from pillars.training.evidence import Comparison, compare, meets, with_holm
from pillars.training.oof import oof_scores
from pillars.training.slices import judged_slices, slices


def slice_checks(
    frame: pd.DataFrame,
    y: np.ndarray,
    scores: np.ndarray,
    params: Params,
    threshold: float = BINARY_THRESHOLD,
) -> dict:
    """The slice metric per value of every slice column. A slice is not judged (`passed` null, with the
    reason under `skipped`) when the shared rule skips it (under `min_rows` rows, one class) or when the metric is
    undefined on it (value null)."""
    settings, task = params.validate_model.slices, params.dataset.task
    checks = {}
    for piece in judged_slices(frame, y, task, settings):
        check: dict = {"rows": piece.size}
        if piece.skipped is not None:
            check |= {"passed": None, "skipped": piece.skipped}
        else:
            value, undefined = measure(settings.metric, task, y[piece.rows], scores[piece.rows], threshold)
            if value is None:
                check |= {
                    "value": None,
                    "passed": None,
                    "skipped": f"{settings.metric} undefined: {undefined}",
                }
            else:
                rounded = round(value, 6)
                check |= {"value": rounded, "passed": settings.limit.holds(rounded)}
        checks[f"slice:{piece.name}:{settings.metric}"] = check
    return checks


def threshold_check(value: float | None, undefined: str | None, limit: Bounds) -> dict:
    """An absolute threshold on all the judged rows (the valid split, or out-of-fold train + valid): a metric
    undefined there fails, with the reason."""
    if value is None:
        return {"value": None, **limit.model_dump(exclude_none=True), "passed": False, "undefined": undefined}
    return {"value": value, **limit.model_dump(exclude_none=True), "passed": limit.holds(value)}


def champion_check(
    candidate_value: float | None,
    champion_value: float | None,
    params: Params,
    reason: str,
    undefined: str | None = None,
) -> dict:
    """Whether the candidate is at most `max_drop` worse than the champion on the primary metric (`reason`:
    why there is no champion value; `undefined`: why the candidate has none, which fails the check)."""
    if champion_value is None:
        return {"passed": None, "skipped": reason}  # not judged: never counted as passed
    if candidate_value is None:
        return {
            "value": None,
            "champion": round(champion_value, 6),
            "passed": False,
            "undefined": undefined or "no value",
        }
    metric = METRICS[params.dataset.task][params.train.metric]
    drop = champion_value - candidate_value if metric.greater_is_better else candidate_value - champion_value
    return {
        "value": round(candidate_value, 6),
        "champion": round(champion_value, 6),
        "drop": round(drop, 6),
        "max_drop": params.validate_model.champion.max_drop,
        "passed": drop <= params.validate_model.champion.max_drop,
    }


class Reference(NamedTuple):
    """A model the candidate is compared with, pair by pair: its scores on the judged rows (`rows`: a mask
    over them; None: all), or None with the reason the comparison is skipped."""

    scores: np.ndarray | None
    reason: str
    rows: np.ndarray | None = None
    threshold: float = BINARY_THRESHOLD  # where its labels are decided (metrics of decisions)


REFERENCES = ("champion", "defaults")  # the models every candidate is compared with (evidence.require keys)


def judged(comparison: Comparison, required: str) -> dict:
    """A comparison as a gate check: the verdict, the difference with its interval, what was required and
    whether it was reached (insufficient: not judged, null)."""
    return comparison.report() | {
        "required": required.replace("_", " "),
        "passed": meets(comparison, required),
    }


def evidence_checks(
    scores: np.ndarray,
    y: np.ndarray,
    frame: pd.DataFrame,
    params: Params,
    references: Mapping[str, Reference],
    threshold: float = BINARY_THRESHOLD,
) -> dict:
    """The candidate against each reference on the same rows, overall and per slice (Holm across the slices
    of a reference and metric): `vs_<reference>:<metric>` and `vs_<reference>:slice:<slice>:<metric>`. A
    reference without scores gives one check with verdict `skipped` and the reason."""
    settings, task = params.validate_model.evidence, params.dataset.task
    checks: dict = {}
    for name in REFERENCES:
        reference = references.get(name, Reference(None, "no scores of it given"))
        required = getattr(settings.require, name)
        for metric in settings.metrics or [params.train.metric]:
            if reference.scores is None:
                checks[f"vs_{name}:{metric}"] = {
                    "verdict": "skipped",
                    "passed": None,
                    "skipped": reference.reason,
                }
                continue
            rows = np.ones(len(y), dtype="bool") if reference.rows is None else reference.rows
            truth, candidate, theirs = y[rows], scores[rows], reference.scores
            thresholds = (threshold, reference.threshold)
            overall = compare(metric, task, truth, candidate, theirs, settings, thresholds)
            checks[f"vs_{name}:{metric}"] = judged(overall, required)
            pieces = {
                f"vs_{name}:slice:{column}={value}:{metric}": compare(
                    metric, task, truth[mask], candidate[mask], theirs[mask], settings, thresholds
                )
                for column, value, mask in slices(frame[rows], params.validate_model.slices.columns)
            }
            checks |= {
                key: judged(piece, settings.require.slices)
                for key, piece in with_holm(pieces, settings).items()
            }
    return checks


def validate_candidate(
    model: object,
    x: np.ndarray,
    y: np.ndarray,
    frame: pd.DataFrame,
    params: Params,
    champion: tuple[float | None, str],
    threshold: float = BINARY_THRESHOLD,
    references: Mapping[str, Reference] | None = None,
) -> dict:
    """Every check for one candidate, with the measured values (None where undefined, with the reason);
    label metrics (binary) decide at the candidate's tuned `threshold`."""
    scores = predict_scores(model, x, params.dataset.task)
    return validate_scores(scores, y, frame, params, champion, threshold=threshold, references=references)


def validate_scores(
    scores: np.ndarray,
    y: np.ndarray,
    frame: pd.DataFrame,
    params: Params,
    champion: tuple[float | None, str],
    champion_rows: np.ndarray | None = None,
    on: str = "valid",
    threshold: float = BINARY_THRESHOLD,
    references: Mapping[str, Reference] | None = None,
) -> dict:
    """Every check for one candidate's predictions, with the measured values under `on` (None where
    undefined, the reasons under `undefined`); the champion comparison on `champion_rows` only (the rows the
    champion was measured on; all rows when None); the paired comparisons with `references`."""
    task, primary = params.dataset.task, params.train.metric
    measured = evaluate(task, y, scores, threshold)
    checks = {
        metric: threshold_check(measured.values[metric], measured.undefined.get(metric), limit)
        for metric, limit in params.validate_model.thresholds.items()
    }
    if champion_rows is None:
        compared = Measurement(measured.values[primary], measured.undefined.get(primary))
    else:
        compared = measure(primary, task, y[champion_rows], scores[champion_rows], threshold)
    checks["champion"] = champion_check(compared.value, champion[0], params, champion[1], compared.undefined)
    checks |= slice_checks(frame, y, scores, params, threshold)
    checks |= evidence_checks(scores, y, frame, params, references or {}, threshold)
    return {
        "passed": not any(
            check["passed"] is False for check in checks.values()
        ),  # skipped (null) do not fail
        on: measured.values,
        "undefined": measured.undefined,
        "checks": checks,
    }


def champion_reference(frame: pd.DataFrame, params: Params) -> Reference:
    """The champion's scores on the current valid rows, through its own feature pipeline (labels at 0.5:
    the champion folder holds no threshold)."""
    model_path, pipeline_path = (
        layout.CHAMPION_DIR / "model.pkl",
        layout.CHAMPION_DIR / "feature_pipeline.pkl",
    )
    if not model_path.exists() or not pipeline_path.exists():
        return Reference(
            None, f"no champion in {layout.CHAMPION_DIR}/ (first run, or no production model registered yet)"
        )
    pipeline, model = read_pickle(pipeline_path), load_model(require(model_path).read_bytes())
    try:
        features = pipeline.transform(frame[list(pipeline.feature_names_in_)])
    except (KeyError, ValueError) as error:
        raise PillarsError(
            f"validate_model: the champion in {layout.CHAMPION_DIR}/ cannot score this data: {error}"
        ) from error
    return Reference(predict_scores(model, features, params.dataset.task), "measured")


def champion_value(reference: Reference, y: np.ndarray, params: Params) -> tuple[float | None, str]:
    """The champion's primary metric on the valid rows (None, with why, when there is none)."""
    if reference.scores is None:
        return None, reference.reason
    metric = params.train.metric
    value, undefined = measure(metric, params.dataset.task, y, reference.scores)
    if value is None:
        return None, f"the champion's {metric} is undefined on the valid rows: {undefined}"
    return value, "measured"


def validate_out_of_fold(
    out_of_fold: dict[str, np.ndarray],
    y: dict[str, np.ndarray],
    frames: dict[str, pd.DataFrame],
    params: Params,
    champion: tuple[float | None, str],
    tuning: dict,
    thresholds: dict[str, float],
    references: Mapping[str, Reference] | None = None,
) -> dict:
    """The report after small-data tuning: every candidate judged on its out-of-fold predictions of
    train + valid (`y` and `frames` per split), the champion comparison on the valid rows (a champion
    reference's scores are of the valid rows: they are compared there)."""
    pooled_y = np.concatenate([y["train"], y["valid"]])
    pooled_frame = pd.concat([frames["train"], frames["valid"]], ignore_index=True)
    valid_rows = np.arange(len(pooled_y)) >= len(y["train"])
    on_pooled = {
        name: reference._replace(rows=valid_rows) if name == "champion" else reference
        for name, reference in (references or {}).items()
    }
    candidates = {
        family: validate_scores(
            scores,
            pooled_y,
            pooled_frame,
            params,
            champion,
            valid_rows,
            "out_of_fold",
            thresholds[family],
            on_pooled,
        )
        for family, scores in out_of_fold.items()
    }
    return {
        "metric": params.train.metric,
        "evaluated_on": "out_of_fold",
        "tuning": tuning,
        "eligible": [family for family, result in candidates.items() if result["passed"]],
        "candidates": candidates,
    }


def failed_check(name: str, check: dict) -> str:
    """A failed check for the log: why it has no value, the paired difference with its interval, or the
    measured value."""
    if "undefined" in check:
        return f"{name} undefined ({check['undefined']})"
    if "interval" in check:
        low, high = check["interval"]
        return f"{name} {check['verdict']} ({check['difference']:+.4f}, interval [{low:+.4f}, {high:+.4f}])"
    return f"{name} {check.get('value')}"


def summary(report: dict) -> str:
    lines = []
    for family, result in report["candidates"].items():
        failed = [
            failed_check(name, check) for name, check in result["checks"].items() if check["passed"] is False
        ]
        lines.append(f"  - {family}: {'passed' if result['passed'] else 'failed ' + ', '.join(failed)}")
    return "\n".join(lines)


def out_of_fold_report(
    params: Params,
    target: str,
    champion: Reference,
    train_report: model_handoffs.TrainReport,
) -> dict:
    """Read train + valid and every candidate's out-of-fold predictions, and judge them. The library
    defaults' out-of-fold predictions exist only where they are the tuned candidate of their family."""
    features = {split: read_parquet(layout.feature_split(split)) for split in ("train", "valid")}
    y = {split: frame[target].to_numpy() for split, frame in features.items()}
    frames = {split: read_parquet(layout.curated_split(split)) for split in ("train", "valid")}
    out_of_fold = {
        family: oof_scores(
            read_parquet(layout.candidate_oof(family)),
            len(y["train"]),
            len(y["valid"]),
            str(layout.candidate_oof(family)),
        )
        for family in params.train.candidate_names
    }
    family = train_report.tuning.baseline.family
    tuned = train_report.candidates.get(family)
    defaults = (
        Reference(out_of_fold[family], "measured")
        if tuned is not None and tuned.best_is_defaults
        else Reference(
            None,
            f"the library defaults of {family} are not its tuned candidate, and train writes no out-of-fold "
            "predictions of them",
        )
    )
    names = params.train.candidate_names
    return validate_out_of_fold(
        out_of_fold,
        y,
        frames,
        params,
        champion_value(champion, y["valid"], params),
        train_report.tuning.as_written(),
        {name: train_report.threshold(name) for name in names},
        {"champion": champion, "defaults": defaults},
    )


def main() -> None:
    params = load_params()
    target = data_handoffs.FEATURE_MANIFEST.read().target
    valid = read_parquet(layout.feature_split("valid"))
    x, y = valid.drop(columns=target).to_numpy(), valid[target].to_numpy()
    frame = read_parquet(layout.curated_split("valid"))
    champion = champion_reference(frame, params)
    train_report = model_handoffs.TRAIN_REPORT.read()
    if train_report.tuning.method == "cv":
        report = out_of_fold_report(params, target, champion, train_report)
    else:
        baseline = load_model(require(layout.BASELINE_MODEL).read_bytes())
        measured = champion_value(champion, y, params)
        references = {
            "champion": champion,
            "defaults": Reference(predict_scores(baseline, x, params.dataset.task), "measured"),
        }
        candidates = {
            family: validate_candidate(
                load_model(require(layout.candidate_model(family)).read_bytes()),
                x,
                y,
                frame,
                params,
                measured,
                train_report.threshold(family),
                references,
            )
            for family in params.train.candidate_names
        }
        report = {
            "metric": params.train.metric,
            "eligible": [family for family, result in candidates.items() if result["passed"]],
            "candidates": candidates,
        }
    if not report["eligible"]:
        raise PillarsError(f"validate_model: no candidate passed validation:\n{summary(report)}")
    model_handoffs.MODEL_VALIDATION.write(report)
    print(f"validate_model:\n{summary(report)}")


if __name__ == "__main__":
    run_cli(main)
