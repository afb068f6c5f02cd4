"""Sweeps as DVC experiments: `python -m pillars.lifecycle.sweep` (or `make sweep`).

The `sweeps` section of params.yaml names each sweep and the params it changes (dotted keys, any section).
This command queues one named `dvc exp run` per sweep, runs the queue with `--jobs` workers (DVC's queue is
flaky with many workers upstream, so 1 by default), and prints the experiments view (`experiments_view`): one
row per experiment with its sweep, the params that differ, the selected model's score (the selection metric)
and its change against HEAD, within 120 columns (`dvc exp show` has hundreds). Experiments run the pipeline
up to `assess`: they compare models; packaging and the deployment check are for the one you keep (`dvc repro`
after applying it). Promote the winner with `dvc exp apply NAME` (into the workspace) or
`dvc exp branch NAME BRANCH`.
"""

import argparse
import copy
import json
import textwrap
from collections.abc import Collection
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from pillars.core import layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import write_text
from pillars.core.metrics import METRICS
from pillars.core.params import PARAMS_FILE, Params, load_params, parse_params
from pillars.core.process import run

SWEEP_TARGET = "assess"  # the last stage a sweep runs

SORT_KEY = "metrics/selection.json:valid"  # after small-data tuning: :out_of_fold (see sort_key)
WIDTH = 120  # the experiments view fits a terminal this wide
START_ONE = (
    "To start one: name sweeps under `sweeps:` in params.yaml (each a few params to change), "
    "then `make sweep` runs them as DVC experiments."
)


def flatten(overrides: dict, prefix: str = "") -> dict[str, object]:
    """{"train": {"seed": 1}} -> {"train.seed": 1}; keys that already have dots stay as they are."""
    flat: dict[str, object] = {}
    for key, value in overrides.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def apply_overrides(raw: dict, overrides: dict[str, object]) -> dict:
    """The params mapping with dotted-key overrides set, as `dvc exp run -S` would set them."""
    changed = copy.deepcopy(raw)
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = changed
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return changed


def check_sweeps(raw: dict, sweeps: dict[str, dict]) -> None:
    """Every sweep must give valid params: check them now, not after an hour of queued experiments."""
    if not sweeps:
        raise PillarsError(f"{PARAMS_FILE}: sweeps: none defined (see the README's Experiments section)")
    for name, overrides in sweeps.items():
        try:
            parse_params(apply_overrides(raw, flatten(overrides)))
        except PillarsError as error:
            raise PillarsError(f"sweep {name!r}: {error}") from None


def flow(value: object) -> str:
    """A value as one line of YAML flow style, as `-S` takes it and a person reads it (`[a, b]`, `0.05`)."""
    dumped = str(yaml.safe_dump(value, default_flow_style=True, width=10_000))
    return dumped.strip().removesuffix("...").strip()


def set_arguments(overrides: dict) -> list[str]:
    """`-S key=value` arguments, values in YAML flow style (lists stay lists)."""
    arguments = []
    for key, value in flatten(overrides).items():
        arguments += ["-S", f"{key}={flow(value)}"]
    return arguments


class Experiment(NamedTuple):
    """One row of the experiments view: a commit, the workspace or an experiment, from `dvc exp show --json`."""

    name: str
    state: str  # done | failed | queued | running (the last three have no results of their own)
    params: dict[str, object]  # flattened; a file other than params.yaml prefixes its keys with "file:"
    metrics: dict[str, Any]  # metrics file -> its data


def _revision(entry: dict[str, Any], name: str, state: str = "done") -> Experiment:
    """An Experiment from one revision of `dvc exp show --json` (a commit row, or an experiment's rev)."""
    data = entry.get("data") or {}
    params: dict[str, object] = {}
    for file, content in (data.get("params") or {}).items():
        params |= flatten(
            (content or {}).get("data") or {}, "" if file == PARAMS_FILE.as_posix() else f"{file}:"
        )
    metrics = {
        file: (content or {}).get("data") or {} for file, content in (data.get("metrics") or {}).items()
    }
    return Experiment(name, "failed" if entry.get("error") else state, params, metrics)


