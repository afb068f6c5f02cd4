"""The project page (`make page`): the whole project on one self-contained HTML page, build/page.html.

The pipeline with each stage's status (from DVC), the data contract and what cleansing quarantined, the split,
the candidates and the gate's verdicts, the model card, the experiments, the deployment check and monitoring,
read from the reports the stages committed. Inline CSS and SVG, no script, no external address: it opens
offline, from a CI artifact as from a laptop. The same repository state gives the same bytes (no timestamps,
everything in a fixed order), so two fresh clones give the same page. The layout is the template
`page.html.j2`, HTML-escaped (column names, categories and labels come from the data).
"""

import argparse
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from pillars.core import layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import first_line, read_json, write_text
from pillars.core.params import PARAMS_FILE, Params, load_params
from pillars.core.schema import DataSchema, load_schema
from pillars.core.templates import render
from pillars.lifecycle.sweep import show_experiments
from pillars.monitoring.charts import BLUE, GREY, INK, ORANGE, Bar, bar_chart, number, percent

PAGE_TEMPLATE = "page.html.j2"
TEMPLATES = (PAGE_TEMPLATE,)
DEFAULT_OUT = Path("build/page.html")
GREEN = "#2b8a3e"

# A stage's status -> what it means, the command that brings it up to date, its colours (fill, border)
STATUSES: dict[str, tuple[str, str, str, str]] = {
    "up to date": ("its outputs match the code, params and data they came from", "", "#d3f9d8", GREEN),
    "changed": ("something it depends on changed; it reruns with", "make repro", "#ffe8cc", ORANGE),
    "not here": (
        "its inputs or outputs are not in this workspace (a fresh clone); they are rebuilt by",
        "make run",
        "#f1f3f5",
        GREY,
    ),
    "never run": ("dvc.lock records no run of it; it runs with", "make run", "#ffffff", INK),
}
_ABSENT = {"deleted", "not in cache"}  # dvc status for a file that is not in the workspace
_SHOWN_CHANGES = 6  # changed paths listed per stage; the rest are counted


@dataclass(frozen=True)
class Stage:
    """One dvc.yaml stage: the stages whose outputs it reads, its status and what changed."""

    name: str
    upstream: tuple[str, ...]
    status: str
    changes: tuple[str, ...]


def _flat_changes(entries: Iterable[Any]) -> list[tuple[str, str]]:
    """`dvc status` entries of one stage as (what, how) pairs: a path or a param and its state, or a
    change of the stage itself ("changed command", "always changed")."""
    pairs: list[tuple[str, str]] = []
    for entry in entries:
        if isinstance(entry, str):
            pairs.append((entry, "changed"))
            continue
        for changes in entry.values():
            for path, state in changes.items():
                if isinstance(state, Mapping):  # params: file -> {key: state}
                    pairs.extend((f"{path}:{key}", str(how)) for key, how in state.items())
                else:
                    pairs.append((path, str(state)))
    return sorted(pairs)


def _status(ran: bool, entries: Iterable[Any]) -> tuple[str, tuple[str, ...]]:
    """The status and the changes to show, from whether dvc.lock records a run and `dvc status`."""
    if not ran:
        return "never run", ()
    pairs = _flat_changes(entries)
    if not pairs:
        return "up to date", ()
    status = "not here" if all(how in _ABSENT for _, how in pairs) else "changed"
    pairs.sort(key=lambda pair: pair[1] in _ABSENT)  # what changed first, then what is not here
    return status, tuple(f"{what}: {how}" for what, how in pairs)


def _topological(stages: Sequence[Stage]) -> list[Stage]:
    """The stages in an order where each comes after the stages it reads from, otherwise as dvc.yaml lists
    them (a stable order: the chart is the same for the same pipeline)."""
    ordered: list[Stage] = []
    placed: set[str] = set()
    while len(ordered) < len(stages):
        stage = next(s for s in stages if s.name not in placed and placed.issuperset(s.upstream))
        ordered.append(stage)
        placed.add(stage.name)
    return ordered


