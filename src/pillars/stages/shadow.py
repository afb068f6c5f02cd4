"""Shadow, before anything ships: the logged production requests replayed through the candidate and the champion.

Reads every prediction log under `monitor.logs` (the service's, collected, and batch inference's), the ground
truth under `monitor.feedback`, the candidate's Bento (models/service.bento) and the champion's
(models/champion/service.bento, when the registry put one there; none on a first release), and scores every
logged row in process with both (`pillars.monitoring.shadow`). Writes metrics/shadow.json (the same logs and
models give the same bytes) and build/shadow_timings.json (each model's scoring time; untracked). Exits
non-zero with one message when the replay is not faithful or params block promotion: deploy depends on the
report, so nothing ships before it passes.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pillars.bento.archive import packaged_model
from pillars.core import layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import write_json
from pillars.core.params import Params, load_params
from pillars.monitoring.logs import read_feedback
from pillars.monitoring.shadow import OVERALL, LoggedRequests, PairedEvidence, Shadow, read_requests, shadow
from pillars.serve.model import ServingModel
from pillars.training import evidence

SHADOW_REPORT = Path("metrics/shadow.json")
TIMINGS = Path("build/shadow_timings.json")


def paired_evidence(params: Params) -> PairedEvidence:
    """The gate's paired comparison on `train.metric`, as `validate_model.evidence` sets it (seeded bootstrap;
    DeLong, McNemar where they apply), Holm-corrected across slices; `meets`: the verdict reaches
    `shadow.labelled`."""
    settings = params.validate_model.evidence

    def compare(
        y: np.ndarray,
        candidate: np.ndarray,
        champion: np.ndarray,
        thresholds: tuple[float, float],
        masks: dict[str, np.ndarray],
    ) -> dict[str, dict]:
        found = {
            name: evidence.compare(
                params.train.metric,
                params.dataset.task,
                y[rows],
                candidate[rows],
                champion[rows],
                settings,
                thresholds,
            )
            for name, rows in masks.items()
        }
        overall = found.pop(OVERALL)
        judged = {OVERALL: overall, **evidence.with_holm(found, settings)}
        return {
            name: {**comparison.report(), "meets": evidence.meets(comparison, params.shadow.labelled)}
            for name, comparison in judged.items()
        }

    return compare


def shadow_as_params_set(
    params: Params,
    logged: LoggedRequests,
    truth: pd.DataFrame,
    candidate: ServingModel,
    champion: ServingModel | None,
    no_champion: str = "",
) -> Shadow:
    """The replay with everything params.yaml sets: `shadow.*`, the slices of `validate_model.slices` and the
    gate's evidence. The stage's, and what the benchmarks judge challengers with."""
    return shadow(
        logged,
        truth,
        candidate,
        champion,
        no_champion,
        list(params.validate_model.slices.columns),
        params.shadow,
        paired_evidence(params),
        evidence.alpha(params.validate_model.evidence),
    )


def no_champion() -> str:
    """Why there is no champion to replay: a first release, or a champion the registry left without its Bento."""
    if (layout.CHAMPION_DIR / "model.pkl").is_file():
        return (
            f"{layout.CHAMPION_DIR} holds a champion model but not its Bento ({layout.CHAMPION_ARCHIVE}): "
            "nothing to replay it with; put the champion's models/service.bento there"
        )
    return f"first release: no champion in {layout.CHAMPION_DIR}"


def main() -> None:
    params = load_params()
    candidate = packaged_model(layout.SERVICE_ARCHIVE)
    champion = packaged_model(layout.CHAMPION_ARCHIVE) if layout.CHAMPION_ARCHIVE.is_file() else None
    logged = read_requests(Path(params.monitor.logs), params.shadow.window_rows)
    truth = read_feedback(Path(params.monitor.feedback), params.dataset.target, logged.skipped)
    result = shadow_as_params_set(params, logged, truth, candidate, champion, no_champion())
    write_json(SHADOW_REPORT, result.report)
    write_json(TIMINGS, {"rows": logged.rows, "scoring_seconds": result.seconds})
    if result.unfaithful:
        raise PillarsError(
            "shadow: the replay does not reproduce the logged answers, so it proves nothing: "
            + "; ".join(result.unfaithful)
        )
    if result.blocked:
        raise PillarsError(f"shadow: promotion blocked ({SHADOW_REPORT}): " + "; ".join(result.blocked))
    compared = result.report["champion"]
    champion_said = compared.get("skipped") or ", ".join(
        f"{key} {compared[key]}" for key in ("agreement", "p95_absolute") if key in compared
    )
    print(
        f"shadow: {logged.rows} logged rows replayed through the candidate {candidate.version}; champion: "
        f"{champion_said}; timings in {TIMINGS}: {json.dumps(result.seconds)}"
    )


if __name__ == "__main__":
    run_cli(main)
