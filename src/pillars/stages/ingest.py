"""Pillar 1, ingest: read every source named in params and union them into data/raw/ with a manifest."""

import json
import os
import re
from glob import glob
from http import HTTPStatus
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy
import urllib3
from sqlalchemy.engine import make_url
from urllib3.util import Retry

from pillars.core import layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import first_line, frame_fingerprint, read_csv, read_file, write_json, write_parquet
from pillars.core.params import FileSource, HttpSource, IngestParams, SqlSource, load_params

SOURCE_COLUMN = "_source"
RETRIED_STATUSES = (429, 500, 502, 503, 504)
# urllib3 names its connection object before the cause ("HTTPConnection(host=..., port=...): ..."): the URL
# is in our message already
CONNECTION_PREFIX = re.compile(
    r"^\S*\((host=[^)]*)\): (Failed to establish a new connection: )?"
)  # a client error does not go away by asking again


def read_file_source(source: FileSource) -> tuple[pd.DataFrame, str]:
    """Read a file or every file a glob matches, in sorted order so the union is deterministic."""
    is_pattern = any(character in source.path for character in "*?[")
    # glob.glob, not Path.glob: the pattern may be absolute
    paths = sorted(glob(source.path, recursive=True)) if is_pattern else [source.path]  # noqa: PTH207
    paths = [path for path in paths if Path(path).is_file()]
    if not paths:
        raise PillarsError(f"source {source.name!r}: no file matches {source.path!r}")
    frames = [read_file(Path(path), source.format) for path in paths]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0], ", ".join(paths)


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


READERS = {"file": read_file_source, "sql": read_sql_source, "http": read_http_source}


def union_sources(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Stack the sources with a `_source` column; they must share one column set.

    A column whose type differs between sources is kept as text, for validate_data to parse.
    """
    names = list(frames)
    first = frames[names[0]]
    for name in names[1:]:
        if set(frames[name].columns) != set(first.columns):
            missing = sorted(set(first.columns) - set(frames[name].columns))
            extra = sorted(set(frames[name].columns) - set(first.columns))
            raise PillarsError(
                f"source {name!r}: columns differ from source {names[0]!r} (missing {missing}, extra {extra})"
            )
    aligned = [frames[name][list(first.columns)] for name in names]
    mixed = [column for column in first.columns if len({str(frame[column].dtype) for frame in aligned}) > 1]
    if mixed:
        aligned = [frame.astype({column: "str" for column in mixed}) for frame in aligned]
    raw = pd.concat(aligned, ignore_index=True) if len(aligned) > 1 else aligned[0].reset_index(drop=True)
    raw[SOURCE_COLUMN] = pd.Series(np.repeat(names, [len(frame) for frame in aligned]), dtype="str")
    return raw


def ingest(params: IngestParams) -> tuple[pd.DataFrame, dict]:
    """Read every source and return the union plus its manifest (rows, columns, fingerprint per source)."""
    frames: dict[str, pd.DataFrame] = {}
    entries = []
    for source in params.sources:
        frame, location = READERS[source.kind](source)
        if frame.empty:
            raise PillarsError(f"source {source.name!r} ({location}): no rows")
        bad_names = [column for column in frame.columns if not isinstance(column, str) or not column.strip()]
        if bad_names or SOURCE_COLUMN in frame.columns:
            raise PillarsError(
                f"source {source.name!r} ({location}): bad column names {bad_names or [SOURCE_COLUMN]}"
            )
        repeated = sorted(set(frame.columns[frame.columns.duplicated()]))
        if repeated:
            raise PillarsError(
                f"source {source.name!r} ({location}): columns {repeated} appear more than once"
            )
        frames[source.name] = frame
        entries.append(
            {
                "name": source.name,
                "kind": source.kind,
                "location": location,
                "rows": len(frame),
                "columns": list(frame.columns),
                "fingerprint": frame_fingerprint(frame),
            }
        )
    raw = union_sources(frames)
    manifest = {"rows": len(raw), "columns": list(raw.columns), "sources": entries}
    return raw, manifest


def main() -> None:
    params = load_params()
    raw, manifest = ingest(params.ingest)
    write_parquet(layout.RAW_DATA, raw)
    write_json(layout.RAW_MANIFEST, manifest)
    print(f"ingest: {manifest['rows']} rows from {len(manifest['sources'])} source(s) -> {layout.RAW_DIR}")


if __name__ == "__main__":
    run_cli(main)
