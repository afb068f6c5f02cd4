"""Pillar 5, curate: a deterministic train / valid / test / holdout split and the column selection.

A row's split depends only on its own content and the seed (a hash), so a row keeps its split when data is
appended. Hash buckets are independent of the label, so every split gets each class in the same proportion
up to sampling noise (stratified in expectation, not by exact counts, which would move rows between splits
whenever data is appended). The per-split class shares and their largest gap are reported, and a class that
misses a split stops the run.
"""

import numpy as np
import pandas as pd

from pillars.core import layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import read_json, read_parquet, write_json, write_parquet
from pillars.core.params import CurateParams, Params, load_params
from pillars.core.schema import ROW_COLUMN, canonical_name, is_lineage

HASH_BITS = 53


def split_assignment(
    frame: pd.DataFrame, key_columns: list[str], seed: int, fractions: dict[str, float]
) -> pd.Series:
    """The split of every row, from a seeded hash of its key columns."""
    row_hash = pd.util.hash_pandas_object(frame[key_columns], index=False).to_numpy()
    salted = pd.util.hash_array(row_hash ^ np.uint64(seed))
    position = (salted >> np.uint64(64 - HASH_BITS)).astype("float64") / float(2**HASH_BITS)
    edges = np.cumsum(list(fractions.values()))
    edges[-1] = 1.0  # rounding must never leave a row without a split
    codes = np.searchsorted(edges, position, side="right")
    return pd.Series(pd.Categorical.from_codes(codes, categories=list(fractions)), index=frame.index)


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
    fractions = settings.split.model_dump()
    assignment = split_assignment(standard, keys, settings.seed, fractions)
    features, dropped = select_columns(standard[assignment == "train"], roles, settings)
    lineage = [name for name, role in roles.items() if role == "lineage"]
    times = [name for name, role in roles.items() if role == "datetime"]  # kept: split order, monitoring
    keep = [*features, target, *times, *lineage]
    splits = {split: standard.loc[assignment == split, keep].reset_index(drop=True) for split in fractions}
    selection = {"target": target, "features": features, "dropped": dropped, "lineage": lineage}
    return splits, selection, curation_report(splits, target, params.dataset.task)


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
    for name in ("train", "valid", "test"):
        absent = [str(label) for label, share in shares[name].items() if share == 0]
        if absent:
            raise PillarsError(
                f"curate: class(es) {absent} have no row in the {name} split; "
                "they are too rare to learn and evaluate: merge them or add data"
            )
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
        f"curate: {report['rows']}, {len(selection['features'])} features, "
        f"dropped {sorted(selection['dropped'])}"
    )


if __name__ == "__main__":
    run_cli(main)
