"""Dates and times: inferred by `make schema`, checked by validate_data, expanded into calendar features by
standardize, and parsed and expanded the same way by the serving model."""

import numpy as np
import pandas as pd
import pytest

from pillars.core.params import StandardizeParams
from pillars.core.rules import calendar_names
from pillars.core.schema import DataSchema, dump_schema, infer_schema, load_schema, parse_types
from pillars.serve.model import InputField, ServingModel
from pillars.stages.standardize import column_roles, standardize_frame, target_encoding
from pillars.stages.validate_data import validate


def raw_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Sale Date": ["03/28/2024", "12/01/2023", None, "01/15/2024"],
            "logged": [
                "2024-03-28 10:15:00",
                "2023-12-01T08:00:00+01:00",
                "2024-01-02",
                "2024-01-15 23:59:59",
            ],
            "day": ["2024-03-28", "2023-12-01", "2024-01-02", "2024-01-15"],
            "code": ["20240328", "20231201", "20240102", "20240115"],
            "note": ["paid in full", "late 3 days", "n/a", "ok"],
            "label": ["a", "b", "a", "b"],
        }
    )


@pytest.fixture
def params(make_params):
    return make_params(
        dataset={"target": "label", "task": "binary", "positive_label": "b", "placeholders": []}
    )


def test_schema_infers_formats_ranges_and_times(params) -> None:
    schema = infer_schema(raw_frame(), params)
    sale, logged, day = schema.columns["Sale Date"], schema.columns["logged"], schema.columns["day"]
    assert (sale.dtype, sale.format, sale.with_time, sale.nullable) == ("datetime", "%m/%d/%Y", False, True)
    assert (sale.min, sale.max) == ("2023-12-01T00:00:00", "2024-03-28T00:00:00")
    assert (logged.dtype, logged.format, logged.with_time) == ("datetime", "ISO8601", True)
    assert logged.min == "2023-12-01T07:00:00"  # the offset converted to UTC
    assert (day.dtype, day.with_time) == ("datetime", False)
    assert schema.columns["code"].dtype == "integer"  # digits only: a number, not a date
    assert schema.columns["note"].dtype == "string"


def test_schema_round_trips_through_yaml(params, tmp_path) -> None:
    schema = infer_schema(raw_frame(), params)
    path = tmp_path / "schema.yaml"
    path.write_text(dump_schema(schema, "test"))
    assert load_schema(path) == schema


def test_a_datetime_range_must_be_a_date() -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        DataSchema.model_validate({"dataset": "x", "columns": {"d": {"dtype": "datetime", "min": 3}}})


def test_validate_data_rejects_text_that_is_no_date_and_dates_out_of_range(params) -> None:
    schema = infer_schema(raw_frame(), params)
    later = raw_frame()
    later.loc[1, "Sale Date"] = "not a date"
    later.loc[3, "day"] = "2031-01-01"
    findings = {(finding.column, finding.check): finding for finding in validate(later, schema, params)}
    assert findings["Sale Date", "not_datetime"].hard and findings["Sale Date", "not_datetime"].rows == [1]
    assert findings["day", "above_max"].rows == [3]


def test_standardize_keeps_the_date_and_adds_its_calendar_features(params) -> None:
    schema = infer_schema(raw_frame(), params)
    typed, _ = parse_types(raw_frame(), schema, [])
    params = params.model_copy(update={"standardize": StandardizeParams()})
    standard = standardize_frame(typed, schema, params, target_encoding(params.dataset, schema))
    assert pd.api.types.is_datetime64_any_dtype(standard["sale_date"])
    parts = standard[calendar_names("sale_date", False)]
    assert parts.iloc[0].tolist() == [2024, 3, 28, 3, 88, pytest.approx(19810.0)]  # Thursday = 3
    assert parts.iloc[2].isna().all()
    assert standard["logged_hour"].tolist() == [10, 7, 0, 23]
    roles = column_roles(standard, "label")
    assert roles["sale_date"] == "datetime" and roles["sale_date_year"] == "numeric"


def test_serving_parses_and_expands_dates_as_training_does(params) -> None:
    schema = infer_schema(raw_frame(), params)
    typed, _ = parse_types(raw_frame(), schema, [])
    params = params.model_copy(update={"standardize": StandardizeParams()})
    standard = standardize_frame(typed, schema, params, target_encoding(params.dataset, schema))
    fields = tuple(
        InputField(
            name=name,
            feature=feature,
            dtype="datetime",
            nullable=True,
            date_format=column.format,
            with_time=column.with_time,
        )
        for name, feature, column in [
            ("Sale Date", "sale_date", schema.columns["Sale Date"]),
            ("logged", "logged", schema.columns["logged"]),
        ]
    )
    serving = ServingModel(
        "v", "binary", ("a", "b"), fields, (), "lower", None, None, {}, 1, 1, 1
    )  # inputs only
    raw = {name: raw_frame()[name].to_numpy(dtype=object) for name in ("Sale Date", "logged")}
    served = serving.standardized(serving.typed(raw))
    for name in [*calendar_names("sale_date", False), *calendar_names("logged", True)]:
        np.testing.assert_array_equal(served[name], standard[name].to_numpy(dtype="float64"))
    undated = {**raw, "Sale Date": np.array(["01/02/2024", "yesterday", None, None], dtype=object)}
    for read in (serving.typed, serving.read_dates):  # read_dates: the service's gate, before batching
        with pytest.raises(
            ValueError, match=r'Sale Date: "yesterday" \(row 1\) is not a date in the format %m/%d/%Y'
        ):
            read(undated)
    serving.read_dates(raw)
    iso = serving.typed({**raw, "Sale Date": np.array(["2024-03-28", None, None, None], dtype=object)})
    assert iso["Sale Date"][0] == np.datetime64("2024-03-28")  # ISO 8601 is always accepted
