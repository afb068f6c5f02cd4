"""The model-monitoring report as one self-contained HTML page: inline CSS and SVG, no script, no network.

The page must open offline (a CI artifact, an e-mail attachment) and be byte-for-byte stable for the same
report, so it holds no timestamps. The layout is the template `page.html.j2` (HTML-escaped: feature names
and category labels come from the data); this module turns the report into the values it shows, and
`pillars.monitoring.charts` draws the charts.
"""

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from markupsafe import Markup

from pillars.core.metrics import METRICS
from pillars.core.templates import render
from pillars.monitoring.charts import (
    BLUE,
    DASH,
    GREY,
    ORANGE,
    Bar,
    bar_chart,
    finite,
    line_chart,
    number,
    percent,
)

PAGE_TEMPLATE = "page.html.j2"
TEMPLATES = (PAGE_TEMPLATE,)
NO_LABELS = "no labels joined yet: drop a feedback file keyed by request_id"
_ACTIONS = {  # action -> (accent colour, what it means)
    "retrain": (ORANGE, "the model should be retrained"),
    "none": ("#2b8a3e", "no action needed"),
    "wait": (GREY, "too little data to decide yet"),
}


def _words(key: str) -> str:
    """A JSON key as words: `corrupt_lines` -> `corrupt lines`."""
    return key.replace("_", " ")


def _text(value: object) -> str:
    """Optional text (a window's first/last time): None as a dash."""
    return DASH if value is None else str(value)


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    numeric: Collection[int] = (),
    warn: Sequence[bool] = (),
) -> dict[str, Any]:
    """A table of plain-text cells for the template; `warn` highlights rows, `numeric` right-aligns columns."""
    flags = [index < len(warn) and warn[index] for index in range(len(rows))]
    return {"headers": headers, "rows": list(zip(rows, flags, strict=True)), "numeric": set(numeric)}


def _greater_is_better(report: Mapping[str, Any]) -> bool | None:
    """The metric's direction from the project's metric registry (None for a metric it does not know)."""
    metric = METRICS.get(report["task"], {}).get(report["metric"])
    return None if metric is None else metric.greater_is_better


def _header(report: Mapping[str, Any]) -> dict[str, Any]:
    """Who is monitored and what to do about it, first and big: most readers stop here."""
    decision = report["decision"]
    colour, meaning = _ACTIONS.get(decision["action"], (GREY, ""))
    direction = _greater_is_better(report)
    skipped = " · ".join(f"{number(count)} {_words(reason)}" for reason, count in report["skipped"].items())
    return {
        "colour": colour,
        "model_version": report["model_version"],
        "task": report["task"],
        "metric": report["metric"],
        "better": "" if direction is None else f" ({'higher' if direction else 'lower'} is better)",
        "action": decision["action"],
        "meaning": meaning,
        "reasons": decision["reasons"],
        "rows": " · ".join(f"{number(count)} {_words(name)}" for name, count in report["rows"].items()),
        "skipped": skipped or "none",
        "examples": [
            f"{_words(reason)}: {example}"
            for reason, found in report.get("skipped_examples", {}).items()
            for example in found
        ],
    }


def _drift_block(entries: Mapping[str, Mapping[str, Any]], psi_threshold: float) -> dict[str, Any] | None:
    """A table of drift scores and a PSI bar chart, for the input features or for the predictions."""
    if not entries:
        return None
    table = _table(
        ("name", "kind", "test", "p-value", "PSI", "distance", "drifted"),
        [
            (
                name,
                entry["kind"],
                entry["test"],
                number(entry["p_value"]),
                number(entry["psi"]),
                f"{number(entry['distance'])} ({_words(entry['distance_name'])})",
                "yes" if entry["drifted"] else "no",
            )
            for name, entry in entries.items()
        ],
        numeric=(3, 4, 5),
        warn=[bool(entry["drifted"]) for entry in entries.values()],
    )
    chart = bar_chart(
        "psi",
        [
            (name, [Bar(entry["psi"], ORANGE if entry["drifted"] else BLUE, "PSI")])
            for name, entry in entries.items()
        ],
        [("not drifted", BLUE), ("drifted", ORANGE), (f"PSI threshold {number(psi_threshold)}", None)],
        fmt=number,
        line=psi_threshold,
    )
    return {"table": table, "chart": Markup(chart)}


