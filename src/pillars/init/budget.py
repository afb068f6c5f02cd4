"""`make budget MINUTES=10`: size the train stage so that the next `make run` takes about that long here.

It brings the data stages up to date (`dvc repro featurize`: the next run then starts at train), measures
what a trial of each family costs on the feature matrices (`pillars.training.probe`), and writes counts into
params.yaml: `train.budget` (train's share of the minutes as counted work, and the measured costs), each
family's `n_trials` cap, and a cap on its boosting rounds where one trial would otherwise take a large part
of its share. The run itself never reads a clock, so its results stay byte-reproducible; the minutes hold
on the machine that measured them (a machine twice as fast takes half the time, with the same models).
`make init ... BUDGET=10m` does the same right after init.
"""

import argparse
import logging
import math
import re
import time
from dataclasses import dataclass

from ruamel.yaml.comments import CommentedMap

from pillars.core import data_handoffs
from pillars.core.errors import PillarsError, run_cli
from pillars.core.params import PARAMS_FILE, FamilyCost, Params, TrainParams, load_params
from pillars.core.process import run
from pillars.init.params_file import load_round_trip, write_round_trip
from pillars.training.cv import pool, uses_cv
from pillars.training.families import FAMILIES
from pillars.training.matrices import load_training_data
from pillars.training.probe import measure_costs
from pillars.training.threads import with_threads

logger = logging.getLogger(__name__)
DEFAULT_MINUTES = 10.0
# The stages after train (validate_model .. monitor): a fixed part (package builds the Bento, deploy starts
# a server and times 2,300 requests, each stage starts Python and its libraries; 57 s measured on the bundled
# data on 2 cores, 26 s of it deploy) and a part that grows with the rows predicted (test and holdout,
# assess's permutation importance per input column). The plan reserves their time first.
AFTER_TRAIN_S = 90.0
AFTER_TRAIN_S_PER_CELL = 3e-5  # per row x column x repeat that permutation importance predicts again
AFTER_TRAIN_S_PER_ROW = 1.2e-3  # per test and holdout row: parity checks, served in bulk, batch inference,
# monitoring (flight_delays, 2 x 29,103 held-out rows: about 80 s beyond the fixed part)
TYPICAL_STEPS_SHARE = 1 / 3  # a tuned trial stops early at about this share of its round cap
# Counted work runs slower than the probe's trials on large data: the pruner reads every trial's reports at
# each report, which grows with the study (the probe's study holds one trial). flight_delays (204k train rows):
# 188 s of wall time for 138 counted seconds; the smaller shapes ran at 0.7-0.9 wall per counted second
WALL_PER_COUNTED = 1.35
MAX_TRIALS = 100  # n_trials under a budget: past this TPE's proposals and the pruner's reads grow costly per
# trial (and caps below it bound the run before the budget: families that stop early leave their share to
# the others, and pruned trials cost far less than a typical one)
TRIAL_SHARE = 1 / 3  # no single trial may take more than this share of its family's budget
# Fits after tuning, in trials per family: the chosen configuration, and the baseline (the best family's
# library defaults) when tuning moved away from them; small data also refits each on train + valid
REFITS = {False: 2, True: 3}


@dataclass(frozen=True)
class Plan:
    """What `make budget` writes, and the estimate it reports."""

    minutes: float
    train_s: float  # train's share of the minutes, refits included
    tuning_s: float  # the counted work of the studies (train.budget.seconds)
    after_train_s: float
    costs: dict[str, FamilyCost]
    trials: dict[str, int]  # n_trials caps
    rounds: dict[str, int]  # round caps (fixed.<rounds key>), where lowered
    expected: dict[str, int]  # about how many typical trials each family's equal share buys (for people)


