"""The committed data schema: what the raw data must look like, inferred once and reviewed by a person.

Like TFX's SchemaGen: `python -m pillars.core.schema infer` writes the schema from the raw data; a person reviews
and commits it; `validate_data` checks every new batch against it with pandera.
"""

import argparse
import re
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import read_parquet, write_bytes
from pillars.core.params import Params, load_params
from pillars.core.rules import parse_datetimes

LINEAGE_PREFIX = "_"
ROW_COLUMN = "_row"  # lineage: the row's position in data/raw, kept from cleanse on
FLAG_SUFFIX = "_outlier"  # cleanse's flag column for an outlier rule with action `flag`
NUMERIC_DTYPES = ("integer", "float")
# Text date formats `make schema` recognises, tried in this order (ISO 8601 first; month-first before
# day-first, so 03/04/2024 reads as March 4: review the format the schema names)
DATE_FORMATS = (
    "ISO8601",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%d.%m.%Y",
    "%d.%m.%Y %H:%M",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M:%S",
    "%d %b %Y",
    "%b %d %Y",
    "%d %B %Y",
    "%B %d, %Y",
    "%b %d, %Y",
    "%d-%b-%Y",
    "%Y%m%d %H:%M:%S",
)


class ColumnSchema(BaseModel):
    """What one raw column may hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dtype: Literal["integer", "float", "boolean", "string", "datetime"]
    nullable: bool = True
    unique: bool = False
    min: int | float | str | None = None  # datetime: an ISO 8601 date or time
    max: int | float | str | None = None
    categories: list[str] | None = None
    format: str | None = None  # datetime: how its text is written (strptime codes, or ISO8601)
    with_time: bool = False  # datetime: the values carry times of day, not only dates

    @property
    def is_numeric(self) -> bool:
        return self.dtype in NUMERIC_DTYPES

    @model_validator(mode="after")
    def _range_fits_dtype(self) -> "ColumnSchema":
        for key in ("min", "max"):
            value = getattr(self, key)
            if value is None:
                continue
            if self.dtype == "datetime":
                if not isinstance(value, str) or pd.isna(pd.to_datetime(value, errors="coerce")):
                    raise ValueError(f"{key}: a datetime column's range is an ISO 8601 date, not {value!r}")
            elif isinstance(value, str):
                raise ValueError(f"{key}: a {self.dtype} column's range is a number, not {value!r}")
        if self.dtype != "datetime" and (self.format is not None or self.with_time):
            raise ValueError("format and with_time are for datetime columns only")
        return self


class DataSchema(BaseModel):
    """The columns of a dataset, in their raw order and with their raw names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str
    columns: dict[str, ColumnSchema] = Field(min_length=1)


def canonical_name(name: str) -> str:
    """snake_case a column name: `Marital-Status` -> `marital_status`, `_source` keeps its underscore."""
    lead = LINEAGE_PREFIX if name.startswith(LINEAGE_PREFIX) else ""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    snake = re.sub(r"[^0-9a-zA-Z]+", "_", spaced).strip("_").lower()
    return lead + snake


def is_lineage(name: str) -> bool:
    """Lineage columns (e.g. `_source`) record where a row came from; they are never features."""
    return name.startswith(LINEAGE_PREFIX)