def experiments_of(commit: dict[str, Any]) -> list[Experiment]:
    """A commit row's experiments: done, failed (a stage exited non-zero), queued or running."""
    found = []
    for experiment in commit.get("experiments") or []:
        latest = experiment["revs"][0]
        state = ((experiment.get("executor") or {}).get("state") or "done").replace("success", "done")
        found.append(
            _revision(latest, experiment.get("name") or latest.get("name") or latest["rev"][:7], state)
        )
    return found


def failed_experiments(rows: list[dict[str, Any]], names: list[str]) -> list[str]:
    """The named experiments whose run failed (a stage exited non-zero, e.g. no candidate passed validation)."""
    failed = {
        experiment.name for row in rows for experiment in experiments_of(row) if experiment.state == "failed"
    }
    return [name for name in names if name in failed]


def dvc(*arguments: str) -> None:
    """Run dvc, streaming its output; a failure stops the sweep with dvc's own message above."""
    run(["dvc", *arguments], stream=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pillars.lifecycle.sweep", description=__doc__.splitlines()[0]
    )
    parser.add_argument("names", nargs="*", help="sweeps to run (default: all in params.yaml)")
    parser.add_argument("--jobs", type=int, default=1, help="queue workers (default 1; 2 at most is advised)")
    parser.add_argument("--show-only", action="store_true", help="print the experiments view without running")
    parser.add_argument("--out", type=Path, help="also write the experiments view to this Markdown file")
    args = parser.parse_args()
    raw = yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))
    params = load_params()
    sweeps = raw.get("sweeps") or {}
    unknown = sorted(set(args.names) - set(sweeps))
    if unknown:
        raise PillarsError(f"unknown sweep(s) {unknown}; defined: {sorted(sweeps)}")
    chosen = {name: sweeps[name] for name in args.names or sweeps}
    if not args.show_only:
        check_sweeps(raw, chosen)
        for name, overrides in chosen.items():
            run(["dvc", "exp", "remove", name], check=False)  # a rerun replaces it
            dvc("exp", "run", "--queue", "--name", name, *set_arguments(overrides), SWEEP_TARGET)
        dvc("exp", "run", "--run-all", "--jobs", str(args.jobs))
    rows = experiment_rows()
    print(show_experiments(params, args.out, rows))
    failed = failed_experiments(rows, list(chosen))
    if failed and not args.show_only:  # showing what there is succeeds; running failed sweeps does not
        raise PillarsError(f"sweep(s) {failed} failed; their logs: `dvc queue logs NAME`")


def sort_key() -> str:
    """The selection score's column: `valid`, or `out_of_fold` when the workspace's selection judged
    out-of-fold predictions (small-data tuning)."""
    if layout.SELECTION_REPORT.exists():
        on = json.loads(layout.SELECTION_REPORT.read_text(encoding="utf-8")).get("evaluated_on", "valid")
        return f"{layout.SELECTION_REPORT.as_posix()}:{on}"
    return SORT_KEY


def _score(experiment: Experiment, score: str) -> float | None:
    """The experiment's value of `score` ("file:key"); None when it has none of its own (failed, queued)."""
    file, _, key = score.partition(":")
    value = experiment.metrics.get(file, {}).get(key)
    done = experiment.state == "done" and isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if done else None


def _rank(value: float | None, greater_is_better: bool) -> tuple[bool, float]:
    """Sort key: best score first, rows without one last."""
    return (value is None, 0.0 if value is None else -value if greater_is_better else value)


def short_keys(keys: list[str], every: Collection[str]) -> dict[str, str]:
    """Each of `keys` by the shortest end of it that appears in no other of `every` key (`train.families.
    xgboost.n_trials` -> `xgboost.n_trials` when other families have `n_trials`; `start.max_depth`, not
    `max_depth`, beside `space.max_depth.low`): unambiguous, and a third as wide."""
    shortened = {}
    for key in keys:
        parts = key.split(".")
        ends = (".".join(parts[-size:]) for size in range(1, len(parts)))
        others = [f".{other}." for other in every if other != key]
        shortened[key] = next((end for end in ends if not any(f".{end}." in other for other in others)), key)
    return shortened


