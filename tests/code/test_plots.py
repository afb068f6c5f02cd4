"""The plots (`make plots`, and the pull-request report's `plots/index.html`): the page opens from file:// with
the network off (Vega inline, .dvc/plots/offline.html), and draws what a reader needs: complete trials only,
one colour per family that ran, the ROC curve with the chance diagonal and its AUC in the heading, the
confusion matrix with counts and class names, and importance largest first. Rendered in headless Chromium."""

from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pytest

from pillars.stages.assess import named_classes
from tests import browser
from tests.browser import Visit
from tests.helpers import make


class Mark(NamedTuple):
    """One element Vega drew, as its accessibility attributes describe it (and a text mark's text)."""

    role: str  # aria-roledescription: "point", "line mark", "text mark", "axis", "legend", "title", ...
    label: str  # aria-label: the datum's fields, or the axis / legend / title description
    text: str


class PlotMarks(HTMLParser):
    """The marks of each plot of a rendered page, by the id of the plot's element (DVC's plot name)."""

    def __init__(self) -> None:
        super().__init__()
        self.plots: dict[str, list[Mark]] = {}
        self.notes: dict[str, str] = {}  # plots without data: their note
        self._plot: str | None = None
        self._text: list[str] | None = None
        self._note: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "div" and attributes.get("id"):
            self._plot = attributes["id"]
            self.plots.setdefault(self._plot, [])
            self._note = self._plot if attributes.get("class") == "no-data" else None
        role = attributes.get("aria-roledescription")
        if self._plot is not None and role:
            self.plots[self._plot].append(Mark(role, attributes.get("aria-label") or "", ""))
            self._text = [] if tag == "text" else None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)
        if self._note is not None:
            self.notes[self._note] = self.notes.get(self._note, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "text" and self._text is not None and self._plot is not None:
            mark = self.plots[self._plot][-1]
            self.plots[self._plot][-1] = mark._replace(text="".join(self._text))
            self._text = None
        if tag == "div":
            self._note = None


class Rendered(NamedTuple):
    plots: dict[str, list[Mark]]
    notes: dict[str, str]  # plots without data: their note
    visit: Visit  # what the page requested, which requests failed, its console errors


def rendered(page: Path) -> Rendered:
    """`page` opened from file:// in headless Chromium with the network off, after its scripts ran: the
    marks of its plots, and what it requested."""
    visit = browser.visit(page.as_uri(), "document.body.outerHTML")
    parser = PlotMarks()
    parser.feed(visit.value)
    return Rendered(parser.plots, {plot: note.strip() for plot, note in parser.notes.items()}, visit)


def offline(visit: Visit) -> bool:
    """Nothing but the page itself requested, nothing failed, no console error."""
    return all(url.startswith("file://") for url in visit.requests) and not visit.failed + visit.console


def labels(marks: list[Mark], role: str) -> list[str]:
    return [mark.label for mark in marks if mark.role == role]


def texts(marks: list[Mark]) -> list[str]:
    return [mark.text for mark in marks if mark.role == "text mark"]


def write_csv(path: Path, rows: list[dict[str, object]] | pd.DataFrame) -> None:
    pd.DataFrame(rows).to_csv(path, index=False)


def test_codes_become_class_names() -> None:
    confusion = pd.DataFrame({"actual": [0, 1, 2], "predicted": [2, 1, 0]})
    named = named_classes(confusion, {"setosa": 0, "versicolor": 1, "virginica": 2})
    assert named.to_dict("list") == {
        "actual": ["setosa", "versicolor", "virginica"],
        "predicted": ["virginica", "versicolor", "setosa"],
    }


def test_the_plots_page_opens_offline_and_draws_what_a_reader_needs(repo_copy: Path) -> None:
    train, assess = repo_copy / "metrics/train", repo_copy / "metrics/assess"
    for trials in train.glob("*_trials.csv"):
        trials.unlink()  # two families ran; dvc.yaml lists all five
    write_csv(
        train / "xgboost_trials.csv",
        [
            {"trial": 0, "state": "complete", "value": 0.90, "best_value": 0.90},
            {"trial": 1, "state": "pruned", "value": None, "best_value": 0.90},
            {"trial": 2, "state": "complete", "value": 0.92, "best_value": 0.92},
            {"trial": 3, "state": "fail", "value": None, "best_value": 0.92},
        ],
    )
    write_csv(
        train / "linear_trials.csv",
        [
            {"trial": 0, "state": "complete", "value": 0.85, "best_value": 0.85},
            {"trial": 1, "state": "complete", "value": 0.86, "best_value": 0.86},
        ],
    )
    write_csv(assess / "roc.csv", {"fpr": [0.0, 0.0, 0.5, 1.0], "tpr": [0.0, 0.5, 1.0, 1.0]})  # AUC 0.875
    codes = pd.DataFrame({"actual": [0, 0, 0, 1, 1], "predicted": [0, 0, 1, 1, 0]})
    write_csv(assess / "confusion.csv", named_classes(codes, {"stays": 0, "leaves": 1}))
    write_csv(assess / "importance.csv", {"column": ["a", "b", "c"], "importance": [0.01, 0.05, 0.02]})
    (assess / "residuals.csv").unlink(missing_ok=True)  # a classifier has none

    make(repo_copy, "plots")
    page = rendered(repo_copy / "build/plots/index.html")

    assert offline(page.visit), page.visit
    assert page.notes == {"residuals": "No data: residuals"}
    assert set(page.plots) == {
        "optimisation_history",
        "best_value_so_far",
        "ROC",
        "precision-recall",
        "calibration",
        "confusion_matrix",
        "residuals",
        "permutation_importance",
    }
    history = page.plots["optimisation_history"]
    assert len(labels(history, "point")) == 4, "complete trials only: no pruned or failed trial drawn as 0"
    assert any("values from 0.85 to 0.92" in axis for axis in labels(history, "axis"))
    assert any(legend.endswith("with 2 values: linear, xgboost") for legend in labels(history, "legend"))
    assert len(labels(page.plots["best_value_so_far"], "point")) == 6  # known after a pruned trial too
    roc = page.plots["ROC"]
    assert len(labels(roc, "line mark")) == 2, "the curve and the chance diagonal"
    assert texts(roc) == ["ROC on test, AUC 0.8750"]
    confusion = page.plots["confusion_matrix"]
    assert sorted(texts(confusion)) == ["1 (33%)", "1 (50%)", "1 (50%)", "2 (67%)"]
    assert any("2 values: leaves, stays" in axis for axis in labels(confusion, "axis"))
    importance = labels(page.plots["permutation_importance"], "axis")
    assert any("3 values: b, c, a" in axis for axis in importance), "largest first"


@pytest.mark.slow  # dvc diffs the metrics, params and plots against the base: about 15 s
def test_the_pull_request_report_plots_open_offline(repo_copy: Path) -> None:
    make(repo_copy, "pr-report", "BASE=HEAD")
    page = rendered(repo_copy / "build/report/plots/index.html")
    assert offline(page.visit), page.visit
    legends = labels(page.plots["optimisation_history"], "legend")
    assert any("titled 'revision'" in legend and "HEAD, workspace" in legend for legend in legends)
    assert all(marks for name, marks in page.plots.items() if name not in page.notes)
