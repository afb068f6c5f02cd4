"""Pillar 3, cleanse: placeholders to missing, broken values, duplicates, impossible values and outliers.

Every row that leaves the data goes to data/quarantine/ with its original values, its raw row number and a
reason code, and the counts reconcile: raw rows = clean rows + quarantined rows. Clean rows keep their raw row
number too (lineage column `_row`), so any later split can be traced back to the raw input. The resolved
outlier limits are recorded in the report: serving applies the same flags and clips to new rows.
"""

import numpy as np
import pandas as pd

from pillars.core import layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import read_parquet, write_json, write_parquet
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


class Quarantine:
    """The reason each raw row leaves the data; the first reason found is the one recorded."""

    def __init__(self, index: pd.Index) -> None:
        self.reason = pd.Series(None, index=index, dtype="str")

    @property
    def kept(self) -> pd.Series:
        return self.reason.isna()

    def add(self, mask: pd.Series, code: str) -> None:
        self.reason = self.reason.mask(mask & self.kept, code)


def outlier_bounds(values: pd.Series, rule: OutlierRule) -> tuple[float | None, float | None]:
    """The limits of a rule: fixed, or Tukey fences at `iqr_k` interquartile ranges beyond the quartiles."""
    if rule.iqr_k is None:
        return rule.min, rule.max
    first, third = values.quantile([0.25, 0.75]).to_list()
    spread = rule.iqr_k * (third - first)
    return first - spread, third + spread


def cleanse(raw: pd.DataFrame, schema: DataSchema, params: Params) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Return the clean rows, the quarantined rows (with reasons) and the report."""
    dataset, settings = params.dataset, params.cleanse
    typed, unparsable = parse_types(raw, schema, dataset.placeholders)
    if unparsable:
        raise PillarsError(
            f"cleanse: values of the wrong type in {sorted(unparsable)}; run validate_data first"
        )
    data_columns = [name for name in schema.columns if name in typed]
    dropped_columns = [name for name in typed.columns if name not in schema.columns and not is_lineage(name)]
    typed = typed[[name for name in typed.columns if name not in dropped_columns]]
    placeholders = {
        name: int(count) for name in data_columns if (count := (typed[name].isna() & raw[name].notna()).sum())
    }

    quarantine = Quarantine(typed.index)
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
    if settings.exact_duplicates:
        quarantine.add(typed[data_columns].duplicated(keep="first"), "duplicate")
    if dataset.key_columns:
        repeated = typed.loc[quarantine.kept, dataset.key_columns].duplicated(keep="first")
        quarantine.add(repeated.reindex(typed.index, fill_value=False), "duplicate_key")

    clipped, flagged, limits = {}, {}, {}
    for name, rule in settings.outliers.items():
        bounds = outlier_bounds(typed.loc[quarantine.kept, name], rule)
        limits[name] = [None if limit is None else float(limit) for limit in bounds]
        values, outliers = apply_outlier_rule(typed[name], rule.action, bounds)
        mask = outliers & quarantine.kept
        if rule.action == "quarantine":
            quarantine.add(mask, f"outlier:{name}")
        elif rule.action == "clip":
            typed[name] = values
            clipped[name] = int(mask.sum())
        else:
            typed[name + FLAG_SUFFIX] = outliers
            flagged[name] = int(mask.sum())

    kept = quarantine.kept
    typed[ROW_COLUMN] = typed.index.to_numpy(dtype="int64")
    clean = typed[kept].reset_index(drop=True)
    removed = raw[~kept].copy()
    removed.insert(0, ROW_COLUMN, removed.index.to_numpy(dtype="int64"))
    removed[REASON_COLUMN] = quarantine.reason[~kept]
    removed = removed.reset_index(drop=True)
    report = {
        "rows": {
            "raw": len(raw),
            "clean": len(clean),
            "quarantined": len(removed),
            "reconciled": len(raw) == len(clean) + len(removed),
        },
        "quarantined_by_reason": {
            str(k): int(v) for k, v in removed[REASON_COLUMN].value_counts().sort_index().items()
        },
        "placeholders_to_missing": placeholders,
        "clipped": clipped,
        "flagged": flagged,
        "outlier_limits": limits,
        "dropped_columns": dropped_columns,
    }
    return clean, removed, report


def main() -> None:
    params = load_params()
    schema = load_checked(params)
    clean, removed, report = cleanse(read_parquet(layout.RAW_DATA), schema, params)
    write_parquet(layout.CLEAN_DATA, clean)
    write_parquet(layout.CLEANSE_QUARANTINE, removed)
    write_json(layout.CLEANSE_REPORT, report)
    rows = report["rows"]
    print(
        f"cleanse: {rows['raw']} raw = {rows['clean']} clean + {rows['quarantined']} quarantined "
        f"{report['quarantined_by_reason']} -> {layout.CLEAN_DIR}, {layout.CLEANSE_QUARANTINE}"
    )


if __name__ == "__main__":
    run_cli(main)
