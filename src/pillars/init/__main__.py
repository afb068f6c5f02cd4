"""`make init DATA=<file or glob> TARGET=<column> [TASK=binary|multiclass|regression] [FORCE=1]`.

Copies the data under data/external/<name>/ (tracked by DVC), looks at it (`pillars.init.profile`), and
rewrites params.yaml from the current one (`pillars.init.proposal`: the dataset and its source, the task's
metric and gates, proposed column drops with reasons, slices, the split) and the schema (as `make schema`
infers it). It prints what it decided and what to review; `make run` then runs every stage on the data.
It refuses to overwrite uncommitted changes to params.yaml or the schema unless FORCE=1.
"""

import argparse
import difflib
import shutil
from glob import glob
from pathlib import Path
from typing import Any

import pandas as pd

from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import SUFFIX_FORMATS, read_file, write_bytes
from pillars.core.params import PARAMS_FILE, Params
from pillars.core.process import run
from pillars.core.schema import canonical_name, dump_schema, infer_schema
from pillars.init.budget import DEFAULT_MINUTES, apply_budget, parse_minutes
from pillars.init.params_file import load_round_trip, write_round_trip
from pillars.init.profile import Profile, profile
from pillars.init.proposal import propose, snake_names

EXTERNAL_DIR = Path("data/external")


def refuse_uncommitted(paths: list[Path]) -> None:
    """Stop when params.yaml or the schema has changes Git does not have (FORCE=1 overwrites them)."""
    changed = run(["git", "status", "--porcelain", "--", *(str(path) for path in paths)]).stdout.strip()
    if changed:
        raise PillarsError(
            f"uncommitted changes would be overwritten:\n{changed}\ncommit or stash them, or run again with FORCE=1"
        )


def data_files(pattern: str) -> list[Path]:
    """The files DATA names (a file, or a glob), in sorted order; only formats ingest reads."""
    is_pattern = any(character in pattern for character in "*?[")
    paths = sorted(Path(path) for path in glob(pattern, recursive=True)) if is_pattern else [Path(pattern)]  # noqa: PTH207
    files = [path for path in paths if path.is_file()]
    if not files:
        raise PillarsError(f"DATA={pattern}: no such file")
    unknown = [str(path) for path in files if path.suffix.lower() not in SUFFIX_FORMATS]
    if unknown:
        raise PillarsError(f"DATA: {unknown}: not CSV, Parquet or JSON lines ({', '.join(SUFFIX_FORMATS)})")
    return files


def copied(files: list[Path], name: str) -> tuple[Path, str]:
    """The files under data/external/<name>/ (copied unless they are there already): the folder and the
    ingest source's path (the file, or a glob over the copies)."""
    folder = EXTERNAL_DIR / name
    inside = all(path.resolve().is_relative_to(folder.resolve()) for path in files)
    if not inside:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for path in files:
            shutil.copyfile(path, folder / path.name)
    targets = [folder / path.name for path in files] if not inside else files
    if len(targets) == 1:
        return folder, targets[0].as_posix()
    suffixes = {path.suffix.lower() for path in targets}
    return folder, (folder / f"*{suffixes.pop()}").as_posix() if len(suffixes) == 1 else (
        folder / "*"
    ).as_posix()


def read_all(files: list[Path]) -> pd.DataFrame:
    """The data as ingest will read it (the same reader), all files stacked."""
    frames = [read_file(path, "auto") for path in files]
    columns = {tuple(frame.columns) for frame in frames}
    if len(columns) > 1:
        raise PillarsError(f"DATA: the files do not share one column set: {sorted(columns)}")
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def check_target(frame: pd.DataFrame, target: str) -> None:
    if target not in frame:
        close = difflib.get_close_matches(target, [str(name) for name in frame.columns], n=3)
        hint = f"; did you mean {close}?" if close else ""
        raise PillarsError(
            f"TARGET={target!r} is not a column of the data{hint} (columns: {list(frame.columns)})"
        )
    if frame[target].notna().sum() < 2:
        raise PillarsError(f"TARGET={target!r}: fewer than 2 rows have a value; nothing to learn")


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
    parser.add_argument("--data", required=True, help="a CSV, Parquet or JSON-lines file, or a glob of them")
    parser.add_argument("--target", required=True, help="the column to predict (its raw name)")
    parser.add_argument("--task", choices=["binary", "multiclass", "regression"], help="default: inferred")
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
    files = data_files(args.data)
    frame = read_all(files)
    check_target(frame, args.target)
    name = canonical_name(files[0].stem) or "data"
    found = profile(frame, args.target, args.task, seed=int(template["curate"]["seed"]))
    folder, source = copied(files, name)
    proposed = propose(
        template,
        found,
        name=name,
        target=args.target,
        source=source,
        rows=len(frame),
        quick=minutes is None,
    )
    params = write_round_trip(proposed)  # checked as the stages will read it
    schema = infer_schema(frame, params)
    schema_text = dump_schema(schema, source)
    write_bytes(schema_path, lambda path: path.write_text(schema_text, encoding="utf-8"))
    run(["dvc", "add", "--quiet", str(folder)])
    print(summary(found, params, PARAMS_FILE, schema_path, source, frame))
    if minutes is not None:
        apply_budget(minutes)


if __name__ == "__main__":
    run_cli(main)
