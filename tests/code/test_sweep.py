"""Sweeps: params.yaml names them, every sweep is checked before anything is queued, and the experiments view
shows them within 120 columns: sweep, the params that differ, the selection score and its change."""

import sys
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from pillars.core.errors import PillarsError
from pillars.lifecycle.sweep import (
    WIDTH,
    apply_overrides,
    check_sweeps,
    experiments_view,
    failed_experiments,
    flatten,
    set_arguments,
    short_keys,
)
from tests.helpers import run


def test_flatten_and_set_arguments() -> None:
    overrides = {"train.candidates": ["xgboost"], "train": {"families": {"xgboost": {"n_trials": 5}}}}
    assert flatten(overrides) == {"train.candidates": ["xgboost"], "train.families.xgboost.n_trials": 5}
    assert set_arguments(overrides) == [
        "-S",
        "train.candidates=[xgboost]",
        "-S",
        "train.families.xgboost.n_trials=5",
    ]


def test_apply_overrides_sets_nested_keys(default_params_raw: dict) -> None:
    changed = apply_overrides(default_params_raw, {"train.families.linear.n_trials": 2})
    assert changed["train"]["families"]["linear"]["n_trials"] == 2
    assert changed["train"]["families"]["xgboost"] == default_params_raw["train"]["families"]["xgboost"]


def test_committed_sweeps_are_valid(default_params_raw: dict) -> None:
    check_sweeps(default_params_raw, default_params_raw["sweeps"])


def test_a_bad_sweep_is_named_before_anything_runs(default_params_raw: dict) -> None:
    with pytest.raises(PillarsError, match=r"sweep 'typo': params.yaml: train.familes: unknown key"):
        check_sweeps(default_params_raw, {"typo": {"train.familes.xgboost.n_trials": 3}})
    with pytest.raises(
        PillarsError,
        match=r"sweep 'huge': .*train.families.xgboost.n_trials: Input should be greater than or equal to 1",
    ):
        check_sweeps(default_params_raw, {"huge": {"train.families.xgboost.n_trials": 0}})


def revision(
    rev: str, name: str | None, params: dict, selection: dict[str, Any], error: bool = False
) -> dict:
    """One revision as DVC 3.67's `dvc exp show --json` gives it (recorded from a real repository: a commit, the
    workspace or an experiment's run), with this project's params.yaml and metrics/selection.json."""
    data = {
        "rev": rev,
        "timestamp": None if rev == "workspace" else "2026-12-03T07:05:36",
        "params": {"params.yaml": {"data": params}},
        "metrics": {
            "metrics/selection.json": {"data": selection},
            "metrics/assess.json": {"data": {"test": {"roc_auc": selection["valid"] - 0.001}}},
        },
        "deps": {"data/features": {"hash": "5d41402abc4b2a76b9719d911017c592.dir", "size": 1, "nfiles": 3}},
        "outs": {},
        "meta": {},
    }
    failed = {"msg": "Experiment run failed", "type": ""} if error else None
    return {"rev": rev, "name": name, "data": data, "error": failed}


def experiment(name: str, params: dict, selection: dict[str, Any], state: str | None = "success") -> dict:
    """An experiment of a commit row: its run's revision and its executor (None once it is collected)."""
    rev = name.encode().hex().ljust(40, "0")[:40]
    run = revision(rev, name, params, selection, error=state == "failed") | {"experiments": None}
    executor = None if state is None else {"state": state, "name": None, "local": {"returncode": 0}}
    return {"revs": [run], "executor": executor, "name": name}


def selection(model: str, valid: float, metric: str = "roc_auc") -> dict[str, Any]:
    return {"metric": metric, "model": model, "valid": valid, "reason": "best valid", "ranking": []}


def shown_rows(raw: dict, experiments: list[dict], base: dict[str, Any] | None = None) -> list[dict]:
    """`dvc exp show --json` of a repository on main with `experiments` run from HEAD."""
    params = {section: raw[section] for section in ("dataset", "train", "validate_model")}
    head = revision(
        "3ef3cbd8e3b5d2d9b1a4c6f0e7d8a9b0c1d2e3f4", "main", params, base or selection("ensemble", 0.9298)
    )
    workspace = revision("workspace", None, params, base or selection("ensemble", 0.9298))
    return [workspace | {"experiments": None}, head | {"experiments": experiments}]


def swept(raw: dict, name: str) -> dict:
    """The params an experiment of the committed sweep `name` ran with."""
    changed = apply_overrides(raw, flatten(raw["sweeps"][name]))
    return {section: changed[section] for section in ("dataset", "train", "validate_model")}


def table_rows(view: str) -> list[list[str]]:
    """The cells of each line of the view's table (a continued row has empty cells but its params)."""
    return [
        [cell.strip() for cell in line[1:-1].split("|")] for line in view.splitlines() if line.startswith("|")
    ]


