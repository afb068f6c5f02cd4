"""Pillar 8, validate_model: the gate a candidate must pass before it may be selected (TFX's "blessing").

Checks on the valid split: absolute thresholds per metric (metrics of decisions, such as F1, at the
candidate's decision threshold that train tuned), no more than `champion.max_drop` worse than the
production model (the champion in models/champion/, when there is one), and a threshold on every slice of
the columns named in params. A candidate that fails a check is not eligible; if none passes, the pipeline
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
from pillars.training.oof import oof_scores
from pillars.training.slices import judged_slices


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


def validate_candidate(
    model: object,
    x: np.ndarray,
    y: np.ndarray,
    frame: pd.DataFrame,
    params: Params,
    champion: tuple[float | None, str],
    threshold: float = BINARY_THRESHOLD,
) -> dict:
    """Every check for one candidate, with the measured values (None where undefined, with the reason);
    label metrics (binary) decide at the candidate's tuned `threshold`."""
    scores = predict_scores(model, x, params.dataset.task)
    return validate_scores(scores, y, frame, params, champion, threshold=threshold)


def validate_scores(
    scores: np.ndarray,
    y: np.ndarray,
    frame: pd.DataFrame,
    params: Params,
    champion: tuple[float | None, str],
    champion_rows: np.ndarray | None = None,
    on: str = "valid",
    threshold: float = BINARY_THRESHOLD,
) -> dict:
    """Every check for one candidate's predictions, with the measured values under `on` (None where
    undefined, the reasons under `undefined`); the champion comparison on `champion_rows` only (the rows the
    champion was measured on; all rows when None)."""
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
    return {
        "passed": not any(
            check["passed"] is False for check in checks.values()
        ),  # skipped (null) do not fail
        on: measured.values,
        "undefined": measured.undefined,
        "checks": checks,
    }


def champion_value(frame: pd.DataFrame, y: np.ndarray, params: Params) -> tuple[float | None, str]:
    """The champion's primary metric on the current valid rows, through its own feature pipeline."""
    model_path, pipeline_path = (
        layout.CHAMPION_DIR / "model.pkl",
        layout.CHAMPION_DIR / "feature_pipeline.pkl",
    )
    if not model_path.exists() or not pipeline_path.exists():
        return (
            None,
            f"no champion in {layout.CHAMPION_DIR}/ (first run, or no production model registered yet)",
        )
    pipeline, model = read_pickle(pipeline_path), load_model(require(model_path).read_bytes())
    try:
        features = pipeline.transform(frame[list(pipeline.feature_names_in_)])
    except (KeyError, ValueError) as error:
        raise PillarsError(
            f"validate_model: the champion in {layout.CHAMPION_DIR}/ cannot score this data: {error}"
        ) from error
    task, metric = params.dataset.task, params.train.metric
    value, undefined = measure(metric, task, y, predict_scores(model, features, task))
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
) -> dict:
    """The report after small-data tuning: every candidate judged on its out-of-fold predictions of
    train + valid (`y` and `frames` per split), the champion comparison on the valid rows."""
    pooled_y = np.concatenate([y["train"], y["valid"]])
    pooled_frame = pd.concat([frames["train"], frames["valid"]], ignore_index=True)
    valid_rows = np.arange(len(pooled_y)) >= len(y["train"])
    candidates = {
        family: validate_scores(
            scores, pooled_y, pooled_frame, params, champion, valid_rows, "out_of_fold", thresholds[family]
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


def summary(report: dict) -> str:
    lines = []
    for family, result in report["candidates"].items():
        failed = [
            f"{name} undefined ({check['undefined']})"
            if "undefined" in check
            else f"{name} {check.get('value')}"
            for name, check in result["checks"].items()
            if check["passed"] is False
        ]
        lines.append(f"  - {family}: {'passed' if result['passed'] else 'failed ' + ', '.join(failed)}")
    return "\n".join(lines)


def out_of_fold_report(
    params: Params,
    target: str,
    champion: tuple[float | None, str],
    tuning: dict,
    thresholds: dict[str, float],
) -> dict:
    """Read train + valid and every candidate's out-of-fold predictions, and judge them."""
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
    return validate_out_of_fold(out_of_fold, y, frames, params, champion, tuning, thresholds)


def main() -> None:
    params = load_params()
    target = data_handoffs.FEATURE_MANIFEST.read().target
    valid = read_parquet(layout.feature_split("valid"))
    x, y = valid.drop(columns=target).to_numpy(), valid[target].to_numpy()
    frame = read_parquet(layout.curated_split("valid"))
    champion = champion_value(frame, y, params)
    train_report = model_handoffs.TRAIN_REPORT.read()
    names = params.train.candidate_names
    thresholds = {name: train_report.threshold(name) for name in names}
    if train_report.tuning.method == "cv":
        report = out_of_fold_report(params, target, champion, train_report.tuning.as_written(), thresholds)
    else:
        candidates = {
            family: validate_candidate(
                load_model(require(layout.candidate_model(family)).read_bytes()),
                x,
                y,
                frame,
                params,
                champion,
                thresholds[family],
            )
            for family in names
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
