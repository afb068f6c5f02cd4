"""Pillar 3, cleanse: placeholders to missing, broken values, duplicates, impossible values and outliers.

Every row that leaves the data goes to data/quarantine/ with its original values, its raw row number and a
reason code, and the counts reconcile: raw rows = clean rows + quarantined rows. Clean rows keep their raw row
number too (lineage column `_row`), so any later split can be traced back to the raw input. The resolved
outlier limits are recorded in the report: serving applies the same flags and clips to new rows.
"""

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import numpy as np
import pandas as pd

from pillars.compute.cluster import engine_client
from pillars.compute.partitions import InMemory, Table, collect, open_table, row_group_writer
from pillars.core import data_handoffs, layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.params import OutlierRule, Params, load_params
from pillars.core.rules import apply_outlier_rule, outside
from pillars.core.schema import (
    FLAG_SUFFIX,
    ROW_COLUMN,
    DataSchema,
    is_lineage,
    load_checked,
    parse_types,
    required_columns,
)

REASON_COLUMN = "_reason"
HASH_KEYS = ("0123456789123456", "pillars-cleanse!")  # two 64-bit hashes: one 128-bit row identity


class Quarantine:
    """The reason each raw row leaves the data; the first reason found is the one recorded."""

    def __init__(self, reason: pd.Series) -> None:
        self.reason = reason

    @property
    def kept(self) -> pd.Series:
        return self.reason.isna()

    def add(self, mask: pd.Series | np.ndarray, code: str) -> None:
        self.reason = self.reason.mask(mask & self.kept, code)


def outlier_bounds(values: pd.Series, rule: OutlierRule) -> tuple[float | None, float | None]:
    """The limits of a rule: fixed, or Tukey fences at `iqr_k` interquartile ranges beyond the quartiles."""
    if rule.iqr_k is None:
        return rule.min, rule.max
    first, third = values.quantile([0.25, 0.75]).to_list()
    spread = rule.iqr_k * (third - first)
    return first - spread, third + spread


def row_identity(frame: pd.DataFrame) -> pd.DataFrame:
    """A 128-bit content hash of each row (two 64-bit hashes): equal rows, equal identities, and a chance
    below 1e-20 that two different rows among 10^9 share one."""
    return pd.DataFrame(
        {key: pd.util.hash_pandas_object(frame, index=False, hash_key=key).to_numpy() for key in HASH_KEYS},
        index=frame.index,
    )


def typed_data(raw: pd.DataFrame, schema: DataSchema, params: Params) -> tuple[pd.DataFrame, list[str]]:
    """The raw rows parsed to the schema's types, without the columns the schema does not know (named)."""
    typed, unparsable = parse_types(raw, schema, params.dataset.placeholders)
    if unparsable:
        raise PillarsError(
            f"cleanse: values of the wrong type in {sorted(unparsable)}; run validate_data first"
        )
    dropped = [name for name in typed.columns if name not in schema.columns and not is_lineage(name)]
    return typed.drop(columns=dropped), dropped


class PartSummary(NamedTuple):
    """What the global decisions need of one partition: its rows' reasons so far, identities, the values
    of outlier rules' columns, and its placeholder counts."""

    reason: pd.Series
    identity: pd.DataFrame | None
    key_identity: pd.DataFrame | None
    outlier_values: pd.DataFrame
    placeholders: dict[str, int]
    dropped_columns: list[str]


def summarize(raw: pd.DataFrame, schema: DataSchema, params: Params) -> PartSummary:
    """The row-by-row reasons (missing target, non-finite, missing required, impossible) of a partition."""
    dataset, settings = params.dataset, params.cleanse
    typed, dropped = typed_data(raw, schema, params)
    data_columns = [name for name in schema.columns if name in typed]
    placeholders = {name: int((typed[name].isna() & raw[name].notna()).sum()) for name in data_columns}
    quarantine = Quarantine(pd.Series(None, index=typed.index, dtype="str"))
    quarantine.add(typed[dataset.target].isna(), "missing_target")
    # validate_data stops on these unless validate_data.broken_values: quarantine
    for name in data_columns:
        if schema.columns[name].is_numeric:
            infinite = np.isinf(typed[name].to_numpy(dtype="float64"))
            quarantine.add(pd.Series(infinite, index=typed.index), f"not_finite:{name}")
    for name in required_columns(schema, params):
        if name in typed:
            quarantine.add(typed[name].isna(), f"missing_required:{name}")
    for name, bounds in settings.impossible.items():
        quarantine.add(outside(typed[name], bounds.min, bounds.max), f"impossible:{name}")
    return PartSummary(
        reason=quarantine.reason,
        identity=row_identity(typed[data_columns]) if settings.exact_duplicates else None,
        key_identity=row_identity(typed[dataset.key_columns]) if dataset.key_columns else None,
        outlier_values=typed[list(settings.outliers)].astype("float64"),
        placeholders=placeholders,
        dropped_columns=dropped,
    )


class Decisions(NamedTuple):
    """The outcome of the checks over every row: each raw row's reason (missing: kept), each outlier
    rule's limits, and the clipped and flagged counts."""

    reason: pd.Series
    limits: dict[str, tuple[float | None, float | None]]
    clipped: dict[str, int]
    flagged: dict[str, int]


