"""`make sweep` for real: named DVC experiments queued and run by `dvc exp run --run-all`, then compared
with `dvc exp show` sorted by the selected model's valid score."""

import json
from pathlib import Path

import pytest
import yaml

from pillars.lifecycle.sweep import SWEEP_TARGET
from tests.helpers import QUICK_RERUN, committed_copy, make, run, write_params

pytestmark = pytest.mark.slow


def test_sweeps_run_as_named_experiments(reproduced: Path, tmp_path: Path) -> None:
    repo_copy = committed_copy(reproduced, tmp_path / "repo")  # the data stages' outputs are cached there
    write_params(repo_copy, **QUICK_RERUN)
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    params["validate_model"]["thresholds"] = {"roc_auc": {"min": 0.85}}
    params["sweeps"] = {
        "only-linear": {"train.candidates": ["linear"]},
        "only-xgboost": {"train.candidates": ["xgboost"]},
        "too-strict": {"validate_model.thresholds.roc_auc.min": 0.99},  # no candidate can pass
    }
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["dvc", "repro", SWEEP_TARGET], repo_copy)  # the stages a sweep runs: not package, deploy and on
    run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qam", "quick budgets"],
        repo_copy,
    )

    # the project's environment, rather than a new one built in the copy
    result = make(repo_copy, "sweep", check=False)
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

    # what the sweep workflow does next: the table as a comment body, the experiments to the Git remote
    make(repo_copy, "sweep-report")
    report = (repo_copy / "build/sweep.md").read_text()
    assert [line for line in report.splitlines() if "only-" in line] == rows
    assert "Failed, so not shown: too-strict" in report, "the comment says which sweep failed"
    remote = repo_copy.parent / "remote.git"
    run(["git", "init", "-q", "--bare", str(remote)], repo_copy.parent)
    run(["git", "remote", "add", "origin", str(remote)], repo_copy)
    make(repo_copy, "exp-push")
    pushed = run(["git", "ls-remote", "origin", "refs/exps/*"], repo_copy).stdout
    assert all(name in pushed for name in ("only-linear", "only-xgboost")), pushed
