"""Pillar 8, validate_model: the gate a candidate must pass before it may be selected (TFX's "blessing").

Checks on the valid split: absolute thresholds per metric, no more than `champion.max_drop` worse than the
production model (the champion in models/champion/, when there is one), and a threshold on every slice of
the columns named in params. A candidate that fails a check is not eligible; if none passes, the pipeline
stops with a summary of what failed. A metric undefined on the whole valid split is a failed check with the
reason; a slice the shared rule skips (too few rows, one class) or whose metric is undefined is reported with
the reason and not judged.
"""

import numpy as np
import pandas as pd

from pillars.core import layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import read_json, read_parquet, read_pickle, write_json
from pillars.core.metrics import METRICS, evaluate, measure, predict_scores
from pillars.core.params import Bounds, Params, load_params
from pillars.training.slices import judged_slices


def slice_checks(frame: pd.DataFrame, y: np.ndarray, scores: np.ndarray, params: Params) -> dict:
    """The slice metric per value of every slice column. A slice is not judged (passed, with the reason
    under `skipped`) when the shared rule skips it (under `min_rows` rows, one class) or when the metric is
    undefined on it (value null)."""
    settings, task = params.validate_model.slices, params.dataset.task
    checks = {}
    for piece in judged_slices(frame, y, task, settings):
        check: dict = {"rows": piece.size}
        if piece.skipped is not None:
            check |= {"passed": True, "skipped": piece.skipped}
        else:
            value, undefined = measure(settings.metric, task, y[piece.rows], scores[piece.rows])
            if value is None:
                check |= {
                    "value": None,
                    "passed": True,
                    "skipped": f"{settings.metric} undefined: {undefined}",
                }
            else:
                rounded = round(value, 6)
                check |= {"value": rounded, "passed": settings.limit.holds(rounded)}
        checks[f"slice:{piece.name}:{settings.metric}"] = check
    return checks


def threshold_check(value: float | None, undefined: str | None, limit: Bounds) -> dict:
    """An absolute threshold on the whole valid split: a metric undefined there fails, with the reason."""
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
        return {"passed": True, "skipped": reason}
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
) -> dict:
    """Every check for one candidate, with the measured values (None where undefined, with the reason)."""
    task, primary = params.dataset.task, params.train.metric
    scores = predict_scores(model, x, task)
    measured = evaluate(task, y, scores)
    checks = {
        metric: threshold_check(measured.values[metric], measured.undefined.get(metric), limit)
        for metric, limit in params.validate_model.thresholds.items()
    }
    checks["champion"] = champion_check(
        measured.values[primary], champion[0], params, champion[1], measured.undefined.get(primary)
    )
    checks |= slice_checks(frame, y, scores, params)
    return {
        "passed": all(check["passed"] for check in checks.values()),
        "valid": measured.values,
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
    pipeline, model = read_pickle(pipeline_path), read_pickle(model_path)
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


def summary(report: dict) -> str:
    lines = []
    for family, result in report["candidates"].items():
        failed = [
            f"{name} undefined ({check['undefined']})"
            if "undefined" in check
            else f"{name} {check.get('value')}"
            for name, check in result["checks"].items()
            if not check["passed"]
        ]
        lines.append(f"  - {family}: {'passed' if result['passed'] else 'failed ' + ', '.join(failed)}")
    return "\n".join(lines)


def main() -> None:
    params = load_params()
    target = read_json(layout.FEATURE_MANIFEST)["target"]
    valid = read_parquet(layout.feature_split("valid"))
    x, y = valid.drop(columns=target).to_numpy(), valid[target].to_numpy()
    frame = read_parquet(layout.curated_split("valid"))
    champion = champion_value(frame, y, params)
    candidates = {
        family: validate_candidate(read_pickle(layout.candidate_model(family)), x, y, frame, params, champion)
        for family in params.train.candidates
    }
    report = {
        "metric": params.train.metric,
        "eligible": [family for family, result in candidates.items() if result["passed"]],
        "candidates": candidates,
    }
    if not report["eligible"]:
        raise PillarsError(f"validate_model: no candidate passed validation:\n{summary(report)}")
    write_json(layout.MODEL_VALIDATION_REPORT, report)
    print(f"validate_model:\n{summary(report)}")


if __name__ == "__main__":
    run_cli(main)
