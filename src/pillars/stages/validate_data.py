"""Pillar 2, validate_data: check the raw data against the committed schema with pandera.

Hard failures (empty data, a missing column, a value of the wrong type, an unknown target label, and, unless
`validate_data.broken_values` is `quarantine`, a non-finite number or a missing value in a column the schema
says is not nullable and the model uses, i.e. not in `curate.drop`) stop the pipeline with a readable summary
naming the column, the rule and example rows.
Soft findings (placeholders, new categories, out-of-range values; broken values to quarantine) are counted in
metrics/data_validation.json for the next stages to handle.
"""

from dataclasses import dataclass, field, replace
from functools import partial
from typing import NamedTuple

import numpy as np
import pandas as pd
import pandera.pandas as pa

from pillars.compute.cluster import engine_client
from pillars.compute.partitions import InMemory, Table, collect, open_table
from pillars.core import layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import write_json
from pillars.core.params import Params, load_params
from pillars.core.schema import (
    DataSchema,
    is_lineage,
    load_checked,
    pandera_schema,
    parse_types,
    required_columns,
)

PANDERA_CHECKS = {
    "column_in_dataframe": "missing_column",
    "not_nullable": "missing_value",
    "category": "new_category",
    "min": "below_min",
    "max": "above_max",
}


@dataclass(frozen=True)
class Finding:
    """One kind of problem in one column: how often, and the first few offending values with their row
    numbers."""

    column: str
    check: str
    hard: bool
    count: int
    examples: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)

    def describe(self) -> str:
        where = f"column {self.column!r}" if self.column else "data"
        shown = f": e.g. {list(dict.fromkeys(self.examples))} at rows {self.rows}" if self.examples else ""
        return f"{where}: {self.check} x{self.count}{shown}"


def _finding(column: str, check: str, hard: bool, values: pd.Series, examples: int) -> Finding:
    """A finding from the offending values, indexed by raw row number."""
    sample = values.head(examples)
    return Finding(
        column=column,
        check=check,
        hard=hard,
        count=len(values),
        examples=[str(value) for value in sample],
        rows=[int(row) for row in sample.index],
    )


class PartFindings(NamedTuple):
    """What one partition of the raw data shows: its findings, and the values of the columns the schema
    says are unique (checked over all partitions together)."""

    findings: list[Finding]
    unique_values: dict[str, pd.Series]


def validate_part(raw: pd.DataFrame, schema: DataSchema, params: Params) -> PartFindings:
    """The findings of the checks that look at one row at a time."""
    settings, dataset = params.validate_data, params.dataset
    findings = []
    unexpected = [name for name in raw.columns if name not in schema.columns and not is_lineage(name)]
    findings += [
        Finding(name, "unexpected_column", settings.unexpected_columns == "fail", len(raw))
        for name in unexpected
    ]
    for name in schema.columns:
        if name in raw and dataset.placeholders and not pd.api.types.is_numeric_dtype(raw[name]):
            placeholder = raw[name][raw[name].isin(dataset.placeholders)]
            if len(placeholder):
                findings.append(_finding(name, "placeholder", False, placeholder, settings.examples))
    typed, unparsable = parse_types(raw, schema, dataset.placeholders)
    findings += [
        _finding(name, f"not_{schema.columns[name].dtype}", True, raw[name][bad], settings.examples)
        for name, bad in unparsable.items()
    ]
    broken_is_hard = settings.broken_values == "fail"
    for name, column in schema.columns.items():
        if column.is_numeric and name in typed:
            infinite = np.isinf(typed[name].to_numpy(dtype="float64"))
            if infinite.any():
                findings.append(
                    _finding(name, "not_finite", broken_is_hard, raw[name][infinite], settings.examples)
                )
    try:
        pandera_schema(schema).validate(typed, lazy=True)
    except pa.errors.SchemaErrors as errors:
        findings += _pandera_findings(
            errors.failure_cases,
            dataset.target,
            required_columns(schema, params) if broken_is_hard else [],
            settings.examples,
        )
    unique = {name: typed[name] for name, column in schema.columns.items() if column.unique and name in typed}
    return PartFindings(findings, unique)