@pytest.fixture
def sweep_rows(default_params_raw: dict) -> list[dict]:
    raw = default_params_raw
    stale = selection("ensemble", 0.9298)  # DVC shows a failed or queued run with its baseline's metrics
    return shown_rows(
        raw,
        [
            experiment("linear", swept(raw, "linear"), selection("linear", 0.9047)),
            experiment("xgboost-shallow", swept(raw, "xgboost-shallow"), selection("xgboost", 0.9310), None),
            experiment("xgboost-wide", swept(raw, "xgboost-wide"), selection("xgboost", 0.9301)),
            experiment("hist-gradient-boosting", swept(raw, "hist-gradient-boosting"), stale, "failed"),
            experiment(
                "by-hand", swept(raw, "linear") | {"dataset": raw["dataset"]}, selection("x", 0.0), "queued"
            ),
        ],
    )


def test_the_view_fits_120_columns_and_ranks_the_experiments(
    sweep_rows: list[dict], default_params_raw: dict
) -> None:
    view = experiments_view(sweep_rows, sweeps=default_params_raw["sweeps"])
    assert max(len(line) for line in view.splitlines()) <= WIDTH
    rows = table_rows(view)
    assert rows[0] == ["experiment", "sweep", "model", "valid roc_auc", "change", "params that differ"]
    cells: dict[str, list[str]] = {}
    for row in rows[2:]:
        if row[0]:
            cells[row[0]] = row[1:]
        else:  # a continued row: more params of the row above
            last = cells[list(cells)[-1]]
            last[4] = f"{last[4]}; {row[5]}"
    assert list(cells) == ["main", "xgboost-shallow", "xgboost-wide", "linear"], (
        "the baseline, then best first"
    )
    assert cells["main"][:4] == ["(baseline)", "ensemble", "0.9298", ""]
    assert cells["xgboost-shallow"] == [
        "xgboost-shallow",
        "xgboost",
        "0.9310",
        "+0.0012",
        "candidates=[xgboost]; start.max_depth=4; max_depth.low=2; max_depth.high=4",
    ], "what an experiment changed, by short keys (only the leaves that differ)"
    assert cells["xgboost-wide"][4] == "candidates=[xgboost]; xgboost.n_trials=36"
    assert cells["linear"] == ["linear", "linear", "0.9047", "-0.0251", "candidates=[linear]"]
    assert "seed" not in view and "type=" not in view, "only the params that differ"
    assert "Failed, so not shown: hist-gradient-boosting" in view, "a failed run has no results of its own"
    assert "Queued or running, so not shown yet: by-hand" in view
    assert "hist-gradient-boosting |" not in view and "by-hand |" not in view
    assert failed_experiments(sweep_rows, ["linear", "hist-gradient-boosting"]) == ["hist-gradient-boosting"]


def test_short_keys_are_unambiguous() -> None:
    every = [
        "train.families.xgboost.n_trials",
        "train.families.linear.n_trials",
        "train.families.xgboost.start.max_depth",
        "train.families.xgboost.space.max_depth.low",
        "train.seed",
        "curate.seed",
    ]
    assert short_keys(every, every) == {
        "train.families.xgboost.n_trials": "xgboost.n_trials",
        "train.families.linear.n_trials": "linear.n_trials",
        "train.families.xgboost.start.max_depth": "start.max_depth",
        "train.families.xgboost.space.max_depth.low": "low",
        "train.seed": "train.seed",
        "curate.seed": "curate.seed",
    }


def test_the_view_is_markdown_for_the_comment_and_the_page(sweep_rows: list[dict]) -> None:
    view = experiments_view(sweep_rows)
    tokens = MarkdownIt("commonmark").enable("table").parse(view)
    cells = [token.content for token in tokens if token.type == "inline"]
    assert cells[1:7] == ["experiment", "sweep", "model", "valid roc_auc", "change", "params that differ"]
    rows = sum(token.type == "tr_open" for token in tokens)
    assert rows == len(table_rows(view)) - 1, "every line of the table is a row (the rule is not)"


def test_a_lower_is_better_metric_ranks_the_lowest_first(default_params_raw: dict) -> None:
    raw = default_params_raw
    rows = shown_rows(
        raw,
        [
            experiment("a", swept(raw, "linear"), selection("linear", 0.31, "log_loss")),
            experiment("b", swept(raw, "xgboost-wide"), selection("xgboost", 0.27, "log_loss")),
        ],
        selection("ensemble", 0.29, "log_loss"),
    )
    view = experiments_view(rows, greater_is_better=False, width=100)
    assert max(len(line) for line in view.splitlines()) <= 100
    assert [row[0] for row in table_rows(view) if row[0] in ("a", "b")] == ["b", "a"]
    assert ["b", "-", "xgboost", "0.2700", "-0.0200"] in [row[:5] for row in table_rows(view)]


def test_with_no_experiments_the_view_says_how_to_start_one(default_params_raw: dict) -> None:
    view = experiments_view(shown_rows(default_params_raw, []))
    assert view.startswith(
        "No experiments on main (3ef3cbd) yet; its valid roc_auc: 0.9298 (selected: ensemble)."
    )
    assert "`make sweep`" in view and "|" not in view


def test_showing_no_experiments_says_how_to_start_a_sweep(repo_copy: Path) -> None:
    shown = run([sys.executable, "-m", "pillars.lifecycle.sweep", "--show-only"], repo_copy).stdout
    assert "No experiments on main" in shown and "make sweep" in shown
