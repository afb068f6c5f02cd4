"""Pillar 4, standardize: canonical names, dtypes, spellings, units and target encoding."""

import pandas as pd
import pytest

from pillars.core.errors import PillarsError
from pillars.core.params import StandardizeParams
from pillars.core.schema import DataSchema
from pillars.stages.standardize import describe_columns, standardize_frame, target_encoding

SCHEMA = DataSchema.model_validate(
    {
        "dataset": "toy",
        "columns": {
            "Home-Country": {"dtype": "string"},
            "Weekly Hours": {"dtype": "integer"},
            "pay": {"dtype": "float"},
            "grade": {"dtype": "string", "categories": ["a", "b", "c"]},
        },
    }
)


def toy_params(make_params, task: str = "multiclass", **standardize: object):
    positive = {"positive_label": "b"} if task == "binary" else {"positive_label": None}
    params = make_params(dataset={"target": "grade", "task": task, **positive})
    return params.model_copy(update={"standardize": StandardizeParams.model_validate(standardize)})


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Home-Country": [" United-States", "usa", "Mexico ", None],
            "Weekly Hours": [40.0, 38.0, 50.0, 20.0],
            "pay": [1500.0, 2000.0, None, 100.0],
            "grade": ["a", "b", "c", "b"],
        }
    )


def test_names_dtypes_spellings_units(make_params) -> None:
    params = toy_params(
        make_params,
        aliases={"Home-Country": {"USA": "United-States"}},
        units={"pay": {"factor": 0.001, "unit": "thousand USD"}},
    )
    encoding = target_encoding(params.dataset, SCHEMA)
    standard = standardize_frame(frame(), SCHEMA, params, encoding)
    assert list(standard.columns) == ["home_country", "weekly_hours", "pay", "grade"]
    assert standard["home_country"].tolist()[:3] == ["united-states", "united-states", "mexico"]
    assert pd.isna(standard["home_country"].iloc[3])
    assert standard["weekly_hours"].dtype == "float64"
    assert standard["pay"].tolist()[:2] == [1.5, 2.0]
    assert standard["grade"].tolist() == [0, 1, 2, 1]
    described = describe_columns(standard, list(frame().columns), SCHEMA, params)
    assert described["pay"] == {
        "source": "pay",
        "dtype": "float64",
        "role": "numeric",
        "unit": "thousand USD",
    }
    assert described["home_country"]["role"] == "categorical"
    assert described["grade"]["role"] == "target"


def test_case_can_be_kept(make_params) -> None:
    params = toy_params(make_params, case="keep")
    standard = standardize_frame(frame(), SCHEMA, params, target_encoding(params.dataset, SCHEMA))
    assert standard["home_country"].tolist()[:3] == ["United-States", "usa", "Mexico"]


def test_binary_encoding_uses_the_positive_label(make_params) -> None:
    schema = SCHEMA.model_copy(
        update={
            "columns": SCHEMA.columns
            | {"grade": SCHEMA.columns["grade"].model_copy(update={"categories": ["a", "b"]})}
        }
    )
    encoding = target_encoding(toy_params(make_params, task="binary").dataset, schema)
    assert encoding == {"task": "binary", "column": "grade", "labels": {"a": 0, "b": 1}}
    with pytest.raises(PillarsError, match="binary needs exactly 2 target labels"):
        target_encoding(toy_params(make_params, task="binary").dataset, SCHEMA)


def test_unknown_label_is_an_error(make_params) -> None:
    params = toy_params(make_params)
    with pytest.raises(PillarsError, match=r"target labels \['z'\] are not in the schema"):
        standardize_frame(
            frame().assign(grade=["a", "z", "b", "c"]),
            SCHEMA,
            params,
            target_encoding(params.dataset, SCHEMA),
        )


def test_name_clash_is_an_error(make_params) -> None:
    schema = DataSchema.model_validate(
        {
            "dataset": "toy",
            "columns": {
                "a-b": {"dtype": "float"},
                "a_b": {"dtype": "float"},
                "grade": {"dtype": "string", "categories": ["a"]},
            },
        }
    )
    params = toy_params(make_params)
    with pytest.raises(PillarsError, match=r"several columns become \['a_b'\]"):
        standardize_frame(
            pd.DataFrame({"a-b": [1.0], "a_b": [2.0], "grade": ["a"]}),
            schema,
            params,
            target_encoding(params.dataset, schema),
        )
