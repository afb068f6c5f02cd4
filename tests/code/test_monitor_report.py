"""The monitoring page: well formed, offline, escaped, complete, and the same bytes for the same report."""

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from pillars.monitoring.charts import ORANGE
from pillars.monitoring.report import DASH, NO_LABELS, render_html

ODD = '<b>&"x"'  # a feature name that breaks a page that does not escape
VOID = {"meta", "br", "hr", "img", "input", "link"}
ONE_CLASS = "roc_auc undefined on the labelled rows: one class only (every row is class 1)"
NO_LABELS_YET = "fewer than 200 labels (monitor.performance.min_labels)"


def monitoring(*, labelled: bool = True) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A small report and its distributions: one drifted numeric feature, one stable categorical feature
    with an awkward name, one prediction; with labels, the second of four windows has no value (one class)."""

    def entry(kind: str, p_value: float, psi: float, drifted: bool) -> dict[str, Any]:
        numeric = kind == "numeric"
        return {
            "kind": kind,
            "test": "ks" if numeric else "chi-square",
            "p_value": p_value,
            "psi": psi,
            "distance": psi / 2,
            "distance_name": "wasserstein" if numeric else "jensen_shannon",
            "drifted": drifted,
        }

    features = {"age": entry("numeric", 1.2e-30, 0.43, True), ODD: entry("categorical", 0.51, 0.01, False)}
    prediction = {"probability:>50K": entry("numeric", 0.2, 0.05, False)}
    values = [0.92, None, 0.9, 0.91] if labelled else [None] * 4
    report = {
        "model_version": "3f2a9c0d11aa22bb",
        "task": "binary",
        "metric": "roc_auc",
        "rows": {"logged": 5000, "monitored": 4990, "labelled": 4000 if labelled else 0},
        "skipped": {"corrupt_lines": 1, "other_model_version": 5, "schema_change": 4},
        "thresholds": {"p_value": 0.01, "psi": 0.2, "max_drifted_features": 0, "max_performance_drop": 0.02},
        "drift": {"features": features, "prediction": prediction, "drifted_features": ["age"]},
        "quality": {
            "fields": {
                "age": {
                    "missing_share": 0.0,
                    "reference_missing_share": 0.0,
                    "unseen_share": 0.0,
                    "out_of_range_share": 0.012,
                }
            },
            "alerts": ["age: 1.2% of values outside the schema's range [17, 90] (limit 1.0%)"],
        },
        "performance": {
            "labelled": 4000 if labelled else 0,
            "reference": 0.928,
            "current": 0.91 if labelled else None,
            "drop": 0.018 if labelled else None,
            "coverage": {"promised": 0.9, "realized": 0.885 if labelled else None},
            "windows": [
                {
                    "window": n,
                    "first": None if n == 1 else f"2026-11-24T1{n}:00:00Z",  # window 1: a batch log, no times
                    "last": None if n == 1 else f"2026-11-24T1{n}:59:00Z",
                    "rows": 1000,
                    "labelled": 800 * labelled,
                    "value": value,
                    "coverage": 0.9 if labelled else None,
                    "reason": None if value is not None else ONE_CLASS if labelled else NO_LABELS_YET,
                }
                for n, value in enumerate(values, start=1)
            ],
        },
        "decision": {"action": "retrain", "reasons": ["features drifted: age", "data quality: 1 alert"]},
    }
    long_bin = "a category label far too long to fit in the label column"
    distributions = {
        name: {
            "kind": e["kind"],
            "bins": ["low", long_bin, "missing"],
            "reference": [0.5, 0.5, 0.0],
            "current": [0.2, 0.7, 0.1],
        }
        for name, e in {**features, **prediction}.items()
    }
    return report, distributions


class _Nesting(HTMLParser):
    """Checks that every opened element is closed in order; collects the `src`/`href` values."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [value or "" for name, value in attrs if name in {"src", "href"}]
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [value or "" for name, value in attrs if name in {"src", "href"}]

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()


def _svgs(page: str, kind: str) -> list[str]:
    return re.findall(rf'<svg class="chart {kind}".*?</svg>', page, flags=re.DOTALL)


def _row(page: str, name: str) -> str:
    """The drift table row of a feature (the first table row whose first cell is the name)."""
    match = re.search(rf"<tr[^>]*><td>{re.escape(name)}</td>.*?</tr>", page)
    assert match, name
    return match.group(0)


