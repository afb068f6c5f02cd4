"""`make init` on data it cannot turn into a working pipeline: one line naming the problem and the fix, and
nothing written (params.yaml, the schema, data/external/, DVC). And on the files people bring: a semicolon
CSV, a TSV and a JSON array are read by init and ingest alike; POSITIVE names the label encoded as 1; the
params diff holds only what init decided; `make init-undo` takes an init back."""

import difflib
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pillars.core.errors import PillarsError
from pillars.core.params import parse_params
from pillars.init.__main__ import track
from pillars.stages.ingest import SOURCE_COLUMN, ingest
from tests.helpers import BIN, make, run
from tests.shapes import write_shape


def table(rows: int = 60) -> pd.DataFrame:
    """A small table a model can learn from: a number, a category, an amount and a yes/no target."""
    generator = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "age": generator.integers(18, 80, rows),
            "city": generator.choice(["Oslo", "Rome", "Lima"], rows),
            "income": generator.normal(50, 10, rows).round(1),
            "churn": np.resize(["yes", "no", "no"], rows),
        }
    )


def init(repo: Path, data: Path | str, target: str, *variables: str) -> subprocess.CompletedProcess:
    """make init with the quick budget (no probe: these tests are about what init reads and refuses)."""
    return make(repo, "init", f"DATA={data}", f"TARGET={target}", "BUDGET=quick", *variables, check=False)


def refusal(result: subprocess.CompletedProcess, repo: Path) -> str:
    """The one line init stopped with, after checking it stopped and left the repository as it was."""
    assert result.returncode != 0, result.stdout
    said = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("make")]
    assert len(said) == 1 and said[0].startswith("error: "), result.stderr
    assert run(["git", "status", "--porcelain", "--untracked-files=all"], repo).stdout == ""
    return said[0]


def written(frame: pd.DataFrame, folder: Path, name: str = "mine.csv") -> Path:
    path = folder / name
    frame.to_csv(path, index=False)
    return path


def classes(counts: dict[str, int]) -> pd.DataFrame:
    """`table` with a target of these classes and row counts."""
    labels = [label for label, count in counts.items() for _ in range(count)]
    return table(len(labels)).assign(churn=labels)


