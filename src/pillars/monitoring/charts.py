"""The monitoring page's SVG charts and the number formats they share with its tables.

Plain SVG strings, no script: the page opens offline. Every piece of input text is escaped here (feature
names and category labels come from the data), so the page's template takes a chart as it is.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import escape

DASH = "\u2013"  # en dash: a missing number
BLUE = "#4c78a8"
ORANGE = "#e8590c"
GREY = "#8d99ae"
INK = "#495057"

_LABEL_WIDTH = 150  # px of the label column in bar charts
_LABEL_CHARS = 22  # characters that fit in it at 11 px
_VALUE_WIDTH = 64  # px kept right of the longest bar for its value
_BAR = 10  # px per bar
_GAP = 6  # px between bar groups
_LEGEND = 22  # px of the legend band on top of every chart


@dataclass(frozen=True)
class Bar:
    """One bar of a horizontal bar chart: its value (None draws nothing), colour and series name."""

    value: float | None
    colour: str
    series: str


def _esc(value: object) -> str:
    """Input text as HTML (also safe inside a double-quoted attribute), escaped as the page's template
    escapes it."""
    return str(escape(str(value)))


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def finite(value: float | None) -> float | None:
    """The value if a chart can place it, else None (a gap, not a crash)."""
    return value if value is not None and math.isfinite(value) else None


def number(value: float | None) -> str:
    """Counts whole; other numbers to three significant digits (scientific when tiny, so p-values stay
    legible), thousands separated from 1,000 on; None (no labels, no value) as a dash."""
    if value is None or math.isnan(value):
        return DASH
    if isinstance(value, int) or abs(value) >= 999.5:  # 999.5 and up: `.3g` would write 1e+03
        return f"{value:,.0f}"
    return f"{value:.3g}"


def percent(share: float | None) -> str:
    return DASH if share is None or math.isnan(share) else f"{number(100 * share)}%"


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
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{INK}" '
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


def bar_chart(
    kind: str,
    rows: Sequence[tuple[str, Sequence[Bar]]],
    legend: Sequence[tuple[str, str | None]],
    *,
    fmt: Callable[[float | None], str],
    line: float | None = None,
    width: int = 560,
) -> str:
    """Horizontal bars, one group per labelled row (PSI per feature, or reference vs current per bin),
    with an optional dashed vertical line (the threshold). `fmt` formats a value for its label."""
    values = [bar.value for _, bars in rows for bar in bars if finite(bar.value) is not None]
    top = max([*values, finite(line) or 0.0]) or 1.0
    plot = width - _LABEL_WIDTH - _VALUE_WIDTH
    parts, y = [_legend(legend)], float(_LEGEND + 4)
    for text, bars in rows:
        parts.append(_label(text, _LABEL_WIDTH - 6, y + len(bars) * _BAR / 2))
        for bar in bars:
            length = plot * max(0.0, finite(bar.value) or 0.0) / top
            parts.append(
                f'<rect x="{_LABEL_WIDTH}" y="{y:.1f}" width="{length:.1f}" height="{_BAR - 1}" '
                f'fill="{bar.colour}"><title>{_esc(f"{text} · {bar.series}: {fmt(bar.value)}")}</title></rect>'
                f'<text x="{_LABEL_WIDTH + length + 4:.1f}" y="{y + _BAR / 2:.1f}" '
                f'dominant-baseline="middle">{_esc(fmt(bar.value))}</text>'
            )
            y += _BAR
        y += _GAP
    if finite(line) is not None:
        x = _LABEL_WIDTH + plot * line / top
        parts.append(_dashed(x, _LEGEND, x, y))
    label = f"{kind} bar chart of {len(rows)} rows"
    return _svg(kind, width, y + 4, label, "".join(parts))


def line_chart(
    points: Sequence[tuple[int, float | None]], reference: float | None, name: str, width: int = 640
) -> str:
    """Value per window (at least one known): a line through consecutive known values, a gap at a window
    with no value (too few labels), and a dashed horizontal line at the reference value."""
    height, left, right, top, bottom = 240, 64, 16, _LEGEND + 8, 32
    known = [(window, value) for window, value in points if finite(value) is not None]
    values = [value for _, value in known] + ([reference] if finite(reference) is not None else [])
    pad = (max(values) - min(values)) * 0.1 or abs(values[0]) * 0.05 or 0.05
    low, high = min(values) - pad, max(values) + pad
    windows = [window for window, _ in points]
    first, span = min(windows), max(windows) - min(windows)

    def x_of(window: int) -> float:
        return left + (width - left - right) * ((window - first) / span if span else 0.5)

    def y_of(value: float) -> float:
        return top + (height - top - bottom) * (high - value) / (high - low)

    parts = [_legend([(f"{name} per window", BLUE), (f"reference {number(reference)}", None)])]
    for tick in (min(values), (min(values) + max(values)) / 2, max(values)):
        parts.append(
            f'<line x1="{left}" y1="{y_of(tick):.1f}" x2="{width - right}" y2="{y_of(tick):.1f}" '
            f'stroke="#e9ecef"/><text x="{left - 6}" y="{y_of(tick):.1f}" text-anchor="end" '
            f'dominant-baseline="middle">{_esc(number(tick))}</text>'
        )
    for window in windows[:: math.ceil(len(windows) / 12)]:  # at most 12 window numbers on the axis
        parts.append(
            f'<text x="{x_of(window):.1f}" y="{height - bottom + 14}" text-anchor="middle">{window}</text>'
        )
    parts.append(
        f'<text x="{(left + width - right) / 2:.1f}" y="{height - 4}" text-anchor="middle">window</text>'
    )
    if finite(reference) is not None:
        parts.append(_dashed(left, y_of(reference), width - right, y_of(reference)))
    runs: list[list[str]] = [[]]  # runs of consecutive known values, split at every gap
    for window, value in points:
        if finite(value) is None:
            runs.append([])
        else:
            runs[-1].append(f"{x_of(window):.1f},{y_of(value):.1f}")
    parts.extend(
        f'<polyline points="{" ".join(run)}" fill="none" stroke="{BLUE}" stroke-width="2"/>'
        for run in runs
        if len(run) > 1
    )
    parts.extend(
        f'<circle cx="{x_of(window):.1f}" cy="{y_of(value):.1f}" r="3.5" fill="{BLUE}">'
        f"<title>{_esc(f'window {window}: {number(value)}')}</title></circle>"
        for window, value in known
    )
    return _svg("performance", width, height, f"{name} per window", "".join(parts))
