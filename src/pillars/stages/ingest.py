"""Pillar 1, ingest: read every source named in params and union them into data/raw/ with a manifest.

Each file is a partition (on a Dask cluster, read by a worker; SQL and HTTP sources are read here). A first
pass learns every partition's columns and dtypes; a column whose dtype differs between a source's files gets
the type pandas would give their concatenation, and one whose dtype differs between sources becomes text.
The second pass writes the union in order, so nothing holds every row at once.
"""

import hashlib
import json
import os
import re
from collections.abc import Callable
from functools import partial
from glob import glob
from http import HTTPStatus
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import sqlalchemy
import urllib3
from distributed import Client
from sqlalchemy.engine import make_url
from urllib3.util import Retry

from pillars.compute.cluster import engine_client
from pillars.compute.partitions import InMemory, OnCluster, Reader, Table, collect, row_group_writer
from pillars.core import layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import first_line, read_csv, read_file, write_json
from pillars.core.params import FileSource, HttpSource, IngestParams, SqlSource, load_params

SOURCE_COLUMN = "_source"
RETRIED_STATUSES = (429, 500, 502, 503, 504)
# urllib3 names its connection object before the cause ("HTTPConnection(host=..., port=...): ..."): the URL
# is in our message already
CONNECTION_PREFIX = re.compile(
    r"^\S*\((host=[^)]*)\): (Failed to establish a new connection: )?"
)  # a client error does not go away by asking again


def file_paths(source: FileSource) -> list[str]:
    """The file, or every file a glob matches, in sorted order so the union is deterministic."""
    is_pattern = any(character in source.path for character in "*?[")
    # glob.glob, not Path.glob: the pattern may be absolute
    paths = sorted(glob(source.path, recursive=True)) if is_pattern else [source.path]  # noqa: PTH207
    paths = [path for path in paths if Path(path).is_file()]
    if not paths:
        raise PillarsError(f"source {source.name!r}: no file matches {source.path!r}")
    return paths


def read_sql_source(source: SqlSource) -> tuple[pd.DataFrame, str]:
    """Run the query on the database; the location in the manifest never shows a password."""
    location = make_url(source.url).render_as_string(hide_password=True)
    try:
        engine = sqlalchemy.create_engine(source.url)
        with engine.connect() as connection:
            frame = pd.read_sql_query(sqlalchemy.text(source.query), connection)
        engine.dispose()
    except (sqlalchemy.exc.SQLAlchemyError, pd.errors.DatabaseError, ImportError) as error:
        raise PillarsError(f"source {source.name!r} ({location}): {first_line(error)}") from error
    return frame, location


def read_http_source(source: HttpSource) -> tuple[pd.DataFrame, str]:
    """GET the endpoint with timeout, retries with exponential backoff, and an optional bearer token."""
    headers = {"Accept": "text/csv" if source.format == "csv" else "application/json"}
    if source.token_env:
        token = os.environ.get(source.token_env)
        if not token:
            raise PillarsError(f"source {source.name!r}: environment variable {source.token_env} is not set")
        headers["Authorization"] = f"Bearer {token}"
    body = _fetch(source, headers)
    try:
        if source.format == "csv":
            return read_csv(body), source.url
        payload = json.loads(body)
        records = (
            payload.get(source.records_key) if source.records_key and isinstance(payload, dict) else payload
        )
        if not isinstance(records, list):
            key = f"key {source.records_key!r}" if source.records_key else "a top-level list of records"
            raise PillarsError(f"source {source.name!r} ({source.url}): JSON has no {key}")
        return pd.DataFrame.from_records(records), source.url
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise PillarsError(
            f"source {source.name!r} ({source.url}): bad {source.format}: {first_line(error)}"
        ) from error


def _fetch(source: HttpSource, headers: dict[str, str]) -> bytes:
    """GET with urllib3's Retry: connection errors, 429 and 5xx are retried with exponential backoff."""
    retry = Retry(
        total=source.retries,
        backoff_factor=source.backoff_s,
        status_forcelist=RETRIED_STATUSES,
        allowed_methods={"GET"},
        raise_on_status=False,
        respect_retry_after_header=False,
    )
    try:
        response = urllib3.request(
            "GET", source.url, headers=headers, timeout=source.timeout_s, retries=retry, preload_content=True
        )
    except urllib3.exceptions.HTTPError as error:
        reason = CONNECTION_PREFIX.sub("", str(getattr(error, "reason", None) or error))
        raise PillarsError(
            f"source {source.name!r} ({source.url}): failed after {source.retries + 1} attempt(s): {reason}"
        ) from None
    if response.status >= HTTPStatus.BAD_REQUEST:
        attempts = len(response.retries.history) + 1 if response.retries else 1
        raise PillarsError(
            f"source {source.name!r} ({source.url}): failed after {attempts} attempt(s): "
            f"HTTP {response.status} {HTTPStatus(response.status).phrase}"
        )
    return response.data


READERS = {"sql": read_sql_source, "http": read_http_source}


def given(frame: pd.DataFrame) -> pd.DataFrame:
    """A reader of a frame read already (SQL and HTTP sources)."""
    return frame


class Partition(NamedTuple):
    """What the first pass learns of one partition: its rows and its columns' dtypes."""

    rows: int
    dtypes: pd.Series


