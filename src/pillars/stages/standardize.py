"""Pillar 4, standardize: canonical column names, dtypes, category spellings, units and target encoding.

`standardize_frame` is pure and needs no fitted state, so serving and batch inference apply exactly the same
rules as training.
"""

from functools import partial

import pandas as pd

from pillars.compute.cluster import engine_client
from pillars.compute.partitions import open_table, row_group_writer
from pillars.core import data_handoffs, layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.params import DatasetParams, Params, StandardizeParams, load_params
from pillars.core.rules import calendar_features, calendar_names, folded_aliases, parse_datetimes, spelling
from pillars.core.schema import DataSchema, canonical_name, is_lineage, load_checked


def target_encoding(dataset: DatasetParams, schema: DataSchema) -> dict:
    """How target values become numbers: 0/1 (binary), label order (multiclass), identity (regression)."""
    if dataset.task == "regression":
        return {"task": "regression", "column": canonical_name(dataset.target), "labels": {}}
    labels = list(schema.columns[dataset.target].categories or [])
    if dataset.task == "binary":
        if len(labels) != 2:
            raise PillarsError(f"dataset.task: binary needs exactly 2 target labels, the schema has {labels}")
        codes = {label: int(label == dataset.positive_label) for label in labels}
    else:
        codes = {label: code for code, label in enumerate(labels)}
    return {"task": dataset.task, "column": canonical_name(dataset.target), "labels": codes}


def normalize_categories(
    values: pd.Series, settings: StandardizeParams, aliases: dict[str, str]
) -> pd.Series:
    """Trim, fold case and apply the alias map (whose spellings are trimmed and folded the same way).

    Each distinct spelling is normalized once (`pillars.rules.spelling`, which serving uses too).
    """
    folded = folded_aliases(aliases, settings.case)
    text = values.astype("str").mask(values.isna())
    canonical = {value: spelling(value, settings.case, folded) for value in text.dropna().unique()}
    return text.map(canonical).astype("str").mask(text.isna())


def column_roles(frame: pd.DataFrame, target: str) -> dict[str, str]:
    """Each standardized column's role: target, lineage, datetime (its calendar features are numeric),
    numeric, boolean or categorical."""
    roles = {}
    for name, dtype in frame.dtypes.items():
        if name == target:
            roles[name] = "target"
        elif is_lineage(name):
            roles[name] = "lineage"
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            roles[name] = "datetime"
        elif pd.api.types.is_bool_dtype(dtype):
            roles[name] = "boolean"
        elif pd.api.types.is_numeric_dtype(dtype):
            roles[name] = "numeric"
        else:
            roles[name] = "categorical"
    return roles


def standardize_frame(
    frame: pd.DataFrame, schema: DataSchema, params: Params, encoding: dict
) -> pd.DataFrame:
    """Apply names, dtypes, spellings, units and (if the target is present) the target encoding; a datetime
    column is kept (for a time-ordered split and monitoring) and followed by its calendar features."""
    settings, target = params.standardize, params.dataset.target
    columns: dict[str, pd.Series] = {}
    produced: list[str] = []  # every name written, to catch two columns with one snake_case name
    for name in frame.columns:
        values = frame[name]
        column = schema.columns.get(name)
        if name == target:
            values = _encode_target(values, encoding)
        elif column is not None and column.is_numeric:
            values = values.astype("float64")
            if name in settings.units:
                values = values * settings.units[name].factor
        elif column is not None and column.dtype == "boolean":
            values = values.astype("boolean")
        elif column is not None and column.dtype == "datetime":
            values = pd.Series(parse_datetimes(values, column.format), index=frame.index)
        elif column is not None:
            values = normalize_categories(values, settings, settings.aliases.get(name, {}))
        columns[canonical_name(name)] = values
        produced.append(canonical_name(name))
        if column is not None and column.dtype == "datetime":
            derived = calendar_features(canonical_name(name), values.to_numpy(), column.with_time)
            columns |= {part: pd.Series(numbers, index=frame.index) for part, numbers in derived.items()}
            produced += list(derived)
    if len(columns) != len(produced):
        clashes = sorted({name for name in produced if produced.count(name) > 1})
        raise PillarsError(
            f"standardize: several columns become {clashes} in snake_case; rename them at the source"
        )
    return pd.DataFrame(columns)


def _encode_target(values: pd.Series, encoding: dict) -> pd.Series:
    if encoding["task"] == "regression":
        return values.astype("float64")
    codes = values.astype("str").map(encoding["labels"])
    if codes.isna().any():
        unknown = sorted(values[codes.isna()].astype("str").unique().tolist())[:5]
        raise PillarsError(f"standardize: target labels {unknown} are not in the schema's label set")
    return codes.astype("int64")


def describe_columns(
    standard: pd.DataFrame, source_names: list[str], schema: DataSchema, params: Params
) -> dict:
    """columns.json: each canonical column's source name, dtype, role and unit (a calendar feature's
    source is its datetime column)."""
    sources = {canonical_name(name): name for name in source_names}
    sources |= {
        part: name
        for name, column in schema.columns.items()
        if column.dtype == "datetime" and name in source_names
        for part in calendar_names(canonical_name(name), column.with_time)
    }
    roles = column_roles(standard, canonical_name(params.dataset.target))
    described = {}
    for name, dtype in standard.dtypes.items():
        unit = params.standardize.units.get(sources[name])
        described[name] = {"source": sources[name], "dtype": str(dtype), "role": roles[name]}
        if unit:
            described[name]["unit"] = unit.unit
    return described


def main() -> None:
    params = load_params()
    schema = load_checked(params)
    encoding = target_encoding(params.dataset, schema)
    standardize = partial(standardize_frame, schema=schema, params=params, encoding=encoding)
    rows, sample = 0, None  # sample: a standardized partition, with rows if any has them (its dtypes)
    with (
        engine_client(params.compute) as client,
        row_group_writer(layout.STANDARD_DATA, params.compute.partition_rows) as standard,
    ):
        clean = open_table(layout.CLEAN_DATA, client)
        for part in clean.stream(standardize):
            standard.write(part)
            rows += len(part)
            sample = part if sample is None or (len(part) and not len(sample)) else sample
    data_handoffs.STANDARD_COLUMNS.write(describe_columns(sample, clean.columns, schema, params))
    data_handoffs.TARGET_ENCODING.write(encoding)
    print(f"standardize: {rows} rows, {len(sample.columns)} columns -> {layout.STANDARD_DIR}")


if __name__ == "__main__":
    run_cli(main)