def merge(parts: list[PartFindings], examples: int) -> list[Finding]:
    """The findings of the whole data from its partitions' (in row order): counts add up, and the examples
    are the first ones in row order. Uniqueness is checked here, over every row."""
    merged: dict[tuple[str, str, bool], Finding] = {}
    for finding in (finding for part in parts for finding in part.findings):
        key = (finding.column, finding.check, finding.hard)
        if key not in merged:
            merged[key] = finding
            continue
        earlier = merged[key]
        merged[key] = replace(
            earlier,
            count=earlier.count + finding.count,
            examples=(earlier.examples + finding.examples)[:examples],
            rows=(earlier.rows + finding.rows)[:examples],
        )
    findings = list(merged.values())
    for name in parts[0].unique_values if parts else []:
        values = pd.concat([part.unique_values[name] for part in parts])
        repeated = values[values.duplicated(keep=False)]
        if len(repeated):
            findings.append(_finding(name, "duplicate_value", False, repeated, examples))
    return findings


def validate_table(table: Table, schema: DataSchema, params: Params) -> list[Finding]:
    """Every finding for the raw data, hard ones first."""
    if not table.rows:
        return [Finding("", "empty", True, 0)]
    parts = collect(table, partial(validate_part, schema=schema, params=params))
    findings = merge(parts, params.validate_data.examples)
    return sorted(findings, key=lambda finding: (not finding.hard, finding.column, finding.check))


def validate(raw: pd.DataFrame, schema: DataSchema, params: Params) -> list[Finding]:
    """Every finding for raw data in memory, hard ones first."""
    return validate_table(InMemory(raw), schema, params)


def _pandera_findings(cases: pd.DataFrame, target: str, required: list[str], examples: int) -> list[Finding]:
    findings = []
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=True):
        kind = PANDERA_CHECKS.get(str(check), str(check))
        if kind == "missing_column":
            for name in group["failure_case"]:
                findings.append(Finding(str(name), kind, True, 0))
            continue
        if column == target and kind == "new_category":  # an unknown label cannot be learned or scored
            kind = "unknown_label"
        # a missing value in a required column breaks what the service promises its clients
        hard = kind == "unknown_label" or (kind == "missing_value" and column in required)
        values = pd.Series(group["failure_case"].to_numpy(), index=group["index"].astype("int64").to_numpy())
        findings.append(_finding(str(column), kind, hard, values, examples))
    return findings


def report(rows: int, columns: int, findings: list[Finding]) -> dict:
    """The metrics file: counts only, so that `dvc metrics diff` compares runs."""
    counts: dict[str, dict[str, int]] = {}
    for finding in findings:
        counts.setdefault(finding.column or "_data", {})[finding.check] = finding.count
    hard = [finding for finding in findings if finding.hard]
    return {
        "passed": not hard,
        "rows": rows,
        "columns": columns,
        "hard_failures": len(hard),
        "soft_findings": sum(finding.count for finding in findings if not finding.hard),
        "findings": counts,
    }


def main() -> None:
    params = load_params()
    schema = load_checked(params)
    with engine_client(params.compute) as client:
        raw = open_table(layout.RAW_DATA, client)
        findings = validate_table(raw, schema, params)
    hard = [finding for finding in findings if finding.hard]
    if hard:
        lines = "\n".join(f"  - {finding.describe()}" for finding in hard)
        raise PillarsError(
            f"validate_data: {len(hard)} hard failure(s) in {layout.RAW_DATA} "
            f"against {params.dataset.schema_path}:\n"
            f"{lines}\nFix the source data, or review the schema if the data is right."
        )
    write_json(layout.DATA_VALIDATION_REPORT, report(raw.rows, len(raw.columns), findings))
    for finding in findings:
        print(f"validate_data: soft finding: {finding.describe()}")
    print(
        f"validate_data: passed, {raw.rows} rows, {len(findings)} soft finding(s) "
        f"-> {layout.DATA_VALIDATION_REPORT}"
    )


if __name__ == "__main__":
    run_cli(main)
