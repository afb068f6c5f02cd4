"""Pillar 1, ingest: real files, a real SQLite database, a real HTTP server on 127.0.0.1, and PostgreSQL
where a server can be started here."""

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from pillars.core.errors import PillarsError
from pillars.core.params import IngestParams, parse_params
from pillars.stages.ingest import SOURCE_COLUMN, ingest
from tests.helpers import deep_merge

FRAME = pd.DataFrame(
    {"age": [25, 38, 28], "job": ["Private", "Local-gov", "?"], "label": ["no", "yes", "no"]}
)


def sources(*entries: dict) -> IngestParams:
    return IngestParams.model_validate({"sources": list(entries)})


def file_source(path: Path | str, name: str = "local", **extra: str) -> dict:
    return {"kind": "file", "name": name, "path": str(path), **extra}


@pytest.mark.parametrize(
    ("suffix", "write"),
    [
        (".csv", lambda frame, path: frame.to_csv(path, index=False)),
        (".parquet", lambda frame, path: frame.to_parquet(path, index=False)),
        (".jsonl", lambda frame, path: frame.to_json(path, orient="records", lines=True)),
        (".tsv", lambda frame, path: frame.to_csv(path, sep="\t", index=False)),
        (".json", lambda frame, path: frame.to_json(path, orient="records")),
    ],
)
def test_file_formats(tmp_path: Path, suffix: str, write) -> None:
    path = tmp_path / f"people{suffix}"
    write(FRAME, path)
    raw, manifest = ingest(sources(file_source(path)))
    pd.testing.assert_frame_equal(raw.drop(columns=SOURCE_COLUMN), FRAME, check_dtype=False)
    assert manifest["sources"][0]["rows"] == 3
    assert manifest["sources"][0]["columns"] == ["age", "job", "label"]


def test_a_csv_source_names_its_separator(tmp_path: Path) -> None:
    """A semicolon file read as CSV is one column; with `sep` it is the table."""
    path = tmp_path / "people.csv"
    FRAME.to_csv(path, sep=";", index=False)
    raw, _ = ingest(sources(file_source(path, sep=";")))
    pd.testing.assert_frame_equal(raw.drop(columns=SOURCE_COLUMN), FRAME, check_dtype=False)
    assert list(ingest(sources(file_source(path)))[0].columns) == ["age;job;label", SOURCE_COLUMN]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"sep": ";;"}, r"sources\[0\]\.sep: String should have at most 1 character"),
        (
            {"format": "parquet", "sep": ";"},
            r"sources\[0\]: sep: only for CSV and TSV files \(format is parquet\)",
        ),
        ({"format": "xlsx"}, r"sources\[0\]\.format: Input should be"),
        ({"separator": ";"}, r"sources\[0\]\.separator: unknown key"),
    ],
)
def test_bad_file_source_settings_name_the_key(default_params_raw: dict, extra: dict, message: str) -> None:
    raw = {"ingest": {"sources": [file_source("data/x.csv", **extra)]}}
    with pytest.raises(PillarsError, match=rf"params.yaml: ingest\.{message}"):
        parse_params(deep_merge(default_params_raw, raw))


def test_a_json_file_must_hold_a_list_of_records(tmp_path: Path) -> None:
    (tmp_path / "people.json").write_text('{"age": [25, 38]}')
    with pytest.raises(
        PillarsError, match=r"people.json: not a readable json file: expected a list of records"
    ):
        ingest(sources(file_source(tmp_path / "people.json")))


def test_glob_reads_every_file_in_sorted_order(tmp_path: Path) -> None:
    FRAME.iloc[2:].to_csv(tmp_path / "part-2.csv", index=False)
    FRAME.iloc[:2].to_csv(tmp_path / "part-1.csv", index=False)
    raw, manifest = ingest(sources(file_source(tmp_path / "part-*.csv")))
    assert raw["age"].tolist() == [25, 38, 28]
    assert "part-1.csv" in manifest["sources"][0]["location"]


def test_sources_are_unioned_with_a_source_column(tmp_path: Path) -> None:
    FRAME.to_csv(tmp_path / "a.csv", index=False)
    FRAME[["label", "age", "job"]].iloc[:1].to_parquet(tmp_path / "b.parquet")
    raw, manifest = ingest(
        sources(file_source(tmp_path / "a.csv", "a"), file_source(tmp_path / "b.parquet", "b"))
    )
    assert raw[SOURCE_COLUMN].tolist() == ["a", "a", "a", "b"]
    assert list(raw.columns) == ["age", "job", "label", SOURCE_COLUMN]
    assert manifest["rows"] == 4


