"""A fake GitHub CLI for tests/code/test_github.py: no network reaches GitHub from the test machines.

It implements only the gh commands that pillars.ci.github runs, with gh's argument shapes, outputs and
errors: `gh api` (the issue-comment endpoints; `--paginate` prints one JSON array per page back to back,
as gh does), `gh issue list|create|edit|comment`, `gh label list|create`, `gh pr list|create|edit`.
GitHub is a JSON file named by FAKE_GH_STATE:

    repo          "owner/name" that GH_REPO must name (gh needs a repository; the tests have no remote)
    issues        [{number, title, body, state: OPEN|CLOSED, labels: [{name}]}]
    pulls         [{number, title, body, state, headRefName, baseRefName}]
    comments      [{id, issue, body, user: {login}}]  (comments of issues and pull requests alike)
    labels        [{name, color, description}]
    page_size     comments per page of `gh api` (GitHub: 30, or 100 with --paginate)
    fail          {"command": "issue list", "stderr": "...", "exit": 1}: calls whose first two
                  arguments are "issue list" print that on stderr and exit with that code
    calls         every call so far: {"argv": [...], "stdin": "..."} (appended here)

Bodies over GitHub's 65,536-character limit are refused, as GitHub refuses them.
"""

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

BODY_LIMIT = 65_536
STATE = Path(os.environ["FAKE_GH_STATE"])
FIELDS = {
    "issue": {"number", "title", "body", "state", "labels", "url"},
    "pr": {"number", "title", "body", "state", "headRefName", "baseRefName", "url"},
    "label": {"name", "color", "description"},
}


