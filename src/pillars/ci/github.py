"""The GitHub side of the CI workflows, through the GitHub CLI: `python -m pillars.ci.github <command>`.

A pull request gets one comment per report that each push updates (`comment`) instead of a new comment per
push; an alert keeps one open issue up to date (`issue`) instead of opening duplicates; a retraining branch
gets its pull request opened or updated (`pull-request`). Other modules import the same functions.

`gh` is preinstalled on GitHub's runners and authenticates with GH_TOKEN. In Actions the repository is
GITHUB_REPOSITORY, handed to gh as GH_REPO (elsewhere gh infers it from the git remote). Bodies go to gh
through stdin, never on the command line, whatever their size and quoting.
"""

import argparse
import json
import logging
import os
import re
import shutil
from pathlib import Path

from pillars.core.errors import PillarsError, run_cli
from pillars.core.process import run

logger = logging.getLogger(__name__)
# GitHub refuses comment, issue and pull-request bodies longer than this many characters
BODY_LIMIT = 65_536
# gh reads its token from these; their values never reach an error message
TOKEN_VARIABLES = ("GH_TOKEN", "GITHUB_TOKEN", "GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN")
# A marker goes into an HTML comment: nothing that could close it early
MARKER = re.compile(r"[\w.-]+")
# `gh issue create` and `gh pr create` print the URL of what they created: .../issues/12, .../pull/34
CREATED_URL = re.compile(r"/(?:issues|pull)/(\d+)$", re.MULTILINE)
WHITESPACE = re.compile(r"\s*")
COMMENTS = "repos/{owner}/{repo}/issues"  # gh fills in {owner} and {repo}; pull requests are issues here


def redacted(text: str) -> str:
    """`text` with every token value masked, should gh or the API ever echo one."""
    for name in TOKEN_VARIABLES:
        if secret := os.environ.get(name):
            text = text.replace(secret, "***")
    return text


def gh(*arguments: str, stdin: str = "") -> str:
    """Run gh with `stdin` on its standard input and return its stdout; a failure is a PillarsError."""
    command = ["gh", *arguments]
    environment = {"GH_PROMPT_DISABLED": "1"}
    if os.environ.get("GITHUB_REPOSITORY"):
        environment.setdefault("GH_REPO", os.environ["GITHUB_REPOSITORY"])
    if shutil.which("gh", path=os.environ.get("PATH")) is None:
        raise PillarsError(
            "the GitHub CLI `gh` is not on PATH: install it (https://cli.github.com); GitHub's runners have it"
        )
    return run(command, stdin=stdin, env=environment, describe=redacted).stdout


def gh_json(*arguments: str) -> list[dict]:
    """gh's JSON output as one list of objects.

    `gh api --paginate` prints one array per page back to back (not one array), and `gh label list`
    prints nothing at all when nothing matches.
    """
    text = gh(*arguments)
    decoder = json.JSONDecoder()
    items: list[dict] = []
    position = WHITESPACE.match(text).end()
    while position < len(text):
        value, position = decoder.raw_decode(text, position)
        items.extend(value if isinstance(value, list) else [value])
        position = WHITESPACE.match(text, position).end()
    return items


def created_number(output: str) -> int:
    """The number in the URL that `gh issue create` / `gh pr create` print."""
    match = CREATED_URL.search(output.strip())
    if match is None:
        raise PillarsError(f"gh printed no issue or pull-request URL: {output.strip()!r}")
    return int(match.group(1))


def run_link() -> str:
    """This workflow run, as a Markdown link when running in GitHub Actions."""
    names = ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    if all(os.environ.get(name) for name in names):
        return "[the workflow run]({}/{}/actions/runs/{})".format(*(os.environ[name] for name in names))
    return "the workflow run"


def fit(body: str) -> str:
    """`body` within GitHub's size limit: cut at a line end, with a closing line saying where the whole is."""
    if len(body) <= BODY_LIMIT:
        return body
    note = (
        f"\n\n---\n**This report was truncated** to fit GitHub's {BODY_LIMIT:,}-character limit; "
        f"the full report is in the artifacts of {run_link()}.\n"
    )
    fence = "\n```"
    kept = body[: BODY_LIMIT - len(note) - len(fence)]
    kept = kept.rpartition("\n")[0] or kept
    if sum(line.lstrip().startswith("```") for line in kept.splitlines()) % 2:
        kept += fence  # the cut fell inside a code block: close it, or it would swallow the note
    return kept + note


def marker_line(marker: str) -> str:
    """The hidden first line that identifies the comment of `marker`."""
    if not MARKER.fullmatch(marker):
        raise PillarsError(f"comment marker {marker!r}: use only letters, digits, '.', '_' and '-'")
    return f"<!-- pillars:{marker} -->"


