"""Stage data as an ordered sequence of row partitions, so one stage core serves both engines.

`engine: local` holds a stage's input as one in-memory partition, as it always did. `engine: dask` reads a
Parquet file as one partition per row group, each read and processed by a task on the cluster's workers, a
bounded number at a time, with results returned in row order; nothing holds the whole table. Every
partition's index is its rows' positions in the whole table, so row numbers mean the same on both engines.
Outputs are written by `RowGroupWriter`, whose row groups are `compute.partition_rows` rows whatever the
partitioning: both engines write the same bytes.
"""

from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from distributed import Client

from pillars.core.errors import PillarsError
from pillars.core.io import atomic_path, require

Result = TypeVar("Result")
Reader = Callable[[], pd.DataFrame]
TASKS_PER_THREAD = 2  # partitions in flight per worker thread: one computing, one waiting to be collected


class Table(Protocol):
    """A table as row partitions in order. `stream(function, **shared)` calls `function(partition,
    **shared)` on each and yields the results in order: the function must not depend on how the rows are
    partitioned. `shared` values (large ones too) reach each worker once. `columns` and `rows`: the table's
    columns and number of rows."""

    columns: list[str]
    rows: int

    def stream(self, function: Callable[..., Result], **shared: Any) -> Iterator[Result]: ...


class InMemory:
    """Partitions held in this process (`engine: local`): a stage's input is one."""

    def __init__(self, *frames: pd.DataFrame) -> None:
        self.frames = frames
        self.columns = [str(name) for name in frames[0].columns]
        self.rows = sum(len(frame) for frame in frames)

    def stream(self, function: Callable[..., Result], **shared: Any) -> Iterator[Result]:
        for frame in self.frames:
            yield function(frame, **shared)


class OnCluster:
    """Partitions read and processed by tasks on a Dask cluster (`engine: dask`)."""

    def __init__(self, client: Client, readers: list[Reader], columns: list[str], rows: int) -> None:
        self.client = client
        self.readers = readers
        self.columns = columns
        self.rows = rows

    def stream(self, function: Callable[..., Result], **shared: Any) -> Iterator[Result]:
        window = TASKS_PER_THREAD * max(1, sum(self.client.nthreads().values()))
        scattered = {  # a list of one: scatter would spread a dict or list itself
            name: self.client.scatter([value], broadcast=True, hash=False)[0]
            for name, value in shared.items()
        }
        pending: deque = deque()
        for reader in self.readers:
            pending.append(self.client.submit(_apply, function, reader, pure=False, **scattered))
            if len(pending) < window:
                continue
            yield _take(pending)
        while pending:
            yield _take(pending)


def _take(pending: deque) -> Any:
    future = pending.popleft()
    result = future.result()
    future.release()
    return result


def _apply(function: Callable[..., Result], reader: Reader, **shared: Any) -> Result:
    return function(reader(), **shared)


def collect(table: Table, function: Callable[..., Result], **shared: Any) -> list[Result]:
    """Every partition's result, in row order (keep them small: they all come back to this process)."""
    return list(table.stream(function, **shared))


def read_row_group(path: Path, group: int, offset: int) -> pd.DataFrame:
    """One row group of a Parquet file, indexed by its rows' positions in the file."""
    frame = pq.ParquetFile(path).read_row_group(group).to_pandas()
    frame.index = pd.RangeIndex(offset, offset + len(frame))
    return frame


def open_table(path: Path, client: Client | None) -> Table:
    """A Parquet file written by an earlier stage: in memory (no client), or a partition per row group."""
    require(path)
    if client is None:
        return InMemory(pq.read_table(path).to_pandas())
    metadata = pq.ParquetFile(path).metadata
    if metadata.num_row_groups == 0:
        return InMemory(pq.read_table(path).to_pandas())
    readers, offset = [], 0
    for group in range(metadata.num_row_groups):
        readers.append(partial(read_row_group, path.resolve(), group, offset))
        offset += metadata.row_group(group).num_rows
    return OnCluster(client, readers, metadata.schema.to_arrow_schema().names, metadata.num_rows)


