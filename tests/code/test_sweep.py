"""Sweeps: params.yaml names them, and every sweep is checked before anything is queued."""

import sys
from pathlib import Path

import pytest

from pillars.core.errors import PillarsError
from pillars.lifecycle.sweep import apply_overrides, check_sweeps, flatten, set_arguments
from tests.helpers import run


def test_flatten_and_set_arguments() -> None:
    overrides = {"train.candidates": ["xgboost"], "train": {"families": {"xgboost": {"n_trials": 5}}}}
    assert flatten(overrides) == {"train.candidates": ["xgboost"], "train.families.xgboost.n_trials": 5}
    assert set_arguments(overrides) == [
        "-S",
        "train.candidates=[xgboost]",
        "-S",
        "train.families.xgboost.n_trials=5",
    ]


def test_apply_overrides_sets_nested_keys(default_params_raw: dict) -> None:
    changed = apply_overrides(default_params_raw, {"train.families.linear.n_trials": 2})
    assert changed["train"]["families"]["linear"]["n_trials"] == 2
    assert changed["train"]["families"]["xgboost"] == default_params_raw["train"]["families"]["xgboost"]


def test_committed_sweeps_are_valid(default_params_raw: dict) -> None:
    check_sweeps(default_params_raw, default_params_raw["sweeps"])


def test_a_bad_sweep_is_named_before_anything_runs(default_params_raw: dict) -> None:
    with pytest.raises(PillarsError, match=r"sweep 'typo': params.yaml: train.familes: unknown key"):
        check_sweeps(default_params_raw, {"typo": {"train.familes.xgboost.n_trials": 3}})
    with pytest.raises(
        PillarsError,
        match=r"sweep 'huge': .*train.families.xgboost.n_trials: Input should be greater than or equal to 1",
    ):
        check_sweeps(default_params_raw, {"huge": {"train.families.xgboost.n_trials": 0}})


def test_showing_no_experiments_says_how_to_start_a_sweep(repo_copy: Path) -> None:
    shown = run([sys.executable, "-m", "pillars.lifecycle.sweep", "--show-only"], repo_copy).stdout
    assert "No experiments yet" in shown and "make sweep" in shown
