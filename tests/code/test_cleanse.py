"""Pillar 3, cleanse: nothing is lost - every removed row is quarantined with a reason, and counts reconcile."""

import numpy as np
import pandas as pd
import pytest

from pillars.core.errors import PillarsError
from pillars.core.params import CleanseParams, Params
from pillars.core.schema import ROW_COLUMN, DataSchema
from pillars.stages.cleanse import REASON_COLUMN, cleanse


@pytest.fixture
def schema() -> DataSchema:
    return DataSchema.model_validate(
        {
            "dataset": "toy",
            "columns": {
                "id": {"dtype": "string"},
                "age": {"dtype": "integer", "min": 0, "max": 100},
                "pay": {"dtype": "float"},
                "city": {"dtype": "string", "categories": ["oslo", "rome"]},
                "label": {"dtype": "string", "categories": ["no", "yes"]},
            },
        }
    )


@pytest.fixture
def raw() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "a"],
            "age": [30, 30, -4, 41, 52, 33, 38, 45, 29, 61],
            "pay": [10.0, 10.0, 12.0, 11.0, 9.0, 500.0, 10.5, 11.5, 9.5, 10.0],
            "city": ["oslo", "oslo", "rome", "?", "rome", "oslo", "rome", "oslo", "rome", "rome"],
            "label": ["no", "no", "yes", "yes", None, "no", "yes", "no", "no", "yes"],
            "_source": ["s"] * 10,
        }
    )


def params_for(make_params, **cleanse: object) -> Params:
    """Toy-dataset params whose cleanse section is exactly the one given (no default rules merged in)."""
    dataset = {"target": "label", "positive_label": "yes", "placeholders": ["?"], "key_columns": ["id"]}
    settings = CleanseParams.model_validate({"impossible": {"age": {"min": 0}}, **cleanse})
    return make_params(dataset=dataset).model_copy(update={"cleanse": settings})


def test_reasons_and_reconciliation(raw, schema, make_params) -> None:
    raw = raw.assign(id=["a", "a", "c", "d", "e", "f", "g", "h", "i", "a"])  # row 1 repeats row 0
    clean, removed, report = cleanse(raw, schema, params_for(make_params))
    reasons = dict(zip(removed[ROW_COLUMN], removed[REASON_COLUMN], strict=True))
    assert reasons == {1: "duplicate", 2: "impossible:age", 4: "missing_target", 9: "duplicate_key"}
    assert len(raw) == len(clean) + len(removed)
    assert report["rows"] == {"raw": 10, "clean": 6, "quarantined": 4, "reconciled": True}
    assert report["quarantined_by_reason"] == {
        "duplicate": 1,
        "duplicate_key": 1,
        "impossible:age": 1,
        "missing_target": 1,
    }
    # quarantined rows keep their original values, so nothing is lost
    pd.testing.assert_frame_equal(
        removed.drop(columns=[ROW_COLUMN, REASON_COLUMN]), raw.loc[[1, 2, 4, 9]].reset_index(drop=True)
    )
    assert report["placeholders_to_missing"] == {"city": 1}
    assert clean["city"].isna().sum() == 1


@pytest.mark.parametrize("action", ["flag", "clip", "quarantine"])
def test_outlier_actions(raw, schema, make_params, action: str) -> None:
    params = params_for(make_params, outliers={"pay": {"iqr_k": 1.5, "action": action}})
    clean, removed, report = cleanse(raw, schema, params)
    assert len(raw) == len(clean) + len(removed)
    if action == "flag":
        assert report["flagged"] == {"pay": 1}
        assert clean.loc[clean["pay"] == 500.0, "pay_outlier"].tolist() == [True]
    elif action == "clip":
        assert report["clipped"] == {"pay": 1}
        assert clean["pay"].max() < 500.0
    else:
        assert "outlier:pay" in removed[REASON_COLUMN].tolist()
        assert 500.0 not in clean["pay"].tolist()


def test_fixed_bounds_outlier(raw, schema, make_params) -> None:
    params = params_for(make_params, outliers={"age": {"max": 40, "action": "flag"}})
    clean, _, report = cleanse(raw, schema, params)
    assert report["flagged"] == {"age": 2}
    assert clean.loc[clean["age_outlier"], "age"].tolist() == [41, 45]


def test_unexpected_columns_are_dropped_and_reported(raw, schema, make_params) -> None:
    clean, _, report = cleanse(raw.assign(extra=1), schema, params_for(make_params))
    assert "extra" not in clean and report["dropped_columns"] == ["extra"]
    assert "_source" in clean


def test_wrong_types_stop_cleanse(raw, schema, make_params) -> None:
    with pytest.raises(PillarsError, match=r"wrong type in \['age'\]; run validate_data first"):
        cleanse(
            raw.astype({"age": "str"}).assign(age=lambda frame: frame["age"].where(frame.index != 0, "old")),
            schema,
            params_for(make_params),
        )


def test_broken_values_are_quarantined_with_their_reason(raw, schema, make_params) -> None:
    """With validate_data.broken_values: quarantine, the rows validate_data let through leave here, named."""
    strict = schema.model_copy(
        update={
            "columns": schema.columns | {"age": schema.columns["age"].model_copy(update={"nullable": False})}
        }
    )
    broken = raw.astype({"age": "float64"})
    broken.loc[5, "pay"] = np.inf
    broken.loc[6, "pay"] = -np.inf
    broken.loc[7, "age"] = np.nan
    clean, removed, report = cleanse(broken, strict, params_for(make_params))
    reasons = dict(zip(removed[ROW_COLUMN], removed[REASON_COLUMN], strict=True))
    assert {row: reasons[row] for row in (5, 6, 7)} == {
        5: "not_finite:pay",
        6: "not_finite:pay",
        7: "missing_required:age",
    }
    assert np.isfinite(clean["pay"]).all() and clean["age"].notna().all()
    assert report["rows"]["reconciled"]
