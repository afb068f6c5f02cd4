"""Pillar 10, select: the best valid score wins; ties go to the smaller model or the first candidate."""

from pillars.stages.select import rank


def validation(values: dict[str, float], eligible: list[str]) -> dict:
    return {
        "eligible": eligible,
        "candidates": {family: {"valid": {"roc_auc": value}} for family, value in values.items()},
    }


SIZES = {"xgboost": 500_000, "linear": 1_000, "hist_gradient_boosting": 300_000}


def test_best_eligible_candidate_wins(make_params) -> None:
    report = validation(
        {"xgboost": 0.93, "linear": 0.90, "hist_gradient_boosting": 0.95}, ["xgboost", "linear"]
    )
    selection = rank(report, SIZES, make_params(select={"tie_tolerance": 0.0}))
    assert selection["model"] == "xgboost"
    assert [entry["family"] for entry in selection["ranking"]] == ["xgboost", "linear"]
    assert selection["not_eligible"] == ["hist_gradient_boosting"], (
        "a better but ineligible candidate is never chosen"
    )


def test_ties_go_to_the_smallest_model(make_params) -> None:
    report = validation(
        {"xgboost": 0.930, "linear": 0.9295, "hist_gradient_boosting": 0.9299},
        ["xgboost", "linear", "hist_gradient_boosting"],
    )
    by_size = rank(report, SIZES, make_params(select={"tie_tolerance": 0.001, "tie_breaker": "size"}))
    assert by_size["model"] == "linear"
    assert "tied within 0.001" in by_size["reason"]
    by_order = rank(report, SIZES, make_params(select={"tie_tolerance": 0.001, "tie_breaker": "order"}))
    assert by_order["model"] == "xgboost"


def test_lower_is_better_for_regression_metrics(make_params) -> None:
    params = make_params(
        dataset={"task": "regression", "positive_label": None}, select={"tie_tolerance": 0.0}
    )
    report = {
        "eligible": ["xgboost", "linear"],
        "candidates": {"xgboost": {"valid": {"rmse": 3.0}}, "linear": {"valid": {"rmse": 2.5}}},
    }
    assert rank(report, SIZES, params)["model"] == "linear"


def test_small_data_selection_ranks_out_of_fold_scores(make_params) -> None:
    report = {
        "evaluated_on": "out_of_fold",
        "eligible": ["xgboost", "linear"],
        "candidates": {
            "xgboost": {"out_of_fold": {"roc_auc": 0.91}},
            "linear": {"out_of_fold": {"roc_auc": 0.93}},
        },
    }
    selection = rank(report, SIZES, make_params(select={"tie_tolerance": 0.0}))
    assert selection["model"] == "linear" and selection["out_of_fold"] == 0.93
    assert selection["evaluated_on"] == "out_of_fold" and "valid" not in selection
    assert selection["ranking"][0] == {"family": "linear", "out_of_fold": 0.93, "size_bytes": 1_000}
    assert selection["reason"].startswith("best out-of-fold (train + valid) roc_auc (0.9300)")


def test_holdout_selection_report_keeps_its_keys(make_params) -> None:
    report = validation({"xgboost": 0.93, "linear": 0.90}, ["xgboost", "linear"])
    selection = rank(report, SIZES, make_params(select={"tie_tolerance": 0.0}))
    assert set(selection) == {"model", "metric", "valid", "eligible", "reason", "ranking", "not_eligible"}
