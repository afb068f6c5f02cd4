"""`make init DATA=<file or glob> TARGET=<column> [TASK=...] [SEP=...] [POSITIVE=...] [FORCE=1]`.

Reads the data as ingest will (`pillars.core.io`), checks that it can carry the task, the split and a model
(`pillars.init.checks`: a refusal is one line, and nothing is written), copies it under data/external/<name>/
(tracked by DVC), looks at it (`pillars.init.profile`), and rewrites params.yaml from the current one
(`pillars.init.proposal`: the dataset and its source, the task's metric and gates, proposed column drops with
reasons, slices, the split) and the schema (as `make schema` infers it). It prints what it decided and what
to review; `make run` then runs every stage on the data, `make init-undo` takes it back. It refuses to
overwrite uncommitted changes to params.yaml or the schema unless FORCE=1.
"""

import argparse
import difflib
import shutil
from glob import glob
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import OWN_SEPARATORS, file_format, read_file, sniff_separator, write_json, write_text
from pillars.core.params import PARAMS_FILE, Params, parse_params
from pillars.core.process import run
from pillars.core.schema import canonical_name, dump_schema, infer_schema
from pillars.init.budget import DEFAULT_MINUTES, apply_budget, parse_minutes
from pillars.init.checks import check_features, check_positive, check_rows, check_task
from pillars.init.params_file import dump_round_trip, load_round_trip
from pillars.init.profile import (
    Profile,
    class_labels,
    infer_task,
    placeholders,
    profile,
    without_placeholders,
)
from pillars.init.proposal import propose, snake_names
from pillars.init.undo import UNDO_RECORD

EXTERNAL_DIR = Path("data/external")


def refuse_uncommitted(paths: list[Path]) -> None:
    """Stop when params.yaml or the schema has changes Git does not have (FORCE=1 overwrites them)."""
    changed = run(["git", "status", "--porcelain", "--", *(str(path) for path in paths)]).stdout.split("\n")
    names = [line[3:] for line in changed if line.strip()]
    if names:
        raise PillarsError(
            f"uncommitted changes to {', '.join(names)} would be overwritten; commit or stash them, "
            "or run again with FORCE=1"
        )


def data_files(pattern: str) -> list[Path]:
    """The files DATA names (a file, or a glob), in sorted order; only formats ingest reads."""
    is_pattern = any(character in pattern for character in "*?[")
    paths = sorted(Path(path) for path in glob(pattern, recursive=True)) if is_pattern else [Path(pattern)]  # noqa: PTH207
    files = [path for path in paths if path.is_file()]
    if not files:
        raise PillarsError(f"DATA={pattern}: no such file")
    for path in files:
        file_format(path)  # an unknown suffix stops here, with what to do
    return files


def separator(files: list[Path], given: str | None) -> str | None:
    """The field separator the ingest source names: SEP (`\\t` or `tab`: a tab), else the one sniffed
    from the first file; None when it is every file's own (`,` in CSV, a tab in TSV) or there is no text."""
    sep = {"\\t": "\t", "tab": "\t"}.get(given, given) if given is not None else None
    if sep is not None and len(sep) != 1:
        raise PillarsError(f"SEP={given!r}: one character (or \\t for a tab)")
    owns = {OWN_SEPARATORS.get(file_format(path)) for path in files}
    if None in owns:
        if sep is not None:
            raise PillarsError(f"SEP={given!r}: only CSV and TSV files have a separator; leave it out")
        return None
    sep = sep or sniff_separator(files[0])
    return None if owns == {sep} else sep


def placement(files: list[Path], name: str) -> tuple[Path, str, bool]:
    """Where the data lives for ingest: the folder data/external/<name>/, the ingest source's path (the
    file, or a glob over the files), and whether the files must be copied there (they are elsewhere)."""
    folder = EXTERNAL_DIR / name
    inside = all(path.resolve().is_relative_to(folder.resolve()) for path in files)
    targets = files if inside else [folder / path.name for path in files]
    if len(targets) == 1:
        return folder, targets[0].as_posix(), not inside
    suffixes = {path.suffix.lower() for path in targets}
    pattern = f"*{suffixes.pop()}" if len(suffixes) == 1 else "*"
    return folder, (folder / pattern).as_posix(), not inside


def refuse_git_tracked(folder: Path) -> None:
    """DVC cannot track a folder whose files Git tracks: stop before anything is written."""
    tracked = run(["git", "ls-files", "--", str(folder)]).stdout.split("\n")
    tracked = [name for name in tracked if name]
    if tracked:
        raise PillarsError(
            f"{folder} holds files tracked by Git ({', '.join(tracked[:3])}), so DVC cannot track it; "
            f"run `git rm -r --cached {folder}` and commit, then make init again"
        )


