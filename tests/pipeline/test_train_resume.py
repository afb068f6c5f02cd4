"""An interrupted `train` (killed mid-study with SIGKILL) resumes on the next `dvc repro` without redoing
finished trials, and ends with exactly the models and trial table of an uninterrupted run."""

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import project_env, run, write_params

pytestmark = pytest.mark.slow

STORAGE = Path("models/optuna/studies.db")
BUDGET = 10


def finished_trials(repo: Path) -> int:
    """Trials that ended (complete or pruned), read straight from the Optuna SQLite storage."""
    if not (repo / STORAGE).exists():
        return 0
    with sqlite3.connect(repo / STORAGE) as connection:
        try:
            return connection.execute(
                "SELECT count(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')"
            ).fetchone()[0]
        except sqlite3.OperationalError:  # the tables are being created
            return 0


def outputs(repo: Path) -> tuple[bytes, bytes]:
    return (repo / "models/candidates/xgboost.pkl").read_bytes(), (
        repo / "metrics/train/xgboost_trials.csv"
    ).read_bytes()


def test_killed_study_resumes_where_it_stopped(repo_copy: Path) -> None:
    write_params(
        repo_copy,
        train={
            "candidates": ["xgboost"],
            "families": {
                "xgboost": {"n_trials": BUDGET, "fixed": {"n_estimators": 300, "early_stopping_rounds": 20}}
            },
        },
    )
    run(["dvc", "repro", "featurize"], repo_copy)
    process = subprocess.Popen(
        ["dvc", "repro", "train"],
        cwd=repo_copy,
        env=project_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600  # generous: on a busy machine three trials can take minutes
    while finished_trials(repo_copy) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = finished_trials(repo_copy)
    assert 3 <= done_before < BUDGET, "the kill must land mid-study"
    assert not (repo_copy / "models/candidates/xgboost.pkl").exists()

    resumed = run(["dvc", "repro", "train"], repo_copy)
    assert "resuming study xgboost-" in resumed.stderr  # progress is logged to the terminal (stderr)
    assert f"with {done_before} of {BUDGET} trials finished" in resumed.stderr
    assert finished_trials(repo_copy) == BUDGET  # no finished trial was run again
    after_resume = outputs(repo_copy)

    (repo_copy / STORAGE).unlink()
    run(["dvc", "repro", "--force", "train"], repo_copy)  # the same study, uninterrupted, from scratch
    assert finished_trials(repo_copy) == BUDGET
    assert outputs(repo_copy) == after_resume