def parse_minutes(text: str) -> float:
    """`10m`, `10`, `90s`, `1.5h` as minutes; anything else names the accepted forms."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*", text)
    if match is None or float(match.group(1)) <= 0:
        raise PillarsError(f"BUDGET={text!r}: expected minutes as a positive number, e.g. 10m, 90s or 1.5h")
    return float(match.group(1)) * {"s": 1 / 60, "h": 60.0}.get(match.group(2) or "m", 1.0)


def round_cap(settings: TrainParams, family: str) -> int | None:
    """A family's boosting-round cap as params have it (None: no rounds, or the library's default)."""
    key = FAMILIES[family].rounds_key
    value = settings.families[family].fixed.get(key) if key else None
    return int(value) if isinstance(value, int) else None


def typical_trial_s(
    settings: TrainParams,
    family: str,
    cost: FamilyCost,
    cap: int | None,
    share_of_cap: float = TYPICAL_STEPS_SHARE,
) -> float:
    """What a tuned trial of the family costs on average, by its round cap (early stopping ends most
    trials well before it: at about `share_of_cap` of it)."""
    if cap is None:
        return cost.trial_s + cost.step_s * FAMILIES[family].uncapped_steps(settings)
    steps = cap / FAMILIES[family].step_rounds(settings) * share_of_cap
    return cost.trial_s + cost.step_s * steps


def after_train_s(params: Params, held_out_rows: int, inputs: int) -> float:
    """What the stages after train take, estimated from the rows they predict (test and holdout about
    `held_out_rows` each) and the cells permutation importance predicts again."""
    importance = min(held_out_rows, params.assess.importance_rows) * inputs * params.assess.importance_repeats
    return AFTER_TRAIN_S + AFTER_TRAIN_S_PER_CELL * importance + AFTER_TRAIN_S_PER_ROW * 2 * held_out_rows


def capped_rounds(settings: TrainParams, family: str, cost: FamilyCost, share: float) -> int | None:
    """The family's round cap, lowered so that one trial at the cap takes at most TRIAL_SHARE of `share`
    (at least two steps)."""
    cap = round_cap(settings, family)
    if cap is None or cost.step_s <= 0:
        return cap
    steps = (share * TRIAL_SHARE - cost.trial_s) / cost.step_s
    return min(cap, max(int(steps), 2) * FAMILIES[family].step_rounds(settings))


def plan(
    minutes: float, settings: TrainParams, costs: dict[str, FamilyCost], after: float, refits: int
) -> Plan:
    """Split `minutes` between the stages after train (`after` seconds) and train; train's share between the
    final fits (`refits` trials per family) and the studies; cap each family's rounds and trials to its
    share. Refused when not even two of the cheapest trials of each family fit."""
    families = settings.candidates

    def typical(share: float, share_of_cap: float = TYPICAL_STEPS_SHARE) -> dict[str, float]:
        return {
            family: typical_trial_s(
                settings,
                family,
                costs[family],
                capped_rounds(settings, family, costs[family], share),
                share_of_cap,
            )
            for family in families
        }

    def split(minutes: float) -> tuple[float, float, float]:
        """train's seconds, the final fits' (the chosen configurations tend to be the slow-learning ones, at
        their round caps) and the studies' counted work."""
        train_s = minutes * 60 - after
        refit_s = refits * sum(typical(train_s / len(families), share_of_cap=1.0).values())
        return train_s, refit_s, (train_s - refit_s) / WALL_PER_COUNTED

    least_trial = sum(costs[family].trial_s + 2 * costs[family].step_s for family in families)
    train_s, refit_s, tuning_s = split(minutes)
    if tuning_s < 2 * least_trial:  # not even two of the cheapest trials of each family
        least = next(more for more in range(math.ceil(minutes), 10_000) if split(more)[2] >= 2 * least_trial)
        raise PillarsError(
            f"budget: {minutes:g} minutes is too little for this data on this machine: the stages after train "
            f"take about {after:.0f} s and the final fits of {families} about {refit_s:.0f} s; give at least "
            f"{least} minutes (make budget MINUTES={least}), or fewer train.candidates"
        )
    share = tuning_s / len(families)
    rounds = {
        family: cap
        for family in families
        if (cap := capped_rounds(settings, family, costs[family], share)) != round_cap(settings, family)
    }
    trials = dict.fromkeys(families, MAX_TRIALS)  # a safety cap: the counted work stops the studies
    expected = {family: max(1, round(share / max(each, 1e-6))) for family, each in typical(share).items()}
    return Plan(minutes, train_s, tuning_s, after, costs, trials, rounds, expected)


def write_plan(found: Plan) -> None:
    """The plan into params.yaml, touching only the keys it decides (comments and layout kept)."""
    document = load_round_trip()
    train = document["train"]
    costs = CommentedMap()
    for family, cost in found.costs.items():
        entry = CommentedMap(trial_s=cost.trial_s, step_s=cost.step_s)
        entry.fa.set_flow_style()
        costs[family] = entry
    train["budget"] = CommentedMap(minutes=found.minutes, seconds=round(found.tuning_s, 1), costs=costs)
    for family, trials in found.trials.items():
        train["families"][family]["n_trials"] = trials
    for family, cap in found.rounds.items():
        train["families"][family]["fixed"][FAMILIES[family].rounds_key] = cap
    write_round_trip(document)


def report(found: Plan, data_s: float) -> str:
    """What the budget buys, for the person who asked."""
    lines = [
        f"budget: make run takes about {found.minutes:g} min here: train {found.train_s / 60:.1f} min, "
        f"the stages after it about {found.after_train_s / 60:.1f} min"
        + (f" (stages 1-6 ran now, {data_s:.0f} s)" if data_s else ""),
        "  family: measured cost (per trial + per step) -> typical trials in an equal share (pruned ones cost less)",
    ]
    for family, cost in found.costs.items():
        capped = f", rounds capped at {found.rounds[family]}" if family in found.rounds else ""
        lines.append(
            f"  {family}: {cost.trial_s:.3f} s + {cost.step_s:.4f} s/step -> about {found.expected[family]} "
            f"trials{capped}"
        )
    lines.append(
        "  counted, not timed: the same models on any machine; rerun make budget after changing the data"
    )
    return "\n".join(lines)


def apply_budget(minutes: float) -> None:
    """Bring stages 1-6 up to date, measure, plan and write the budget; say what it buys."""
    started = time.perf_counter()
    run(
        ["dvc", "repro", "featurize"],
        stream=True,
        describe=lambda said: (
            f"{said}; the budget needs stages 1-6: fix what the stage said above, then "
            f"make budget MINUTES={minutes:g}"
        ),
    )
    data_s = time.perf_counter() - started
    params = load_params(PARAMS_FILE)
    manifest = data_handoffs.FEATURE_MANIFEST.read()
    data = load_training_data(manifest, params.dataset.task, params.train.external_memory_rows)
    settings = with_threads(params.train, len(data.y_train), data.x_valid.shape[1])
    pooled = pool(data, settings) if uses_cv(data, settings) else None
    logger.info("budget: measuring a trial of each of %s", settings.candidates)
    costs = measure_costs(settings, data, pooled)
    after = after_train_s(params, len(data.y_valid), len(manifest.inputs))
    found = plan(minutes, settings, costs, after, refits=REFITS[pooled is not None])
    write_plan(found)
    print(report(found, data_s))


def main() -> None:
    parser = argparse.ArgumentParser(prog="make budget", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", default=f"{DEFAULT_MINUTES:g}m", help="e.g. 10m, 90s, 1.5h")
    apply_budget(parse_minutes(parser.parse_args().minutes))


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
