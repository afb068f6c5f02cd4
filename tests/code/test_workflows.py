"""The GitHub Actions workflows, checked here because they cannot run here (no Docker engine, no GitHub).

actionlint lints them; the rules a reviewer would otherwise check by eye are asserted: every `run:` is a
Makefile target that a test of this suite runs, actions are pinned to commit SHAs, each job has its own
least-privilege permissions, superseded runs are cancelled, no workflow can hand secrets to a fork's code,
and no `${{ }}` expression is pasted into a shell script (values reach scripts through `env:`).
"""

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import BIN, ROOT

WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))
ACTIONS = sorted((ROOT / ".github/actions").glob("*/action.yml"))
EXPECTED = {"ci", "sweep", "release", "deploy", "monitor"}
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
MAKE_CALL = re.compile(r"^make ([\w-]+)((?: [A-Z_]+=(?:\"\$[A-Z_]+\"|[\w./-]*))*)$")
# Targets that read Git history or tags: DVC experiments, the base branch's results, GTO's registry
NEEDS_HISTORY = ("pr-report", "sweep", "exp-push", "retrain-pr", "release-version", "deploy-resolve")
# The test that runs each target the workflows call (the suite itself runs setup, lint and test: .ci/run)
TESTED_BY = {
    "setup": ".ci/run",
    "lint": ".ci/run",
    "test": ".ci/run",
    "test-fast": ".ci/run",  # make test runs it first
    "repro": "tests/conftest.py::reproduced",
    "ci-pull": "tests/pipeline/test_ci_remote.py::test_a_fresh_clone_pulls_from_the_secret_remote",
    "push": "tests/pipeline/test_ci_remote.py::origin",
    "pr-report": "tests/pipeline/test_pr_report.py::test_the_report_compares_the_branch_with_main",
    "pr-comment": "tests/code/test_github.py::test_make_pr_comment_posts_the_report",
    "sweep": "tests/pipeline/test_sweep_experiments.py::test_sweeps_run_as_named_experiments",
    "sweep-report": "tests/pipeline/test_sweep_experiments.py::test_sweeps_run_as_named_experiments",
    "exp-push": "tests/pipeline/test_sweep_experiments.py::test_sweeps_run_as_named_experiments",
    "release-version": "tests/code/test_registry.py::test_release_registers_only_a_new_model_and_publishes_its_tag",
    "release-publish": "tests/code/test_registry.py::test_release_registers_only_a_new_model_and_publishes_its_tag",
    "deploy-resolve": "tests/code/test_registry.py::test_check_ref_resolves_a_stage_assignment_tag",
    "bento-context": "tests/service/test_container.py",
    "container-smoke": "tests/service/test_container.py",
    "rollout": "tests/code/test_workflows.py::test_the_rollout_placeholder_fails_and_says_what_to_do",
    "monitor": "tests/pipeline/test_monitor_stage.py",
    "monitor-alert": "tests/service/test_monitoring.py::test_a_retrain_decision_opens_one_issue_and_a_pull_request",
    "retrain-pr": "tests/service/test_monitoring.py::test_a_retrain_decision_opens_one_issue_and_a_pull_request",
}


def load(path: Path) -> dict[Any, Any]:
    return yaml.safe_load(path.read_text())


def triggers(workflow: dict) -> dict:
    return workflow[True]  # YAML 1.1 reads the key `on` as True


def jobs(workflow: dict) -> dict[str, dict]:
    return workflow["jobs"]


def steps() -> list[tuple[str, dict]]:
    """Every step of every workflow and local action, with where it is."""
    found = [
        (f"{path.name}:{name}", step)
        for path in WORKFLOWS
        for name, job in jobs(load(path)).items()
        for step in job["steps"]
    ]
    return found + [
        (str(path.relative_to(ROOT)), step) for path in ACTIONS for step in load(path)["runs"]["steps"]
    ]


def test_the_five_workflows_exist_and_actionlint_passes() -> None:
    assert {path.stem for path in WORKFLOWS} == EXPECTED
    result = subprocess.run([BIN / "actionlint", "-no-color"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_run_step_is_a_makefile_target_that_a_test_runs() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.MULTILINE))
    called = set()
    for where, step in steps():
        if "run" not in step:
            continue
        match = MAKE_CALL.match(step["run"].strip())
        assert match, f'{where}: `{step["run"]}` is not `make TARGET [VAR="$ENV"...]`'
        called.add(match.group(1))
    assert called <= targets, f"targets missing from the Makefile: {called - targets}"
    assert called <= set(TESTED_BY), f"no test named for: {called - set(TESTED_BY)}"
    for target in called:
        file, _, name = TESTED_BY[target].partition("::")
        text = (ROOT / file).read_text()
        assert not name or re.search(rf"def {name}\b", text), f"{target}: {TESTED_BY[target]} does not exist"


