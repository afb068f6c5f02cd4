"""pillars.ci.github against a fake GitHub CLI: GitHub is mocked because no network reaches it from here.

tests/code/fake_gh.py goes first on PATH as `gh`. It keeps GitHub's side (issues, pull requests, comments,
labels) in a JSON file, takes gh's own arguments and prints gh's own output formats, refuses what GitHub
refuses (bodies over the limit, unknown labels, a second pull request for a branch), and records every
call, so the tests check what reached "GitHub" and how.
"""

import json
import subprocess
from pathlib import Path

import pytest

from pillars.ci.github import BODY_LIMIT, fit, sticky_comment, upsert_issue, upsert_pull_request
from pillars.core.errors import PillarsError
from tests.helpers import ROOT, FakeGitHub, install_fake_gh, make

REPO = "octo/pillars"
TOKEN = "ghs_FakeTokenThatMustNeverBePrinted"
MARKER_LINE = "<!-- pillars:report -->"
FEATURE_PR = {
    "number": 7,
    "title": "Feature",
    "body": "",
    "state": "OPEN",
    "headRefName": "feature",
    "baseRefName": "main",
}
HUMAN = {"id": 501, "issue": 7, "body": "Looks good to me", "user": {"login": "alice"}}
QUOTING = {"id": 502, "issue": 7, "body": f"> {MARKER_LINE}\n> quoted", "user": {"login": "bob"}}


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    """The fake gh first on PATH, a repository with pull request #7, and Actions' GITHUB_REPOSITORY set."""
    return install_fake_gh(tmp_path, monkeypatch, REPO, pulls=[FEATURE_PR], token=TOKEN)


