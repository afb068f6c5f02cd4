"""The pull-request report (`make pr-report`): what a change does to the pipeline's results, against a base.

A reviewer reads one Markdown page: the model selection and validation gate side by side (base -> this
branch), then DVC's own `dvc metrics diff` and `dvc params diff` tables. `dvc plots diff` renders every plot
of dvc.yaml for both revisions as Vega-Lite specs in `plots/index.html` (through .dvc/plots/offline.html, with
Vega inline: it opens offline), which the ci workflow uploads as an artifact (a comment cannot embed it). The base's results are read from Git, so the workspace
must hold this branch's results (`dvc repro` first); CI posts report.md as one sticky comment.
"""

import argparse
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, NamedTuple

from pillars.ci.actions import add_summary
from pillars.ci.github import run_link
from pillars.core import layout
from pillars.core.errors import run_cli
from pillars.core.io import write_json, write_text
from pillars.core.process import run

REPORT_FILE = "report.md"
PLOTS_DIR = "plots"


def json_at(revision: str, path: Path) -> dict[str, Any] | None:
    """A JSON file as committed at `revision` (None when it did not exist there)."""
    result = run(["git", "show", f"{revision}:{path.as_posix()}"], check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def short_commit(revision: str) -> str:
    return run(["git", "rev-parse", "--short", revision]).stdout.strip()


def _change(before: Any, after: Any) -> str:
    """`after`, with the base value when it differs ("0.93 (was 0.92)")."""
    if before is None or before == after:
        return f"{after}"
    return f"{after} (was {before})"


def selection_section(base: dict[str, Any] | None, head: dict[str, Any]) -> str:
    """The selected model and the ranking of the candidates on the valid split (or, after small-data
    tuning, on out-of-fold predictions), base beside head."""
    on = head.get("evaluated_on", "valid")
    base_on = (base or {}).get("evaluated_on", "valid")
    base_scores = {row["family"]: row[base_on] for row in (base or {}).get("ranking", [])}
    lines = [
        "### Model selection",
        "",
        f"Selected: **{head['model']}** (base: {base['model'] if base else 'none'}) - {head['reason']}.",
        "",
        f"| candidate | {on.replace('_', '-')} {head['metric']} | base | change |",
        "| --- | ---: | ---: | ---: |",
    ]
    if base and base_on != on:
        lines.insert(
            4, f"The base judged on {base_on.replace('_', '-')}, this branch on {on.replace('_', '-')}.\n"
        )
    for row in head["ranking"]:
        before, after = base_scores.get(row["family"]), row[on]  # None: none, or undefined where judged
        change = "-" if after is None else ("new" if before is None else f"{after - before:+.4f}")
        shown_before = f"{before:.4f}" if before is not None else "-"
        shown_after = f"{after:.4f}" if after is not None else "undefined (see model_validation.json)"
        lines.append(f"| {row['family']} | {shown_after} | {shown_before} | {change} |")
    for family in head["not_eligible"]:
        lines.append(f"| {family} | not eligible: failed the validation gate | | |")
    return "\n".join(lines)


def validation_section(base: dict[str, Any] | None, head: dict[str, Any]) -> str:
    """The validation gate per candidate: passed or not (and before), with every failed check named."""
    base_candidates = (base or {}).get("candidates", {})
    lines = ["### Model validation", "", "| candidate | gate | failed checks |", "| --- | --- | --- |"]
    for family, result in sorted(head["candidates"].items()):
        before = base_candidates.get(family, {}).get("passed")
        gate = _change(_verdict(before), _verdict(result["passed"]))
        failed = [
            _failed(name, check)
            for name, check in sorted(result["checks"].items())
            if check["passed"] is False
        ]
        lines.append(f"| {family} | {gate} | {', '.join(failed) or '-'} |")
    return "\n".join(lines)


def _failed(name: str, check: dict[str, Any]) -> str:
    """A failed check with what was measured: a paired comparison's verdict with the difference and its
    interval, the value, or why the metric is undefined."""
    if "undefined" in check:
        return f"{name} (undefined: {check['undefined']})"
    if check.get("interval") is not None:
        low, high = check["interval"]
        return f"{name} ({check['verdict']}: {check['difference']:+g}, interval [{low:+g}, {high:+g}])"
    return f"{name} ({check['value']})" if "value" in check else name


def _verdict(passed: bool | None) -> str | None:
    return None if passed is None else ("pass" if passed else "FAIL")


def dvc_diff(kind: str, base: str) -> str:
    """`dvc metrics diff` / `dvc params diff` against the base, as DVC's Markdown table."""
    table = run(["dvc", kind, "diff", base, "--md"]).stdout.strip()
    return table if len(table.splitlines()) > 2 else f"No {kind} changed."  # header and rule only


class Plots(NamedTuple):
    """What `dvc plots diff` drew: plot names with the revisions each has, and plots with no data."""

    page: Path
    drawn: dict[str, list[str]]
    missing: list[str]


def render_plots(base: str, out: Path) -> Plots:
    """Every plot of dvc.yaml for the base and the workspace: one HTML page, and each Vega-Lite spec."""
    rendered = json.loads(run(["dvc", "plots", "diff", base, "--json"]).stdout)
    drawn = {}
    for name, entries in rendered["data"].items():
        revisions = sorted({revision for entry in entries for revision in entry["revisions"]})
        if not revisions:
            continue  # declared in dvc.yaml, but no revision has its data (e.g. residuals of a classifier)
        drawn[name] = revisions
        for number, entry in enumerate(entries):
            suffix = f"-{number}" if len(entries) > 1 else ""
            write_json(
                out / f"{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}{suffix}.vl.json",
                entry["content"],
            )
    missing = sorted(
        ({error["name"] for error in rendered.get("errors", [])} | set(rendered["data"])) - set(drawn)
    )
    run(["dvc", "plots", "diff", base, "--out", str(out)])
    return Plots(out / "index.html", drawn, missing)


def plots_section(plots: Plots) -> str:
    """The plots drawn and where to see them."""
    names = ", ".join(f"{name} ({' vs '.join(revisions)})" for name, revisions in plots.drawn.items())
    lines = [
        "### Plots (`dvc plots diff`)",
        "",
        f"Base and this branch overlaid, as Vega-Lite (index.html, which opens offline, and one `.vl.json` spec per plot): {plots_location()}.",
        "",
        f"Drawn: {names or 'none'}.",
    ]
    if plots.missing:
        lines.append(f"No data for: {', '.join(plots.missing)} (not produced for this task).")
    return "\n".join(lines)


def plots_location() -> str:
    """Where the plots are: the workflow run's artifact in Actions, the local folder otherwise."""
    if os.environ.get("GITHUB_RUN_ID"):
        return f"the `pr-report` artifact of {run_link()}"
    return f"`{PLOTS_DIR}/` beside this report"


def report(base: str, plots: Plots) -> str:
    """The whole report as Markdown (the workspace is the head)."""
    selection = json.loads(layout.SELECTION_REPORT.read_text(encoding="utf-8"))
    validation = json.loads(layout.MODEL_VALIDATION_REPORT.read_text(encoding="utf-8"))
    sections = [
        f"## pillars: `{base}` ({short_commit(base)}) -> this branch ({short_commit('HEAD')})",
        selection_section(json_at(base, layout.SELECTION_REPORT), selection),
        validation_section(json_at(base, layout.MODEL_VALIDATION_REPORT), validation),
        "### Metrics (`dvc metrics diff`)\n\n" + dvc_diff("metrics", base),
        "### Params (`dvc params diff`)\n\n" + dvc_diff("params", base),
        plots_section(plots),
    ]
    return "\n\n".join(sections) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pillars.ci.pr_report", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--base", default="origin/main", help="the revision to compare with")
    parser.add_argument(
        "--out", type=Path, default=Path("build/report"), help="folder for report.md and plots/"
    )
    args = parser.parse_args()
    run(["git", "rev-parse", "--verify", f"{args.base}^{{commit}}"])
    shutil.rmtree(args.out, ignore_errors=True)
    text = report(args.base, render_plots(args.base, args.out / PLOTS_DIR))
    write_text(args.out / REPORT_FILE, text)
    add_summary(text)
    print(f"pr-report: {args.out / REPORT_FILE}")


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