def _drift(report: Mapping[str, Any]) -> dict[str, Any]:
    drift, thresholds = report["drift"], report["thresholds"]
    return {
        "limits": " · ".join(f"{_words(name)} {number(value)}" for name, value in thresholds.items()),
        "drifted": ", ".join(drift["drifted_features"]) or "none",
        "features": _drift_block(drift["features"], thresholds["psi"]),
        "predictions": _drift_block(drift["prediction"], thresholds["psi"]),
    }


def _figures(
    report: Mapping[str, Any], distributions: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Reference (grey) vs current (blue) share per bin, one small chart per feature: what the drift scores
    summarise. Orange is kept for what drifted, so a quiet report does not look alarming."""
    entries = {**report["drift"]["features"], **report["drift"]["prediction"]}
    return [
        {
            "name": name,
            "kind": distribution["kind"],
            "drifted": bool(entries.get(name, {}).get("drifted")),
            "chart": Markup(
                bar_chart(
                    "distribution",
                    [
                        (str(label), [Bar(reference, GREY, "reference"), Bar(current, BLUE, "current")])
                        for label, reference, current in zip(
                            distribution["bins"],
                            distribution["reference"],
                            distribution["current"],
                            strict=True,
                        )
                    ],
                    [("reference", GREY), ("current", BLUE)],
                    fmt=percent,
                    width=480,
                )
            ),
        }
        for name, distribution in distributions.items()
    ]


def _quality(report: Mapping[str, Any]) -> dict[str, Any]:
    fields = report["quality"]["fields"]
    table = _table(
        ("field", "missing", "missing in reference", "unseen", "out of range"),
        [
            (
                name,
                percent(field["missing_share"]),
                percent(field["reference_missing_share"]),
                percent(field["unseen_share"]),
                percent(field["out_of_range_share"]),
            )
            for name, field in fields.items()
        ],
        numeric=(1, 2, 3, 4),
    )
    return {"table": table if fields else None, "alerts": report["quality"]["alerts"]}


def _performance(report: Mapping[str, Any]) -> dict[str, Any]:
    performance, metric = report["performance"], report["metric"]
    limit = report["thresholds"]["max_performance_drop"]
    drop = performance["drop"]
    windows = performance["windows"]
    points = [(window["window"], window["value"]) for window in windows]
    labelled = bool(performance["labelled"])
    charted = labelled and any(finite(value) is not None for _, value in points)
    coverage = performance["coverage"]
    return {
        "summary": _table(
            (
                "metric",
                "labelled rows",
                "reference",
                "current",
                "allowed drop",
                "drop (positive = worse)",
                "conformal coverage (promised)",
            ),
            [
                (
                    metric,
                    number(performance["labelled"]),
                    number(performance["reference"]),
                    number(performance["current"]),
                    number(limit),
                    number(drop),
                    f"{number(coverage['realized'])} ({number(coverage['promised'])})",
                )
            ],
            numeric=(1, 2, 3, 4, 5, 6),
            warn=[drop is not None and limit is not None and drop > limit],
        ),
        "no_value": performance.get("reason") if performance["current"] is None and labelled else None,
        "no_labels": None if labelled else NO_LABELS,
        "chart": Markup(line_chart(points, performance["reference"], metric)) if charted else None,
        "windows": _table(
            ("window", "first", "last", "rows", "labelled", metric, "conformal coverage", "no value because"),
            [
                (
                    str(window["window"]),
                    _text(window["first"]),
                    _text(window["last"]),
                    number(window["rows"]),
                    number(window["labelled"]),
                    number(window["value"]),
                    number(window["coverage"]),
                    window.get("reason") or "",
                )
                for window in windows
            ],
            numeric=(0, 3, 4, 5, 6),
        )
        if windows
        else None,
    }


def render_html(report: Mapping[str, Any], distributions: Mapping[str, Mapping[str, Any]]) -> str:
    """The monitoring report (metrics/monitoring.json) and the binned distributions behind its drift scores
    as one HTML page that opens offline: decision, drift, distributions, data quality, performance."""
    return render(
        Path(__file__).parent,
        PAGE_TEMPLATE,
        header=_header(report),
        drift=_drift(report),
        figures=_figures(report, distributions),
        quality=_quality(report),
        performance=_performance(report),
    )
