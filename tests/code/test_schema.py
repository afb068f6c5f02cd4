"""The data schema: inferred from data, written for review, read back unchanged."""

import pandas as pd
import pytest

from pillars.core.errors import PillarsError
from pillars.core.schema import (
    DataSchema,
    canonical_name,
    dump_schema,
    infer_schema,
    load_schema,
    parse_types,
)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("marital-status", "marital_status"),
        ("Capital Gain", "capital_gain"),
        ("hoursPerWeek", "hours_per_week"),
        ("_source", "_source"),
        ("  ID#", "id"),
    ],
)
def test_canonical_name(raw: str, canonical: str) -> None:
    assert canonical_name(raw) == canonical


def test_infer_types_ranges_categories_and_placeholders(make_params) -> None:
    raw = pd.DataFrame(
        {
            "id": ["a1", "a2", "a3", "a4"],
            "age": [20, 30, 40, 50],
            "score": ["0.5", "1.25", "?", "2"],
            "city": ["Oslo", "?", "Rome", "Oslo"],
            "label": ["x", "y", "x", "x"],
            "_source": ["s", "s", "s", "s"],
        }
    )
    params = make_params(dataset={"target": "label", "positive_label": "y"})
    schema = infer_schema(raw, params)
    columns = schema.columns
    assert "_source" not in columns
    assert columns["id"].unique and columns["id"].categories == ["a1", "a2", "a3", "a4"]
    assert (columns["age"].dtype, columns["age"].min, columns["age"].max, columns["age"].nullable) == (
        "integer",
        20,
        50,
        False,
    )
    assert (columns["score"].dtype, columns["score"].nullable, columns["score"].max) == ("float", True, 2)
    assert columns["city"].categories == ["Oslo", "Rome"]
    assert columns["label"].categories == ["x", "y"]


def test_many_distinct_strings_get_no_category_set(make_params) -> None:
    raw = pd.DataFrame({"name": [f"n{i}" for i in range(20)], "income": ["<=50K", ">50K"] * 10})
    schema = infer_schema(raw, make_params(validate_data={"max_categories": 5}))
    assert schema.columns["name"].categories is None
    assert schema.columns["income"].categories == ["<=50K", ">50K"]


def test_dump_and_load_round_trip(tmp_path, adult_schema: DataSchema) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text(dump_schema(adult_schema, "test"))
    assert load_schema(path) == adult_schema
    assert path.read_text().startswith("# Data schema of dataset 'adult'")


def test_bad_schema_file_names_the_key(tmp_path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text("dataset: x\ncolumns:\n  age: {dtype: int}\n")
    with pytest.raises(PillarsError, match=r"schema.yaml: columns.age.dtype: Input should be 'integer'"):
        load_schema(path)
    with pytest.raises(PillarsError, match="create it with `make schema`"):
        load_schema(tmp_path / "absent.yaml")


def test_parse_types_reports_unparsable_values(adult_schema: DataSchema) -> None:
    raw = pd.DataFrame({"age": ["25", "?", "old"], "workclass": ["Private", "?", None]})
    typed, unparsable = parse_types(raw, adult_schema, ["?"])
    assert typed["age"].isna().tolist() == [False, True, True]
    assert unparsable["age"].tolist() == [False, False, True]
    assert typed["workclass"].isna().tolist() == [False, True, True]