def test_fingerprint_follows_content_not_format(tmp_path: Path) -> None:
    FRAME.to_parquet(tmp_path / "a.parquet")
    FRAME.to_parquet(tmp_path / "b.parquet", compression="gzip")
    FRAME.assign(age=[25, 38, 29]).to_parquet(tmp_path / "c.parquet")
    prints = [
        ingest(sources(file_source(tmp_path / name)))[1]["sources"][0]["fingerprint"]
        for name in ("a.parquet", "b.parquet", "c.parquet")
    ]
    assert prints[0] == prints[1] != prints[2]


def test_sqlite_query(tmp_path: Path) -> None:
    database = tmp_path / "people.db"
    with sqlite3.connect(database) as connection:
        FRAME.to_sql("people", connection, index=False)
    raw, manifest = ingest(
        sources(
            {
                "kind": "sql",
                "name": "db",
                "url": f"sqlite:///{database}",
                "query": "SELECT * FROM people WHERE age > 26",
            }
        )
    )
    assert raw["age"].tolist() == [38, 28]
    assert manifest["sources"][0]["location"] == f"sqlite:///{database}"


def test_sql_error_names_the_source(tmp_path: Path) -> None:
    database = tmp_path / "empty.db"
    sqlite3.connect(database).close()
    with pytest.raises(PillarsError, match=r"source 'db' \(sqlite:///.*\): .*no such table: people"):
        ingest(
            sources(
                {"kind": "sql", "name": "db", "url": f"sqlite:///{database}", "query": "SELECT * FROM people"}
            )
        )


class Api(BaseHTTPRequestHandler):
    """A small data API: CSV, JSON with a records key, a token-protected route and a flaky route."""

    failures_left = 0

    def do_GET(self) -> None:
        if self.path == "/people.csv":
            self._send(200, FRAME.to_csv(index=False).encode(), "text/csv")
        elif self.path == "/people.json":
            self._send(
                200, json.dumps({"data": FRAME.to_dict(orient="records")}).encode(), "application/json"
            )
        elif self.path == "/private.csv":
            authorized = self.headers.get("Authorization") == "Bearer s3cret"
            self._send(
                200 if authorized else 401,
                FRAME.to_csv(index=False).encode() if authorized else b"no",
                "text/csv",
            )
        elif self.path == "/flaky.csv":
            if Api.failures_left > 0:
                Api.failures_left -= 1
                self._send(503, b"busy", "text/plain")
            else:
                self._send(200, FRAME.to_csv(index=False).encode(), "text/csv")
        elif self.path == "/slow.csv":
            time.sleep(2)
            self._send(200, b"a\n1\n", "text/csv")
        elif self.path == "/empty.csv":
            self._send(200, b"age,job,label\n", "text/csv")
        else:
            self._send(404, b"not found", "text/plain")

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def http_source(url: str, **extra: object) -> dict:
    return {"kind": "http", "name": "api", "url": url, "format": "csv", "backoff_s": 0.01, **extra}


def test_http_csv_and_json(api: str) -> None:
    from_csv, _ = ingest(sources(http_source(f"{api}/people.csv")))
    from_json, manifest = ingest(
        sources(http_source(f"{api}/people.json", format="json", records_key="data"))
    )
    pd.testing.assert_frame_equal(from_csv, from_json)
    assert manifest["sources"][0]["location"] == f"{api}/people.json"


def test_http_bearer_token_from_environment(api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    source = http_source(f"{api}/private.csv", token_env="PILLARS_TEST_TOKEN")
    monkeypatch.delenv("PILLARS_TEST_TOKEN", raising=False)
    with pytest.raises(PillarsError, match="environment variable PILLARS_TEST_TOKEN is not set"):
        ingest(sources(source))
    monkeypatch.setenv("PILLARS_TEST_TOKEN", "wrong")
    with pytest.raises(PillarsError, match=r"failed after 1 attempt\(s\): HTTP 401"):
        ingest(sources(source))
    monkeypatch.setenv("PILLARS_TEST_TOKEN", "s3cret")
    raw, manifest = ingest(sources(source))
    assert len(raw) == 3
    assert "s3cret" not in json.dumps(manifest)


def test_http_retries_server_errors(api: str) -> None:
    Api.failures_left = 2
    raw, _ = ingest(sources(http_source(f"{api}/flaky.csv", retries=2)))
    assert len(raw) == 3
    Api.failures_left = 5
    with pytest.raises(PillarsError, match=r"failed after 3 attempt\(s\): HTTP 503"):
        ingest(sources(http_source(f"{api}/flaky.csv", retries=2)))


def test_http_timeout(api: str) -> None:
    started = time.monotonic()
    with pytest.raises(PillarsError, match=r"failed after 1 attempt\(s\): .*timed out"):
        ingest(sources(http_source(f"{api}/slow.csv", timeout_s=0.2, retries=0)))
    assert time.monotonic() - started < 2


def test_unreachable_url() -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(
        PillarsError,
        match=rf"source 'api' \(http://127.0.0.1:{port}/x.csv\): failed after 2 attempt\(s\): .*refused",
    ):
        ingest(sources(http_source(f"http://127.0.0.1:{port}/x.csv", retries=1)))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PAR1\x00\x01garbage", r"people.parquet: not a readable parquet file"),
        (b"", r"people.parquet: not a readable parquet file"),
    ],
)
def test_corrupt_file(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "people.parquet").write_bytes(content)
    with pytest.raises(PillarsError, match=message):
        ingest(sources(file_source(tmp_path / "people.parquet")))


