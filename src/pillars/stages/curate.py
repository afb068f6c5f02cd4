"""Pillar 5, curate: a deterministic train / valid / test / holdout split and the column selection.

Three split methods (`curate.split.method`):
- `hash` (the default): a row's split depends only on its own content and the seed (a hash), so a row keeps
  its split when data is appended. Hash buckets are independent of the label, so every split gets each class
  in the same proportion up to sampling noise (stratified in expectation, not by exact counts, which would
  move rows between splits whenever data is appended).
- `stratified` (classification): exact per-class counts. Every class is divided between the splits as
  closely to the fractions as rounding allows (largest remainders), after a seeded shuffle of the rows in
  an order fixed by their content, so the split does not depend on the input's row order. For small data,
  where the hash's noise matters; appending data may move rows between splits.
- `time`: rows ordered by the column `curate.split.by`; the earliest go to train, then valid, test and
  holdout, so no model is assessed on the past. Rows without a `by` value cannot be placed in time and go to
  train.

The per-split class shares and their largest gap are reported; a class missing from train stops the run, one
missing from valid or test is recorded (`absent_classes`). Every split method returns the same thing: a categorical split name per row.
"""

import contextlib
from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd
from pandas.api import types

from pillars.compute.cluster import engine_client
from pillars.compute.partitions import InMemory, Table, collect, open_table, row_group_writer
from pillars.core import data_handoffs, layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.params import CurateParams, Params, load_params
from pillars.core.schema import ROW_COLUMN, canonical_name, is_lineage

HASH_BITS = 53
KEY_HASH, ROW_HASH = "_key_hash", "_row_hash"  # a row's hash over the key columns, over every column


