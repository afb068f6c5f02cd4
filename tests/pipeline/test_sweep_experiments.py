"""`make sweep` for real: named DVC experiments queued and run by `dvc exp run --run-all`, then compared
with `dvc exp show` sorted by the selected model's valid score."""

import json
from pathlib import Path

import pytest
import yaml

from tests.helpers import BIN, run, write_params

pytestmark = pytest.mark.slow

QUICK_TRAINING = {
    "families": {
        "xgboost": {"n_trials": 2, "fixed": {"n_estimators": 60, "early_stopping_rounds": 10}},
        "linear": {"n_trials": 1},
        "hist_gradient_boosting": {"n_trials": 1, "fixed": {"max_iter": 50}},
    }
}


def test_sweeps_run_as_named_experiments(repo_copy: Path) -> None:
    write_params(repo_copy, train=QUICK_TRAINING)
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    params["validate_model"]["thresholds"] = {"roc_auc": {"min": 0.85}}
    params["sweeps"] = {
        "only-linear": {"train.candidates": ["linear"]},
        "only-xgboost": {"train.candidates": ["xgboost"]},
        "too-strict": {"validate_model.thresholds.roc_auc.min": 0.99},  # no candidate can pass
    }
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["dvc", "repro"], repo_copy)
    run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qam", "quick budgets"],
        repo_copy,
    )

    # the project's environment, rather than a new one built in the copy
    result = run(["make", "sweep", f"VENV={BIN.parent}"], repo_copy, check=False)
    assert result.returncode != 0
    assert "sweep(s) ['too-strict'] failed" in result.stderr
    table = [line for line in result.stdout.splitlines() if line.startswith("|")]
    rows = [line for line in table if "only-" in line]
    assert [("only-xgboost" in row) for row in rows] == [True, False], "sorted by valid score, best first"

    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo_copy).stdout)
    experiments = {exp["name"]: exp for commit in shown for exp in (commit.get("experiments") or [])}
    assert set(experiments) >= {"only-linear", "only-xgboost", "too-strict"}
    assert "too-strict" not in "\n".join(table), "a failed sweep has no results to compare"
    for name, family in (("only-linear", "linear"), ("only-xgboost", "xgboost")):
        data = experiments[name]["revs"][0]["data"]
        assert data["params"]["params.yaml"]["data"]["train"]["candidates"] == [family]
        assert data["metrics"]["metrics/selection.json"]["data"]["model"] == family
