"""Sweeps as DVC experiments: `python -m pillars.lifecycle.sweep` (or `make sweep`).

The `sweeps` section of params.yaml names each sweep and the params it changes (dotted keys, any section).
This command queues one named `dvc exp run` per sweep, runs the queue with `--jobs` workers (DVC's queue is
flaky with many workers upstream, so 1 by default), and prints `dvc exp show` sorted by the primary metric
of the selected model on the valid split. Experiments run the pipeline up to `assess`: they compare models;
packaging and the deployment check are for the one you keep (`dvc repro` after applying it). Promote the winner with `dvc exp apply NAME` (into the
workspace) or `dvc exp branch NAME BRANCH`.
"""

import argparse
import copy
import json
from pathlib import Path

import yaml

from pillars.core import layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import write_text
from pillars.core.metrics import METRICS
from pillars.core.params import PARAMS_FILE, Params, load_params, parse_params
from pillars.core.process import run

SWEEP_TARGET = "assess"  # the last stage a sweep runs

SORT_KEY = "metrics/selection.json:valid"  # after small-data tuning: :out_of_fold (see sort_key)
# Columns left out of the comparison: file hashes of deps and outs, and bookkeeping
HIDDEN_COLUMNS = r"^(data/.*|models/.*|metrics/[a-z_]+\.json|Created|Executor|reason)$"


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


def set_arguments(overrides: dict) -> list[str]:
    """`-S key=value` arguments, values in YAML flow style (lists stay lists)."""
    arguments = []
    for key, value in flatten(overrides).items():
        text = (
            yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()
        )
        arguments += ["-S", f"{key}={text}"]
    return arguments


def failed_experiments(names: list[str]) -> list[str]:
    """The named experiments whose run failed (a stage exited non-zero, e.g. no candidate passed validation)."""
    shown = run(["dvc", "exp", "show", "--json"]).stdout
    failed = {
        experiment["name"]
        for commit in json.loads(shown)
        for experiment in commit.get("experiments") or []
        if any(revision.get("error") for revision in experiment["revs"])
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
    parser.add_argument("--show-only", action="store_true", help="print the comparison without running")
    parser.add_argument("--out", type=Path, help="also write the comparison table to this Markdown file")
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
    failed = failed_experiments(list(chosen))
    print(show_experiments(params, args.out, failed))
    if failed and not args.show_only:  # showing what there is succeeds; running failed sweeps does not
        raise PillarsError(f"sweep(s) {failed} failed; their logs: `dvc queue logs NAME`")


def sort_key() -> str:
    """The selection score's column: `valid`, or `out_of_fold` when the workspace's selection judged
    out-of-fold predictions (small-data tuning)."""
    if layout.SELECTION_REPORT.exists():
        on = json.loads(layout.SELECTION_REPORT.read_text(encoding="utf-8")).get("evaluated_on", "valid")
        return f"{layout.SELECTION_REPORT.as_posix()}:{on}"
    return SORT_KEY


def experiments_table(params: Params) -> str:
    """The experiments of HEAD beside it, as Markdown, best selected model first."""
    order = "desc" if METRICS[params.dataset.task][params.train.metric].greater_is_better else "asc"
    command = [
        "dvc",
        "exp",
        "show",
        "--md",
        "--no-pager",
        "--only-changed",
        "--hide-failed",
        "--drop",
        HIDDEN_COLUMNS,
        "--sort-by",
        sort_key(),
        "--sort-order",
        order,
    ]
    return run(command).stdout


def show_experiments(params: Params, out: Path | None = None, failed: list[str] | None = None) -> str:
    """The comparison table (and the sweeps that failed, which it hides), also written to `out` (for a
    pull-request comment) when given."""
    table = experiments_table(params)
    if not run(["dvc", "exp", "list", "--name-only"]).stdout.strip():
        table += (
            "\nNo experiments yet: name sweeps under `sweeps:` in params.yaml (each a few params to change), "
            "then `make sweep` runs them as DVC experiments.\n"
        )
    if failed:
        table += f"\nFailed, so not shown: {', '.join(failed)} (their logs: `dvc queue logs NAME`).\n"
    if out is not None:
        write_text(out, f"### Experiments (`dvc exp show`)\n\n{table}")
    return table


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