class GhError(Exception):
    """gh's message on stderr, and its exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise GhError(message)  # gh (cobra) prints the usage error and exits 1


def read_input(name: str, call: dict) -> str:
    """The text of --body-file / --input: a file, or stdin for "-"."""
    if name == "-":
        call["stdin"] = sys.stdin.read()
        return call["stdin"]
    return Path(name).read_text(encoding="utf-8")


def checked_body(body: str, where: str) -> str:
    if len(body) > BODY_LIMIT:
        raise GhError(f"GraphQL: Body is too long (maximum is {BODY_LIMIT} characters) ({where})")
    return body


def export(items: list[dict], fields: str, kind: str) -> None:
    """`--json a,b`: the selected fields of each item, as one compact array (gh without a terminal)."""
    wanted = fields.split(",")
    unknown = [field for field in wanted if field not in FIELDS[kind]]
    if unknown:
        available = "\n".join(f"  {field}" for field in sorted(FIELDS[kind]))
        raise GhError(f'Unknown JSON field: "{unknown[0]}"\nAvailable fields:\n{available}')
    print(json.dumps([{field: item.get(field) for field in wanted} for item in items]))


def url(state: dict, kind: str, number: int) -> str:
    return f"https://github.com/{state['repo']}/{kind}/{number}"


def next_number(state: dict) -> int:
    """Issues and pull requests share one sequence of numbers, as on GitHub."""
    return 1 + max((item["number"] for item in state["issues"] + state["pulls"]), default=0)


def add_comment(state: dict, issue: int, body: str) -> dict:
    comment = {
        "id": 1 + max((comment["id"] for comment in state["comments"]), default=1000),
        "issue": issue,
        "body": checked_body(body, "addComment"),
        "user": {"login": "github-actions[bot]"},
    }
    comment["html_url"] = f"{url(state, 'issues', issue)}#issuecomment-{comment['id']}"
    state["comments"].append(comment)
    return comment


def find(items: list[dict], number: str) -> dict:
    for item in items:
        if str(item["number"]) == number:
            return item
    raise GhError(f"GraphQL: Could not resolve to an issue or pull request with the number of {number}.")


def api(state: dict, arguments: list[str], call: dict) -> None:
    parser = Parser(prog="gh api")
    parser.add_argument("endpoint")
    parser.add_argument("-X", "--method", default=None)
    parser.add_argument("--paginate", action="store_true")
    parser.add_argument("--input")
    args = parser.parse_args(arguments)
    method = args.method or ("POST" if args.input else "GET")
    if args.paginate and method != "GET":
        raise GhError("the `--paginate` option is not supported for non-GET requests")
    owner, name = state["repo"].split("/")
    endpoint = args.endpoint.replace("{owner}", owner).replace("{repo}", name)
    payload = json.loads(read_input(args.input, call)) if args.input else {}
    prefix = f"repos/{state['repo']}/issues/"
    numbers = {item["number"] for item in state["issues"] + state["pulls"]}
    if (match := re.fullmatch(re.escape(prefix) + r"(\d+)/comments", endpoint)) and int(match[1]) in numbers:
        issue = int(match[1])
        if method == "GET":
            comments = [comment for comment in state["comments"] if comment["issue"] == issue]
            size = state.get("page_size", 100 if args.paginate else 30)
            pages = [comments[start : start + size] for start in range(0, len(comments), size)] or [[]]
            # Each page as the API sends it, one after the other; without --paginate only the first
            sys.stdout.write("".join(json.dumps(page) for page in (pages if args.paginate else pages[:1])))
            return
        if method == "POST":
            print(json.dumps(add_comment(state, issue, payload["body"])))
            return
    match = re.fullmatch(re.escape(prefix) + r"comments/(\d+)", endpoint)
    comment = next((c for c in state["comments"] if match and c["id"] == int(match[1])), None)
    if comment is not None and method == "PATCH":
        comment["body"] = checked_body(payload["body"], "updateIssueComment")
        print(json.dumps(comment))
        return
    raise GhError("gh: Not Found (HTTP 404)")


def issue(state: dict, arguments: list[str], call: dict) -> None:
    parser = Parser(prog="gh issue")
    parser.add_argument("action", choices=["list", "create", "edit", "comment"])
    parser.add_argument("number", nargs="?")
    parser.add_argument("-s", "--state", default="open", choices=["open", "closed", "all"])
    parser.add_argument("-l", "--label", action="append", default=[])
    parser.add_argument("--json")
    parser.add_argument("-L", "--limit", type=int, default=30)
    parser.add_argument("-t", "--title")
    parser.add_argument("-F", "--body-file")
    args = parser.parse_args(arguments)
    if args.action == "list":
        chosen = [
            item
            for item in reversed(state["issues"])  # newest first
            if args.state in ("all", item["state"].lower())
            and all(label in [found["name"] for found in item["labels"]] for label in args.label)
        ]
        export(
            [{**item, "url": url(state, "issues", item["number"])} for item in chosen][: args.limit],
            args.json,
            "issue",
        )
    elif args.action == "create":
        known = {label["name"] for label in state["labels"]}
        for label in args.label:
            if label not in known:
                raise GhError(f"could not add label: '{label}' not found")
        body = checked_body(read_input(args.body_file, call), "createIssue")
        number = next_number(state)
        labels = [{"name": label} for label in args.label]
        state["issues"].append(
            {"number": number, "title": args.title, "body": body, "state": "OPEN", "labels": labels}
        )
        print(url(state, "issues", number))
    elif args.action == "edit":
        item = find(state["issues"], args.number)
        item["body"] = checked_body(read_input(args.body_file, call), "updateIssue")
        print(url(state, "issues", item["number"]))
    else:
        item = find(state["issues"], args.number)
        print(add_comment(state, item["number"], read_input(args.body_file, call))["html_url"])


def label(state: dict, arguments: list[str], call: dict) -> None:
    parser = Parser(prog="gh label")
    parser.add_argument("action", choices=["list", "create"])
    parser.add_argument("name", nargs="?")
    parser.add_argument("-S", "--search")
    parser.add_argument("--json")
    parser.add_argument("-L", "--limit", type=int, default=30)
    parser.add_argument("-f", "--force", action="store_true")
    args = parser.parse_args(arguments)
    if args.action == "list":
        query = (args.search or "").casefold()
        chosen = [
            found
            for found in state["labels"]
            if query in f"{found['name']} {found.get('description', '')}".casefold()
        ]
        if chosen:  # with no match gh prints nothing, not [], and succeeds
            export(chosen[: args.limit], args.json, "label")
        return
    existing = [found for found in state["labels"] if found["name"].casefold() == args.name.casefold()]
    if existing and not args.force:
        raise GhError(
            f'label with name "{args.name}" already exists; use `--force` to update its color and description'
        )
    for found in existing:
        state["labels"].remove(found)
    state["labels"].append({"name": args.name, "color": "0E8A16", "description": ""})  # gh: a random colour


def pr(state: dict, arguments: list[str], call: dict) -> None:
    parser = Parser(prog="gh pr")
    parser.add_argument("action", choices=["list", "create", "edit"])
    parser.add_argument("number", nargs="?")
    parser.add_argument("-s", "--state", default="open", choices=["open", "closed", "merged", "all"])
    parser.add_argument("-H", "--head")
    parser.add_argument("-B", "--base")
    parser.add_argument("--json")
    parser.add_argument("-L", "--limit", type=int, default=30)
    parser.add_argument("-t", "--title")
    parser.add_argument("-F", "--body-file")
    args = parser.parse_args(arguments)

    def matches(item: dict[str, Any], wanted: str) -> bool:
        return (
            wanted in ("all", item["state"].lower())
            and args.head in (None, item["headRefName"])
            and args.base in (None, item["baseRefName"])
        )

    if args.action == "list":
        chosen = [
            {**item, "url": url(state, "pull", item["number"])}
            for item in reversed(state["pulls"])
            if matches(item, args.state)
        ]
        export(chosen[: args.limit], args.json, "pr")
    elif args.action == "create":
        existing = next((item for item in state["pulls"] if matches(item, "open")), None)
        if existing is not None:
            raise GhError(
                f'a pull request for branch "{args.head}" into branch "{args.base}" already exists:\n'
                + url(state, "pull", existing["number"])
            )
        body = checked_body(read_input(args.body_file, call), "createPullRequest")
        number = next_number(state)
        state["pulls"].append(
            {
                "number": number,
                "title": args.title,
                "body": body,
                "state": "OPEN",
                "headRefName": args.head,
                "baseRefName": args.base,
            }
        )
        print(url(state, "pull", number))
    else:
        item = find(state["pulls"], args.number)
        item["title"] = args.title or item["title"]
        if args.body_file:
            item["body"] = checked_body(read_input(args.body_file, call), "updatePullRequest")
        print(url(state, "pull", item["number"]))


COMMANDS = {"api": api, "issue": issue, "label": label, "pr": pr}


def run(state: dict, argv: list[str], call: dict) -> None:
    if not (os.environ.get("GH_TOKEN") or os.environ.get("GITHUB_TOKEN")):
        raise GhError(
            "To get started with GitHub CLI, please run:  gh auth login\n"
            "Alternatively, populate the GH_TOKEN environment variable with a GitHub API authentication token.",
            code=4,
        )
    if os.environ.get("GH_REPO") != state["repo"]:
        raise GhError(
            "failed to run git: fatal: not a git repository (or any of the parent directories): .git"
        )
    fail = state.get("fail")
    if fail and " ".join(argv[:2]) == fail["command"]:
        raise GhError(fail["stderr"], fail.get("exit", 1))
    if not argv or argv[0] not in COMMANDS:
        raise GhError(f'unknown command "{argv[0] if argv else ""}" for "gh"')
    COMMANDS[argv[0]](state, argv[1:], call)


def main() -> int:
    state = json.loads(STATE.read_text(encoding="utf-8"))
    call = {"argv": sys.argv[1:], "stdin": ""}
    state.setdefault("calls", []).append(call)
    try:
        run(state, sys.argv[1:], call)
        code = 0
    except GhError as error:
        print(error, file=sys.stderr)
        code = error.code
    STATE.write_text(json.dumps(state, indent=1), encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())