class RowGroupWriter:
    """Write DataFrames arriving in row order into one Parquet file with row groups of `row_group_rows`
    rows, so the file's bytes do not depend on how the rows arrived. Every non-empty part must have the
    dtypes of the first (a part that differs is named: it would make the engines differ); empty parts are
    skipped, and give the file's columns only when no part has rows."""

    def __init__(self, path: Path, row_group_rows: int) -> None:
        self.path = path
        self.row_group_rows = row_group_rows
        self.dtypes: pd.Series | None = None
        self.schema: pa.Schema | None = None
        self.empty: pd.DataFrame | None = None
        self.buffered: list[pa.Table] = []
        self.parts = 0
        self.parquet: pq.ParquetWriter | None = None

    def write(self, frame: pd.DataFrame) -> None:
        """Buffer a part, writing every full row group."""
        self.parts += 1
        if not len(frame):
            self.empty = frame
            return
        if self.dtypes is None:
            self.dtypes, self.schema = frame.dtypes, pa.Schema.from_pandas(frame, preserve_index=False)
        elif not frame.dtypes.equals(self.dtypes):
            raise PillarsError(
                f"{self.path}: part {self.parts} differs from the first: {self._differences(frame)}"
            )
        try:
            self.buffered.append(pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise PillarsError(f"{self.path}: part {self.parts}: {error}") from error
        while sum(len(table) for table in self.buffered) >= self.row_group_rows:
            self._emit(self.row_group_rows)

    def _differences(self, frame: pd.DataFrame) -> list[str]:
        assert self.dtypes is not None
        if list(frame.columns) != list(self.dtypes.index):
            return [f"columns {list(frame.columns)}, first {list(self.dtypes.index)}"]
        return [
            f"{name}: {frame[name].dtype}, first {dtype}"
            for name, dtype in self.dtypes.items()
            if frame[name].dtype != dtype
        ]

    def _emit(self, rows: int) -> None:
        assert self.schema is not None
        if self.parquet is None:
            self.parquet = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        table = pa.concat_tables(self.buffered)
        # one contiguous chunk per column: how the rows arrived must not change the pages written
        self.parquet.write_table(table.slice(0, rows).combine_chunks(), row_group_size=rows)
        rest = table.slice(rows)
        self.buffered = [rest] if len(rest) else []

    def finish(self) -> None:
        """Write the last, shorter row group (or the columns of an empty table) and close the file."""
        remaining = sum(len(table) for table in self.buffered)
        if remaining:
            self._emit(remaining)
        if self.parquet is None:
            if self.empty is None:
                raise AssertionError(f"{self.path}: no part was written")
            self.schema = pa.Schema.from_pandas(self.empty, preserve_index=False)
            self.parquet = pq.ParquetWriter(self.path, self.schema, compression="zstd")
            self.parquet.write_table(
                pa.Table.from_pandas(self.empty, schema=self.schema, preserve_index=False)
            )
        self.parquet.close()


@contextmanager
def row_group_writer(path: Path, row_group_rows: int) -> Iterator[RowGroupWriter]:
    """A `RowGroupWriter` whose file replaces `path` atomically when the block succeeds."""
    with atomic_path(path) as temporary:
        writer = RowGroupWriter(temporary, row_group_rows)
        try:
            yield writer
        except BaseException:
            if writer.parquet is not None:
                writer.parquet.close()  # the temporary file goes; the error goes on
            raise
        writer.finish()


def write_table(path: Path, frame: pd.DataFrame, row_group_rows: int) -> None:
    """Write one in-memory frame as `RowGroupWriter` would: the same bytes as the same rows streamed."""
    with row_group_writer(path, row_group_rows) as writer:
        writer.write(frame)
