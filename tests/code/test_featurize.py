"""Pillar 6, featurize: fitted on train only, unseen categories handled, written in chunks."""

import numpy as np
import pandas as pd
import pytest

from pillars.compute.partitions import row_group_writer
from pillars.core.data_handoffs import FEATURE_MANIFEST
from pillars.core.params import FeaturizeParams
from pillars.stages.featurize import feature_matrix
from pillars.training.features import build_pipeline, categorical_blocks, feature_sources

FEATURES = {"age": "numeric", "flag": "boolean", "city": "categorical"}


def train_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [20.0, 30.0, np.nan, 50.0, 60.0, 40.0, 35.0, 45.0],
            "flag": [True, False, False, True, False, False, True, False],
            "city": ["oslo", "oslo", "rome", "rome", "oslo", None, "lima", "rome"],
            "label": [0, 1, 0, 1, 0, 1, 0, 1],
        },
    )


def settings(**overrides: object) -> FeaturizeParams:
    return FeaturizeParams.model_validate({"min_category_share": 0.2, **overrides})


def test_fitted_on_train_only() -> None:
    train = train_frame()
    pipeline = build_pipeline(FEATURES, settings()).fit(train[list(FEATURES)])
    numeric = pipeline.named_transformers_["numeric"]
    assert numeric.named_steps["impute"].statistics_[0] == train["age"].median()
    names = list(pipeline.get_feature_names_out())
    assert names[:3] == ["age", "flag", "missingindicator_age"]
    # lima (1 of 8 rows) and missing (1 of 8) are rarer than 20 %: both go to the infrequent column
    assert [name for name in names if name.startswith("city")] == [
        "city_oslo",
        "city_rome",
        "city_infrequent_sklearn",
    ]


def test_unseen_categories_go_to_the_infrequent_column() -> None:
    pipeline = build_pipeline(FEATURES, settings()).fit(train_frame()[list(FEATURES)])
    names = list(pipeline.get_feature_names_out())
    row = pd.DataFrame({"age": [33.0], "flag": [False], "city": ["paris"]})
    encoded = dict(zip(names, pipeline.transform(row)[0], strict=True))
    assert encoded["city_infrequent_sklearn"] == 1.0
    assert encoded["city_oslo"] == encoded["city_rome"] == 0.0


def test_scaling_is_optional() -> None:
    train = train_frame()
    scaled = build_pipeline(FEATURES, settings()).fit_transform(train[list(FEATURES)])
    raw = build_pipeline(FEATURES, settings(scale_numeric=False)).fit_transform(train[list(FEATURES)])
    assert scaled[:, 0].mean() == pytest.approx(0.0, abs=1e-9)
    assert raw[0, 0] == 20.0


def test_feature_sources() -> None:
    pipeline = build_pipeline(FEATURES, settings()).fit(train_frame()[list(FEATURES)])
    sources = feature_sources(pipeline)
    assert sources["missingindicator_age"] == "age"
    assert sources["city_infrequent_sklearn"] == "city"
    assert set(sources.values()) == set(FEATURES)


def test_categorical_blocks_are_the_one_hot_positions_of_each_categorical_input() -> None:
    pipeline = build_pipeline(FEATURES, settings()).fit(train_frame()[list(FEATURES)])
    names = [str(name) for name in pipeline.get_feature_names_out()]
    manifest = FEATURE_MANIFEST.check(
        {
            "target": "label",
            "inputs": FEATURES,
            "features": [
                {"name": name, "source": source} for name, source in feature_sources(pipeline).items()
            ],
        }
    )
    (block,) = categorical_blocks(manifest, names)
    assert [names[position] for position in block] == [name for name in names if name.startswith("city_")]


def test_chunked_matrix_equals_one_transform(tmp_path) -> None:
    train = train_frame()
    pipeline = build_pipeline(FEATURES, settings()).fit(train[list(FEATURES)])
    with row_group_writer(tmp_path / "train.parquet", 4) as writer:
        for start in range(0, len(train), 5):  # partitions of 5 rows, chunks of 3, row groups of 4
            writer.write(feature_matrix(train.iloc[start : start + 5], pipeline, "label", chunk_rows=3))
    written = pd.read_parquet(tmp_path / "train.parquet")
    expected = pipeline.transform(train[list(FEATURES)]).astype("float32")
    np.testing.assert_array_equal(written.drop(columns="label").to_numpy(), expected)
    assert written["label"].tolist() == train["label"].tolist()
    assert list(written.columns)[-1] == "label"
