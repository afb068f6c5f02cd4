"""File I/O at the stage edges: atomic writes (no half-written output), JSON, Parquet and source files."""

import csv
import io
import json
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pillars.core import pickles
from pillars.core.errors import PillarsError


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` and move it into place only if the block succeeds; if it fails,
    the folders made for it go too (a stage that stops leaves nothing behind)."""
    made = [folder for folder in path.parents if not folder.exists()]  # innermost first
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    Path(temporary).chmod(0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield Path(temporary)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        for folder in made:
            with suppress(OSError):  # not empty: another output is in it
                folder.rmdir()
        raise


def write_bytes(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write` on a temporary file that replaces `path` atomically when it returns."""
    with atomic_path(path) as temporary:
        write(temporary)


def write_json(path: Path, payload: Any) -> None:
    """Write JSON with sorted keys and a trailing newline, so that equal content gives equal bytes."""
    write_text(
        path, json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    )


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    write_bytes(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


READ_EVENT = "pillars.read"  # an audit event per file read: the tests check each is a declared dep


def require(path: Path) -> Path:
    """`path`, after checking that the earlier stage that writes it has run."""
    sys.audit(READ_EVENT, str(path))  # Parquet is read by Arrow's own file system, which Python never sees
    if not path.exists():
        raise PillarsError(f"{path}: missing; run the stage that writes it first (dvc repro)")
    return path


def read_json(path: Path) -> Any:
    """Read a JSON file written by an earlier stage."""
    return json.loads(require(path).read_text(encoding="utf-8"))


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """Write a DataFrame to Parquet without the index and without pandas' run-dependent metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    write_bytes(path, lambda temporary: pq.write_table(table, temporary, compression="zstd"))


def read_parquet(path: Path) -> pd.DataFrame:
    """Read a Parquet file written by an earlier stage."""
    return pd.read_parquet(require(path))


def parquet_rows(path: Path) -> int:
    """How many rows a Parquet file written by an earlier stage holds, from its footer alone."""
    return int(pq.ParquetFile(require(path)).metadata.num_rows)


def write_pickle(path: Path, obj: object) -> None:
    """Pickle a fitted object (e.g. a scikit-learn pipeline) atomically."""
    payload = pickles.dumps(obj)
    write_bytes(path, lambda temporary: temporary.write_bytes(payload))


def read_pickle(path: Path) -> Any:
    """Load an object pickled by this project's own stages (trusted input: never unpickle foreign files)."""
    return pickle.loads(require(path).read_bytes())


def read_csv(source: Path | bytes, sep: str = ",") -> pd.DataFrame:
    """A CSV file or body, its fields separated by `sep`. A header that names a column twice is an error:
    pandas would rename the second one (`age.1`), and the schema would then report a missing column
    somewhere else."""

    def opened() -> Path | io.BytesIO:
        return io.BytesIO(source) if isinstance(source, bytes) else source

    header = pd.read_csv(opened(), sep=sep, header=None, nrows=1, dtype=str, skipinitialspace=True)
    names = header.iloc[0].tolist()
    repeated = sorted({str(name) for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"the header names the column(s) {repeated} more than once")
    return pd.read_csv(opened(), sep=sep, skipinitialspace=True)


def read_json_records(path: Path) -> pd.DataFrame:
    """A JSON file holding one list of records (objects with the columns as keys)."""
    records = json.loads(path.read_bytes())
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise ValueError("expected a list of records ([{column: value, ...}, ...])")
    return pd.DataFrame.from_records(records)


OWN_SEPARATORS = {"csv": ",", "tsv": "\t"}  # delimited text formats, and the field separator each means
# Each format's reader, given the file and the field separator (None: the format's own; text formats only)
FILE_READERS: dict[str, Callable[[Path, str | None], pd.DataFrame]] = {
    "csv": lambda path, sep: read_csv(path, sep or OWN_SEPARATORS["csv"]),
    "tsv": lambda path, sep: read_csv(path, sep or OWN_SEPARATORS["tsv"]),
    "parquet": lambda path, _: pd.read_parquet(path),
    "jsonl": lambda path, _: pd.read_json(path, lines=True),
    "json": lambda path, _: read_json_records(path),
}
SNIFFED_SEPARATORS = ",;\t|"
SNIFF_BYTES = 65_536
SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}
# Formats people bring that no locked dependency reads: how to convert them
CONVERT_HINTS = {
    ".xlsx": "an Excel workbook: save the sheet as CSV (Excel: File > Save As > CSV UTF-8) and use that file",
    ".xls": "an Excel workbook: save the sheet as CSV (Excel: File > Save As > CSV UTF-8) and use that file",
    ".ods": "a spreadsheet: save the sheet as CSV and use that file",
}


def file_format(path: Path) -> str:
    """A file's format from its suffix; an error naming the file, and what to do, for any other suffix."""
    suffix = path.suffix.lower()
    if suffix in SUFFIX_FORMATS:
        return SUFFIX_FORMATS[suffix]
    known = ", ".join(SUFFIX_FORMATS)
    hint = CONVERT_HINTS.get(suffix, f"use one of {known}, or set the source's format")
    raise PillarsError(f"{path}: unknown file type {suffix!r}; {hint}")


def sniff_separator(path: Path) -> str:
    """The field separator of a delimited text file (one of `SNIFFED_SEPARATORS`), from its first lines;
    a comma when they do not tell (one column)."""
    with path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES).decode("utf-8", errors="replace")
    lines = sample.splitlines()
    whole = "\n".join(lines[:-1] if len(lines) > 1 and len(sample) == SNIFF_BYTES else lines)
    try:
        return csv.Sniffer().sniff(whole, delimiters=SNIFFED_SEPARATORS).delimiter
    except csv.Error:
        return ","


def read_file(path: Path, fmt: str, sep: str | None = None) -> pd.DataFrame:
    """One file of a format in FILE_READERS (`auto`: by suffix), its fields separated by `sep` (delimited
    text; None: the format's own), with an error naming the file."""
    sys.audit(READ_EVENT, str(path))
    fmt = file_format(path) if fmt == "auto" else fmt
    try:
        return FILE_READERS[fmt](path, sep)
    except (ValueError, OSError, pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise PillarsError(f"{path}: not a readable {fmt} file: {first_line(error)}") from error


def first_line(error: BaseException) -> str:
    """The first line of an error's message: enough to name the problem without a wall of text."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
