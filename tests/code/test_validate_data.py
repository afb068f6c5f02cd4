"""Pillar 2, validate_data: hard failures stop the run, soft findings are counted."""

import numpy as np
import pandas as pd
import pytest

from pillars.core.params import Params
from pillars.core.schema import DataSchema
from pillars.stages.validate_data import Finding, report, validate
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return pd.read_parquet(ROOT / "data/external/adult/adult.parquet").head(500)


def by_check(findings: list[Finding]) -> dict[tuple[str, str], Finding]:
    return {(finding.column, finding.check): finding for finding in findings}


def test_clean_sample_has_only_soft_findings(sample, adult_schema: DataSchema, make_params) -> None:
    findings = validate(sample, adult_schema, make_params())
    assert findings and not any(finding.hard for finding in findings)
    expected = int((sample["workclass"] == "?").sum())
    assert by_check(findings)[("workclass", "placeholder")].count == expected
    summary = report(len(sample), len(sample.columns), findings)
    assert summary["passed"] and summary["findings"]["workclass"]["placeholder"] == expected


def test_hard_failures(sample, adult_schema: DataSchema, make_params) -> None:
    broken = sample.drop(columns="race").astype({"age": "str", "income": "str"})
    broken.loc[3, "age"] = "forty"
    broken.loc[7, "income"] = "maybe"
    findings = by_check(validate(broken, adult_schema, make_params()))
    assert findings[("race", "missing_column")].hard
    wrong_type = findings[("age", "not_integer")]
    assert wrong_type.hard and wrong_type.rows == [3] and wrong_type.examples == ["forty"]
    label = findings[("income", "unknown_label")]
    assert label.hard and label.rows == [7] and "maybe" in label.describe()
    assert not report(len(broken), len(broken.columns), list(findings.values()))["passed"]


def test_soft_findings_new_category_and_range(sample, adult_schema: DataSchema, make_params) -> None:
    changed = sample.copy()
    changed.loc[1, "workclass"] = "Astronaut"
    changed.loc[2, "age"] = 130
    changed.loc[4, "age"] = 3
    findings = by_check(validate(changed, adult_schema, make_params()))
    assert findings[("workclass", "new_category")].examples == ["Astronaut"]
    assert findings[("age", "above_max")].rows == [2]
    assert findings[("age", "below_min")].rows == [4]
    assert not any(finding.hard for finding in findings.values())


def test_empty_data_is_hard(adult_schema: DataSchema, make_params) -> None:
    findings = validate(pd.DataFrame(columns=list(adult_schema.columns)), adult_schema, make_params())
    assert [(finding.check, finding.hard) for finding in findings] == [("empty", True)]


@pytest.mark.parametrize(("policy", "hard"), [("report", False), ("fail", True)])
def test_unexpected_columns(sample, adult_schema: DataSchema, make_params, policy: str, hard: bool) -> None:
    params: Params = make_params(validate_data={"unexpected_columns": policy})
    findings = by_check(validate(sample.assign(extra=1, _source="a"), adult_schema, params))
    assert findings[("extra", "unexpected_column")].hard is hard
    assert ("_source", "unexpected_column") not in findings


def broken_sample(sample: pd.DataFrame) -> pd.DataFrame:
    """Infinity in a numeric column (twice) and a missing age, which the schema says is never missing."""
    broken = sample.astype({"capital-gain": "float64", "age": "float64"})
    broken.loc[[5, 9], "capital-gain"] = np.inf
    broken.loc[11, "age"] = np.nan
    return broken


def test_broken_values_are_hard_failures_naming_the_column_and_rule(
    sample, adult_schema: DataSchema, make_params
) -> None:
    findings = by_check(validate(broken_sample(sample), adult_schema, make_params()))
    infinite = findings[("capital-gain", "not_finite")]
    assert infinite.hard and infinite.rows == [5, 9] and infinite.count == 2
    assert "column 'capital-gain': not_finite x2" in infinite.describe()
    missing = findings[("age", "missing_value")]
    assert missing.hard and missing.rows == [11]


def test_broken_values_can_go_to_quarantine_instead(sample, adult_schema: DataSchema, make_params) -> None:
    params = make_params(validate_data={"broken_values": "quarantine"})
    findings = by_check(validate(broken_sample(sample), adult_schema, params))
    assert not findings[("capital-gain", "not_finite")].hard
    assert not findings[("age", "missing_value")].hard


def test_a_missing_value_the_model_never_sees_is_soft(sample, adult_schema: DataSchema, make_params) -> None:
    """`education` is in curate.drop: neither the model nor the service uses it (a retrain source built from
    prediction logs lacks it), so its missing values are counted, not fatal."""
    assert not adult_schema.columns["education"].nullable
    gaps = sample.assign(education=sample["education"].mask(sample.index < 3))
    finding = by_check(validate(gaps, adult_schema, make_params()))[("education", "missing_value")]
    assert not finding.hard and finding.count == 3