def _assert_well_formed_and_offline(page: str) -> None:
    parser = _Nesting()
    parser.feed(page)
    parser.close()
    assert parser.open == []
    assert all(link.startswith("#") for link in parser.links)
    assert "<script" not in page.lower()
    assert not re.search(r"https?:|@import|url\(", page)


@pytest.mark.parametrize("labelled", [True, False])
def test_the_page_is_well_formed_and_offline(labelled: bool) -> None:
    _assert_well_formed_and_offline(render_html(*monitoring(labelled=labelled)))


def test_input_text_is_escaped() -> None:
    page = render_html(*monitoring())
    assert ODD not in page
    assert "&lt;b&gt;&amp;&#34;x&#34;" in page


def test_header_shows_the_decision_and_every_reason() -> None:
    report, distributions = monitoring()
    page = render_html(report, distributions)
    header = page[page.index("<header") : page.index("</header>")]
    assert "Decision: retrain" in header
    for reason in report["decision"]["reasons"]:
        assert f"<li>{reason}</li>" in header
    assert "not fatal" in header
    assert "4,990 monitored" in header


def test_drift_table_charts_and_distributions() -> None:
    report, distributions = monitoring()
    page = render_html(report, distributions)
    drifted, stable = _row(page, "age"), _row(page, "&lt;b&gt;&amp;&#34;x&#34;")
    assert drifted.startswith('<tr class="warn">')
    assert drifted.endswith("<td>yes</td></tr>")
    assert "1.2e-30" in drifted  # a tiny p-value stays legible
    assert stable.startswith("<tr>")
    assert stable.endswith("<td>no</td></tr>")
    assert len(_svgs(page, "psi")) == 2  # features and predictions
    assert "stroke-dasharray" in _svgs(page, "psi")[0]  # the threshold line
    assert len(_svgs(page, "distribution")) == len(distributions)
    assert page.count('<span class="badge">drifted</span>') == 1
    assert "<title>a category label far too long to fit in the label column</title>" in page
    assert "a category label far…" in page
    assert page.index('id="drift"') < page.index('id="distributions"') < page.index('id="quality"')
    assert page.index('id="quality"') < page.index('id="performance"')


def test_only_what_drifted_is_drawn_in_the_drift_colour() -> None:
    """Current bars have a colour of their own: a quiet distribution chart shows no alarm colour."""
    report, distributions = monitoring()
    page = render_html(report, distributions)
    charts = _svgs(page, "distribution")
    alarm = f'fill="{ORANGE}"'
    assert sum(alarm in chart for chart in charts) == 0
    drifted = [name for name, entry in report["drift"]["features"].items() if entry["drifted"]]
    assert _svgs(page, "psi")[0].count(f"{alarm}><title>") == len(drifted) == 1, "one bar per drifted feature"


def test_performance_line_breaks_at_windows_without_a_value() -> None:
    page = render_html(*monitoring())
    (chart,) = _svgs(page, "performance")
    assert chart.count("<circle") == 3  # windows 1, 3 and 4
    assert chart.count("<polyline") == 1  # 3-4: window 1 stands alone before the gap
    assert f'<tr><td class="num">1</td><td>{DASH}</td><td>{DASH}</td>' in page
    assert "<td>2026-11-24T12:00:00Z</td><td>2026-11-24T12:59:00Z</td>" in page
    assert (
        f'<td class="num">{DASH}</td><td class="num">0.9</td><td>{ONE_CLASS}</td>' in page
    )  # value, coverage, why
    assert NO_LABELS not in page


def test_without_labels_the_page_says_how_to_get_them() -> None:
    page = render_html(*monitoring(labelled=False))
    assert NO_LABELS in page
    assert _svgs(page, "performance") == []
    assert page.count(f'<td class="num">{DASH}</td>') >= 2  # current and drop are unknown


def test_empty_sections_render() -> None:
    report, _ = monitoring()
    report["drift"] |= {"features": {}, "prediction": {}, "drifted_features": []}
    report["quality"] = {"fields": {}, "alerts": []}
    report["performance"] |= {"reference": None, "windows": []}
    page = render_html(report, {})
    _assert_well_formed_and_offline(page)
    assert "no alerts" in page
    assert _svgs(page, "psi") == _svgs(page, "distribution") == _svgs(page, "performance") == []


def test_same_input_same_bytes() -> None:
    assert render_html(*monitoring()) == render_html(*monitoring())