def pipeline_stages() -> list[Stage]:
    """The stages of dvc.yaml with their status, through DVC's Python API (one read of the repository for
    the graph and the status: a third of the time of the `dvc dag` and `dvc status` commands)."""
    from dvc.lock import LockError  # importing DVC takes a second that --help does not need
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    try:
        with Repo() as repo:
            graph = repo.index.graph  # an edge runs from a stage to a stage it reads from
            status = repo.status()
            found = []
            for stage in repo.index.stages:
                if not isinstance(stage, PipelineStage):
                    continue  # a .dvc file: data added by hand, not a stage
                upstream = (other for other in graph.successors(stage) if isinstance(other, PipelineStage))
                ran = any(item.hash_info for item in (*stage.deps, *stage.outs))  # dvc.lock records a run
                changes = status.get(stage.addressing, [])
                found.append(
                    Stage(
                        stage.addressing,
                        tuple(sorted(o.addressing for o in upstream)),
                        *_status(ran, changes),
                    )
                )
    except LockError as error:
        raise PillarsError(f"dvc status: {first_line(error)} (another dvc command is running here)") from None
    return _topological(found)


def _esc(value: object) -> str:
    return str(escape(str(value)))


def dag_chart(stages: Sequence[Stage]) -> str:
    """The pipeline as SVG: one box per stage top to bottom (each below the stages it reads from), coloured
    by status, and an arc on the right from each stage to every stage that reads its outputs."""
    box_width, box_height, pitch, top = 230, 26, 34, 30
    row = {stage.name: index for index, stage in enumerate(stages)}
    spans = [row[stage.name] - row[source] for stage in stages for source in stage.upstream]
    width = box_width + 24 + 16 * max(spans, default=0) + 8
    height = top + pitch * len(stages)
    parts = [
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z" fill="{GREY}"/></marker></defs>'
    ]
    x = 4.0
    for status, (_, _, fill, stroke) in STATUSES.items():
        parts.append(
            f'<rect x="{x:.1f}" y="4" width="12" height="10" fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{x + 17:.1f}" y="9" dominant-baseline="middle">{status}</text>'
        )
        x += 30 + 6.5 * len(status)

    def middle(name: str) -> float:
        return top + pitch * row[name] + box_height / 2

    for stage in stages:
        for source in stage.upstream:
            y1, y2 = middle(source), middle(stage.name)
            bulge = box_width + 24 + 16 * (row[stage.name] - row[source])
            parts.append(
                f'<path d="M{box_width},{y1:.1f} C{bulge},{y1:.1f} {bulge},{y2:.1f} {box_width + 1},{y2:.1f}" '
                f'fill="none" stroke="{GREY}" stroke-width="1.2" marker-end="url(#arrow)">'
                f"<title>{_esc(f'{source} → {stage.name}')}</title></path>"
            )
    for stage in stages:
        *_, fill, stroke = STATUSES[stage.status]
        y = top + pitch * row[stage.name]
        dashed = ' stroke-dasharray="4 3"' if stage.status == "never run" else ""
        parts.append(
            f"<g><title>{_esc(f'{stage.name}: {stage.status}')}</title>"
            f'<rect x="1" y="{y}" width="{box_width - 2}" height="{box_height}" rx="5" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="1.5"{dashed}/>'
            f'<text x="10" y="{y + box_height / 2}" dominant-baseline="middle" font-weight="600">'
            f"{_esc(stage.name)}</text>"
            f'<text x="{box_width - 10}" y="{y + box_height / 2}" dominant-baseline="middle" '
            f'text-anchor="end">{stage.status}</text></g>'
        )
    return (
        f'<svg class="chart dag" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="pipeline of {len(stages)} stages">{"".join(parts)}</svg>'
    )


def _pipeline(stages: Sequence[Stage]) -> dict[str, Any]:
    rows = []
    for stage in stages:
        shown = list(stage.changes[:_SHOWN_CHANGES])
        if len(stage.changes) > _SHOWN_CHANGES:
            shown.append(f"and {len(stage.changes) - _SHOWN_CHANGES} more (dvc status {stage.name})")
        rows.append(
            {"name": stage.name, "status": stage.status, "after": ", ".join(stage.upstream), "changes": shown}
        )
    counts = {status: sum(stage.status == status for stage in stages) for status in STATUSES}
    return {
        "chart": Markup(dag_chart(stages)),
        "rows": rows,
        "legend": [(status, *STATUSES[status][:2]) for status in STATUSES if counts[status]],
        "counts": ", ".join(f"{count} {status}" for status, count in counts.items() if count),
    }


