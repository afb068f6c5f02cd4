"""Data tests: the bundled default dataset, its attribution, and its agreement with the committed schema."""

import pandas as pd
import pytest

from pillars.core.params import Params, load_params
from pillars.core.schema import DataSchema, load_checked
from pillars.stages.cleanse import REASON_COLUMN, cleanse
from pillars.stages.ingest import ingest
from pillars.stages.validate_data import validate
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def params() -> Params:
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="module")
def raw(params: Params) -> pd.DataFrame:
    source = params.ingest.sources[0]
    relative = source.model_copy(update={"path": str(ROOT / source.path)})
    frame, _ = ingest(params.ingest.model_copy(update={"sources": [relative]}))
    return frame


def test_attribution_ships_beside_the_data() -> None:
    readme = (ROOT / "data/external/adult/README.md").read_text()
    assert "CC BY 4.0" in readme
    assert "https://doi.org/10.24432/C5XW20" in readme


def test_committed_params_agree_with_the_committed_schema(
    params: Params, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    schema = load_checked(params)
    assert params.dataset.target in schema.columns


def test_bundled_data_passes_validation(raw: pd.DataFrame, adult_schema: DataSchema, params: Params) -> None:
    findings = validate(raw, adult_schema, params)
    assert [finding.describe() for finding in findings if finding.hard] == []
    assert {finding.check for finding in findings} <= {
        "placeholder",
        "new_category",
        "below_min",
        "above_max",
    }


def test_bundled_data_loses_only_duplicates(
    raw: pd.DataFrame, adult_schema: DataSchema, params: Params
) -> None:
    clean, removed, report = cleanse(raw, adult_schema, params)
    assert report["rows"]["reconciled"]
    assert set(removed[REASON_COLUMN]) == {"duplicate"}
    assert not clean.drop(columns="_source").duplicated().any()
    assert clean[params.dataset.target].notna().all()