def decide(parts: list[PartSummary], params: Params) -> Decisions:
    """Duplicates (the first of equal rows kept), repeated keys among the rows kept so far, and outliers
    against limits from the rows kept so far: the decisions that need every row."""
    settings = params.cleanse
    quarantine = Quarantine(pd.concat([part.reason for part in parts], ignore_index=True))
    if settings.exact_duplicates:
        identity = pd.concat([part.identity for part in parts], ignore_index=True)
        quarantine.add(identity.duplicated(keep="first"), "duplicate")
    if params.dataset.key_columns:
        keys = pd.concat([part.key_identity for part in parts], ignore_index=True)
        repeated = keys.loc[quarantine.kept].duplicated(keep="first")
        quarantine.add(repeated.reindex(keys.index, fill_value=False), "duplicate_key")
    values = pd.concat([part.outlier_values for part in parts], ignore_index=True)
    limits, clipped, flagged = {}, {}, {}
    for name, rule in settings.outliers.items():
        bounds = outlier_bounds(values.loc[quarantine.kept, name], rule)
        limits[name] = bounds
        _, outliers = apply_outlier_rule(values[name], rule.action, bounds)
        mask = outliers & quarantine.kept.to_numpy()
        if rule.action == "quarantine":
            quarantine.add(mask, f"outlier:{name}")
        elif rule.action == "clip":
            clipped[name] = int(mask.sum())
        else:
            flagged[name] = int(mask.sum())
    return Decisions(quarantine.reason.astype("category"), limits, clipped, flagged)


def split_part(
    raw: pd.DataFrame, schema: DataSchema, params: Params, decisions: Decisions
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A partition's clean rows (outlier rules applied, with the raw row number) and its quarantined rows
    (raw values, raw row number and reason)."""
    typed, _ = typed_data(raw, schema, params)
    for name, rule in params.cleanse.outliers.items():
        values, outliers = apply_outlier_rule(typed[name], rule.action, decisions.limits[name])
        if rule.action == "clip":
            typed[name] = values
        elif rule.action == "flag":
            typed[name + FLAG_SUFFIX] = outliers
    reason = decisions.reason.loc[raw.index]
    reason = reason.astype("str").mask(reason.isna())
    kept = reason.isna().to_numpy()
    typed[ROW_COLUMN] = typed.index.to_numpy(dtype="int64")
    clean = typed[kept].reset_index(drop=True)
    removed = raw[~kept].copy()
    removed.insert(0, ROW_COLUMN, removed.index.to_numpy(dtype="int64"))
    removed[REASON_COLUMN] = reason[~kept].to_numpy()
    return clean, removed.reset_index(drop=True)


def cleanse_table(
    raw: Table,
    schema: DataSchema,
    params: Params,
    write_clean: Callable[[pd.DataFrame], None],
    write_removed: Callable[[pd.DataFrame], None],
) -> dict:
    """Pass each partition's clean and quarantined rows, in order, to the writers; return the report."""
    parts = collect(raw, partial(summarize, schema=schema, params=params))
    decisions = decide(parts, params)
    placeholders = {name: sum(part.placeholders[name] for part in parts) for name in parts[0].placeholders}
    dropped = parts[0].dropped_columns
    del parts  # the rows' identities: not needed to write them
    clean_rows = removed_rows = 0
    for clean, removed in raw.stream(partial(split_part, schema=schema, params=params), decisions=decisions):
        write_clean(clean)
        write_removed(removed)
        clean_rows, removed_rows = clean_rows + len(clean), removed_rows + len(removed)
    reasons = decisions.reason.dropna().astype("str").value_counts().sort_index()
    return {
        "rows": {
            "raw": len(decisions.reason),
            "clean": clean_rows,
            "quarantined": removed_rows,
            "reconciled": len(decisions.reason) == clean_rows + removed_rows,
        },
        "quarantined_by_reason": {str(k): int(v) for k, v in reasons.items()},
        "placeholders_to_missing": {name: count for name, count in placeholders.items() if count},
        "clipped": decisions.clipped,
        "flagged": decisions.flagged,
        "outlier_limits": {
            name: [None if limit is None else float(limit) for limit in bounds]
            for name, bounds in decisions.limits.items()
        },
        "dropped_columns": dropped,
    }


def cleanse(raw: pd.DataFrame, schema: DataSchema, params: Params) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The clean rows, the quarantined rows (with reasons) and the report, of raw data in memory."""
    clean: list[pd.DataFrame] = []
    removed: list[pd.DataFrame] = []
    report = cleanse_table(InMemory(raw), schema, params, clean.append, removed.append)
    return clean[0], removed[0], report


def main() -> None:
    params = load_params()
    schema = load_checked(params)
    rows_per_group = params.compute.partition_rows
    with (
        engine_client(params.compute) as client,
        row_group_writer(layout.CLEAN_DATA, rows_per_group) as clean,
        row_group_writer(layout.CLEANSE_QUARANTINE, rows_per_group) as removed,
    ):
        report = cleanse_table(
            open_table(layout.RAW_DATA, client), schema, params, clean.write, removed.write
        )
    data_handoffs.CLEANSE_REPORT.write(report)
    rows = report["rows"]
    print(
        f"cleanse: {rows['raw']} raw = {rows['clean']} clean + {rows['quarantined']} quarantined "
        f"{report['quarantined_by_reason']} -> {layout.CLEAN_DIR}, {layout.CLEANSE_QUARANTINE}"
    )


if __name__ == "__main__":
    run_cli(main)