def _report(path: Path) -> Any:
    """A report a stage wrote, or None when it is not in this workspace (the page says so)."""
    return read_json(path) if path.exists() else None


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: Iterable[int] = ()
) -> dict[str, Any]:
    """A table for the template: plain-text cells (numbers formatted here), `numeric` columns right-aligned."""
    return {
        "headers": headers,
        "rows": [[str(cell) for cell in row] for row in rows],
        "numeric": set(numeric),
    }


def _words(key: str) -> str:
    return key.replace("_", " ")


def _range(low: object, high: object) -> str:
    if low is None and high is None:
        return ""
    return f"{'' if low is None else _value(low)} … {'' if high is None else _value(high)}"


def _categories(values: Sequence[str] | None, shown: int = 8) -> str:
    if not values:
        return ""
    more = f" … ({len(values)} in all)" if len(values) > shown else ""
    return ", ".join(values[:shown]) + more


def _counted(report: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A report's counts written as the tables write them (thousands separated); other values as they are."""
    if report is None:
        return None
    return {key: number(value) if type(value) is int else value for key, value in report.items()}


def _contract(schema_path: Path, schema: DataSchema) -> dict[str, Any]:
    """The committed schema validate_data enforces, and what it found in the raw data."""
    columns = _table(
        ("column", "type", "missing allowed", "unique", "range", "categories"),
        [
            (
                name,
                column.dtype + (f" ({column.format})" if column.format else ""),
                "yes" if column.nullable else "no",
                "yes" if column.unique else "",
                _range(column.min, column.max),
                _categories(column.categories),
            )
            for name, column in schema.columns.items()
        ],
    )
    report = _report(layout.DATA_VALIDATION_REPORT)
    findings = None
    if report is not None:
        findings = _table(
            ("column", "finding", "rows"),
            [
                (column, _words(kind), number(count))
                for column, found in sorted(report.get("findings", {}).items())
                for kind, count in sorted(found.items())
            ],
            numeric=(2,),
        )
    return {
        "schema": str(schema_path),
        "dataset": schema.dataset,
        "columns": columns,
        "validation": _counted(report),
        "findings": findings,
    }


def _cleanse() -> dict[str, Any] | None:
    """What cleanse changed, and every quarantined row counted by its reason."""
    report = _report(layout.CLEANSE_REPORT)
    if report is None:
        return None
    reasons = sorted(report.get("quarantined_by_reason", {}).items(), key=lambda item: (-item[1], item[0]))
    per_column = [
        (_words(key), column, number(count))
        for key in ("placeholders_to_missing", "flagged", "clipped")
        for column, count in sorted(report.get(key, {}).items())
    ]
    return {
        "rows": _counted(report["rows"]),
        "reconciled": "yes" if report["rows"].get("reconciled") else "NO",
        "reasons": _table(("reason", "rows"), [(_words(r), number(n)) for r, n in reasons], numeric=(1,)),
        "chart": Markup(
            bar_chart(
                "quarantine", [(_words(r), [Bar(n, ORANGE, "rows")]) for r, n in reasons], [], fmt=number
            )
        )
        if reasons
        else None,
        "changes": _table(("change", "column", "rows"), per_column, numeric=(2,)),
        "dropped": ", ".join(report.get("dropped_columns", [])),
    }


def _split() -> dict[str, Any] | None:
    """The rows of each split (and the class shares, for classification), and the columns curate kept."""
    report = _report(layout.CURATION_REPORT)
    if report is None:
        return None
    splits = [split for split in layout.SPLITS if split in report["rows"]]
    shares = report.get("class_share", {})
    classes = sorted({label for split in shares.values() for label in split}, key=lambda c: (len(c), c))
    table = _table(
        ("split", "rows", "share", *(f"class {label}" for label in classes)),
        [
            (
                split,
                number(report["rows"][split]),
                percent(report.get("share", {}).get(split)),
                *(percent(shares.get(split, {}).get(label)) for label in classes),
            )
            for split in splits
        ],
        numeric=range(1, 3 + len(classes)),
    )
    chart = bar_chart(
        "split", [(split, [Bar(report["rows"][split], BLUE, "rows")]) for split in splits], [], fmt=number
    )
    selection = _report(layout.COLUMN_SELECTION)
    return {
        "table": table,
        "chart": Markup(chart),
        "gap": percent(report.get("max_class_share_gap")) if "max_class_share_gap" in report else None,
        "features": _table(("feature", "role"), sorted(selection["features"].items())) if selection else None,
        "dropped": _table(("column", "why"), sorted(selection["dropped"].items())) if selection else None,
    }


def _value(value: object) -> str:
    """A value for a cell: counts whole, metrics and thresholds to four significant digits (three would
    show 0.9298 and 0.9287 as 0.93 and 0.929), None as a dash, text as it is."""
    if isinstance(value, float) and abs(value) < 999.5:
        return f"{value:.4g}"
    return number(value) if value is None or isinstance(value, int | float) else str(value)


def _check(check: Mapping[str, Any]) -> str:
    """A gate check's cell: pass or FAIL with the measured value, or why it was skipped."""
    if check.get("passed") is None:
        return f"skipped: {check.get('skipped') or check.get('undefined') or 'no value'}"
    measured = f" {_value(check['value'])}" if "value" in check else ""
    return ("pass" if check["passed"] else "FAIL") + measured


def _candidate(
    family: str, tuning: Mapping[str, Any], passed: bool, ranked: Mapping[str, Any], on: str
) -> list[str]:
    """One candidate's row: its tuning (train.json), the gate's verdict, its place in the selection."""
    trials = f"{tuning['trials']} ({tuning.get('pruned', 0)})" if "trials" in tuning else ""
    defaults = tuning.get("best_is_defaults")  # tuned families only
    return [
        family,
        trials,
        "" if defaults is None else ("yes" if defaults else "no"),
        _value((tuning.get("threshold") or {}).get("value", "")),
        "pass" if passed else "FAIL",
        _value(ranked.get(on, "not eligible")),
        _value(ranked.get("cost_per_row", "")),
        _value(ranked.get("size_bytes", "")),
    ]


def _models() -> dict[str, Any] | None:
    """Each candidate's tuning, the gate's verdict on it with every check, and the selection ranking."""
    validation = _report(layout.MODEL_VALIDATION_REPORT)
    if validation is None:
        return None
    verdicts = validation["candidates"]
    tuning = (_report(layout.TRAIN_REPORT) or {}).get("candidates", {})
    selection = _report(layout.SELECTION_REPORT) or {}
    on = selection.get("evaluated_on", validation.get("evaluated_on", "valid"))
    ranking = {row["family"]: row for row in selection.get("ranking", []) if row["family"] in verdicts}
    families = [*ranking, *sorted(set(verdicts) - set(ranking))]  # best first, then the ones not eligible
    headers = (
        "candidate",
        "trials (pruned)",
        "at defaults",
        "threshold",
        "gate",
        f"{on} {validation['metric']}",
    )
    checks = sorted({name for verdict in verdicts.values() for name in verdict["checks"]})
    return {
        "selected": selection.get("model"),
        "reason": selection.get("reason"),
        "candidates": _table(
            (*headers, "cost per row", "size (bytes)"),
            [
                _candidate(
                    family, tuning.get(family, {}), verdicts[family]["passed"], ranking.get(family, {}), on
                )
                for family in families
            ],
            numeric=(3, 5, 6, 7),
        ),
        "gate": _table(
            ("check", *families),
            [
                (
                    name,
                    *(
                        _check(verdicts[family]["checks"].get(name, {"skipped": "not run"}))
                        for family in families
                    ),
                )
                for name in checks
            ],
        ),
    }


def _markdown(text: str) -> Markup:
    """Markdown as HTML, headings two levels down (the page's sections are h2); raw HTML in it is escaped
    and images are left out (an image would be fetched)."""
    parser = MarkdownIt("commonmark", {"html": False}).enable("table").disable("image")
    tokens = parser.parse(text)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + 2)}"
    return Markup(parser.renderer.render(tokens, parser.options, {}))