REFUSALS: dict[str, tuple[Callable[[], pd.DataFrame], list[str], list[str]]] = {  # data, variables, words
    "only the target": (lambda: table()[["churn"]], [], ["nothing to learn 'churn' from", "no other column"]),
    "every other column dropped": (
        lambda: table().assign(code=[f"c-{row}" for row in range(60)], site="x")[["code", "site", "churn"]],
        [],
        ["nothing to learn", "code (identifier", "site (constant", "add columns"],
    ),
    "too few rows": (lambda: table(9), [], ["9 rows with a target; at least 10 are needed", "valid 0.1"]),
    "placeholders are not targets": (
        lambda: table(14).assign(churn=["yes", "no", "?", "?", "?", "?", "?"] * 2),
        [],
        ["4 rows with a target; at least 10"],
    ),
    "regression on text": (table, ["TASK=regression"], ["TASK=regression", "not numbers", "TASK=binary"]),
    "regression on two values": (
        lambda: table().assign(churn=np.resize([0, 1], 60)),
        ["TASK=regression"],
        ["two values ['0', '1']", "use TASK=binary"],
    ),
    "binary on three values": (
        lambda: table().assign(churn=np.resize(["a", "b", "c"], 60)),
        ["TASK=binary"],
        ["3 values", "TASK=multiclass"],
    ),
    "a class of one row": (
        lambda: classes({"low": 30, "mid": 29, "high": 1}),
        ["TASK=multiclass"],
        ["class(es) ['high'] have a single row", "merge"],
    ),
    "POSITIVE not a label": (
        table,
        ["POSITIVE=Yes"],
        ["POSITIVE='Yes' is not a value of churn", "['no', 'yes']"],
    ),
    "POSITIVE on multiclass": (
        lambda: classes({"low": 20, "mid": 20, "high": 20}),
        ["POSITIVE=low"],
        ["only for a binary target", "multiclass"],
    ),
    "a bad SEP": (table, ["SEP=ab"], ["SEP='ab'", "one character"]),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_init_refuses_in_one_line_and_writes_nothing(case: str, repo_copy: Path, tmp_path: Path) -> None:
    build, variables, words = REFUSALS[case]
    line = refusal(init(repo_copy, written(build(), tmp_path), "churn", *variables), repo_copy)
    assert all(word in line for word in words), line


def test_an_excel_file_is_refused_with_how_to_convert_it(repo_copy: Path, tmp_path: Path) -> None:
    workbook = tmp_path / "mine.xlsx"
    workbook.write_bytes(b"PK\x03\x04")  # no reader is locked: the suffix alone decides
    line = refusal(init(repo_copy, workbook, "churn"), repo_copy)
    assert "'.xlsx'" in line and "save the sheet as CSV" in line


def test_a_data_folder_committed_to_git_is_refused_before_anything_changes(repo_copy: Path) -> None:
    folder = repo_copy / "data/external/mine"
    folder.mkdir()
    written(table(), folder)
    run(["git", "add", "data/external/mine"], repo_copy)
    run(["git", "commit", "-qm", "data in Git"], repo_copy)
    line = refusal(init(repo_copy, "data/external/mine/mine.csv", "churn"), repo_copy)
    assert "data/external/mine holds files tracked by Git" in line
    assert "git rm -r --cached data/external/mine" in line


def test_a_failing_dvc_add_says_why_and_keeps_the_files(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the checks, DVC's own reason is the message (it printed nothing with --quiet)."""
    monkeypatch.chdir(repo_copy)
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")  # the project's dvc
    folder = Path("data/external/adult")  # committed to Git in the template
    with pytest.raises(PillarsError, match=r"dvc add data/external/adult` failed: .*already tracked by SCM"):
        track([folder / "adult.parquet"], folder, copy=False)
    assert run(["git", "status", "--porcelain", "--untracked-files=all"], repo_copy).stdout == ""


def readable(frame: pd.DataFrame, folder: Path, kind: str) -> Path:
    """The table in one of the text forms people bring."""
    writers = {
        "semicolon csv": lambda path: frame.to_csv(path, sep=";", index=False),
        "tsv": lambda path: frame.to_csv(path, sep="\t", index=False),
        "json array": lambda path: frame.to_json(path, orient="records"),
    }
    path = folder / f"mine.{ {'semicolon csv': 'csv', 'tsv': 'tsv', 'json array': 'json'}[kind] }"
    writers[kind](path)
    return path


@pytest.mark.parametrize(("kind", "sep"), [("semicolon csv", ";"), ("tsv", None), ("json array", None)])
def test_init_and_ingest_read_the_file_alike(
    kind: str, sep: str | None, repo_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = table()
    result = init(repo_copy, readable(frame, tmp_path, kind), "churn")
    assert result.returncode == 0, result.stderr
    params = parse_params(yaml.safe_load((repo_copy / "params.yaml").read_text()))
    (source,) = params.ingest.sources
    assert source.sep == sep  # written only when it is not the format's own
    schema = yaml.safe_load((repo_copy / "data/schema.yaml").read_text())["columns"]
    assert list(schema) == list(frame.columns)
    monkeypatch.chdir(repo_copy)
    raw, _ = ingest(params.ingest)
    pd.testing.assert_frame_equal(raw.drop(columns=SOURCE_COLUMN), frame, check_dtype=False)


def test_positive_names_the_label_encoded_as_1(repo_copy: Path, tmp_path: Path) -> None:
    result = init(repo_copy, written(table(), tmp_path), "churn", "POSITIVE=no")
    assert result.returncode == 0, result.stderr
    assert "positive label 'no'" in result.stdout and "minority" not in result.stdout
    assert yaml.safe_load((repo_copy / "params.yaml").read_text())["dataset"]["positive_label"] == "no"


# The keys init sets (dotted paths; everything under them too): any other line of params.yaml stays as it is
INIT_KEYS = (
    "dataset.name",
    "dataset.task",
    "dataset.target",
    "dataset.positive_label",
    "dataset.placeholders",
    "dataset.key_columns",
    "ingest.sources",
    "cleanse.impossible",
    "cleanse.outliers",
    "standardize.aliases",
    "standardize.units",
    "curate.drop",
    "curate.split.method",
    "curate.split.by",
    "train.metric",
    "train.budget",
    "train.families",  # the budget's trial counts and round caps, a count target's losses
    "validate_model.thresholds",
    "validate_model.slices",
    "monitor.replay.shift",
)
KEY_LINE = re.compile(r"^(?P<indent>\s*)(?:- )?(?P<key>[A-Za-z_][\w-]*):")


def key_paths(lines: list[str]) -> list[str | None]:
    """Each line's dotted key path, from the indentation (None: a blank line, a comment or a list item)."""
    stack: list[tuple[int, str]] = []
    paths: list[str | None] = []
    for line in lines:
        match = KEY_LINE.match(line)
        if not match:
            paths.append(".".join(key for _, key in stack) if line.strip() and stack else None)
            continue
        indent = len(match["indent"]) + (2 if line.lstrip().startswith("- ") else 0)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        paths.append(".".join(key for _, key in stack))
    return paths


def test_the_params_diff_holds_only_what_init_decided(repo_copy: Path, tmp_path: Path) -> None:
    """No reflowed line, no trailing space, no comment lost: every changed line is a key init sets."""
    before = (repo_copy / "params.yaml").read_text().splitlines()
    data, target = write_shape("credit_risk", tmp_path)
    assert init(repo_copy, data, target).returncode == 0
    after = (repo_copy / "params.yaml").read_text().splitlines()
    old_paths, new_paths = key_paths(before), key_paths(after)
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    changed = [
        (line, path)
        for tag, old_start, old_end, new_start, new_end in matcher.get_opcodes()
        if tag != "equal"
        for line, path in [
            *zip(before[old_start:old_end], old_paths[old_start:old_end], strict=True),
            *zip(after[new_start:new_end], new_paths[new_start:new_end], strict=True),
        ]
    ]
    assert changed, "init changed nothing"
    outside = [line for line, path in changed if path is None or not path.startswith(INIT_KEYS)]
    assert not outside, outside
    source = after[after.index("ingest:") :][:8]
    assert any("kind: file              # file | sql | http" in line for line in source), source


def test_init_undo_restores_the_tree(repo_copy: Path, tmp_path: Path) -> None:
    assert init(repo_copy, written(table(), tmp_path), "churn").returncode == 0
    assert (repo_copy / "data/external/mine.dvc").exists()
    undone = make(repo_copy, "init-undo")
    assert "removed data/external/mine (init's copy)" in undone.stdout
    assert run(["git", "status", "--porcelain", "--untracked-files=all"], repo_copy).stdout == ""
    assert not (repo_copy / "data/external/mine").exists()