def _pairs(experiment: Experiment, keys: dict[str, str], against: Experiment | None) -> list[str]:
    """`name=value` for each of `keys` (key -> the name shown): all of them, or (against a baseline) those
    whose value differs from it."""
    params = experiment.params
    pairs = [f"{name}={flow(params[key]) if key in params else '(unset)'}" for key, name in keys.items()]
    if against is None:
        return pairs
    return [pair for pair in pairs if pair not in _pairs(against, keys, None)]


def _wrapped(atoms: list[str], width: int) -> list[str]:
    """`atoms` joined by "; " in lines of at most `width` characters, breaking between atoms where it can."""
    lines: list[str] = []
    for atom in atoms:
        joined = f"{lines[-1]}; {atom}" if lines else atom
        if lines and len(joined) <= width:
            lines[-1] = joined
        else:
            lines += textwrap.wrap(atom, width)
    return lines or [""]


PARAMS_WIDTH = 40  # a table too wide narrows its params column to this first, then its name columns
NAME_WIDTH = 12  # down to this (a longer name wraps), then its params column further


def _widths(header: list[str], rows: list[list[list[str]]], width: int, right: set[int]) -> list[int]:
    """Column widths within `width`: each column as wide as its content on one line; while too wide, the
    last (the params) narrows to PARAMS_WIDTH, the widest left-aligned other one to NAME_WIDTH, then the
    last to its header. Right-aligned columns (numbers) keep their width."""
    widths = [max(len(header[i]), *(len("; ".join(row[i])) for row in rows)) for i in range(len(header))]
    last = len(header) - 1
    floor = len(header[last])
    while sum(widths) + 3 * len(widths) + 1 > width:
        names = [i for i in range(last) if i not in right and widths[i] > max(len(header[i]), NAME_WIDTH)]
        if widths[last] > max(floor, PARAMS_WIDTH) or (not names and widths[last] > floor):
            widths[last] -= 1
        elif names:
            widths[max(names, key=lambda i: widths[i])] -= 1
        else:
            break  # as narrow as it gets: the names or numbers themselves are wider
    return widths


def _table(header: list[str], rows: list[list[list[str]]], width: int, right: set[int]) -> str:
    """A Markdown table that lines up in a terminal `width` columns wide. Each cell is a list of atoms (a name;
    `key=value` pairs) joined by "; "; a cell wider than its column (see `_widths`) wraps, its row continuing
    in rows whose other cells are empty. Columns in `right` are right-aligned."""
    rows = [[[atom.replace("|", "\\|") for atom in cell] for cell in row] for row in rows]
    widths = _widths(header, rows, width, right)

    def line(values: list[str]) -> str:
        padded = (
            value.rjust(w) if i in right else value.ljust(w)
            for i, (value, w) in enumerate(zip(values, widths, strict=True))
        )
        return f"| {' | '.join(padded)} |"

    lines = [line(header), line(["-" * (w - 1) + (":" if i in right else "-") for i, w in enumerate(widths)])]
    for row in rows:
        cells = [_wrapped(cell, w) for cell, w in zip(row, widths, strict=True)]
        height = max(len(cell) for cell in cells)
        lines += [line([cell[n] if n < len(cell) else "" for cell in cells]) for n in range(height)]
    return "\n".join(lines)


def _row(
    experiment: Experiment, baseline: Experiment, score: str, sweeps: Collection[str], keys: dict[str, str]
) -> list[list[str]]:
    """One row of the view (each cell a list of atoms): name, sweep, selected model, score, change against
    the baseline, and the params of `keys` (key -> name shown): the baseline's values, or those changed."""
    value, base = _score(experiment, score), _score(baseline, score)
    first = experiment is baseline
    cells = [
        experiment.name,
        "(baseline)" if first else experiment.name if experiment.name in sweeps else "-",
        str(experiment.metrics.get(score.partition(":")[0], {}).get("model", "-")),
        "-" if value is None else f"{value:.4f}",
        "" if first or value is None or base is None else f"{value - base:+.4f}",
    ]
    return [[cell] for cell in cells] + [_pairs(experiment, keys, None if first else baseline)]