def _experiments(params: Params) -> Markup:
    """The experiments table as `make sweep-show` prints it (Markdown from pillars.lifecycle.sweep)."""
    return _markdown(show_experiments(params))


def _deploy() -> dict[str, Any] | None:
    """The deployment check's committed verdicts, and its measurements where it ran on this machine."""
    report = _report(layout.DEPLOY_REPORT)
    if report is None:
        return None
    budget = report.get("budget", {})
    limits = [f"{_words(key)} ≤ {_value(value)}" for key, value in sorted(budget.items())]
    if "min_throughput_rps" in report:
        limits.append(f"throughput ≥ {_value(report['min_throughput_rps'])} rows/s")
    timings = _report(layout.DEPLOY_TIMINGS)
    measured = None
    if timings is not None:
        latency = timings.get("latency", {})
        measured = _table(
            ("measure", "value"),
            [
                ("ready after (s)", _value(timings.get("ready_s", ""))),
                *((f"latency {_words(key)}", _value(value)) for key, value in sorted(latency.items())),
                ("throughput (requests/s)", _value(timings.get("throughput_rps", ""))),
                ("bulk (rows/s)", _value(timings.get("bulk_rows_per_s", ""))),
                ("concurrency", _value(timings.get("concurrency", ""))),
            ],
            numeric=(1,),
        )
    return {
        "passed": report["passed"],
        "bento": report.get("bento", ""),
        "checks": _table(
            ("check", "verdict"),
            [(_words(name), "pass" if ok else "FAIL") for name, ok in sorted(report["checks"].items())],
        ),
        "limits": ", ".join(limits),
        "measured": measured,
        "timings": str(layout.DEPLOY_TIMINGS),
    }