class Source(NamedTuple):
    """One source's partitions, where they came from, and the dtypes of their union."""

    name: str
    kind: str
    location: str
    table: Table
    dtypes: pd.Series


def describe(frame: pd.DataFrame) -> Partition:
    """The first pass over a partition."""
    return Partition(len(frame), frame.dtypes)


def open_source(source: FileSource | SqlSource | HttpSource, client: Client | None) -> Source:
    """A source's partitions (files are read where the engine runs), checked, with their union's dtypes."""
    if source.kind == "file":
        paths = file_paths(source)
        readers: list[Reader] = [
            partial(read_file, Path(path).resolve(), source.format, source.sep) for path in paths
        ]
        location = ", ".join(paths)
    else:
        frame, location = READERS[source.kind](source)
        paths, readers = [location], [partial(given, frame)]
    # columns and rows: learnt next
    table = OnCluster(client, readers, [], 0) if client else InMemory(*[reader() for reader in readers])
    partitions = collect(table, describe)
    where = f"source {source.name!r} ({location})"
    if not sum(partition.rows for partition in partitions):
        raise PillarsError(f"{where}: no rows")
    columns = list(partitions[0].dtypes.index)
    for partition, path in zip(partitions, paths, strict=True):
        if set(partition.dtypes.index) != set(columns):
            raise PillarsError(
                f"{where}: {path} has the columns {list(partition.dtypes.index)}, {paths[0]} {columns}"
            )
    bad_names = [column for column in columns if not isinstance(column, str) or not column.strip()]
    if bad_names or SOURCE_COLUMN in columns:
        raise PillarsError(f"{where}: bad column names {bad_names or [SOURCE_COLUMN]}")
    repeated = sorted({column for column in columns if columns.count(column) > 1})
    if repeated:
        raise PillarsError(f"{where}: columns {repeated} appear more than once")
    # the dtypes pandas gives the concatenation of the partitions
    union = pd.concat(
        [
            pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in partition.dtypes.items()})
            for partition in partitions
        ]
    )
    return Source(source.name, source.kind, location, table, union[columns].dtypes)


def check_columns(sources: list[Source]) -> list[str]:
    """The sources' shared columns (the first source's order); a column whose type differs between
    sources is kept as text, for validate_data to parse."""
    first = sources[0]
    for source in sources[1:]:
        if set(source.dtypes.index) != set(first.dtypes.index):
            missing = sorted(set(first.dtypes.index) - set(source.dtypes.index))
            extra = sorted(set(source.dtypes.index) - set(first.dtypes.index))
            raise PillarsError(
                f"source {source.name!r}: columns differ from source {first.name!r} (missing {missing}, extra {extra})"
            )
    return [
        column for column in first.dtypes.index if len({str(source.dtypes[column]) for source in sources}) > 1
    ]


def source_part(
    frame: pd.DataFrame, dtypes: pd.Series, name: str, columns: list[str], text: list[str]
) -> tuple[pd.DataFrame, bytes]:
    """One partition of the union (`columns` in order, `text` as text), and the content hashes of its rows
    as the source has them (for the source's fingerprint)."""
    frame = frame[list(dtypes.index)].astype(dtypes.to_dict())
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
    part = frame[columns].astype({column: "str" for column in text}).reset_index(drop=True)
    part[SOURCE_COLUMN] = pd.Series(name, index=part.index, dtype="str")
    return part, hashes


def ingest_into(
    params: IngestParams, write: Callable[[pd.DataFrame], None], client: Client | None = None
) -> dict:
    """Read every source, pass the union to `write` partition by partition, in order, and return the
    manifest (rows, columns and a content fingerprint per source)."""
    sources = [open_source(source, client) for source in params.sources]
    text = check_columns(sources)
    columns = list(sources[0].dtypes.index)
    entries, rows = [], 0
    for source in sources:
        digest = hashlib.sha256(
            json.dumps([[str(name), str(dtype)] for name, dtype in source.dtypes.items()]).encode()
        )
        source_rows = 0
        for part, hashes in source.table.stream(
            partial(source_part, dtypes=source.dtypes, name=source.name, columns=columns, text=text)
        ):
            digest.update(hashes)
            source_rows += len(part)
            write(part)
        rows += source_rows
        entries.append(
            {
                "name": source.name,
                "kind": source.kind,
                "location": source.location,
                "rows": source_rows,
                "columns": list(source.dtypes.index),
                "fingerprint": f"sha256:{digest.hexdigest()}",
            }
        )
    return {"rows": rows, "columns": [*columns, SOURCE_COLUMN], "sources": entries}


def ingest(params: IngestParams, client: Client | None = None) -> tuple[pd.DataFrame, dict]:
    """The union of the sources in one frame, and the manifest."""
    parts: list[pd.DataFrame] = []
    manifest = ingest_into(params, parts.append, client)
    return pd.concat(parts, ignore_index=True), manifest


def main() -> None:
    params = load_params()
    with (
        engine_client(params.compute) as client,
        row_group_writer(layout.RAW_DATA, params.compute.partition_rows) as raw,
    ):
        manifest = ingest_into(params.ingest, raw.write, client)
    write_json(layout.RAW_MANIFEST, manifest)
    print(f"ingest: {manifest['rows']} rows from {len(manifest['sources'])} source(s) -> {layout.RAW_DIR}")


if __name__ == "__main__":
    run_cli(main)