def sticky_comment(pr: int, body: str, marker: str) -> int:
    """Post `body` on pull request `pr` as the comment of `marker`, or update that comment if it exists.

    One comment per report that every push refreshes keeps the conversation readable. The comment is the
    newest one whose body starts with the marker line (comments by people never do). Returns its id.
    """
    first_line = marker_line(marker)
    comments = gh_json("api", "--paginate", f"{COMMENTS}/{pr}/comments")
    ours = [comment["id"] for comment in comments if (comment.get("body") or "").startswith(first_line)]
    if ours:
        action, method, endpoint = "updated", "PATCH", f"{COMMENTS}/comments/{ours[-1]}"
    else:
        action, method, endpoint = "created", "POST", f"{COMMENTS}/{pr}/comments"
    payload = json.dumps({"body": fit(f"{first_line}\n{body}")})
    comment = json.loads(gh("api", "--method", method, endpoint, "--input", "-", stdin=payload))
    logger.info("%s comment %s", action, comment["id"])
    return comment["id"]


def ensure_label(label: str) -> None:
    """Create `label` if the repository lacks it, as `gh issue create --label` refuses unknown labels.

    An existing label is left alone: `gh label create --force` would repaint it in a random colour.
    """
    labels = gh_json("label", "list", "--search", label, "--json", "name", "--limit", "100")
    if not any(found["name"].casefold() == label.casefold() for found in labels):
        gh("label", "create", label, "--force")  # --force: no failure if it appeared meanwhile


def upsert_issue(title: str, body: str, label: str) -> int:
    """Open an issue with `label`, or replace the body of the open one with that label and title.

    A recurring alert updates its one issue instead of opening another each time; a comment notes each
    update, since editing a body notifies nobody. Returns the issue's number.
    """
    issues = gh_json(
        "issue", "list", "--state", "open", "--label", label, "--json", "number,title", "--limit", "1000"
    )
    same = sorted(issue["number"] for issue in issues if issue["title"] == title)
    if same:
        number = same[-1]
        gh("issue", "edit", str(number), "--body-file", "-", stdin=fit(body))
        gh("issue", "comment", str(number), "--body-file", "-", stdin=f"Description updated by {run_link()}.")
        logger.info("updated issue #%d", number)
        return number
    ensure_label(label)
    number = created_number(
        gh("issue", "create", "--title", title, "--label", label, "--body-file", "-", stdin=fit(body))
    )
    logger.info("created issue #%d", number)
    return number


def upsert_pull_request(branch: str, base: str, title: str, body: str) -> int:
    """Open a pull request from `branch` into `base`, or update the title and body of the open one.

    Pushing a branch again (a new retraining) must not fail on, or duplicate, its pull request. Returns
    the pull request's number.
    """
    pulls = gh_json(
        "pr", "list", "--state", "open", "--head", branch, "--base", base, "--json", "number", "--limit", "1"
    )
    if pulls:
        number = pulls[0]["number"]
        gh("pr", "edit", str(number), "--title", title, "--body-file", "-", stdin=fit(body))
        logger.info("updated pull request #%d", number)
        return number
    number = created_number(
        gh(
            "pr",
            "create",
            "--head",
            branch,
            "--base",
            base,
            "--title",
            title,
            "--body-file",
            "-",
            stdin=fit(body),
        )
    )
    logger.info("created pull request #%d", number)
    return number


def read_body(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise PillarsError(f"{path}: cannot read the body: {error.strerror}") from None


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pillars.ci.github", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    comment = commands.add_parser(
        "comment", help="post or update the sticky comment MARKER on pull request PR"
    )
    comment.add_argument("--pr", type=int, required=True, help="pull request number")
    comment.add_argument("--marker", required=True, help="which report: one comment per marker")
    issue = commands.add_parser(
        "issue", help="open the issue, or update the open one with that label and title"
    )
    issue.add_argument("--title", required=True)
    issue.add_argument("--label", required=True, help="created if the repository lacks it")
    pull = commands.add_parser("pull-request", help="open the pull request of BRANCH, or update the open one")
    pull.add_argument("--branch", required=True, help="head branch (already pushed)")
    pull.add_argument("--base", default="main", help="base branch (default: main)")
    pull.add_argument("--title", required=True)
    for command in (comment, issue, pull):
        command.add_argument("--body-file", type=Path, required=True, help="the body, in Markdown")
    args = parser.parse_args()
    body = read_body(args.body_file)
    if args.command == "comment":
        sticky_comment(args.pr, body, args.marker)
    elif args.command == "issue":
        upsert_issue(args.title, body, args.label)
    else:
        upsert_pull_request(args.branch, args.base, args.title, body)


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