def test_no_expression_is_pasted_into_a_script() -> None:
    for where, step in steps():
        assert "${{" not in step.get("run", ""), f"{where}: pass values to scripts through env:"


def test_actions_are_pinned_to_commit_shas() -> None:
    for where, step in steps():
        uses = step.get("uses")
        if uses and not uses.startswith("./"):
            assert PINNED.match(uses), f"{where}: {uses} is not pinned to a full commit SHA"


def test_each_job_has_least_privilege_permissions() -> None:
    for path in WORKFLOWS:
        workflow = load(path)
        assert workflow["permissions"] == {}, f"{path.name}: the default token gets no permission"
        for name, job in jobs(workflow).items():
            permissions = job.get("permissions")
            assert isinstance(permissions, dict) and permissions, (
                f"{path.name}:{name} declares its permissions"
            )
            assert set(permissions.values()) <= {"read", "write"}, f"{path.name}:{name}: {permissions}"
            writes = permissions.get("contents") == "write"
            for step in job["steps"]:
                if step.get("uses", "").startswith("actions/checkout@") and not writes:
                    assert step["with"]["persist-credentials"] is False, (
                        f"{path.name}:{name}: a job that does not push keeps no Git credentials"
                    )


def test_superseded_runs_are_cancelled() -> None:
    for path in WORKFLOWS:
        concurrency = load(path)["concurrency"]
        assert "${{" in concurrency["group"] or path.stem == "monitor", f"{path.name}: group per ref or PR"
        # a deployment in progress is never cut short: later assignments queue (the newest wins)
        assert concurrency["cancel-in-progress"] is (path.stem != "deploy"), path.name


def test_forks_cannot_reach_secrets() -> None:
    for path in WORKFLOWS:
        workflow = load(path)
        on = triggers(workflow)
        assert "pull_request_target" not in on and "workflow_run" not in on, (
            f"{path.name}: those run with secrets on a fork's changes"
        )
        for name, job in jobs(workflow).items():
            text = yaml.safe_dump(job)
            writes = any(value == "write" for value in job["permissions"].values())
            if "pull_request" in on and (writes or "secrets." in text) and path.stem != "ci":
                assert "head.repo.full_name == github.repository" in job.get("if", ""), (
                    f"{path.name}:{name}: writes or reads secrets on a pull request, so only for this repository's"
                )
    ci = jobs(load(ROOT / ".github/workflows/ci.yml"))
    assert "head.repo.full_name == github.repository" in ci["comment"]["if"]
    assert ci["pipeline"]["permissions"] == {"contents": "read"}, "the job running a PR's code cannot write"


def test_jobs_that_read_history_or_tags_fetch_all_of_it() -> None:
    for path in WORKFLOWS:
        for name, job in jobs(load(path)).items():
            runs = " ".join(step.get("run", "") for step in job["steps"])
            if any(f"make {target}" in runs for target in NEEDS_HISTORY):
                checkout = next(
                    step for step in job["steps"] if step.get("uses", "").startswith("actions/checkout@")
                )
                assert checkout["with"]["fetch-depth"] == 0, f"{path.name}:{name}: dvc exp and GTO need it"


def test_release_registers_the_committed_model_before_the_pipeline_reruns() -> None:
    """`make repro` may rewrite dvc.lock (the archive is not byte-stable), and registering refuses a
    dvc.lock that differs from HEAD's: the version is taken first."""
    runs = [
        step.get("run") for step in jobs(load(ROOT / ".github/workflows/release.yml"))["release"]["steps"]
    ]
    assert runs.index("make release-version") < runs.index("make repro")


def test_the_rollout_placeholder_fails_and_says_what_to_do() -> None:
    result = subprocess.run(
        ["make", "rollout", "IMAGE=ghcr.io/o/r:v1.0.0", "STAGE=prod"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0, "a placeholder must not look like a deployment"
    assert "ghcr.io/o/r:v1.0.0 -> prod: no deployment platform is configured" in result.stderr
    assert "docs/ci-cd.md, Deploying" in result.stderr


@pytest.mark.parametrize("target", sorted(TESTED_BY))
def test_targets_are_documented(target: str) -> None:
    assert re.search(rf"^{re.escape(target)}:.*##", (ROOT / "Makefile").read_text(), flags=re.MULTILINE), (
        target
    )