def _monitoring(out: Path) -> dict[str, Any] | None:
    """Monitoring's decision and the numbers behind it; the monitoring page itself is linked."""
    report = _report(layout.MONITORING_REPORT)
    if report is None:
        return None
    drift = report.get("drift", {})
    features = drift.get("features", {})
    performance = report.get("performance", {})
    colour = {"retrain": ORANGE, "none": GREEN}.get(report["decision"]["action"], GREY)
    return {
        "action": report["decision"]["action"],
        "colour": colour,
        "reasons": report["decision"]["reasons"],
        "numbers": _table(
            ("measure", "value"),
            [
                *((f"rows {_words(key)}", number(value)) for key, value in report.get("rows", {}).items()),
                ("features drifted", f"{len(drift.get('drifted_features', []))} of {len(features)}"),
                (
                    "predictions drifted",
                    ", ".join(n for n, e in drift.get("prediction", {}).items() if e["drifted"]) or "no",
                ),
                ("data quality alerts", number(len(report.get("quality", {}).get("alerts", [])))),
                (f"{report.get('metric', '')} reference", _value(performance.get("reference"))),
                (f"{report.get('metric', '')} current", _value(performance.get("current"))),
            ],
            numeric=(1,),
        ),
        "link": Path(os.path.relpath(layout.MONITORING_HTML, out.parent)).as_posix()
        if layout.MONITORING_HTML.exists()
        else None,
    }


def page_values(out: Path) -> dict[str, Any]:
    """Everything the page shows, read from this workspace (the working directory is the repository)."""
    params = load_params()
    schema_path = Path(params.dataset.schema_path)
    card = layout.MODEL_CARD.read_text(encoding="utf-8") if layout.MODEL_CARD.exists() else None
    return {
        "dataset": params.dataset.name,
        "task": params.dataset.task,
        "params": str(PARAMS_FILE),
        "pipeline": _pipeline(pipeline_stages()),
        "contract": _contract(schema_path, load_schema(schema_path)),
        "cleanse": _cleanse(),
        "split": _split(),
        "models": _models(),
        "card": _markdown(card) if card is not None else None,
        "experiments": _experiments(params),
        "deploy": _deploy(),
        "monitoring": _monitoring(out),
        "paths": {
            "cleanse": str(layout.CLEANSE_REPORT),
            "curation": str(layout.CURATION_REPORT),
            "validation": str(layout.MODEL_VALIDATION_REPORT),
            "card": str(layout.MODEL_CARD),
            "deploy": str(layout.DEPLOY_REPORT),
            "monitoring": str(layout.MONITORING_REPORT),
        },
    }


def render_page(values: Mapping[str, Any]) -> str:
    return render(Path(__file__).parent, PAGE_TEMPLATE, **values)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pillars.ci.page", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"the HTML file (default {DEFAULT_OUT})"
    )
    args = parser.parse_args()
    html = render_page(page_values(args.out))
    write_text(args.out, html)
    print(f"page: {args.out} ({len(html.encode()) // 1024} KB; opens offline)")


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