def test_empty_sources(tmp_path: Path, api: str) -> None:
    (tmp_path / "empty.csv").write_text("age,job,label\n")
    with pytest.raises(PillarsError, match=r"source 'local' \(.*empty.csv\): no rows"):
        ingest(sources(file_source(tmp_path / "empty.csv")))
    with pytest.raises(PillarsError, match=r"source 'api' \(.*/empty.csv\): no rows"):
        ingest(sources(http_source(f"{api}/empty.csv")))
    with pytest.raises(PillarsError, match=r"source 'local': no file matches"):
        ingest(sources(file_source(tmp_path / "nothing-*.csv")))


def test_sources_with_different_columns(tmp_path: Path) -> None:
    FRAME.to_csv(tmp_path / "a.csv", index=False)
    FRAME.drop(columns="job").to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(PillarsError, match=r"source 'b': columns differ from source 'a' \(missing \['job'\]"):
        ingest(sources(file_source(tmp_path / "a.csv", "a"), file_source(tmp_path / "b.csv", "b")))


POSTGRES_MISSING = (
    "no PostgreSQL server: set PILLARS_TEST_POSTGRES_URL, or install PostgreSQL (initdb and pg_ctl on PATH or "
    "under /usr/lib/postgresql/<version>/bin; as root, also the `postgres` user and runuser)"
)


def no_postgres() -> None:
    """Skip, saying why; fail instead where a run claims to test PostgreSQL (.ci/run sets
    PILLARS_REQUIRE_POSTGRES=1 after installing it), so a real-database path is never skipped there."""
    if os.environ.get("PILLARS_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{POSTGRES_MISSING} (PILLARS_REQUIRE_POSTGRES=1)")
    pytest.skip(POSTGRES_MISSING)


def postgres_program(name: str) -> str | None:
    """A PostgreSQL server program: on PATH, or Debian's (under the version's own bin folder, the newest)."""
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda path: int(path.parts[-3]))
    return shutil.which(name) or (str(versions[-1]) if versions else None)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL: PILLARS_TEST_POSTGRES_URL, or a throwaway server started here on 127.0.0.1."""
    if url := os.environ.get("PILLARS_TEST_POSTGRES_URL"):
        yield url
        return
    initdb, pg_ctl = postgres_program("initdb"), postgres_program("pg_ctl")
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as the `postgres` system user
        runuser = shutil.which(
            "runuser", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
        )  # root's tools
        if not runuser or subprocess.run(["id", "postgres"], capture_output=True).returncode:
            no_postgres()
        as_user = [runuser, "-u", "postgres", "--"]
    if not initdb or not pg_ctl:
        no_postgres()
    directory = Path(tempfile.mkdtemp(prefix="pillars-pg-"))
    if as_user:
        shutil.chown(directory, "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = directory / "data"
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1"
    subprocess.run(
        [*as_user, pg_ctl, "-D", str(data), "-o", options, "-w", "-l", str(directory / "log"), "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)


def test_postgresql_query(postgres_url: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(postgres_url)
    with engine.begin() as connection:
        FRAME.to_sql("people_ingest_test", connection, index=False, if_exists="replace")
    engine.dispose()
    raw, manifest = ingest(
        sources(
            {
                "kind": "sql",
                "name": "pg",
                "url": postgres_url,
                "query": "SELECT age, job, label FROM people_ingest_test ORDER BY age",
            }
        )
    )
    assert raw["age"].tolist() == [25, 28, 38]
    assert manifest["sources"][0]["location"].startswith("postgresql+psycopg://postgres@127.0.0.1:")


def test_a_column_named_twice_is_named_as_such(tmp_path: Path) -> None:
    """pandas reads a repeated CSV header as `age.1`, which the schema would report as a missing column."""
    (tmp_path / "people.csv").write_text("age,job,age\n25,Private,26\n")
    with pytest.raises(PillarsError, match=r"people.csv: .*the column\(s\) \['age'\] more than once"):
        ingest(sources(file_source(tmp_path / "people.csv")))
    database = tmp_path / "people.db"
    with sqlite3.connect(database) as connection:
        FRAME.to_sql("people", connection, index=False)
    query = {
        "kind": "sql",
        "name": "db",
        "url": f"sqlite:///{database}",
        "query": "SELECT age, job, age FROM people",
    }
    with pytest.raises(PillarsError, match=r"source 'db' .*columns \['age'\] appear more than once"):
        ingest(sources(query))
