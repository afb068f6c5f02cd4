"""What a trial of each family costs on this data and this machine: the measurement behind `train.budget`.

Each family's first trial (its `start` point, the library's defaults) runs twice through the real trial path
(a study in a temporary SQLite storage, the pruner's reports and checks, cross-validation for small data),
capped at PROBE_STEPS pruner steps. The difference of the two prices a step, the rest is the trial's fixed
part. The probe reads clocks; what it writes (params) is then only counted against, never timed again.
"""

import tempfile
import time
from pathlib import Path

import optuna

from pillars.core.params import FamilyCost, FamilyParams, TrainParams
from pillars.training.budget import Limits
from pillars.training.cv import Pooled
from pillars.training.families import FAMILIES
from pillars.training.families.spec import TrainingData
from pillars.training.tuning import Progress, finished_trials, run_study

PROBE_STEPS = (2, 6)  # the probe's two short trials, in pruner steps: their difference prices a step
REPEATS, REPEAT_BELOW_S = 5, 1.0  # a trial shorter than this is timed up to this many times (the least)
MIN_STEP_S = 1e-4  # a step costs at least this (two noisy timings may differ the wrong way)


def measure_costs(settings: TrainParams, data: TrainingData, pooled: Pooled | None) -> dict[str, FamilyCost]:
    """Every candidate family's cost per trial and per step (settings with `n_jobs` resolved)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="pillars-probe-") as folder:
        storage = f"sqlite:///{Path(folder) / 'probe.db'}"
        optuna.create_study(storage=storage, study_name="tables")  # the storage's tables, before any timing
        probing = settings.model_copy(update={"storage": storage, "timeout_s": None})
        return {family: _cost(family, probing, data, pooled) for family in settings.candidates}


def _cost(family: str, settings: TrainParams, data: TrainingData, pooled: Pooled | None) -> FamilyCost:
    config = settings.families[family]
    rounds_key, step_rounds = FAMILIES[family].rounds_key, FAMILIES[family].step_rounds(settings)
    if rounds_key is None:  # no rounds to cap (the linear model): one trial, spread over its steps
        seconds, steps = _first_trial(family, config, settings, data, pooled, "whole")
        return FamilyCost(trial_s=0.0, step_s=round(max(seconds / max(steps, 1), MIN_STEP_S), 6))
    capped = [
        config.model_copy(update={"fixed": config.fixed | {rounds_key: steps * step_rounds}})
        for steps in PROBE_STEPS
    ]
    (short, short_steps), (long, long_steps) = (
        _first_trial(family, shorter, settings, data, pooled, f"steps-{steps}")
        for shorter, steps in zip(capped, PROBE_STEPS, strict=True)
    )
    step = max((long - short) / max(long_steps - short_steps, 1), MIN_STEP_S)
    return FamilyCost(trial_s=round(max(short - step * short_steps, 0.0), 6), step_s=round(step, 6))


def _first_trial(
    family: str,
    config: FamilyParams,
    settings: TrainParams,
    data: TrainingData,
    pooled: Pooled | None,
    name: str,
) -> tuple[float, int]:
    """The wall time of a study's first trial under `config` (the least of a few while a trial takes less
    than REPEAT_BELOW_S: short timings are noisy), and the steps it reported."""
    alone = settings.model_copy(update={"families": settings.families | {family: config}})
    times: list[float] = []
    while not times or (min(times) < REPEAT_BELOW_S and len(times) < REPEATS):
        started = time.perf_counter()
        study_name = f"{family}-{name}-{len(times)}"
        study = run_study(family, data, alone, study_name, pooled, limits=Limits(1), progress=_Quiet())
        times.append(time.perf_counter() - started)
    return min(times), len(finished_trials(study)[0].intermediate_values)


class _Quiet(Progress):
    """No progress lines: the probe's trials are not the run's."""

    def __init__(self) -> None:
        super().__init__(1.0)

    def told(self, family: str, study: optuna.Study, number: int, limits: Limits) -> None:
        """Nothing to say."""
