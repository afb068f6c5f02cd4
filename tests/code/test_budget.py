"""A time budget recorded as counts (pillars.training.budget, .probe, pillars.init.budget): studies stop on
counted work, the same trials whatever the machine; families far behind stop after their first trial; the
probe prices a trial and a step; the plan turns minutes into counts, and refuses minutes that cannot work."""

import re
import time
from pathlib import Path

import optuna
import pytest

from pillars.core.errors import PillarsError
from pillars.core.params import FamilyCost
from pillars.init.budget import parse_minutes, plan
from pillars.stages.train import train
from pillars.training.budget import ROUND, Limits, kept_families, trial_work, tuning_order
from pillars.training.probe import measure_costs
from pillars.training.threads import ONE_THREAD_CELLS, threads_for
from pillars.training.tuning import finished_trials, run_study
from tests.code.test_train import HOLDOUT, small_settings, toy_data

COST = FamilyCost(trial_s=1.0, step_s=0.5)


def finished(steps: list[int], rounds: list[int] | None = None) -> list[optuna.trial.FrozenTrial]:
    """Finished trials reporting `steps` steps each, in rounds (default: one trial a round)."""
    trials = []
    for number, (count, round_index) in enumerate(zip(steps, rounds or range(len(steps)), strict=True)):
        trial = optuna.trial.create_trial(
            value=0.5,
            intermediate_values={step: 0.5 for step in range(count)},
            user_attrs={ROUND: round_index},
        )
        trial.number = number
        trials.append(trial)
    return trials


def test_a_trial_counts_its_fixed_cost_and_one_step_cost_per_report() -> None:
    assert trial_work(finished([4])[0], COST) == 1.0 + 4 * 0.5


def test_limits_take_trials_until_their_work_reaches_the_allotment() -> None:
    trials = finished([2, 2, 2, 2])  # 2 s each
    limits = Limits(trials=10, work=5.0, cost=COST)
    assert [trial.number for trial in limits.taken(trials)] == [0, 1, 2], "the third begins at 4 s, under 5"
    assert limits.reached(trials) and not limits.reached(trials[:2])
    assert Limits(trials=2, work=100.0, cost=COST).taken(trials) == trials[:2], "n_trials still caps"
    assert Limits(trials=3).work_of(trials) == 4.0, "without a cost a trial counts one"


def test_a_round_is_taken_whole_or_not_at_all() -> None:
    trials = finished([2, 2, 2, 2, 2], rounds=[0, 0, 1, 1, 2])
    assert len(Limits(trials=10, work=3.0, cost=COST).taken(trials)) == 2, "round 1 begins at 4 s"
    assert len(Limits(trials=10, work=4.5, cost=COST).taken(trials)) == 4


def test_families_far_behind_the_best_first_trial_stop() -> None:
    firsts = {"catboost": 0.90, "lightgbm": 0.93, "linear": 0.80}
    assert kept_families(firsts, maximize=True, margin=0.05) == ["catboost", "lightgbm"]
    assert kept_families(firsts, maximize=True, margin=None) == list(firsts)
    losses = {"xgboost": 0.30, "lightgbm": 0.31, "linear": 0.40}
    assert kept_families(losses, maximize=False, margin=0.05) == ["xgboost", "lightgbm"]
    assert tuning_order(
        ["xgboost", "lightgbm", "linear"], {"xgboost": 3.0, "lightgbm": 1.0, "linear": 1.0}
    ) == [
        "lightgbm",
        "linear",
        "xgboost",
    ]