def experiments_view(
    rows: list[dict[str, Any]],
    score: str = SORT_KEY,
    greater_is_better: bool = True,
    sweeps: Collection[str] = (),
    width: int = WIDTH,
) -> str:
    """The experiments of `dvc exp show --json` (`rows`, parsed) as a Markdown table that reads in a terminal
    `width` columns wide: per experiment its sweep (its name when params.yaml's `sweeps:` has it), the selected
    model, `score` ("file:key" of the metrics, e.g. metrics/selection.json:valid) and its change against the
    commit it ran on, and the params that differ between the rows shown (only those, by `short_keys`: the
    baseline row has their values, an experiment those it changed). Best first; failed and queued experiments, which have no
    results of their own, are named below it; with none at all, how to start a sweep."""
    commits = [row for row in rows if row.get("rev") != "workspace" and not row.get("error")]
    if not commits:
        return f"{_prose(f'No experiments yet. {START_ONE}', width)}\n"
    commit = next((row for row in commits if row.get("experiments")), commits[0])
    label = commit.get("name") or commit["rev"][:7]
    baseline = _revision(commit, label)
    file, _, key = score.partition(":")
    metric = f"{key.replace('_', '-')} {baseline.metrics.get(file, {}).get('metric', '')}".strip()
    experiments = experiments_of(commit)
    done = sorted(
        (experiment for experiment in experiments if experiment.state == "done"),
        key=lambda experiment: _rank(_score(experiment, score), greater_is_better),
    )
    shown = [baseline]
    workspace = next((_revision(row, "workspace") for row in rows if row.get("rev") == "workspace"), None)
    if workspace is not None and (workspace.params, _score(workspace, score)) != (
        baseline.params,
        _score(baseline, score),
    ):
        shown.append(workspace)  # uncommitted changes, or an experiment's results applied
    shown += done
    keys = list(dict.fromkeys(key for experiment in shown for key in experiment.params))
    differing = short_keys(
        [key for key in keys if len({_pairs(experiment, {key: key}, None)[0] for experiment in shown}) > 1],
        keys,
    )
    table = [_row(experiment, baseline, score, sweeps, differing) for experiment in shown]
    header = ["experiment", "sweep", "model", metric, "change", "params that differ"]
    if done:
        parts = [
            f"Experiments on {label} ({commit['rev'][:7]}): {metric} of the selected model, best first; "
            f"change against {label}.",
            _table(header, table, width, right={3, 4}),
            "Keep one: `dvc exp apply NAME` (into the workspace) or `dvc exp branch NAME BRANCH`.",
        ]
    else:
        (model,), (shown_score,) = table[0][2:4]
        parts = [
            f"No {'finished ' if experiments else ''}experiments on {label} ({commit['rev'][:7]}) yet; "
            f"its {metric}: {shown_score} (selected: {model})."
        ]
    if not experiments:
        parts.append(START_ONE)
    failed = [experiment.name for experiment in experiments if experiment.state == "failed"]
    if failed:
        parts.append(f"Failed, so not shown: {', '.join(failed)} (their logs: `dvc queue logs NAME`).")
    waiting = [experiment.name for experiment in experiments if experiment.state in ("queued", "running")]
    if waiting:
        parts.append(f"Queued or running, so not shown yet: {', '.join(waiting)} (`dvc queue status`).")
    return "\n\n".join(part if part.startswith("|") else _prose(part, width) for part in parts) + "\n"


def _prose(text: str, width: int) -> str:
    """A paragraph in lines of at most `width` characters (Markdown joins them again)."""
    return textwrap.fill(text, width, break_long_words=False, break_on_hyphens=False)


def experiment_rows() -> list[dict[str, Any]]:
    """`dvc exp show --json`: the workspace and HEAD, with HEAD's experiments."""
    rows: list[dict[str, Any]] = json.loads(run(["dvc", "exp", "show", "--json"]).stdout)
    return rows


def experiments_table(params: Params, rows: list[dict[str, Any]] | None = None) -> str:
    """This repository's experiments view: the selection score, its direction, the sweeps of params.yaml."""
    return experiments_view(
        experiment_rows() if rows is None else rows,
        sort_key(),
        METRICS[params.dataset.task][params.train.metric].greater_is_better,
        params.sweeps,
    )


def show_experiments(
    params: Params, out: Path | None = None, rows: list[dict[str, Any]] | None = None
) -> str:
    """The experiments view, also written to `out` (a pull-request comment's body) when given."""
    view = experiments_table(params, rows)
    if out is not None:
        write_text(out, f"### Experiments\n\n{view}")
    return view


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