def test_sticky_comment_is_created_then_updated_per_marker(
    fake: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    fake.set(comments=[HUMAN, QUOTING])
    first = sticky_comment(7, "accuracy 0.91", "report")
    assert caplog.messages.pop() == f"created comment {first}"
    assert sticky_comment(7, "accuracy 0.93", "report") == first
    assert caplog.messages.pop() == f"updated comment {first}"
    comments = fake.comments(7)
    assert len(comments) == 3
    assert comments[first]["body"] == f"{MARKER_LINE}\naccuracy 0.93"
    sweep = sticky_comment(7, "sweep table", "sweep")
    comments = fake.comments(7)
    assert sweep != first
    assert comments[sweep]["body"] == "<!-- pillars:sweep -->\nsweep table"
    assert comments[first]["body"] == f"{MARKER_LINE}\naccuracy 0.93"
    assert comments[HUMAN["id"]] == HUMAN
    assert comments[QUOTING["id"]] == QUOTING  # a reply quoting the marker is not ours


def test_sticky_comment_reads_every_page_and_updates_the_newest(fake: FakeGitHub) -> None:
    older = {"id": 503, "issue": 7, "body": f"{MARKER_LINE}\nold", "user": {"login": "github-actions[bot]"}}
    newer = {**older, "id": 506, "body": f"{MARKER_LINE}\nnewer"}
    others = [{**HUMAN, "id": number} for number in (504, 505, 507)]
    fake.set(page_size=2, comments=[HUMAN, older, *others[:2], newer, others[2]])
    assert sticky_comment(7, "newest", "report") == 506  # on the third page of two
    comments = fake.comments(7)
    assert len(comments) == 6
    assert comments[506]["body"] == f"{MARKER_LINE}\nnewest"
    assert comments[503] == older


def test_long_bodies_are_cut_under_the_limit_with_a_note(
    fake: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    rows = "".join(f"| row {number} | {number / 7:.6f} |\n" for number in range(8_000))
    comment_id = sticky_comment(7, rows, "report")
    comment = fake.comments(7)[comment_id]["body"]
    kept, _, note = comment.partition("\n\n---\n")
    assert len(comment) <= BODY_LIMIT < len(rows)
    assert kept.startswith(MARKER_LINE) and rows.startswith(kept.removeprefix(f"{MARKER_LINE}\n") + "\n")
    assert "truncated" in note
    assert f"artifacts of [the workflow run](https://github.com/{REPO}/actions/runs/42)" in note


def test_a_cut_inside_a_code_block_closes_it() -> None:
    assert fit("short\n```\ncode\n```\n") == "short\n```\ncode\n```\n"
    cut = fit("```text\n" + "x = 1\n" * 20_000 + "```\n")
    assert len(cut) <= BODY_LIMIT
    assert sum(line.startswith("```") for line in cut.splitlines()) == 2
    assert cut.rstrip().endswith("the full report is in the artifacts of the workflow run.")


def test_issue_is_created_with_its_label_then_updated(
    fake: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    title = "Monitoring: retrain the model"
    closed = {
        "number": 3,
        "title": title,
        "body": "old",
        "state": "CLOSED",
        "labels": [{"name": "monitoring"}],
    }
    fake.set(issues=[closed])
    number = upsert_issue(title, "drift in age", "monitoring")
    assert caplog.messages.pop() == f"created issue #{number}"
    assert [label["name"] for label in fake.state()["labels"]] == ["monitoring"]
    assert upsert_issue(title, "drift in age and hours", "monitoring") == number
    assert caplog.messages.pop() == f"updated issue #{number}"
    issues = fake.state()["issues"]
    assert issues[0] == closed
    assert issues[1:] == [
        {
            "number": number,
            "title": title,
            "body": "drift in age and hours",
            "state": "OPEN",
            "labels": [{"name": "monitoring"}],
        }
    ]
    [note] = fake.comments(number).values()
    assert note["body"].startswith("Description updated")


def test_an_existing_label_is_left_as_it_is(fake: FakeGitHub) -> None:
    fake.set(labels=[{"name": "monitoring", "color": "abcdef", "description": "drift alerts"}])
    upsert_issue("Monitoring: retrain the model", "drift", "monitoring")
    assert fake.state()["labels"] == [
        {"name": "monitoring", "color": "abcdef", "description": "drift alerts"}
    ]
    assert not [call for call in fake.calls() if call["argv"][:2] == ["label", "create"]]


def test_pull_request_is_created_then_updated(fake: FakeGitHub, caplog: pytest.LogCaptureFixture) -> None:
    number = upsert_pull_request("retrain-1a2b3c4d", "main", "Retrain on labelled logs", "first")
    assert caplog.messages.pop() == f"created pull request #{number}"
    assert (
        upsert_pull_request("retrain-1a2b3c4d", "main", "Retrain on labelled logs (again)", "second")
        == number
    )
    assert caplog.messages.pop() == f"updated pull request #{number}"
    pulls = fake.state()["pulls"]
    assert pulls == [
        FEATURE_PR,
        {
            "number": number,
            "title": "Retrain on labelled logs (again)",
            "body": "second",
            "state": "OPEN",
            "headRefName": "retrain-1a2b3c4d",
            "baseRefName": "main",
        },
    ]


def test_bodies_go_through_stdin_never_the_command_line(fake: FakeGitHub) -> None:
    bodies = ["comment body 'quoted' $HOME", "issue body `x`", "pull-request body\nline 2"]
    sticky_comment(7, bodies[0], "report")
    upsert_issue("Title", bodies[1], "monitoring")
    upsert_pull_request("branch", "main", "Title", bodies[2])
    calls = fake.calls()
    stdin = "".join(call["stdin"] for call in calls)
    for body in bodies:
        assert not [call for call in calls if any(body in argument for argument in call["argv"])]
        assert json.dumps(body)[1:-1] in stdin or body in stdin


def test_a_gh_failure_names_the_command_and_what_gh_said(fake: FakeGitHub) -> None:
    fake.set(
        fail={"command": "issue list", "stderr": "HTTP 502: Bad Gateway (https://api.github.com/graphql)"}
    )
    with pytest.raises(PillarsError) as caught:
        upsert_issue("Title", "body", "monitoring")
    message = str(caught.value)
    assert "`gh issue list --state open --label monitoring" in message
    assert "HTTP 502: Bad Gateway" in message


def test_the_token_is_in_no_error(fake: FakeGitHub, tmp_path: Path) -> None:
    fake.set(
        fail={"command": "api --paginate", "stderr": f"gh: Bad credentials (HTTP 401)\nsent token {TOKEN}"}
    )
    with pytest.raises(PillarsError) as caught:
        sticky_comment(7, "body", "report")
    assert TOKEN not in str(caught.value)
    assert "Bad credentials (HTTP 401)" in str(caught.value)
    body = tmp_path / "report.md"
    body.write_text("body", encoding="utf-8")
    result = comment_cli(body)
    assert result.returncode == 2
    assert result.stderr.startswith("error: `gh api --paginate")
    assert TOKEN not in result.stdout + result.stderr


def comment_cli(body: Path) -> subprocess.CompletedProcess:
    """`make pr-comment`, as the ci workflow's comment job runs it."""
    return make(ROOT, "pr-comment", "PR=7", f"BODY={body}", "MARKER=report", check=False)


def test_make_pr_comment_posts_the_report(fake: FakeGitHub, tmp_path: Path) -> None:
    body = tmp_path / "report.md"
    body.write_text("# Report\n", encoding="utf-8")
    result = comment_cli(body)
    assert result.returncode == 0 and result.stderr.endswith("created comment 1001\n"), result.stderr
    assert fake.comments(7)[1001]["body"] == f"{MARKER_LINE}\n# Report\n"
    missing = comment_cli(tmp_path / "none.md")
    assert missing.returncode == 2
    assert "none.md: cannot read the body" in missing.stderr


def test_bad_marker_and_missing_gh_are_clear_errors(
    fake: FakeGitHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(PillarsError, match="comment marker 'a -->'"):
        sticky_comment(7, "body", "a -->")
    assert fake.calls() == []
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PillarsError, match="GitHub CLI `gh` is not on PATH"):
        upsert_pull_request("branch", "main", "Title", "body")
