"""Batch inference through the packaged model: bad rows are reported with reasons, never dropped."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pillars.bento.archive import packaged_model
from pillars.core.schema import load_schema
from pillars.stages.infer import score_frame

pytestmark = pytest.mark.slow


def test_holdout_batch_was_scored_by_the_packaged_model(reproduced: Path) -> None:
    serving = packaged_model(reproduced / "models/service.bento")
    predictions = pd.read_parquet(reproduced / "data/predictions/batches/holdout.parquet")
    batch = pd.read_parquet(reproduced / "data/inference/holdout.parquet")
    assert len(predictions) == len(batch) and "income" not in batch
    assert set(predictions["model_version"]) == {serving.version}
    assert predictions["input_fingerprint"].str.startswith("sha256:").all()
    probabilities = predictions[["probability:<=50K", "probability:>50K"]].sum(axis=1)
    assert np.allclose(probabilities, 1.0)
    sets = predictions[["in_set:<=50K", "in_set:>50K"]].to_numpy()  # conformal, as the service answers
    predicted = (predictions["prediction"] == ">50K").astype(int).to_numpy()
    assert sets[np.arange(len(sets)), predicted].all(), "the predicted label is always in its set"
    assert 1.0 <= sets.sum(axis=1).mean() < 2.0


def test_bad_rows_are_rejected_with_reasons_and_the_rest_scored(reproduced: Path) -> None:
    serving = packaged_model(reproduced / "models/service.bento")
    schema = load_schema(reproduced / "data/schema.yaml")
    batch = pd.read_parquet(reproduced / "data/inference/holdout.parquet").head(6).astype(object)
    batch.loc[1, "age"] = "old"  # wrong type
    batch.loc[2, "hours-per-week"] = 500  # impossible (cleanse.impossible)
    batch.loc[3, "marital-status"] = None  # missing, and the schema requires it
    batch.loc[4, "workclass"] = "Space-force"  # unknown category: scored, with a warning
    batch.loc[5, "occupation"] = "?"  # a placeholder: missing, allowed here
    predictions, rejected, summary, _ = score_frame(batch, serving, schema, ["?"])
    assert predictions["_row"].tolist() == [0, 4, 5]
    reasons = dict(zip(rejected["_row"], rejected["_reason"], strict=True))
    assert reasons[1] == "age: not a valid integer"
    assert reasons[2].startswith("hours-per-week: outside the possible range")
    assert reasons[3] == "marital-status: missing, and it is required"
    assert rejected.loc[rejected["_row"] == 1, "age"].item() == "old"  # the original value is kept
    assert 'workclass: unknown category "Space-force"' in predictions.loc[1, "warnings"]
    assert summary == {
        "rows": 6,
        "scored": 3,
        "rejected": 3,
        "rejected_by_reason": {reason: 1 for reason in reasons.values()},
        "warnings": 1,
        "reconciled": True,
    }


def test_a_batch_without_a_model_column_names_it(reproduced: Path) -> None:
    serving = packaged_model(reproduced / "models/service.bento")
    schema = load_schema(reproduced / "data/schema.yaml")
    batch = pd.read_parquet(reproduced / "data/inference/holdout.parquet").head(3).drop(columns=["age"])
    with pytest.raises(Exception, match=r"columns \['age'\] are missing"):
        score_frame(batch, serving, schema, ["?"])