def track(files: list[Path], folder: Path, copy: bool) -> None:
    """Copy the files into `folder` (when `copy`) and track the folder with DVC; if `dvc add` fails, the
    copy goes again and the error says what DVC said."""
    if copy:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for path in files:
            shutil.copyfile(path, folder / path.name)
    try:
        added = run(["dvc", "add", str(folder)], check=False)
        if added.returncode:
            said = [
                line.removeprefix("ERROR:").strip() for line in (added.stderr + added.stdout).splitlines()
            ]
            reason = next((line for line in said if line), f"exit {added.returncode}")
            raise PillarsError(
                f"`dvc add {folder}` failed: {reason}; params.yaml and the schema are unchanged"
            )
    except PillarsError:
        if copy:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def read_all(files: list[Path], sep: str | None) -> pd.DataFrame:
    """The data as ingest will read it (the same reader, the same separator), all files stacked."""
    frames = [read_file(path, "auto", sep) for path in files]
    columns = {tuple(frame.columns) for frame in frames}
    if len(columns) > 1:
        raise PillarsError(f"DATA: the files do not share one column set: {sorted(columns)}")
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def check_target(frame: pd.DataFrame, target: str) -> None:
    """TARGET names a column (a misspelling gets the close names)."""
    if target not in frame:
        close = difflib.get_close_matches(target, [str(name) for name in frame.columns], n=3)
        hint = f"; did you mean {close}?" if close else ""
        raise PillarsError(
            f"TARGET={target!r} is not a column of the data{hint} (columns: {list(frame.columns)})"
        )


def summary(
    found: Profile, params: Params, params_path: Path, schema_path: Path, source: str, frame: pd.DataFrame
) -> str:
    """What init decided, and what a person should review before committing."""
    rows = len(frame)
    how = params.curate.split
    split = {"time": f"time-ordered by {how.by!r}", "stratified": "exact stratified by class"}.get(
        how.method, "by a seeded hash of each row"
    )
    lines = [
        f"init: {rows} rows, {len(frame.columns)} columns from {source}",
        f"  task: {found.task}"
        + (f", labels {found.labels}" if found.labels else "")
        + (f", positive label {found.positive_label!r}" if found.positive_label else ""),
        f"  placeholders (read as missing): {found.placeholders or 'none found'}",
        f"  dates: {found.dates or 'none'}; split: {split}",
        f"  slices: {found.slices or 'none'}",
        "  columns a model should not use (curate.drop):",
        *([f"    - {name}: {reason}" for name, reason in found.drops.items()] or ["    (none)"]),
    ]
    renamed = snake_names([str(name) for name in frame.columns])
    if renamed:
        shown = ", ".join(f"{raw!r} -> {snake}" for raw, snake in list(renamed.items())[:8])
        lines.append(
            f"  after standardize, columns are snake_case: {shown}{' ...' if len(renamed) > 8 else ''}"
        )
    lines += [
        "review before committing:",
        *[f"  - {note}" for note in found.notes],
        f"  - {params_path}: the dropped columns and their reasons, the gates (validate_model), the slices",
        f"  - {schema_path}: types, ranges and category sets are the contract validate_data enforces",
        "then: make run",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="make init", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", required=True, help="a CSV, TSV, Parquet, JSON or JSON-lines file, or a glob"
    )
    parser.add_argument("--target", required=True, help="the column to predict (its raw name)")
    parser.add_argument("--task", choices=["binary", "multiclass", "regression"], help="default: inferred")
    parser.add_argument("--sep", help="CSV/TSV field separator (\\t: a tab); default: sniffed from the file")
    parser.add_argument("--positive", help="binary: the label encoded as 1 (default: the minority class)")
    parser.add_argument("--force", action="store_true", help="overwrite uncommitted params.yaml and schema")
    parser.add_argument(
        "--budget",
        default=f"{DEFAULT_MINUTES:g}m",
        help="minutes for the next `make run` (10m, 90s, 1.5h), measured here; quick: a few trials per family",
    )
    args = parser.parse_args()
    minutes = None if args.budget == "quick" else parse_minutes(args.budget)
    template: Any = load_round_trip()
    schema_path = Path(template["dataset"]["schema"])
    if not args.force:
        refuse_uncommitted([PARAMS_FILE, schema_path])
    # Every check first: nothing is written or copied until the data passed them all
    files = data_files(args.data)
    sep = separator(files, args.sep)
    frame = read_all(files, sep)
    check_target(frame, args.target)
    known = without_placeholders(frame[[args.target]], placeholders(frame))[args.target].dropna()
    task = args.task or infer_task(known)
    check_task(known, task, args.target)  # before the profile: its leak check would fail on a misfit
    check_positive(args.positive, task, class_labels(known), args.target)
    name = canonical_name(files[0].stem) or "data"
    found = profile(
        frame, args.target, task, seed=int(template["curate"]["seed"]), positive_label=args.positive
    )
    check_features([str(column) for column in frame.columns], args.target, found.drops)
    folder, source, copy = placement(files, name)
    proposed = propose(
        template,
        found,
        name=name,
        target=args.target,
        source=source,
        sep=sep,
        rows=len(frame),
        quick=minutes is None,
    )
    written = dump_round_trip(proposed)
    params = parse_params(yaml.safe_load(written))  # as the stages will read it, with the same checks
    check_rows(len(known), params.curate.split)
    schema_text = dump_schema(infer_schema(frame, params), source)
    refuse_git_tracked(folder)
    track(files, folder, copy)
    write_text(PARAMS_FILE, written)
    write_text(schema_path, schema_text)
    write_json(UNDO_RECORD, {"folder": folder.as_posix(), "copied": copy, "schema": schema_path.as_posix()})
    print(summary(found, params, PARAMS_FILE, schema_path, source, frame))
    if minutes is not None:
        apply_budget(minutes)


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
