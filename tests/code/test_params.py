"""The typed params loader: every mistake is reported with the key that holds it."""

from pathlib import Path

import pytest

from pillars.core.errors import PillarsError
from pillars.core.params import load_params, parse_params
from pillars.core.schema import check_params_columns
from tests.helpers import ROOT, deep_merge, with_task


def test_committed_params_load() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.dataset.task == "binary"
    assert params.curate.split.train + params.curate.split.valid + params.curate.split.test <= 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"curate": {"split": {"train": 1.5}}},
            "curate.split.train: Input should be less than or equal to 1",
        ),
        ({"curate": {"split": {"train": 0.5}}}, "curate.split: train + valid + test + holdout must be 1"),
        ({"curate": {"seed": "seven"}}, "curate.seed: Input should be a valid integer (got 'seven')"),
        ({"cleanse": {"exact_duplicats": True}}, "cleanse.exact_duplicats: unknown key"),
        (
            {"featurize": {"numeric_impute": "mode"}},
            "featurize.numeric_impute: Input should be 'median' or 'mean'",
        ),
        (
            {"dataset": {"task": "ranking"}},
            "dataset.task: Input should be 'binary', 'multiclass' or 'regression'",
        ),
        ({"dataset": {"positive_label": None}}, "dataset: positive_label: required when task is binary"),
        ({"cleanse": {"outliers": {"age": {"action": "flag"}}}}, "cleanse.outliers.age: give either min/max"),
        (
            {"cleanse": {"impossible": {"age": {"min": 5, "max": 1}}}},
            "cleanse.impossible.age: min (5.0) is larger",
        ),
        ({"ingest": {"sources": []}}, "ingest.sources: List should have at least 1 item"),
        ({"ingest": {"sources": [{"kind": "ftp", "name": "x"}]}}, "ingest.sources[0]: Input tag 'ftp'"),
        (
            {"ingest": {"sources": [{"kind": "http", "name": "api", "url": "ftp://x", "format": "csv"}]}},
            "ingest.sources[0].url: String should match pattern",
        ),
        ({"surprise": {}}, "surprise: unknown key"),
        ({"train": {"metric": "rmse"}}, "train.metric: 'rmse' is not a binary objective"),
        (
            {"train": {"candidates": ["forest"]}},
            "train: candidates: ['forest'] have no entry under train.families",
        ),
        ({"train": {"timeout_s": 0}}, "train.timeout_s: Input should be greater than 0"),
        (
            {
                "train": {
                    "families": {
                        "linear": {"space": {"C": {"type": "float", "low": 0, "high": 1, "log": True}}}
                    }
                }
            },
            "train.families.linear.space.C: log scale needs low > 0",
        ),
        (
            {"validate_model": {"thresholds": {"rmse": {"max": 1}}}},
            "validate_model.thresholds: 'rmse' is not a binary metric",
        ),
        (
            {"validate_model": {"thresholds": {"f1": {"min": None}}}},
            "validate_model.thresholds.f1: give min, max or both",
        ),
        (
            {"select": {"tie_breaker": "latency"}},
            "select.tie_breaker: Input should be 'cost', 'size' or 'order'",
        ),
        (
            {"curate": {"split": {"method": "random"}}},
            "curate.split.method: Input should be 'hash', 'stratified' or 'time'",
        ),
        ({"curate": {"split": {"method": "time"}}}, "curate.split: method time needs `by`"),
        (
            {"curate": {"split": {"method": "hash", "by": "age"}}},
            "curate.split: `by` orders the rows for method time, but the method is hash",
        ),
        (
            {"curate": {"split": {"by": ""}}},
            "curate.split.by: String should have at least 1 character",
        ),
        (
            {"train": {"small_data": {"folds": 1}}},
            "train.small_data.folds: Input should be greater than or equal to 2",
        ),
        (
            {"train": {"small_data": {"max_rows": -1}}},
            "train.small_data.max_rows: Input should be greater than",
        ),
        ({"train": {"small_data": {"rows": 10}}}, "train.small_data.rows: unknown key"),
        (
            {"train": {"external_memory_rows": 1000}},
            "external_memory_rows (1000) is below small_data.max_rows (2000)",
        ),
    ],
)
def test_bad_params_name_the_key(default_params_raw: dict, overrides: dict, message: str) -> None:
    with pytest.raises(PillarsError) as caught:
        parse_params(deep_merge(default_params_raw, overrides))
    assert message in str(caught.value)
    assert str(caught.value).startswith("params.yaml: ")


def test_stratified_split_needs_a_classification_task(default_params_raw: dict) -> None:
    raw = deep_merge(
        with_task(default_params_raw, "regression"),
        {"dataset": {"task": "regression", "positive_label": None}},
    )
    parse_params(raw)  # the regression profile itself is fine
    with pytest.raises(
        PillarsError, match=r"^params.yaml: curate.split.method: stratified needs a classification task"
    ):
        parse_params(deep_merge(raw, {"curate": {"split": {"method": "stratified"}}}))
    parse_params(deep_merge(default_params_raw, {"curate": {"split": {"method": "stratified"}}}))


def test_time_column_must_be_a_schema_column_of_numbers_or_datetimes(make_params, adult_schema) -> None:
    check_params_columns(make_params(curate={"split": {"by": "age"}}), adult_schema)
    with pytest.raises(PillarsError) as caught:
        check_params_columns(make_params(curate={"split": {"by": "workclass"}}), adult_schema)
    assert "curate.split.by: column 'workclass' is string; a time order needs numbers or datetimes" in str(
        caught.value
    )
    with pytest.raises(PillarsError, match=r"curate\.split\.by: column 'joined' is not in the schema"):
        check_params_columns(make_params(curate={"split": {"by": "joined"}}), adult_schema)


def test_every_problem_is_listed_at_once(default_params_raw: dict) -> None:
    raw = deep_merge(default_params_raw, {"curate": {"seed": -1}, "featurize": {"chunk_rows": 1}})
    with pytest.raises(PillarsError) as caught:
        parse_params(raw)
    assert "curate.seed" in str(caught.value)
    assert "featurize.chunk_rows" in str(caught.value)


def test_params_must_name_schema_columns(make_params, adult_schema) -> None:
    params = make_params(dataset={"target": "incme"}, curate={"drop": {"fnlwgt": "weight", "zip": "id"}})
    with pytest.raises(PillarsError) as caught:
        check_params_columns(params, adult_schema)
    assert "dataset.target: column 'incme' is not in the schema" in str(caught.value)
    assert "curate.drop: column 'zip' is not in the schema" in str(caught.value)


def test_positive_label_must_be_a_target_label(make_params, adult_schema) -> None:
    with pytest.raises(
        PillarsError, match=r"dataset.positive_label: '>60K' is not one of the target's labels"
    ):
        check_params_columns(make_params(dataset={"positive_label": ">60K"}), adult_schema)


def test_unreadable_params_file(tmp_path: Path) -> None:
    broken = tmp_path / "params.yaml"
    broken.write_text("dataset: [unclosed\n")
    with pytest.raises(PillarsError, match="not valid YAML"):
        load_params(broken)
    with pytest.raises(PillarsError, match="not found"):
        load_params(tmp_path / "missing.yaml")
