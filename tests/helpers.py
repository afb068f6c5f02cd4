"""Helpers for tests: the repository root, params overrides, commands, repository copies, and processes."""

import contextlib
import copy
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest
import yaml

from pillars.core.model_handoffs import MODEL_VALIDATION, SELECTION, ModelValidation, Selection

if TYPE_CHECKING:  # the stage module is imported where a test needs it, not by every test
    from pillars.stages.assess import CardInputs

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FAKE_GH = ROOT / "tests/code/fake_gh.py"


def deep_merge(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` merged in, mapping by mapping (lists and scalars are replaced)."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# Git (and DVC's experiment commits) need an identity; a fresh CI machine may have no ~/.gitconfig
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "pillars-tests",
    "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_NAME": "pillars-tests",
    "GIT_COMMITTER_EMAIL": "tests@example.invalid",
}


def project_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This environment with the project's virtual environment first on PATH (`python` in a stage's command
    is the project's), a Git identity unless set, and `env` on top."""
    path = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    return {**GIT_IDENTITY, **os.environ, "PATH": path, **(env or {})}


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True):
    """Run a command in the project's environment (`project_env`); return the finished process."""
    result = subprocess.run(
        command, cwd=cwd, env=project_env(env), capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def make(repo: Path, target: str, *variables: str, env: dict[str, str] | None = None, check: bool = True):
    """`make TARGET` in a repository copy with the project's environment: never a setup there (a clone's
    fresh file times would otherwise rebuild the environment and point it at the clone)."""
    options = ["--no-print-directory", "-o", f"{BIN.parent}/.installed"]  # quiet also when under `make test`
    command = ["make", *options, target, *variables, f"VENV={BIN.parent}"]
    return run(command, repo, env=env, check=check)


def copy_repository(destination: Path) -> Path:
    """Copy the working tree (tracked and untracked-but-not-ignored files) into a new Git repository."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git = ["git", "-c", "user.name=pillars-tests", "-c", "user.email=tests@example.invalid"]
    run(["git", "init", "-q", "-b", "main"], destination)
    run(["git", "add", "-A"], destination)
    run([*git, "commit", "-qm", "copy of the working tree"], destination)
    return destination


def committed_copy(repo: Path, destination: Path) -> Path:
    """A copy of a repository (with its DVC cache) whose working tree, outputs included, is committed."""
    copied = shutil.copytree(repo, destination, symlinks=True)
    run(["git", "add", "-A"], copied)
    run(
        ["git", "commit", "-q", "--allow-empty", "-m", "reproduced pipeline"], copied
    )  # clean if rerun gave HEAD
    return copied


# Training budgets for tests that retrain for real but need not find a good model
QUICK_TRAINING = {
    "families": {
        "xgboost": {"n_trials": 2, "fixed": {"n_estimators": 60, "early_stopping_rounds": 10}},
        "lightgbm": {"n_trials": 2, "fixed": {"n_estimators": 60, "early_stopping_rounds": 10}},
        "catboost": {"n_trials": 1, "fixed": {"iterations": 60, "early_stopping_rounds": 10}},
        "linear": {"n_trials": 1},
        "hist_gradient_boosting": {"n_trials": 1, "fixed": {"max_iter": 50}},
    }
}
# Params for tests that rerun train and what follows on the bundled data to check what happens around it
# (sweeps, a retrain): two quick families, permutation importance on a sample
QUICK_RERUN = {
    "train": deep_merge(QUICK_TRAINING, {"candidates": ["linear", "xgboost"]}),
    "assess": {"importance_rows": 1000, "importance_repeats": 1},
}


def write_params(repo: Path, **overrides: dict) -> None:
    """Merge overrides into a repository copy's params.yaml."""
    path = repo / "params.yaml"
    path.write_text(yaml.safe_dump(deep_merge(yaml.safe_load(path.read_text()), overrides), sort_keys=False))


# Model settings that fit each task (the committed params.yaml is for the binary Adult task)
TASK_MODEL_PARAMS = {
    "binary": {},
    "multiclass": {
        "train": {"metric": "log_loss"},
        "validate_model": {
            "thresholds": {"accuracy": {"min": 0.5}},
            "champion": {"max_drop": 0.01},
            "slices": {"columns": [], "metric": "accuracy", "limit": {"min": 0.5}, "min_rows": 30},
        },
    },
    "regression": {
        "train": {"metric": "rmse"},
        "validate_model": {
            "thresholds": {"r2": {"min": 0.5}},
            "champion": {"max_drop": 1000.0},
            "slices": {"columns": [], "metric": "r2", "limit": {"min": 0.3}, "min_rows": 30},
        },
    },
}


def with_task(raw: dict, task: str | None) -> dict:
    """Params with the model sections replaced by ones that fit `task` (thresholds are replaced, not merged)."""
    changed = copy.deepcopy(raw)
    profile = TASK_MODEL_PARAMS.get(task or "binary", {})
    if "validate_model" in profile:
        changed["validate_model"] = copy.deepcopy(profile["validate_model"])
    if "train" in profile:
        changed["train"] |= profile["train"]
    return changed


class FakeGitHub:
    """The fake's state file: what GitHub holds, and the gh calls so far."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def state(self) -> dict:
        return json.loads(self.path.read_text(encoding="utf-8"))

    def set(self, **values: object) -> None:
        self.path.write_text(json.dumps({**self.state(), **values}), encoding="utf-8")

    def comments(self, issue: int) -> dict[int, dict]:
        return {comment["id"]: comment for comment in self.state()["comments"] if comment["issue"] == issue}

    def calls(self) -> list[dict]:
        return self.state().get("calls", [])  # the fake adds the list at its first call


def install_fake_gh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo: str, pulls: list[dict], token: str
) -> FakeGitHub:
    """tests/code/fake_gh.py first on PATH as `gh`, holding `repo` with `pulls` (GitHub cannot be reached
    from here); GITHUB_REPOSITORY and GH_TOKEN set as in Actions."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_GH}" "$@"\n')
    gh.chmod(0o755)
    state = tmp_path / "github.json"
    state.write_text(
        json.dumps({"repo": repo, "issues": [], "pulls": pulls, "comments": [], "labels": []}),
        encoding="utf-8",
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GH_STATE", str(state))
    monkeypatch.setenv("GH_TOKEN", token)
    monkeypatch.setenv("GITHUB_REPOSITORY", repo)  # the fake fails unless gh gets it as GH_REPO
    for name in ("GH_REPO", "GITHUB_TOKEN", "GITHUB_SERVER_URL", "GITHUB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    return FakeGitHub(state)


def running(processes: Iterable[psutil.Process]) -> list[psutil.Process]:
    """Those of `processes` still running (one that exited and waits to be reaped has ended)."""
    alive = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
    return alive


def still_running_after(processes: Iterable[psutil.Process], seconds: float) -> list[psutil.Process]:
    """Those of `processes` still running after waiting up to `seconds` for them all to end."""
    deadline = time.monotonic() + seconds
    while (alive := running(processes)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def selection_of(model: str, reason: str = "best") -> Selection:
    """A select report (metrics/selection.json) that chose `model`, for `reason`."""
    return SELECTION.check(
        {
            "model": model,
            "metric": "roc_auc",
            "reason": reason,
            "eligible": 1,
            "not_eligible": [],
        }
    )


def card_inputs(
    validation: ModelValidation, baseline: str, rows: dict[str, int], trials: int, best_is_defaults: bool
) -> "CardInputs":
    """What the model card of a linear candidate reads besides the test report: its selection, `validation`,
    a holdout tuning summary (`rows` per split, the baseline family's defaults), C = 1 and a lineage."""
    from pillars.core.model_handoffs import BEST_PARAMS, TRAIN_REPORT
    from pillars.stages.assess import CardInputs

    tuned = {"trials": trials, "pruned": 0, "best_is_defaults": best_is_defaults}
    return CardInputs(
        selection=selection_of("linear"),
        validation=validation,
        train_summary=TRAIN_REPORT.check(
            {
                "tuning": {
                    "method": "holdout",
                    "rows": {"train": rows["train"], "valid": rows["valid"]},
                    "baseline": {"family": baseline},
                },
                "candidates": {"linear": tuned},
            }
        ),
        best_params=BEST_PARAMS.check({"linear": {"C": 1.0}}),
        split_rows=rows,
        lineage={"data/curated": "abc"},
    )


def gate_report(*families: str, eligible: list[str]) -> ModelValidation:
    """A validate_model report (metrics/model_validation.json) on `families`, those in `eligible` passed."""
    candidates = {family: {"passed": family in eligible, "checks": {}} for family in families}
    return MODEL_VALIDATION.check({"metric": "roc_auc", "eligible": eligible, "candidates": candidates})