def load_schema(path: Path) -> DataSchema:
    """Read the committed schema, with errors that name the file and key."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise PillarsError(
            f"{path}: schema not found; create it with `make schema`, review it and commit it"
        ) from error
    except yaml.YAMLError as error:
        raise PillarsError(f"{path}: not valid YAML: {error}") from error
    try:
        return DataSchema.model_validate(raw)
    except ValidationError as error:
        details = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()
        )
        raise PillarsError(f"{path}: {details}") from None


def check_params_columns(params: Params, schema: DataSchema) -> None:
    """Stop when a params key names a column the schema does not have."""
    known = set(schema.columns)
    problems = [
        f"{key}: column {name!r} is not in the schema {params.dataset.schema_path}"
        for key, names in params.column_references().items()
        for name in names
        if name not in known
    ]
    target = schema.columns.get(params.dataset.target)
    if target is not None and params.dataset.task != "regression":
        if not target.categories:
            problems.append(
                f"dataset.target: column {params.dataset.target!r} has no label set in the schema"
            )
        elif (
            params.dataset.positive_label is not None
            and params.dataset.positive_label not in target.categories
        ):
            problems.append(
                f"dataset.positive_label: {params.dataset.positive_label!r} is not one of the target's "
                f"labels {target.categories}"
            )
    if target is not None and params.dataset.task == "regression" and not target.is_numeric:
        problems.append(
            f"dataset.target: regression needs a numeric target, {params.dataset.target!r} is not"
        )
    by = params.curate.split.by
    order = schema.columns.get(by) if by is not None else None
    if order is not None and not (order.is_numeric or order.dtype == "datetime"):
        problems.append(
            f"curate.split.by: column {by!r} is {order.dtype}; a time order needs numbers or datetimes"
        )
    if problems:
        raise PillarsError(
            "params.yaml: " + "\nparams.yaml: ".join(problems) + f"\n(columns: {sorted(known)})"
        )


def required_columns(schema: DataSchema, params: Params) -> list[str]:
    """The columns that must never be missing: the schema says they are not nullable, and the model uses them
    (a column in `curate.drop` never reaches the model or the service, e.g. one a retrain source lacks)."""
    return [
        name
        for name, column in schema.columns.items()
        if not column.nullable and name not in params.curate.drop
    ]


def load_checked(params: Params) -> DataSchema:
    """The schema named in params, after checking that params only name columns it has."""
    schema = load_schema(Path(params.dataset.schema_path))
    check_params_columns(params, schema)
    return schema


def parse_types(
    raw: pd.DataFrame, schema: DataSchema, placeholders: list[str]
) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Turn placeholders into missing values and parse numeric, boolean and datetime columns to their type.

    Returns the typed frame and, per column, a boolean mask of the values that could not be parsed.
    """
    typed = raw.copy()
    unparsable: dict[str, pd.Series] = {}
    for name, column in schema.columns.items():
        if name not in typed:
            continue
        values = typed[name]
        if placeholders and not pd.api.types.is_numeric_dtype(values):
            values = values.mask(values.isin(placeholders))
        if column.is_numeric:
            parsed = pd.to_numeric(values, errors="coerce") if not _is_real_numeric(values) else values
            parsed = parsed.astype("float64")
        elif column.dtype == "boolean":
            parsed = _parse_boolean(values)
        elif column.dtype == "datetime":
            parsed = pd.Series(parse_datetimes(values, column.format), index=values.index)
        else:
            parsed = values.astype("str").mask(values.isna())
        bad = parsed.isna() & values.notna()
        if bad.any():
            unparsable[name] = bad
        typed[name] = parsed
    return typed, unparsable


