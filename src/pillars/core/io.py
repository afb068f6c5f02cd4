"""File I/O at the stage edges: atomic writes (no half-written output), JSON, Parquet and source files."""

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


def write_bytes(path: Path, write: Callable[[Path], None]) -> None:
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
    return pq.ParquetFile(require(path)).metadata.num_rows


def write_pickle(path: Path, obj: object) -> None:
    """Pickle a fitted object (e.g. a scikit-learn pipeline) atomically."""
    payload = pickles.dumps(obj)
    write_bytes(path, lambda temporary: temporary.write_bytes(payload))


def read_pickle(path: Path) -> Any:
    """Load an object pickled by this project's own stages (trusted input: never unpickle foreign files)."""
    return pickle.loads(require(path).read_bytes())


def read_csv(source: Path | bytes) -> pd.DataFrame:
    """A CSV file or body. A header that names a column twice is an error: pandas would rename the second
    one (`age.1`), and the schema would then report a missing column somewhere else."""

    def opened() -> Path | io.BytesIO:
        return io.BytesIO(source) if isinstance(source, bytes) else source

    header = pd.read_csv(opened(), header=None, nrows=1, dtype=str, skipinitialspace=True).iloc[0].tolist()
    repeated = sorted({str(name) for name in header if header.count(name) > 1})
    if repeated:
        raise ValueError(f"the header names the column(s) {repeated} more than once")
    return pd.read_csv(opened(), skipinitialspace=True)


FILE_READERS = {
    "csv": read_csv,
    "parquet": pd.read_parquet,
    "jsonl": lambda path: pd.read_json(path, lines=True),
}
SUFFIX_FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def read_file(path: Path, fmt: str) -> pd.DataFrame:
    """One CSV / Parquet / JSON-lines file (format `auto`: by suffix), with an error naming the file."""
    sys.audit(READ_EVENT, str(path))
    fmt = SUFFIX_FORMATS.get(path.suffix.lower(), "") if fmt == "auto" else fmt
    if not fmt:
        raise PillarsError(
            f"{path}: unknown file type {path.suffix!r}; set the source's format to csv/parquet/jsonl"
        )
    try:
        return FILE_READERS[fmt](path)
    except (ValueError, OSError, pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise PillarsError(f"{path}: not a readable {fmt} file: {first_line(error)}") from error


def first_line(error: BaseException) -> str:
    """The first line of an error's message: enough to name the problem without a wall of text."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