def test_auto_threads_follow_the_data_not_the_machine(make_params) -> None:
    settings = make_params(train={"n_jobs": "auto", "max_threads": 2}).train
    assert threads_for(settings, 300, 20) == 1
    assert threads_for(settings, ONE_THREAD_CELLS // 10, 10) == 2
    assert threads_for(make_params(train={"n_jobs": 3}).train, 300, 20) == 3


def budgeted(make_params, tmp_path: Path, database: str, seconds: float, **train: object):
    families = {"xgboost": {"n_trials": 40, "fixed": {"n_estimators": 60, "early_stopping_rounds": 10}}}
    costs = {"xgboost": {"trial_s": 1.0, "step_s": 0.25}, "linear": {"trial_s": 0.0, "step_s": 0.2}}
    overrides = {
        **HOLDOUT,
        "storage": f"sqlite:///{tmp_path}/{database}.db",
        "candidates": ["xgboost", "linear"],
        "families": families,
        "budget": {"minutes": 1.0, "seconds": seconds, "costs": costs},
        "drop_margin": None,
        **train,
    }
    return make_params(train=overrides)


def test_a_budget_stops_the_studies_on_counted_work_and_a_larger_one_buys_more(
    make_params, tmp_path: Path
) -> None:
    data = toy_data()
    small = train(budgeted(make_params, tmp_path, "small", 12.0), data, "fingerprint")
    again = train(budgeted(make_params, tmp_path, "again", 12.0), data, "fingerprint")
    large = train(budgeted(make_params, tmp_path, "large", 40.0), data, "fingerprint")
    assert small.summary == again.summary and small.tables["xgboost"].equals(again.tables["xgboost"])
    assert 1 < small.summary["xgboost"]["trials"] < large.summary["xgboost"]["trials"] < 40
    # xgboost is tuned last (its first trial cost more than linear's), so it takes what is left: the run
    # stops at the first trial that brings the counted work of both families to the budget
    settings = budgeted(make_params, tmp_path, "small", 12.0).train
    summaries = optuna.get_all_study_summaries(settings.storage)
    (name,) = [summary.study_name for summary in summaries if summary.study_name.startswith("xgboost")]
    study = optuna.load_study(study_name=name, storage=settings.storage)
    xgboost = [trial_work(trial, settings.budget.costs["xgboost"]) for trial in finished_trials(study)]
    linear = small.summary["linear"]["trials"] * 3 * 0.2  # three folds a trial
    assert linear + sum(xgboost[:-1]) < 12.0 <= linear + sum(xgboost)


def test_a_family_far_behind_stops_after_its_first_trial_and_says_why(make_params, tmp_path: Path) -> None:
    data = toy_data()
    params = make_params(
        train={
            **HOLDOUT,
            "storage": f"sqlite:///{tmp_path}/studies.db",
            "candidates": ["xgboost", "linear"],
            "families": {
                "xgboost": {
                    "n_trials": 3,
                    "fixed": {"n_estimators": 5, "max_depth": 1, "learning_rate": 0.01},
                },
                "linear": {"n_trials": 3},
            },
            "drop_margin": 0.0,  # any gap stops the weaker family
        }
    )
    trained = train(params, data, "fingerprint")
    dropped = trained.tuning["dropped"]
    assert list(dropped) == ["xgboost"] and "train.drop_margin" in dropped["xgboost"]
    assert trained.summary["xgboost"]["trials"] == 1 and trained.summary["linear"]["trials"] == 3
    assert "xgboost" in trained.models, "it stays a candidate, with its first trial's configuration"


def test_the_probe_prices_a_trial_well_enough_to_foretell_a_longer_one(make_params, tmp_path: Path) -> None:
    """Priced on trials of 2 and 6 steps, a trial of 15 steps takes about what the price says."""
    fixed = {"n_estimators": 150, "early_stopping_rounds": None}  # 15 steps of 10 rounds
    families = {"xgboost": {"n_trials": 1, "fixed": fixed}, "linear": {"n_trials": 1}}
    settings = small_settings(make_params, tmp_path, candidates=["xgboost", "linear"], families=families)
    data = toy_data(rows=20_000)
    costs = measure_costs(settings, data, None)
    assert set(costs) == {"xgboost", "linear"} and costs["linear"].trial_s == 0.0
    assert not list(tmp_path.glob("*.db")), "the probe's studies are its own, in a folder it removes"
    started = time.perf_counter()
    study = run_study("xgboost", data, settings, "timed")
    took = time.perf_counter() - started
    steps = len(finished_trials(study)[0].intermediate_values)
    foretold = costs["xgboost"].trial_s + steps * costs["xgboost"].step_s
    assert steps == 15 and took / 3 < foretold < took * 3


@pytest.mark.parametrize(("text", "minutes"), [("10m", 10.0), ("10", 10.0), ("90s", 1.5), ("1.5h", 90.0)])
def test_minutes_are_read_in_the_usual_forms(text: str, minutes: float) -> None:
    assert parse_minutes(text) == minutes


@pytest.mark.parametrize("text", ["ten", "0m", "-5m", "10d"])
def test_other_budgets_are_refused_with_the_forms_named(text: str) -> None:
    with pytest.raises(PillarsError, match=r"e\.g\. 10m, 90s or 1\.5h"):
        parse_minutes(text)


def test_the_plan_buys_more_work_with_more_minutes_and_caps_the_rounds_of_costly_ones(make_params) -> None:
    settings = make_params().train
    costs = {
        "catboost": FamilyCost(trial_s=0.5, step_s=2.0),  # 20 s per 10 rounds: a costly family
        "lightgbm": FamilyCost(trial_s=0.2, step_s=0.05),
        "xgboost": FamilyCost(trial_s=0.2, step_s=0.05),
        "linear": FamilyCost(trial_s=0.0, step_s=0.2),
    }
    ten, thirty = plan(10, settings, costs, 90.0, refits=2), plan(30, settings, costs, 90.0, refits=2)
    assert ten.tuning_s < ten.train_s < 600 - ten.after_train_s + 1e-9
    assert ten.tuning_s < thirty.tuning_s and set(ten.trials.values()) == {100}, (
        "the work decides, not n_trials"
    )
    assert ten.rounds["catboost"] < settings.families["catboost"].fixed["iterations"]
    assert "lightgbm" not in ten.rounds, "a cheap family keeps its round cap"
    with pytest.raises(PillarsError, match="give at least") as refused:
        plan(1.6, settings, costs, 90.0, refits=2)
    least = int(re.search(r"MINUTES=(\d+)", str(refused.value)).group(1))
    assert plan(least, settings, costs, 90.0, refits=2).tuning_s > 0, "the least it names works"
