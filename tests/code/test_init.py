"""`make init`'s look at the data (pillars.init.profile) and the params it proposes (pillars.init.proposal),
on the dataset shapes users bring (tests/shapes.py)."""

import numpy as np
import pandas as pd
import pytest
import yaml

from pillars.core.params import parse_params
from pillars.init.profile import (
    constants,
    free_text,
    identifiers,
    infer_task,
    leaks,
    ordering_date,
    placeholders,
    profile,
)
from pillars.init.proposal import propose
from tests.helpers import ROOT
from tests.shapes import count_regression, credit_risk, messy_multiclass


def read_back(frame: pd.DataFrame, tmp_path) -> pd.DataFrame:
    """The frame as ingest reads its CSV (pandas' own missing-value markers apply)."""
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return pd.read_csv(path, skipinitialspace=True)


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["yes", "no", "yes"], "binary"),
        (["a", "b", "c", None], "multiclass"),
        ([0, 1, 2, 3, 4, 5, 1], "multiclass"),
        (list(range(40)), "regression"),
        ([0.5, 1.5, 2.5], "regression"),
    ],
)
def test_the_task_follows_the_target(values: list, task: str) -> None:
    assert infer_task(pd.Series(values)) == task


def test_whole_numbers_taken_as_classes_are_pointed_out() -> None:
    """A count with a few values (0, 1, 2, 3, 7, 12) looks like classes: init says how to choose regression."""
    frame = pd.DataFrame({"affairs": [0, 1, 2, 3, 7, 12] * 5, "age": range(30)})
    noted = profile(frame, "affairs", None, seed=0)
    assert noted.task == "multiclass"
    assert any("TASK=regression" in note for note in noted.notes)
    assert not any("TASK=" in note for note in profile(frame, "affairs", "multiclass", seed=0).notes)


def test_placeholders_are_the_tokens_standing_for_missing_values() -> None:
    frame = pd.DataFrame(
        {
            "amount": ["12.5", "?", "7", "-"],
            "colour": ["red", "unknown", "n/a", "blue"],
            "city": ["Oslo", "-", "Rome", "Oslo"],
        }
    )
    assert placeholders(frame) == [
        "-",
        "?",
        "n/a",
    ]  # "unknown" may be a real category; "-" stood among numbers


def test_identifiers_text_and_constants_are_found_with_reasons(tmp_path) -> None:
    frame = read_back(messy_multiclass(np.random.default_rng(3)), tmp_path)
    found = identifiers(frame, "Grade")
    assert set(found) == {"Patient ID"}
    assert set(free_text(frame, set(found))) == {"Notes"}
    assert set(constants(frame, set())) == {"Country"}


def test_leaks_a_copy_of_the_target_and_columns_that_add_up_to_it(tmp_path) -> None:
    days = read_back(count_regression(np.random.default_rng(3)), tmp_path)
    found = leaks(days, "cnt", "regression", set(), seed=1)
    assert set(found) == {"casual", "registered"}
    assert "casual + registered = cnt" in found["casual"]
    credit = read_back(credit_risk(np.random.default_rng(3)), tmp_path)
    credit["decision"] = credit["Risk"].map({"good": "approve", "bad": "decline"})
    assert set(leaks(credit, "Risk", "binary", set(), seed=1)) == {"decision"}


def test_a_date_orders_the_rows_only_when_time_does_not_go_back(tmp_path) -> None:
    days = read_back(count_regression(np.random.default_rng(3)), tmp_path)
    assert ordering_date(days, {"dteday": None}) == "dteday"
    visits = read_back(messy_multiclass(np.random.default_rng(3)), tmp_path)
    assert ordering_date(visits, {"Visit Date": "%d/%m/%Y"}) is None


def proposed(frame: pd.DataFrame, target: str, quick: bool = False) -> dict:
    template = yaml.safe_load((ROOT / "params.yaml").read_text())
    found = profile(frame, target, None, seed=1)
    return propose(
        template,
        found,
        name="toy",
        target=target,
        source="data/external/toy/x.csv",
        rows=len(frame),
        quick=quick,
    )


def test_proposed_params_fit_the_data_and_pass_the_params_checks(tmp_path) -> None:
    credit = proposed(read_back(credit_risk(np.random.default_rng(3)), tmp_path), "Risk")
    assert credit["dataset"] | {"schema": None} == {
        "name": "toy",
        "task": "binary",
        "target": "Risk",
        "positive_label": "bad",
        "schema": None,
        "placeholders": ["?"],
        "key_columns": [],
    }
    assert credit["validate_model"]["thresholds"] == {"roc_auc": {"min": 0.5}}
    assert credit["curate"]["split"]["method"] == "stratified"
    assert credit["cleanse"]["impossible"] == {} and credit["monitor"]["replay"]["shift"] == {}
    assert "Housing" in credit["validate_model"]["slices"]["columns"]
    parse_params(credit)
    days = proposed(read_back(count_regression(np.random.default_rng(3)), tmp_path), "cnt", quick=True)
    assert (days["dataset"]["task"], days["train"]["metric"]) == ("regression", "rmse")
    assert (days["curate"]["split"]["method"], days["curate"]["split"]["by"]) == ("time", "dteday")
    assert days["train"]["families"]["xgboost"]["n_trials"] == 3
    families = days["train"]["families"]  # a count: the losses of counts are searched, from squared error
    assert families["lightgbm"]["space"]["objective"] == {
        "type": "categorical",
        "choices": ["squared_error", "poisson", "tweedie"],
    }
    assert families["hist_gradient_boosting"]["space"]["objective"]["choices"] == ["squared_error", "poisson"]
    assert all(families[name]["start"]["objective"] == "squared_error" for name in ("catboost", "xgboost"))
    assert "objective" not in credit["train"]["families"]["lightgbm"]["space"], "classification: no losses"
    # the gate's margins in train.metric's units: ROC AUC's defaults; RMSE's a share of the target's spread
    assert {key: credit["validate_model"]["evidence"][key] for key in ("margin", "min_gain")} == {
        "margin": 0.005,
        "min_gain": 0.001,
    }
    spread = read_back(count_regression(np.random.default_rng(3)), tmp_path)["cnt"].std()
    assert days["validate_model"]["evidence"]["margin"] == pytest.approx(0.005 * spread, rel=0.01)
    assert days["validate_model"]["evidence"]["min_gain"] == pytest.approx(0.001 * spread, rel=0.01)
    parse_params(days)
    frame = read_back(count_regression(np.random.default_rng(3)), tmp_path)
    frame["cnt"] = frame["cnt"] - frame["cnt"].max() - 1  # never positive: no Poisson or Tweedie
    below = proposed(frame, "cnt")
    assert all("objective" not in settings["space"] for settings in below["train"]["families"].values())
