"""How long the studies go on: trial counts, a budget of counted work, and families that stop early.

A family's study stops proposing trials when `n_trials` have finished or, with `train.budget`, when its
trials' work reaches its allotment. A trial's work is counted, never timed: its family's measured `trial_s`
plus `step_s` for every step it reported to the pruner (`make budget` measures both on the data). The same
trials in storage always count the same, so where a run stops does not depend on the machine or its load,
and a resumed run stops where an uninterrupted one would.

Every family first runs its first trial (the library's defaults). A family whose first trial is worse than
the best first trial by more than `train.drop_margin` (relative to the best value) stops there; the others
share what is left of the budget, cheapest trials first, each taking an equal share of what the ones before
it left, so a family that needs less (its `n_trials` reached) leaves the rest to the ones after it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

from optuna.trial import FrozenTrial

from pillars.core.params import FamilyCost, TrainParams

ROUND = "round"  # the user attribute holding a trial's round


def trial_work(trial: FrozenTrial, cost: FamilyCost) -> float:
    """What one finished trial counts against the budget: its fixed cost and one step cost per report."""
    return cost.trial_s + cost.step_s * len(trial.intermediate_values)


@dataclass(frozen=True)
class Limits:
    """When a study stops proposing: `trials` finished, or their counted work (`cost`) reaching `work`.

    Trials run in rounds proposed together, so a run stops between rounds: the trials a run with these
    limits takes (`taken`) are whole rounds, in order, each begun while both limits were still ahead."""

    trials: int
    work: float | None = None
    cost: FamilyCost | None = None

    def work_of(self, trials: Sequence[FrozenTrial]) -> float:
        """The trials' counted work (without a cost: one per trial)."""
        if self.cost is None:
            return float(len(trials))
        cost = self.cost
        return sum(trial_work(trial, cost) for trial in trials)

    def _open(self, taken: Sequence[FrozenTrial]) -> bool:
        return len(taken) < self.trials and (self.work is None or self.work_of(taken) < self.work)

    def taken(self, finished: Sequence[FrozenTrial]) -> list[FrozenTrial]:
        """The finished trials (in proposal order) that a run with these limits runs: a study that once ran
        with larger limits holds more, and the result must be the one these limits give on a fresh machine."""
        taken: list[FrozenTrial] = []
        for _, members in groupby(finished, key=lambda trial: trial.user_attrs.get(ROUND, trial.number)):
            if not self._open(taken):
                break
            taken += list(members)[: self.trials - len(taken)]
        return taken

    def reached(self, finished: Sequence[FrozenTrial]) -> bool:
        """Whether a run stops proposing trials."""
        return not self._open(self.taken(finished))

    def room(self, finished: Sequence[FrozenTrial]) -> int:
        """How many more trials the next round may propose."""
        return self.trials - len(self.taken(finished))


def kept_families(firsts: dict[str, float], maximize: bool, margin: float | None) -> list[str]:
    """The families (in the given order) whose first trial is within `margin` of the best first trial,
    relative to the best value's size; all of them without a margin."""
    if margin is None:
        return list(firsts)
    best = max(firsts.values()) if maximize else min(firsts.values())
    gap = margin * max(abs(best), 1e-12)
    return [family for family, value in firsts.items() if (best - value if maximize else value - best) <= gap]


def tuning_order(families: list[str], first_work: dict[str, float]) -> list[str]:
    """The order the kept families are tuned in: cheapest first trial first (ties: the given order), so a
    family that reaches its `n_trials` below its share leaves the rest to the dearer ones after it."""
    return sorted(families, key=lambda family: (first_work[family], families.index(family)))


def share(settings: TrainParams, spent: float, families_left: int) -> float | None:
    """The next family's allotment of work beyond its first trial: an equal part of what is left of
    `train.budget.seconds` once `spent` is counted (None: no budget)."""
    if settings.budget is None:
        return None
    return max(settings.budget.seconds - spent, 0.0) / families_left


def _cost(settings: TrainParams, family: str) -> FamilyCost | None:
    return settings.budget.costs[family] if settings.budget is not None else None


def first_limits(settings: TrainParams, family: str) -> Limits:
    """A family's first trial alone (and all it runs when it stops early)."""
    return Limits(1, None, _cost(settings, family))


def tuning_limits(settings: TrainParams, family: str, work: float | None) -> Limits:
    """A kept family's limits: its `n_trials` and, with a budget, the work it may reach (`work`)."""
    return Limits(settings.families[family].n_trials, work, _cost(settings, family))
