"""The model-monitoring report as one self-contained HTML page: inline CSS and SVG, no script, no network.

The page must open offline (a CI artifact, an e-mail attachment) and be byte-for-byte stable for the same
report, so it is built from strings with no timestamps, and every piece of input text is escaped: feature
names and category labels come from the data.
"""

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from pillars.core.metrics import METRICS

DASH = "\u2013"  # en dash: a missing number
NO_LABELS = "no labels joined yet: drop a feedback file keyed by request_id"

_BLUE = "#4c78a8"
_ORANGE = "#e8590c"
_GREY = "#8d99ae"
_INK = "#495057"
_ACTIONS = {  # action -> (accent colour, what it means)
    "retrain": (_ORANGE, "the model should be retrained"),
    "none": ("#2b8a3e", "no action needed"),
    "wait": (_GREY, "too little data to decide yet"),
}

_LABEL_WIDTH = 150  # px of the label column in bar charts
_LABEL_CHARS = 22  # characters that fit in it at 11 px
_VALUE_WIDTH = 64  # px kept right of the longest bar for its value
_BAR = 10  # px per bar
_GAP = 6  # px between bar groups
_LEGEND = 22  # px of the legend band on top of every chart

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#212529;max-width:1100px;
margin:0 auto;padding:24px}
header{border-left:8px solid var(--accent);background:#f8f9fa;padding:12px 20px}
h1{margin:0 0 4px;font-size:1.4em}
.action{font-size:2.2em;font-weight:700;color:var(--accent);margin:8px 0 0}
.muted{color:#6c757d}
nav a{margin-right:12px}
section{margin-top:32px}
table{border-collapse:collapse;margin:8px 0 16px}
th,td{padding:3px 10px;border-bottom:1px solid #dee2e6;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.warn td{background:#fff0e6}
tr.warn td:first-child{box-shadow:inset 4px 0 #e8590c}
tr.warn td:last-child{color:#e8590c;font-weight:700}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:16px}
figure{margin:0;border:1px solid #dee2e6;border-radius:6px;padding:8px 12px}
figure.warn{border-color:#e8590c}
figure h3{margin:0 0 4px;font-size:1em}
.badge{background:#e8590c;color:#fff;border-radius:4px;padding:0 6px;font-size:.85em;font-weight:400}
svg.chart{display:block;max-width:100%;height:auto}
svg text{font-size:11px;fill:#495057}
"""


@dataclass(frozen=True)
class _Bar:
    """One bar of a horizontal bar chart: its value (None draws nothing), colour and series name."""

    value: float | None
    colour: str
    series: str


# --- text -----------------------------------------------------------------------------------------


def _esc(value: object) -> str:
    """Input text as HTML (also safe inside a double-quoted attribute)."""
    return escape(str(value), quote=True)


def _words(key: str) -> str:
    """A JSON key as words: `corrupt_lines` -> `corrupt lines`."""
    return key.replace("_", " ")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _finite(value: float | None) -> float | None:
    """The value if a chart can place it, else None (a gap, not a crash)."""
    return value if value is not None and math.isfinite(value) else None


def _number(value: float | None) -> str:
    """Counts whole; other numbers to three significant digits (scientific when tiny, so p-values stay
    legible), thousands separated from 1,000 on; None (no labels, no value) as a dash."""
    if value is None or math.isnan(value):
        return DASH
    if isinstance(value, int) or abs(value) >= 999.5:  # 999.5 and up: `.3g` would write 1e+03
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _percent(share: float | None) -> str:
    return DASH if share is None or math.isnan(share) else f"{_number(100 * share)}%"


def _text(value: object) -> str:
    """Optional text (a window's first/last time): None as a dash."""
    return DASH if value is None else str(value)


# --- HTML blocks ----------------------------------------------------------------------------------


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    numeric: Collection[int] = (),
    warn: Sequence[bool] = (),
) -> str:
    """A table of plain-text cells (escaped here, so callers cannot forget); `warn` highlights rows."""
    head = "".join(f"<th>{_esc(header)}</th>" for header in headers)
    body = []
    for index, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{_esc(cell)}</td>' if column in numeric else f"<td>{_esc(cell)}</td>"
            for column, cell in enumerate(row)
        )
        marked = ' class="warn"' if index < len(warn) and warn[index] else ""
        body.append(f"<tr{marked}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _list(items: Sequence[str], empty: str) -> str:
    if not items:
        return f'<p class="muted">{_esc(empty)}</p>'
    return "<ul>" + "".join(f"<li>{_esc(item)}</li>" for item in items) + "</ul>"


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_esc(title)}</h2>{body}</section>'


# --- SVG charts -----------------------------------------------------------------------------------


def _svg(kind: str, width: float, height: float, label: str, body: str) -> str:
    return (
        f'<svg class="chart {kind}" width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} '
        f'{height:.0f}" role="img" aria-label="{_esc(label)}">{body}</svg>'
    )


def _label(text: str, x: float, y: float) -> str:
    """A chart label cut to fit, with the whole text as its tooltip."""
    return (
        f"<g><title>{_esc(text)}</title>"
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="end" dominant-baseline="middle">'
        f"{_esc(_truncate(text, _LABEL_CHARS))}</text></g>"
    )


def _dashed(x1: float, y1: float, x2: float, y2: float) -> str:
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{_INK}" '
        'stroke-width="1.5" stroke-dasharray="5 3"/>'
    )


def _legend(items: Sequence[tuple[str, str | None]]) -> str:
    """Legend entries (text, swatch colour); a None colour is the dashed reference line."""
    parts, x = [], 4.0
    for text, colour in items:
        if colour is None:
            parts.append(_dashed(x, 9, x + 14, 9))
        else:
            parts.append(f'<rect x="{x:.1f}" y="4" width="12" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 18:.1f}" y="9" dominant-baseline="middle">{_esc(text)}</text>')
        x += 36 + 6.5 * len(text)
    return "".join(parts)


def _bar_chart(
    kind: str,
    rows: Sequence[tuple[str, Sequence[_Bar]]],
    legend: Sequence[tuple[str, str | None]],
    *,
    fmt: Callable[[float | None], str],
    line: float | None = None,
    width: int = 560,
) -> str:
    """Horizontal bars, one group per labelled row (PSI per feature, or reference vs current per bin),
    with an optional dashed vertical line (the threshold). `fmt` formats a value for its label."""
    values = [bar.value for _, bars in rows for bar in bars if _finite(bar.value) is not None]
    top = max([*values, _finite(line) or 0.0]) or 1.0
    plot = width - _LABEL_WIDTH - _VALUE_WIDTH
    parts, y = [_legend(legend)], float(_LEGEND + 4)
    for text, bars in rows:
        parts.append(_label(text, _LABEL_WIDTH - 6, y + len(bars) * _BAR / 2))
        for bar in bars:
            length = plot * max(0.0, _finite(bar.value) or 0.0) / top
            parts.append(
                f'<rect x="{_LABEL_WIDTH}" y="{y:.1f}" width="{length:.1f}" height="{_BAR - 1}" '
                f'fill="{bar.colour}"><title>{_esc(f"{text} · {bar.series}: {fmt(bar.value)}")}</title></rect>'
                f'<text x="{_LABEL_WIDTH + length + 4:.1f}" y="{y + _BAR / 2:.1f}" '
                f'dominant-baseline="middle">{_esc(fmt(bar.value))}</text>'
            )
            y += _BAR
        y += _GAP
    if _finite(line) is not None:
        x = _LABEL_WIDTH + plot * line / top
        parts.append(_dashed(x, _LEGEND, x, y))
    label = f"{kind} bar chart of {len(rows)} rows"
    return _svg(kind, width, y + 4, label, "".join(parts))


def _line_chart(
    points: Sequence[tuple[int, float | None]], reference: float | None, name: str, width: int = 640
) -> str:
    """Value per window (at least one known): a line through consecutive known values, a gap at a window
    with no value (too few labels), and a dashed horizontal line at the reference value."""
    height, left, right, top, bottom = 240, 64, 16, _LEGEND + 8, 32
    known = [(window, value) for window, value in points if _finite(value) is not None]
    values = [value for _, value in known] + ([reference] if _finite(reference) is not None else [])
    pad = (max(values) - min(values)) * 0.1 or abs(values[0]) * 0.05 or 0.05
    low, high = min(values) - pad, max(values) + pad
    windows = [window for window, _ in points]
    first, span = min(windows), max(windows) - min(windows)

    def x_of(window: int) -> float:
        return left + (width - left - right) * ((window - first) / span if span else 0.5)

    def y_of(value: float) -> float:
        return top + (height - top - bottom) * (high - value) / (high - low)

    parts = [_legend([(f"{name} per window", _BLUE), (f"reference {_number(reference)}", None)])]
    for tick in (min(values), (min(values) + max(values)) / 2, max(values)):
        parts.append(
            f'<line x1="{left}" y1="{y_of(tick):.1f}" x2="{width - right}" y2="{y_of(tick):.1f}" '
            f'stroke="#e9ecef"/><text x="{left - 6}" y="{y_of(tick):.1f}" text-anchor="end" '
            f'dominant-baseline="middle">{_esc(_number(tick))}</text>'
        )
    for window in windows[:: math.ceil(len(windows) / 12)]:  # at most 12 window numbers on the axis
        parts.append(
            f'<text x="{x_of(window):.1f}" y="{height - bottom + 14}" text-anchor="middle">{window}</text>'
        )
    parts.append(
        f'<text x="{(left + width - right) / 2:.1f}" y="{height - 4}" text-anchor="middle">window</text>'
    )
    if _finite(reference) is not None:
        parts.append(_dashed(left, y_of(reference), width - right, y_of(reference)))
    runs: list[list[str]] = [[]]  # runs of consecutive known values, split at every gap
    for window, value in points:
        if _finite(value) is None:
            runs.append([])
        else:
            runs[-1].append(f"{x_of(window):.1f},{y_of(value):.1f}")
    parts.extend(
        f'<polyline points="{" ".join(run)}" fill="none" stroke="{_BLUE}" stroke-width="2"/>'
        for run in runs
        if len(run) > 1
    )
    parts.extend(
        f'<circle cx="{x_of(window):.1f}" cy="{y_of(value):.1f}" r="3.5" fill="{_BLUE}">'
        f"<title>{_esc(f'window {window}: {_number(value)}')}</title></circle>"
        for window, value in known
    )
    return _svg("performance", width, height, f"{name} per window", "".join(parts))


# --- sections -------------------------------------------------------------------------------------


def _header(report: Mapping[str, Any]) -> str:
    """Who is monitored and what to do about it, first and big: most readers stop here."""
    decision = report["decision"]
    colour, meaning = _ACTIONS.get(decision["action"], (_GREY, ""))
    direction = _greater_is_better(report)
    better = "" if direction is None else f" ({'higher' if direction else 'lower'} is better)"
    rows = " · ".join(f"{_number(count)} {_words(name)}" for name, count in report["rows"].items())
    skipped = " · ".join(f"{_number(count)} {_words(reason)}" for reason, count in report["skipped"].items())
    examples = [
        f"{_words(reason)}: {example}"
        for reason, found in report.get("skipped_examples", {}).items()
        for example in found
    ]
    return (
        f'<header style="--accent:{colour}"><h1>Model monitoring report</h1>'
        f'<p class="muted">model <code>{_esc(report["model_version"])}</code> · task {_esc(report["task"])} · '
        f"metric {_esc(report['metric'])}{better}</p>"
        f'<p class="action">Decision: {_esc(decision["action"])}</p><p>{_esc(meaning)}</p>'
        f"{_list(decision['reasons'], 'no reasons given')}"
        f"<p>Rows: {_esc(rows)}.</p>"
        f"<p>Skipped input: {_esc(skipped or 'none')}. Skipped input is counted and reported here, not "
        "fatal: the report covers the rows that remained.</p>"
        f"{_list(examples, '') if examples else ''}</header>"
    )


def _greater_is_better(report: Mapping[str, Any]) -> bool | None:
    """The metric's direction from the project's metric registry (None for a metric it does not know)."""
    metric = METRICS.get(report["task"], {}).get(report["metric"])
    return None if metric is None else metric.greater_is_better


def _drift_block(entries: Mapping[str, Mapping[str, Any]], psi_threshold: float, what: str) -> str:
    """A table of drift scores and a PSI bar chart, for the input features or for the predictions."""
    if not entries:
        return f'<p class="muted">No {_esc(what)} monitored.</p>'
    table = _table(
        ("name", "kind", "test", "p-value", "PSI", "distance", "drifted"),
        [
            (
                name,
                entry["kind"],
                entry["test"],
                _number(entry["p_value"]),
                _number(entry["psi"]),
                f"{_number(entry['distance'])} ({_words(entry['distance_name'])})",
                "yes" if entry["drifted"] else "no",
            )
            for name, entry in entries.items()
        ],
        numeric=(3, 4, 5),
        warn=[bool(entry["drifted"]) for entry in entries.values()],
    )
    chart = _bar_chart(
        "psi",
        [
            (name, [_Bar(entry["psi"], _ORANGE if entry["drifted"] else _BLUE, "PSI")])
            for name, entry in entries.items()
        ],
        [("not drifted", _BLUE), ("drifted", _ORANGE), (f"PSI threshold {_number(psi_threshold)}", None)],
        fmt=_number,
        line=psi_threshold,
    )
    return table + chart


def _drift(report: Mapping[str, Any]) -> str:
    drift, thresholds = report["drift"], report["thresholds"]
    limits = " · ".join(f"{_words(name)} {_number(value)}" for name, value in thresholds.items())
    drifted = ", ".join(drift["drifted_features"]) or "none"
    return _section(
        "drift",
        "Drift",
        f'<p class="muted">Thresholds: {_esc(limits)}.</p><p>Drifted features: <b>{_esc(drifted)}</b></p>'
        f"<h3>Features</h3>{_drift_block(drift['features'], thresholds['psi'], 'features')}"
        f"<h3>Predictions</h3>{_drift_block(drift['prediction'], thresholds['psi'], 'predictions')}",
    )


def _distributions(report: Mapping[str, Any], distributions: Mapping[str, Mapping[str, Any]]) -> str:
    """Reference vs current share per bin, one small chart per feature: what the drift scores summarise."""
    entries = {**report["drift"]["features"], **report["drift"]["prediction"]}
    figures = []
    for name, distribution in distributions.items():
        drifted = bool(entries.get(name, {}).get("drifted"))
        chart = _bar_chart(
            "distribution",
            [
                (str(label), [_Bar(reference, _GREY, "reference"), _Bar(current, _ORANGE, "current")])
                for label, reference, current in zip(
                    distribution["bins"], distribution["reference"], distribution["current"], strict=True
                )
            ],
            [("reference", _GREY), ("current", _ORANGE)],
            fmt=_percent,
            width=480,
        )
        marked, badge = (' class="warn"', ' <span class="badge">drifted</span>') if drifted else ("", "")
        figures.append(
            f"<figure{marked}><h3>{_esc(name)}{badge}</h3>"
            f'<p class="muted">{_esc(distribution["kind"])}</p>{chart}</figure>'
        )
    body = (
        f'<div class="grid">{"".join(figures)}</div>' if figures else '<p class="muted">No distributions.</p>'
    )
    return _section("distributions", "Distributions", body)


def _quality(report: Mapping[str, Any]) -> str:
    fields = report["quality"]["fields"]
    table = (
        _table(
            ("field", "missing", "missing in reference", "unseen", "out of range"),
            [
                (
                    name,
                    _percent(field["missing_share"]),
                    _percent(field["reference_missing_share"]),
                    _percent(field["unseen_share"]),
                    _percent(field["out_of_range_share"]),
                )
                for name, field in fields.items()
            ],
            numeric=(1, 2, 3, 4),
        )
        if fields
        else '<p class="muted">No fields checked.</p>'
    )
    return _section(
        "quality", "Data quality", f"{table}<h3>Alerts</h3>{_list(report['quality']['alerts'], 'no alerts')}"
    )


def _performance(report: Mapping[str, Any]) -> str:
    performance, metric = report["performance"], report["metric"]
    limit = report["thresholds"]["max_performance_drop"]
    drop = performance["drop"]
    summary = _table(
        ("metric", "labelled rows", "reference", "current", "allowed drop", "drop (positive = worse)"),
        [
            (
                metric,
                _number(performance["labelled"]),
                _number(performance["reference"]),
                _number(performance["current"]),
                _number(limit),
                _number(drop),
            )
        ],
        numeric=(1, 2, 3, 4, 5),
        warn=[drop is not None and limit is not None and drop > limit],
    )
    if performance["current"] is None and performance.get("reason") and performance["labelled"]:
        summary += f'<p class="muted">No current value: {_esc(performance["reason"])}.</p>'
    windows = performance["windows"]
    points = [(window["window"], window["value"]) for window in windows]
    if not performance["labelled"]:
        chart = f"<p><b>{_esc(NO_LABELS)}</b></p>"
    elif any(_finite(value) is not None for _, value in points):
        chart = _line_chart(points, performance["reference"], metric)
    else:
        chart = '<p class="muted">No window has a value yet (the table says why).</p>'
    table = _table(
        ("window", "first", "last", "rows", "labelled", metric, "no value because"),
        [
            (
                str(window["window"]),
                _text(window["first"]),
                _text(window["last"]),
                _number(window["rows"]),
                _number(window["labelled"]),
                _number(window["value"]),
                window.get("reason") or "",
            )
            for window in windows
        ],
        numeric=(0, 3, 4, 5),
    )
    return _section("performance", "Performance", summary + chart + (table if windows else ""))


def render_html(report: Mapping[str, Any], distributions: Mapping[str, Mapping[str, Any]]) -> str:
    """The monitoring report (metrics/monitoring.json) and the binned distributions behind its drift scores
    as one HTML page that opens offline: decision, drift, distributions, data quality, performance."""
    nav = "".join(
        f'<a href="#{anchor}">{title}</a>'
        for anchor, title in (
            ("drift", "Drift"),
            ("distributions", "Distributions"),
            ("quality", "Data quality"),
            ("performance", "Performance"),
        )
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Monitoring report · model {_esc(report['model_version'])}</title><style>{_CSS}</style></head>"
        f"<body>{_header(report)}<nav>{nav}</nav>{_drift(report)}{_distributions(report, distributions)}"
        f"{_quality(report)}{_performance(report)}</body></html>\n"
    )
