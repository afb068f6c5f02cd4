"""Monitoring through a real `bentoml serve`: the demo replays held-out traffic as drawn and shifted.

Checks what a team relies on: every answered request is logged with its request id, ground truth dropped
in later is joined on those ids, the report is written, the monitor stays quiet on the drawn traffic and
flags exactly the shifted columns, and `make retrain` turns the labelled rows into a source ingest takes.
"""

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from pillars.bento.archive import packaged_model
from pillars.core.params import load_params
from pillars.core.schema import load_schema
from pillars.lifecycle.retrain import LABELLED_DATA, labelled_rows, with_source
from pillars.monitoring.logs import read_monitored
from pillars.monitoring.replay import run_demo, summary
from pillars.serve.capture import logged_rows
from tests.helpers import (
    QUICK_RERUN,
    committed_copy,
    copy_repository,
    install_fake_gh,
    make,
    run,
    write_params,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(
    reproduced: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, dict[str, Any]]]:
    out = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(reproduced)
        reports = run_demo(load_params(), out)
    return out, reports


def test_every_answered_request_is_logged_and_its_feedback_joined(
    reproduced: Path, demo: tuple[Path, dict]
) -> None:
    out, reports = demo
    rows = load_params(reproduced / "params.yaml").monitor.replay.rows
    for name, report in reports.items():
        assert logged_rows(out / name / "logs") == rows
        feedback = pd.read_parquet(out / name / "feedback/labels.parquet")
        assert feedback["request_id"].is_unique and len(feedback) == rows
        assert report["rows"] == {"logged": rows, "monitored": rows, "labelled": rows}
        assert report["skipped"]["unmatched_feedback"] == 0
        assert report["performance"]["current"] is not None
        assert len(report["performance"]["windows"]) == 2  # 2,000 rows in windows of 1,000, in time order
        assert all(window["first"] <= window["last"] for window in report["performance"]["windows"])
        coverage = report["performance"]["coverage"]  # the served conformal sets, against the truth
        assert coverage["promised"] == 0.9 and 0.0 < coverage["realized"] <= 1.0
        assert all(window["coverage"] is not None for window in report["performance"]["windows"])
        assert json.loads((out / name / "monitoring.json").read_text()) == report
        assert "<svg" in (out / name / "monitoring.html").read_text()


def test_drawn_traffic_is_quiet_and_shifted_traffic_flags_the_shifted_columns(
    reproduced: Path, demo: tuple[Path, dict]
) -> None:
    _, reports = demo
    realized = reports["drawn"]["performance"]["coverage"]["realized"]
    assert abs(realized - 0.9) <= 0.03, "traffic drawn like the test rows: the promise holds"
    shift = load_params(reproduced / "params.yaml").monitor.replay.shift
    drawn, shifted = reports["drawn"], reports["shifted"]
    assert drawn["drift"]["drifted_features"] == []
    assert drawn["decision"]["action"] == "none"
    assert sorted(shifted["drift"]["drifted_features"]) == sorted(shift)
    assert shifted["decision"]["action"] == "retrain"
    assert any(all(name in reason for name in shift) for reason in shifted["decision"]["reasons"])
    table = summary(reports)
    assert "| drawn |" in table and "| shifted |" in table


def test_retrain_makes_the_labelled_rows_a_source_that_ingest_and_validation_accept(
    reproduced: Path, demo: tuple[Path, dict], tmp_path: Path
) -> None:
    out, _ = demo
    params = load_params(reproduced / "params.yaml")
    schema = load_schema(reproduced / "data/schema.yaml")
    serving = packaged_model(reproduced / "models/service.bento")
    monitored = read_monitored(out / "shifted/logs", out / "shifted/feedback", serving, params.dataset.target)
    labelled = labelled_rows(monitored, schema, params.dataset.target)
    assert list(labelled.columns) == list(schema.columns)
    assert len(labelled) == params.monitor.replay.rows
    assert labelled[params.dataset.target].isin(["<=50K", ">50K"]).all()
    repo = copy_repository(tmp_path / "repo")
    (repo / LABELLED_DATA).parent.mkdir(parents=True)
    labelled.to_parquet(repo / LABELLED_DATA)
    write_params(repo, ingest={"sources": with_source(params)})
    for stage in ("ingest", "validate_data"):
        run(["dvc", "repro", "--single-item", stage], repo)
    raw = pd.read_parquet(repo / "data/raw/data.parquet")
    assert (raw["_source"] == "monitoring").sum() == len(labelled)


def test_a_retrain_decision_opens_one_issue_and_a_pull_request(
    reproduced: Path, demo: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monitor workflow's path after `make monitor` said retrain: `make monitor-alert` keeps one issue,
    `make retrain-pr` runs the retrain experiment and proposes it. GitHub is the fake gh of
    tests/code/fake_gh.py (no network reaches it from here); Git and DVC remotes are real local ones."""
    out, reports = demo
    repo = committed_copy(reproduced, tmp_path / "repo")
    write_params(repo, **QUICK_RERUN)
    run(["git", "commit", "-qam", "quick training budgets"], repo)
    run(["git", "init", "-q", "--bare", str(tmp_path / "origin.git")], tmp_path)
    run(["git", "remote", "add", "origin", str(tmp_path / "origin.git")], repo)
    (tmp_path / "github").mkdir()
    github = install_fake_gh(tmp_path / "github", monkeypatch, "octo/pillars", pulls=[], token="ghs_fake")
    (repo / "metrics/monitoring.json").write_text(json.dumps(reports["shifted"]))  # what `make monitor` wrote
    outputs = tmp_path / "outputs"
    actions = {"GITHUB_OUTPUT": str(outputs), "DVC_REMOTE_URL": str(tmp_path / "dvc-remote")}

    for _ in range(2):  # a second scheduled run updates the issue instead of opening another
        make(repo, "monitor-alert", env=actions)
    assert outputs.read_text().splitlines() == ["retrain=true", "retrain=true"]
    (issue,) = github.state()["issues"]
    assert [label["name"] for label in issue["labels"]] == ["monitoring"]
    for feature in reports["shifted"]["drift"]["drifted_features"]:
        assert f"| {feature} |" in issue["body"]

    shifted = out / "shifted"
    logs, feedback = f"LOGS={shifted / 'logs'}", f"FEEDBACK={shifted / 'feedback'}"
    result = make(repo, "retrain-pr", logs, feedback, env=actions)
    (pull,) = github.state()["pulls"]
    branch = pull["headRefName"]
    assert branch.startswith("retrain/retrain-") and pull["baseRefName"] == "main"
    name = branch.removeprefix("retrain/")
    assert f"pull request #{pull['number']}" in result.stdout
    assert all(reason in pull["body"] for reason in reports["shifted"]["decision"]["reasons"])
    table = [line for line in pull["body"].splitlines() if line.startswith("|")]
    assert any(f"| {name} " in line for line in table), "the comparison table shows the experiment"
    assert f"refs/heads/{branch}" in run(["git", "ls-remote", "origin"], repo).stdout
    labelled = yaml.safe_load(run(["git", "show", f"{branch}:{LABELLED_DATA}.dvc"], repo).stdout)["outs"][0]
    stored = tmp_path / "dvc-remote/files/md5" / labelled["md5"][:2] / labelled["md5"][2:]
    assert stored.is_file(), "the labelled data reached the DVC remote, for the pull request's CI"