def _is_real_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _parse_boolean(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype("boolean")
    spelled = values.astype("str").str.strip().str.lower()
    mapping = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
    return spelled.map(mapping).astype("boolean").mask(values.isna())


def pandera_schema(schema: DataSchema) -> pa.DataFrameSchema:
    """The pandera check for typed data (after `parse_types`): categories, ranges and nullability; row by
    row, so it checks partitions alone (uniqueness needs every row: validate_data checks it)."""
    columns = {}
    for name, column in schema.columns.items():
        checks = []
        if column.categories is not None:
            checks.append(pa.Check.isin(column.categories, error="category"))
        low, high = (
            (
                pd.Timestamp(column.min) if column.min is not None else None,
                pd.Timestamp(column.max) if column.max is not None else None,
            )
            if column.dtype == "datetime"
            else (column.min, column.max)
        )
        if low is not None:
            checks.append(pa.Check.ge(low, error="min"))
        if high is not None:
            checks.append(pa.Check.le(high, error="max"))
        columns[name] = pa.Column(None, checks, nullable=column.nullable, required=True)
    return pa.DataFrameSchema(columns, strict=False)


def infer_schema(raw: pd.DataFrame, params: Params) -> DataSchema:
    """Propose a schema from data: types, nullability, ranges, uniqueness and category sets.

    Placeholders (params `dataset.placeholders`) are treated as missing, so they never become categories.
    The target always gets its label set for classification tasks, however many labels there are.
    """
    max_categories = params.validate_data.max_categories
    columns = {}
    for name in raw.columns:
        if is_lineage(name):
            continue
        values = raw[name]
        if not pd.api.types.is_numeric_dtype(values) and params.dataset.placeholders:
            values = values.mask(values.isin(params.dataset.placeholders))
        classification_target = name == params.dataset.target and params.dataset.task != "regression"
        dtype = "string" if classification_target else _infer_dtype(values)
        present = values.dropna()
        spec: dict[str, object] = {"dtype": dtype, "nullable": bool(values.isna().any())}
        if dtype in NUMERIC_DTYPES:
            numbers = pd.to_numeric(present)
            if len(numbers):
                spec["min"], spec["max"] = _plain(numbers.min()), _plain(numbers.max())
        if dtype == "datetime":
            spec |= _datetime_spec(present)
        distinct = sorted(present.astype("str").unique().tolist())
        if dtype == "string" and (len(distinct) <= max_categories or classification_target):
            spec["categories"] = distinct
        if dtype in ("integer", "string") and len(present) == len(values) > 1 and present.is_unique:
            spec["unique"] = True
        columns[name] = ColumnSchema.model_validate(spec)
    return DataSchema(dataset=params.dataset.name, columns=columns)


def _infer_dtype(values: pd.Series) -> Literal["integer", "float", "boolean", "string", "datetime"]:
    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(values) or date_format(values) is not None:
        return "datetime"
    numbers = values if pd.api.types.is_numeric_dtype(values) else pd.to_numeric(values, errors="coerce")
    if numbers.notna().sum() != values.notna().sum() or values.notna().sum() == 0:
        return "string"
    present = numbers.dropna().to_numpy(dtype="float64")
    return "integer" if np.all(np.mod(present, 1) == 0) else "float"


def date_format(values: pd.Series) -> str | None:
    """The first of DATE_FORMATS that reads every present value of a text column as a date (None: none
    does, or the column holds numbers). Each distinct value is parsed once."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    distinct = pd.Series(values.dropna().astype("str").unique())
    if distinct.empty or pd.to_numeric(distinct, errors="coerce").notna().all():
        return None
    if not distinct.str.contains(r"\d", regex=True).all():
        return None
    for candidate in DATE_FORMATS:
        parsed = pd.to_datetime(distinct, format=candidate, errors="coerce", utc=True)
        if parsed.notna().all():
            return candidate
    return None


def _datetime_spec(present: pd.Series) -> dict[str, object]:
    """Format, range (ISO 8601) and whether times of day occur, of a datetime column's present values."""
    fmt = None if pd.api.types.is_datetime64_any_dtype(present) else date_format(present)
    moments = pd.DatetimeIndex(parse_datetimes(present, fmt))
    spec: dict[str, object] = {"with_time": bool((moments != moments.normalize()).any())}
    if fmt is not None:
        spec["format"] = fmt
    if len(moments):
        spec["min"], spec["max"] = moments.min().isoformat(), moments.max().isoformat()
    return spec


def _plain(number: object) -> float | int:
    value = float(number)  # type: ignore[arg-type]
    return int(value) if value.is_integer() else value


def dump_schema(schema: DataSchema, source: str) -> str:
    """YAML text of a schema, with a header that says where it came from and that a person owns it."""
    body = {
        "dataset": schema.dataset,
        "columns": {
            name: {
                key: value
                for key, value in column.model_dump(exclude_none=True).items()
                if value is not False
            }
            | {"nullable": column.nullable}
            for name, column in schema.columns.items()
        },
    }
    header = (
        f"# Data schema of dataset '{schema.dataset}', inferred by `make schema` from {source}.\n"
        "# Review it before committing: it is the contract that validate_data enforces.\n"
        "# dtype: integer | float | boolean | string | datetime; categories: the allowed values (others are\n"
        "# findings); datetime: format (strptime codes or ISO8601) and with_time (times of day occur);\n"
        "# min/max: the expected range; nullable: missing values allowed; unique: no repeated values.\n"
    )
    dumped: str = yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=110)
    return header + dumped


def main() -> None:
    """`python -m pillars.core.schema infer [--data PATH]`: write the schema named in params.yaml."""
    parser = argparse.ArgumentParser(prog="python -m pillars.core.schema", description=main.__doc__)
    parser.add_argument("command", choices=["infer"])
    parser.add_argument(
        "--data", type=Path, default=Path("data/raw/data.parquet"), help="raw data to infer from"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing schema")
    args = parser.parse_args()
    params = load_params()
    target = Path(params.dataset.schema_path)
    if target.exists() and not args.force:
        raise PillarsError(f"{target}: exists; pass --force to overwrite a reviewed schema")
    schema = infer_schema(read_parquet(args.data), params)
    text = dump_schema(schema, str(args.data))
    write_bytes(target, lambda temporary: temporary.write_text(text, encoding="utf-8"))
    print(f"wrote {target} ({len(schema.columns)} columns): review it, then commit it")


if __name__ == "__main__":
    run_cli(main, parses_arguments=True)
