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

import numpy as np
import pandas as pd
from pandas.api import types

from pillars.core import layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import read_json, read_parquet, write_json, write_parquet
from pillars.core.params import CurateParams, Params, load_params
from pillars.core.schema import ROW_COLUMN, canonical_name, is_lineage

HASH_BITS = 53


def row_hash(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """A 64-bit content hash of every row over `columns` (independent of the index and of row order)."""
    return pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()


def split_assignment(
    frame: pd.DataFrame, key_columns: list[str], seed: int, fractions: dict[str, float]
) -> pd.Series:
    """The split of every row, from a seeded hash of its key columns."""
    salted = pd.util.hash_array(row_hash(frame, key_columns) ^ np.uint64(seed))
    position = (salted >> np.uint64(64 - HASH_BITS)).astype("float64") / float(2**HASH_BITS)
    edges = np.cumsum(list(fractions.values()))
    edges[-1] = 1.0  # rounding must never leave a row without a split
    codes = np.searchsorted(edges, position, side="right")
    return _named(codes, fractions, frame.index)


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


def canonical_order(frame: pd.DataFrame, key_columns: list[str]) -> np.ndarray:
    """Row positions in an order fixed by content: by the key hash, then by the hash of the whole row."""
    return np.lexsort((row_hash(frame, list(frame.columns)), row_hash(frame, key_columns)))


def stratified_assignment(
    frame: pd.DataFrame, key_columns: list[str], target: str, seed: int, fractions: dict[str, float]
) -> pd.Series:
    """Exact stratification: each class divided between the splits by `allocate`, its rows drawn by a seeded
    permutation of the rows in content order (so the input's row order does not matter)."""
    order = canonical_order(frame, key_columns)[np.random.default_rng(seed).permutation(len(frame))]
    classes, group = np.unique(frame[target].to_numpy()[order], return_inverse=True)
    by_class = np.argsort(group, kind="stable")  # shuffled rows, grouped by class
    sizes = np.bincount(group, minlength=len(classes))
    rank = np.empty(len(frame), dtype="int64")
    rank[by_class] = np.arange(len(frame)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    codes = np.empty(len(frame), dtype="int64")
    codes[order] = _codes_by_rank(rank, group, allocate(sizes, fractions))
    return _named(codes, fractions, frame.index)


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
    timed = np.flatnonzero(values.notna().to_numpy())
    present = values.iloc[timed]
    key = present.to_numpy(dtype=getattr(present.dtype, "numpy_dtype", None))
    tie = canonical_order(frame.iloc[timed], key_columns)
    tie_rank = np.empty(len(timed), dtype="int64")
    tie_rank[tie] = np.arange(len(timed))
    in_time = np.lexsort((tie_rank, key))
    rank = np.empty(len(timed), dtype="int64")
    rank[in_time] = np.arange(len(timed))
    counts = allocate(np.array([len(timed)]), fractions)
    codes = np.zeros(len(frame), dtype="int64")  # 0 = train: where rows without a time go
    codes[timed] = _codes_by_rank(rank, np.zeros(len(timed), dtype="int64"), counts)
    return _named(codes, fractions, frame.index)


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


def select_columns(train: pd.DataFrame, roles: dict[str, str], settings: CurateParams) -> tuple[dict, dict]:
    """The features (name -> role) and the dropped columns (name -> reason), decided on train only."""
    dropped = {canonical_name(name): f"params: {reason}" for name, reason in settings.drop.items()}
    features = {}
    for name, role in roles.items():
        if (
            role in ("target", "lineage", "datetime") or name in dropped
        ):  # a datetime's features are its parts
            continue
        shares = train[name].value_counts(dropna=False, normalize=True)
        top_share = float(shares.iloc[0]) if len(shares) else 1.0
        distinct = train[name].nunique()
        if top_share >= settings.near_constant_share:
            dropped[name] = f"near-constant: {shares.index[0]!r} in {top_share:.2%} of train rows"
        elif role == "categorical" and distinct >= settings.max_unique_share * len(train):
            dropped[name] = f"id-like: {distinct} distinct values in {len(train)} train rows"
        else:
            features[name] = role
    if not features:
        raise PillarsError("curate: every column was dropped; check curate.drop and the thresholds")
    return features, dropped


def curate(
    standard: pd.DataFrame, roles: dict[str, str], params: Params
) -> tuple[dict[str, pd.DataFrame], dict, dict]:
    """Split the rows, choose the columns, and return the splits, the selection and the report."""
    settings = params.curate
    if standard.empty:
        raise PillarsError(
            "curate: no rows left after cleansing; see data/quarantine/ and metrics/cleanse.json"
        )
    target = canonical_name(params.dataset.target)
    keys = [canonical_name(name) for name in params.dataset.key_columns] or [
        name for name, role in roles.items() if role not in ("target", "lineage")
    ]
    fractions = settings.split.fractions()
    method: dict = {"method": settings.split.method}  # reported for every method but the default hash
    if settings.split.method == "stratified":
        assignment = stratified_assignment(standard, keys, target, settings.seed, fractions)
    elif settings.split.method == "time":
        by = canonical_name(settings.split.by or "")
        assignment = time_assignment(standard, keys, by, fractions)
        method |= time_report(standard[by], assignment, by)
    else:
        assignment, method = split_assignment(standard, keys, settings.seed, fractions), {}
    empty = [split for split in ("train", "valid", "test") if not (assignment == split).any()]
    if empty:
        raise PillarsError(
            f"curate: the {' and '.join(empty)} split(s) got none of the {len(standard)} rows; "
            "add data or change curate.split"
        )
    features, dropped = select_columns(standard[assignment == "train"], roles, settings)
    lineage = [name for name, role in roles.items() if role == "lineage"]
    times = [name for name, role in roles.items() if role == "datetime"]  # kept: split order, monitoring
    keep = [*features, target, *times, *lineage]
    splits = {split: standard.loc[assignment == split, keep].reset_index(drop=True) for split in fractions}
    selection = {"target": target, "features": features, "dropped": dropped, "lineage": lineage}
    return splits, selection, method | curation_report(splits, target, params.dataset.task)


def curation_report(splits: dict[str, pd.DataFrame], target: str, task: str) -> dict:
    """Rows per split and, for classification, each class's share per split (the stratification check)."""
    total = sum(len(frame) for frame in splits.values())
    report: dict = {
        "rows": {name: len(frame) for name, frame in splits.items()},
        "share": {name: round(len(frame) / total, 6) for name, frame in splits.items()},
    }
    if task == "regression":
        return report
    overall = (
        pd.concat([frame[target] for frame in splits.values()]).value_counts(normalize=True).sort_index()
    )
    shares = {
        name: frame[target].value_counts(normalize=True).reindex(overall.index, fill_value=0.0)
        for name, frame in splits.items()
        if len(frame)
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


def holdout_batch(raw: pd.DataFrame, holdout: pd.DataFrame, params: Params) -> pd.DataFrame:
    """The holdout rows as they arrived (raw names, spellings and placeholders), without target or lineage:
    the default batch for batch inference, never seen by training."""
    rows = raw.iloc[holdout[ROW_COLUMN].to_numpy()]
    keep = [name for name in raw.columns if name != params.dataset.target and not is_lineage(name)]
    return rows[keep].reset_index(drop=True)


def main() -> None:
    params = load_params()
    standard = read_parquet(layout.STANDARD_DATA)
    roles = {name: column["role"] for name, column in read_json(layout.STANDARD_COLUMNS).items()}
    splits, selection, report = curate(standard, roles, params)
    for name, frame in splits.items():
        write_parquet(layout.curated_split(name), frame)
    write_parquet(
        layout.HOLDOUT_BATCH, holdout_batch(read_parquet(layout.RAW_DATA), splits["holdout"], params)
    )
    write_json(layout.COLUMN_SELECTION, selection)
    write_json(
        layout.CURATION_REPORT,
        report | {"features": len(selection["features"]), "dropped": len(selection["dropped"])},
    )
    print(
        f"curate: {params.curate.split.method} split {report['rows']}, {len(selection['features'])} features, "
        f"dropped {sorted(selection['dropped'])}"
    )


if __name__ == "__main__":
    run_cli(main)
