"""Bad input through the real pipeline: `dvc repro` stops with a message that says what and where,
without a traceback, and leaves no output of the failing stage or any later one."""

import socket
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import run, write_params

pytestmark = pytest.mark.slow

SOURCE = Path("data/external/adult/adult.parquet")
LATER_OUTPUTS = [
    "data/clean",
    "data/standard",
    "data/curated",
    "data/features",
    "models/feature_pipeline.pkl",
]


def corrupt_file(repo: Path) -> None:
    (repo / SOURCE).write_bytes(b"PAR1 this is not parquet")


def missing_column(repo: Path) -> None:
    pd.read_parquet(repo / SOURCE).drop(columns="race").to_parquet(repo / SOURCE)


def wrong_type(repo: Path) -> None:
    frame = pd.read_parquet(repo / SOURCE).astype({"age": "str"})
    frame.loc[10, "age"] = "forty"
    frame.to_parquet(repo / SOURCE)


def infinite_values(repo: Path) -> None:
    frame = pd.read_parquet(repo / SOURCE).astype({"capital-gain": "float64"})
    frame.loc[[3, 5], "capital-gain"] = float("inf")
    frame.to_parquet(repo / SOURCE)


def null_where_the_schema_allows_none(repo: Path) -> None:
    frame = pd.read_parquet(repo / SOURCE).astype({"age": "float64"})
    frame.loc[7, "age"] = None
    frame.to_parquet(repo / SOURCE)


def column_named_twice(repo: Path) -> None:
    """A CSV source whose header names `age` twice (pandas would read the second as `age.1`)."""
    frame = pd.read_parquet(repo / SOURCE).head(50)
    frame.insert(3, "age", frame.pop("education"), allow_duplicates=True)
    frame.to_csv(repo / "data/external/adult/adult.csv", index=False)
    write_params(
        repo, ingest={"sources": [{"kind": "file", "name": "adult", "path": "data/external/adult/adult.csv"}]}
    )


def empty_source(repo: Path) -> None:
    pd.read_parquet(repo / SOURCE).head(0).to_parquet(repo / SOURCE)


def unreachable_url(repo: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = {
        "kind": "http",
        "name": "api",
        "url": f"http://127.0.0.1:{port}/adult.csv",
        "format": "csv",
        "retries": 0,
    }
    write_params(repo, ingest={"sources": [source]})


@pytest.mark.parametrize(
    ("damage", "message", "failed_outputs"),
    [
        (corrupt_file, "adult.parquet: not a readable parquet file", ["data/raw"]),
        (empty_source, "source 'adult' (data/external/adult/adult.parquet): no rows", ["data/raw"]),
        (unreachable_url, "failed after 1 attempt(s): [Errno 111] Connection refused", ["data/raw"]),
        (missing_column, "column 'race': missing_column", ["metrics/data_validation.json"]),
        (
            wrong_type,
            "column 'age': not_integer x1: e.g. ['forty'] at rows [10]",
            ["metrics/data_validation.json"],
        ),
        (
            infinite_values,
            "column 'capital-gain': not_finite x2: e.g. ['inf'] at rows [3, 5]",
            ["metrics/data_validation.json"],
        ),
        (
            null_where_the_schema_allows_none,
            "column 'age': missing_value x1: e.g. ['nan'] at rows [7]",
            ["metrics/data_validation.json"],
        ),
        (
            column_named_twice,
            "adult.csv: not a readable csv file: the header names the column(s) ['age'] more than once",
            ["data/raw"],
        ),
    ],
    ids=[
        "corrupt-file",
        "empty-source",
        "unreachable-url",
        "missing-column",
        "wrong-type",
        "infinite-values",
        "null-in-non-nullable",
        "column-named-twice",
    ],
)
def test_bad_input_stops_cleanly(
    repo_copy: Path, damage: Callable[[Path], None], message: str, failed_outputs: list[str]
) -> None:
    damage(repo_copy)
    result = run(["dvc", "repro"], repo_copy, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in output
    assert "Traceback" not in output
    for path in [*failed_outputs, *LATER_OUTPUTS]:
        assert not (repo_copy / path).exists(), f"{path} was left behind"