def row_hash(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """A 64-bit content hash of every row over `columns` (independent of the index and of row order)."""
    return pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()


def split_assignment(
    frame: pd.DataFrame, key_columns: list[str], seed: int, fractions: dict[str, float]
) -> pd.Series:
    """The split of every row, from a seeded hash of its key columns."""
    return _named(hash_codes(row_hash(frame, key_columns), seed, fractions), fractions, frame.index)


def hash_codes(key_hash: np.ndarray, seed: int, fractions: dict[str, float]) -> np.ndarray:
    """Each row's split code from the hash of its key columns, salted with the seed."""
    salted = pd.util.hash_array(key_hash ^ np.uint64(seed))
    position = (salted >> np.uint64(64 - HASH_BITS)).astype("float64") / float(2**HASH_BITS)
    edges = np.cumsum(list(fractions.values()))
    edges[-1] = 1.0  # rounding must never leave a row without a split
    return np.searchsorted(edges, position, side="right")


def _named(codes: np.ndarray, fractions: dict[str, float], index: pd.Index) -> pd.Series:
    return pd.Series(pd.Categorical.from_codes(codes, categories=list(fractions)), index=index)


def allocate(totals: np.ndarray, fractions: dict[str, float]) -> np.ndarray:
    """Rows per split for each total (one per class, or one in all): the floor of total x fraction, and the
    rows left over to the largest remainders (ties to the earlier split), so every count is within one row
    of its ideal and the counts add up to the total. Shape: (totals, splits)."""
    ideal = np.outer(totals, np.fromiter(fractions.values(), dtype="float64"))
    counts = np.floor(ideal + 1e-9).astype("int64")  # 1e-9: 0.7 x 10 is 6.999... in floating point
    short = totals - counts.sum(axis=1)
    remainders = np.round(ideal - counts, 9)  # equal remainders tie exactly, whatever the float noise
    remainder_rank = np.argsort(np.argsort(-remainders, axis=1, kind="stable"), axis=1)
    return counts + (remainder_rank < short[:, None])


def _codes_by_rank(rank: np.ndarray, group: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The split code of each row from its rank within its group and its group's counts per split."""
    edges = np.cumsum(counts, axis=1)[group]  # (rows, splits): where each split ends in the row's group
    return (rank[:, None] >= edges).sum(axis=1)


def hashed(frame: pd.DataFrame, key_columns: list[str], keep: list[str]) -> pd.DataFrame:
    """What a split needs of each row: its key hash, its whole-row hash, and the `keep` columns."""
    narrow = frame[keep].copy()
    narrow[KEY_HASH] = row_hash(frame, key_columns)
    narrow[ROW_HASH] = row_hash(frame, list(frame.columns))
    return narrow


def canonical_order(narrow: pd.DataFrame) -> np.ndarray:
    """Row positions in an order fixed by content: by the key hash, then by the hash of the whole row."""
    return np.lexsort((narrow[ROW_HASH].to_numpy(), narrow[KEY_HASH].to_numpy()))


def stratified_assignment(
    frame: pd.DataFrame, key_columns: list[str], target: str, seed: int, fractions: dict[str, float]
) -> pd.Series:
    """Exact stratification: each class divided between the splits by `allocate`, its rows drawn by a seeded
    permutation of the rows in content order (so the input's row order does not matter)."""
    codes = stratified_codes(hashed(frame, key_columns, [target]), target, seed, fractions)
    return _named(codes, fractions, frame.index)


def stratified_codes(narrow: pd.DataFrame, target: str, seed: int, fractions: dict[str, float]) -> np.ndarray:
    """`stratified_assignment`'s split codes, from the rows' hashes and targets (`hashed`)."""
    order = canonical_order(narrow)[np.random.default_rng(seed).permutation(len(narrow))]
    classes, group = np.unique(narrow[target].to_numpy()[order], return_inverse=True)
    by_class = np.argsort(group, kind="stable")  # shuffled rows, grouped by class
    sizes = np.bincount(group, minlength=len(classes))
    rank = np.empty(len(narrow), dtype="int64")
    rank[by_class] = np.arange(len(narrow)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    codes = np.empty(len(narrow), dtype="int64")
    codes[order] = _codes_by_rank(rank, group, allocate(sizes, fractions))
    return codes


def time_values(frame: pd.DataFrame, by: str) -> pd.Series:
    """The column that orders the rows in time: numbers or datetimes (time zones compared in UTC)."""
    if by not in frame:
        raise PillarsError(f"params.yaml: curate.split.by: column {by!r} is not in the standardized data")
    values = frame[by]
    if types.is_datetime64_any_dtype(values):
        return values.dt.tz_convert("UTC").dt.tz_localize(None) if values.dt.tz is not None else values
    if types.is_numeric_dtype(values) and not types.is_bool_dtype(values):
        return values
    raise PillarsError(
        f"params.yaml: curate.split.by: column {by!r} has dtype {values.dtype}; a time order needs numbers "
        "or datetimes"
    )


def time_assignment(
    frame: pd.DataFrame, key_columns: list[str], by: str, fractions: dict[str, float]
) -> pd.Series:
    """The earliest rows (by `by`) to train, then valid, test and holdout, by the fractions of the rows that
    have a `by` value; rows with the same value are ordered by their content hash. Rows without a `by` value
    cannot be placed in time: they go to train."""
    values = time_values(frame, by)
    return _named(
        time_codes(hashed(frame.assign(**{by: values}), key_columns, [by]), by, fractions),
        fractions,
        frame.index,
    )


def time_codes(narrow: pd.DataFrame, by: str, fractions: dict[str, float]) -> np.ndarray:
    """`time_assignment`'s split codes, from the rows' hashes and times (`hashed`, `time_values`)."""
    values = narrow[by]
    timed = np.flatnonzero(values.notna().to_numpy())
    present = values.iloc[timed]
    key = present.to_numpy(dtype=getattr(present.dtype, "numpy_dtype", None))
    tie = canonical_order(narrow.iloc[timed])
    tie_rank = np.empty(len(timed), dtype="int64")
    tie_rank[tie] = np.arange(len(timed))
    in_time = np.lexsort((tie_rank, key))
    rank = np.empty(len(timed), dtype="int64")
    rank[in_time] = np.arange(len(timed))
    counts = allocate(np.array([len(timed)]), fractions)
    codes = np.zeros(len(narrow), dtype="int64")  # 0 = train: where rows without a time go
    codes[timed] = _codes_by_rank(rank, np.zeros(len(timed), dtype="int64"), counts)
    return codes


def time_report(values: pd.Series, assignment: pd.Series, by: str) -> dict:
    """Each split's time range (earliest and latest `by` value) and the rows without a time (in train)."""
    ranges = {}
    for split in assignment.cat.categories:
        present = values[(assignment == split).to_numpy()].dropna()
        if len(present):
            ranges[split] = {"min": _plain(present.min()), "max": _plain(present.max())}
    return {"by": by, "time_range": ranges, "missing_by_in_train": int(values.isna().sum())}


def _plain(value: object) -> object:
    """A JSON value for a time: ISO 8601 for datetimes, a Python number otherwise."""
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value.item() if isinstance(value, np.generic) else value


def select_columns(
    counts: dict[str, pd.Series], rows: int, roles: dict[str, str], settings: CurateParams
) -> tuple[dict, dict]:
    """The features (name -> role) and the dropped columns (name -> reason), decided on train only: from
    each column's value counts (missing values included) over train's `rows` rows."""
    dropped = {canonical_name(name): f"params: {reason}" for name, reason in settings.drop.items()}
    features = {}
    for name, role in roles.items():
        if name not in counts:  # target, lineage, datetime (its features are its parts), or dropped
            continue
        top = counts[name].idxmax() if len(counts[name]) else None
        top_share = float(counts[name].max() / rows) if rows else 1.0
        distinct = int(counts[name].index.notna().sum())
        if top_share >= settings.near_constant_share:
            dropped[name] = f"near-constant: {top!r} in {top_share:.2%} of train rows"
        elif role == "categorical" and distinct >= settings.max_unique_share * rows:
            dropped[name] = f"id-like: {distinct} distinct values in {rows} train rows"
        else:
            features[name] = role
    if not features:
        raise PillarsError("curate: every column was dropped; check curate.drop and the thresholds")
    return features, dropped


def candidate_columns(roles: dict[str, str], settings: CurateParams) -> list[str]:
    """The columns that may become features: not the target, lineage, a datetime or dropped in params."""
    dropped = {canonical_name(name) for name in settings.drop}
    return [
        name
        for name, role in roles.items()
        if role not in ("target", "lineage", "datetime") and name not in dropped
    ]


def split_inputs(
    frame: pd.DataFrame, key_columns: list[str], keep: list[str], method: str, seed: int, fractions: dict
) -> pd.DataFrame:
    """What deciding the split needs of a partition: the split code itself for `hash` (row by row), the
    rows' hashes and `keep` columns for the methods that look at every row."""
    if method == "hash":
        return pd.DataFrame(
            {"code": hash_codes(row_hash(frame, key_columns), seed, fractions)}, index=frame.index
        )
    return hashed(frame, key_columns, keep)


def assign(
    narrow: pd.DataFrame, target: str, by: str, settings: CurateParams, fractions: dict
) -> tuple[pd.Series, dict]:
    """Every row's split (a categorical over row positions), and what the method adds to the report."""
    method = settings.split.method
    if method == "stratified":
        codes = stratified_codes(narrow, target, settings.seed, fractions)
        return _named(codes, fractions, narrow.index), {"method": method}
    if method == "time":
        ordered = narrow.assign(**{by: time_values(narrow, by)})
        assignment = _named(time_codes(ordered, by, fractions), fractions, narrow.index)
        return assignment, {"method": method} | time_report(narrow[by], assignment, by)
    return _named(narrow["code"].to_numpy(), fractions, narrow.index), {}


def split_counts(
    frame: pd.DataFrame, assignment: pd.Series, columns: list[str], target: str | None
) -> tuple[dict[str, pd.Series], dict[str, pd.Series]]:
    """A partition's value counts of the candidate columns on its train rows, and per split of the target
    (classification; None: of nothing, i.e. the split's rows under one missing label)."""
    split = assignment.loc[frame.index]
    train = frame.loc[(split == "train").to_numpy()]
    counts = {name: train[name].value_counts(dropna=False, sort=False) for name in columns}
    labels = frame[target] if target else pd.Series(np.nan, index=frame.index)
    targets = {
        name: labels[(split == name).to_numpy()].value_counts(dropna=False, sort=False)
        for name in split.cat.categories
    }
    return counts, targets


def add_up(counts: list[pd.Series]) -> pd.Series:
    """Value counts of several partitions as one."""
    return pd.concat(counts).groupby(level=0, dropna=False, sort=True).sum()


def split_rows(frame: pd.DataFrame, assignment: pd.Series, keep: list[str]) -> dict[str, pd.DataFrame]:
    """A partition's rows of each split, with the kept columns."""
    split = assignment.loc[frame.index]
    return {
        name: frame.loc[(split == name).to_numpy(), keep].reset_index(drop=True)
        for name in split.cat.categories
    }


def curate_table(
    standard: Table, roles: dict[str, str], params: Params, write: dict[str, Callable[[pd.DataFrame], None]]
) -> tuple[dict, dict, np.ndarray]:
    """Split the rows, choose the columns, pass each split's rows to its writer partition by partition,
    and return the selection, the report and the holdout's raw row numbers."""
    settings = params.curate
    target = canonical_name(params.dataset.target)
    keys = [canonical_name(name) for name in params.dataset.key_columns] or [
        name for name, role in roles.items() if role not in ("target", "lineage")
    ]
    fractions = settings.split.fractions()
    by = canonical_name(settings.split.by or "")
    keep = {"stratified": [target], "time": [by] if by in standard.columns else []}.get(
        settings.split.method, []
    )
    if settings.split.method == "time" and by not in standard.columns:
        raise PillarsError(f"params.yaml: curate.split.by: column {by!r} is not in the standardized data")
    inputs = partial(
        split_inputs,
        key_columns=keys,
        keep=keep,
        method=settings.split.method,
        seed=settings.seed,
        fractions=fractions,
    )
    narrow = pd.concat(collect(standard, inputs))
    if narrow.empty:
        raise PillarsError(
            "curate: no rows left after cleansing; see data/quarantine/ and metrics/cleanse.json"
        )
    assignment, method = assign(narrow, target, by, settings, fractions)
    empty = [split for split in ("train", "valid", "test") if not (assignment == split).any()]
    if empty:
        raise PillarsError(
            f"curate: the {' and '.join(empty)} split(s) got none of the {len(assignment)} rows; "
            "add data or change curate.split"
        )
    candidates = candidate_columns(roles, settings)
    classified = target if params.dataset.task != "regression" else None
    parts = collect(
        standard, partial(split_counts, columns=candidates, target=classified), assignment=assignment
    )
    counts = {name: add_up([part[0][name] for part in parts]) for name in candidates}
    targets = {name: add_up([part[1][name] for part in parts]) for name in fractions}
    features, dropped = select_columns(counts, int((assignment == "train").sum()), roles, settings)
    lineage = [name for name, role in roles.items() if role == "lineage"]
    times = [name for name, role in roles.items() if role == "datetime"]  # kept: split order, monitoring
    holdout_rows = []
    for rows in standard.stream(
        partial(split_rows, keep=[*features, target, *times, *lineage]), assignment=assignment
    ):
        for name, frame in rows.items():
            write[name](frame)
        if ROW_COLUMN in rows["holdout"]:  # the raw row numbers cleanse adds
            holdout_rows.append(rows["holdout"][ROW_COLUMN].to_numpy(dtype="int64"))
    selection = {"target": target, "features": features, "dropped": dropped, "lineage": lineage}
    report = method | curation_report(targets, params.dataset.task)
    return selection, report, np.concatenate(holdout_rows) if holdout_rows else np.zeros(0, dtype="int64")


def curate(
    standard: pd.DataFrame, roles: dict[str, str], params: Params
) -> tuple[dict[str, pd.DataFrame], dict, dict]:
    """The splits, the selection and the report of standardized data in memory."""
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in params.curate.split.fractions()}
    selection, report, _ = curate_table(
        InMemory(standard), roles, params, {name: parts[name].append for name in parts}
    )
    return {name: frames[0] for name, frames in parts.items()}, selection, report


def curation_report(target_counts: dict[str, pd.Series], task: str) -> dict:
    """Rows per split and, for classification, each class's share per split (the stratification check),
    from the target's value counts per split (regression: the rows, as counts of anything)."""
    total = sum(int(counts.sum()) for counts in target_counts.values())
    report: dict = {
        "rows": {name: int(counts.sum()) for name, counts in target_counts.items()},
        "share": {name: round(int(counts.sum()) / total, 6) for name, counts in target_counts.items()},
    }
    if task == "regression":
        return report
    overall = add_up(list(target_counts.values())).sort_index()
    overall = overall / overall.sum()
    shares = {
        name: (counts / counts.sum()).reindex(overall.index, fill_value=0.0)
        for name, counts in target_counts.items()
        if counts.sum()
    }
    untrained = [str(label) for label, share in shares["train"].items() if share == 0]
    if untrained:
        raise PillarsError(
            f"curate: class(es) {untrained} have no row in the train split; "
            "they are too rare to learn: merge them or add data"
        )
    absent = {
        name: [str(label) for label, share in shares[name].items() if share == 0]
        for name in ("valid", "test")
        if name in shares
    }
    if any(absent.values()):  # learnt, but not measurable there: those metrics are null with the reason
        report["absent_classes"] = {name: labels for name, labels in absent.items() if labels}
    report["class_share"] = {
        name: {str(label): round(float(share), 6) for label, share in values.items()}
        for name, values in shares.items()
    }
    report["max_class_share_gap"] = round(
        max(float((values - overall).abs().max()) for values in shares.values()), 6
    )
    return report


def holdout_part(raw: pd.DataFrame, rows: np.ndarray, params: Params) -> pd.DataFrame:
    """A partition's holdout rows as they arrived (raw names, spellings and placeholders), without target
    or lineage: the default batch for batch inference, never seen by training. `rows`: every holdout row's
    raw row number, ascending."""
    start, stop = np.searchsorted(rows, [raw.index.min(), raw.index.max() + 1]) if len(raw) else (0, 0)
    keep = [name for name in raw.columns if name != params.dataset.target and not is_lineage(name)]
    return raw.loc[rows[start:stop], keep].reset_index(drop=True)


def main() -> None:
    params = load_params()
    roles = {name: column.role for name, column in data_handoffs.STANDARD_COLUMNS.read().root.items()}
    rows_per_group = params.compute.partition_rows
    with engine_client(params.compute) as client:
        with contextlib.ExitStack() as stack:
            writers = {
                name: stack.enter_context(row_group_writer(layout.curated_split(name), rows_per_group))
                for name in params.curate.split.fractions()
            }
            selection, report, holdout_rows = curate_table(
                open_table(layout.STANDARD_DATA, client),
                roles,
                params,
                {name: writer.write for name, writer in writers.items()},
            )
        with row_group_writer(layout.HOLDOUT_BATCH, rows_per_group) as holdout:
            for part in open_table(layout.RAW_DATA, client).stream(
                partial(holdout_part, params=params), rows=holdout_rows
            ):
                holdout.write(part)
    data_handoffs.COLUMN_SELECTION.write(selection)
    data_handoffs.CURATION_REPORT.write(
        report | {"features": len(selection["features"]), "dropped": len(selection["dropped"])},
    )
    print(
        f"curate: {params.curate.split.method} split {report['rows']}, {len(selection['features'])} features, "
        f"dropped {sorted(selection['dropped'])}"
    )


if __name__ == "__main__":
    run_cli(main)
