"""Pillar 10, select: the best valid (or, after small-data tuning, out-of-fold) score wins; ties go to the
cheapest model to serve, the smaller one or the first candidate; a candidate whose score is undefined is
never chosen."""

import pytest

from pillars.core.errors import PillarsError
from pillars.core.model_handoffs import MODEL_VALIDATION, ModelValidation
from pillars.stages.select import Footprint, rank

ONE_CLASS = "one class only (every row is class 0)"


def validation(
    values: dict[str, float | None], eligible: list[str], on: str = "valid", metric: str = "roc_auc"
) -> ModelValidation:
    """A validate_model report: scores on valid, or on out-of-fold predictions after small-data tuning (an
    undefined score with its reason)."""
    candidates = {
        family: {"passed": family in eligible, "checks": {}, on: {metric: value}}
        | ({"undefined": {metric: ONE_CLASS}} if value is None else {})
        for family, value in values.items()
    }
    report = {"metric": metric, "eligible": eligible, "candidates": candidates}
    return MODEL_VALIDATION.check(report | ({} if on == "valid" else {"evaluated_on": on}))


FOOTPRINTS = {  # the smallest file is not the cheapest to serve
    "xgboost": Footprint(size_bytes=500_000, cost_per_row=600),
    "linear": Footprint(size_bytes=1_000, cost_per_row=80),
    "hist_gradient_boosting": Footprint(size_bytes=300_000, cost_per_row=2_700),
}


def test_best_eligible_candidate_wins(make_params) -> None:
    report = validation(
        {"xgboost": 0.93, "linear": 0.90, "hist_gradient_boosting": 0.95}, ["xgboost", "linear"]
    )
    selection = rank(report, FOOTPRINTS, make_params(select={"tie_tolerance": 0.0}))
    assert selection["model"] == "xgboost"
    assert [entry["family"] for entry in selection["ranking"]] == ["xgboost", "linear"]
    assert selection["not_eligible"] == ["hist_gradient_boosting"], (
        "a better but ineligible candidate is never chosen"
    )


def test_ties_go_to_the_cheapest_or_smallest_model_or_the_first(make_params) -> None:
    order = {"candidates": ["xgboost", "linear", "hist_gradient_boosting"]}  # train.candidates
    report = validation(
        {"xgboost": 0.930, "linear": 0.9290, "hist_gradient_boosting": 0.9299},
        ["xgboost", "linear", "hist_gradient_boosting"],
    )
    by_cost = rank(
        report, FOOTPRINTS, make_params(train=order, select={"tie_tolerance": 0.0005, "tie_breaker": "cost"})
    )
    assert by_cost["model"] == "xgboost", "linear is cheapest but not tied; hist_gradient_boosting costs more"
    assert "tied within 0.0005" in by_cost["reason"] and "chosen by cost" in by_cost["reason"]
    assert by_cost["ranking"][0] == {
        "family": "xgboost",
        "valid": 0.93,
        "size_bytes": 500_000,
        "cost_per_row": 600,
    }
    by_size = rank(
        report, FOOTPRINTS, make_params(train=order, select={"tie_tolerance": 0.0005, "tie_breaker": "size"})
    )
    assert by_size["model"] == "hist_gradient_boosting"
    by_order = rank(
        report, FOOTPRINTS, make_params(train=order, select={"tie_tolerance": 0.001, "tie_breaker": "order"})
    )
    assert by_order["model"] == "xgboost"
    all_tied = make_params(train=order, select={"tie_tolerance": 0.0015, "tie_breaker": "cost"})
    assert rank(report, FOOTPRINTS, all_tied)["model"] == "linear"


def test_lower_is_better_for_regression_metrics(make_params) -> None:
    params = make_params(
        dataset={"task": "regression", "positive_label": None}, select={"tie_tolerance": 0.0}
    )
    report = validation({"xgboost": 3.0, "linear": 2.5}, ["xgboost", "linear"], metric="rmse")
    assert rank(report, FOOTPRINTS, params)["model"] == "linear"


def test_small_data_selection_ranks_out_of_fold_scores(make_params) -> None:
    report = validation({"xgboost": 0.91, "linear": 0.93}, ["xgboost", "linear"], "out_of_fold")
    selection = rank(report, FOOTPRINTS, make_params(select={"tie_tolerance": 0.0}))
    assert selection["model"] == "linear" and selection["out_of_fold"] == 0.93
    assert selection["evaluated_on"] == "out_of_fold" and "valid" not in selection
    assert selection["ranking"][0] == {
        "family": "linear",
        "out_of_fold": 0.93,
        **FOOTPRINTS["linear"]._asdict(),
    }
    assert selection["reason"].startswith("best out-of-fold (train + valid) roc_auc (0.9300)")


def test_holdout_selection_report_keeps_its_keys(make_params) -> None:
    report = validation({"xgboost": 0.93, "linear": 0.90}, ["xgboost", "linear"])
    selection = rank(report, FOOTPRINTS, make_params(select={"tie_tolerance": 0.0}))
    assert set(selection) == {"model", "metric", "valid", "eligible", "reason", "ranking", "not_eligible"}


@pytest.mark.parametrize("on", ["valid", "out_of_fold"])
def test_a_candidate_with_an_undefined_score_ranks_last_and_is_not_chosen(make_params, on: str) -> None:
    report = validation({"xgboost": None, "linear": 0.90}, ["xgboost", "linear"], on)
    selection = rank(report, FOOTPRINTS, make_params(select={"tie_tolerance": 0.5}))
    assert selection["model"] == "linear" and selection[on] == 0.90
    assert selection["ranking"][-1] == {"family": "xgboost", on: None, **FOOTPRINTS["xgboost"]._asdict()}


@pytest.mark.parametrize(
    ("on", "named"), [("valid", "valid"), ("out_of_fold", r"out-of-fold \(train \+ valid\)")]
)
def test_no_candidate_with_a_score_stops_with_the_reasons(make_params, on: str, named: str) -> None:
    report = validation({"xgboost": None}, ["xgboost"], on)
    with pytest.raises(PillarsError, match=rf"{named} roc_auc is undefined .*xgboost: one class only"):
        rank(report, FOOTPRINTS, make_params())
