"""Model families are declared once (`Family`) and found by module: what the rest of the project derives from
a declaration, and what it refuses."""

import dataclasses
from pathlib import Path

import pytest

from pillars.ci.stage_deps import import_closure
from pillars.core.errors import PillarsError
from pillars.core.metrics import OBJECTIVES
from pillars.training.families import FAMILIES, check_families
from pillars.training.families.linear import FAMILY as LINEAR


def test_every_family_module_is_found_and_reports_every_objective_per_round() -> None:
    """A declaration with per-round metrics covers every objective (`Family` refuses it otherwise, see the next
    test); the boosting libraries declare theirs, so early stopping follows train.metric."""
    assert {"xgboost", "lightgbm", "catboost", "hist_gradient_boosting", "linear"} <= set(FAMILIES)
    reporting = {name for name, family in FAMILIES.items() if family.eval_metrics}
    assert reporting >= {"xgboost", "lightgbm", "catboost"}
    every = {(task, metric) for task, metrics in OBJECTIVES.items() for metric in metrics}
    assert all(set(FAMILIES[name].eval_metrics) == every for name in reporting)


def test_a_family_missing_a_per_round_metric_is_refused_naming_it() -> None:
    partial = {("binary", "roc_auc"): "auc"}
    with pytest.raises(PillarsError, match=r"model family half: eval_metrics has no entry for .*'log_loss'"):
        dataclasses.replace(LINEAR, name="half", eval_metrics=partial)


def test_an_unknown_family_in_params_is_refused_naming_the_key(make_params) -> None:
    forest = {"n_trials": 1}
    settings = make_params(train={"candidates": ["forest"], "families": {"forest": forest}}).train
    with pytest.raises(PillarsError, match=r"train.candidates: \['forest'\] is not a model family \(one of"):
        check_families(settings)
    typo = make_params(train={"families": {"xgbost": forest}}).train
    with pytest.raises(PillarsError, match=r"train.families: \['xgbost'\] is not a model family"):
        check_families(typo)


def test_losses_for_counts_are_those_the_library_has() -> None:
    assert FAMILIES["xgboost"].count_losses == ["squared_error", "poisson", "tweedie"]
    assert FAMILIES["hist_gradient_boosting"].count_losses == ["squared_error", "poisson"]
    assert FAMILIES["linear"].count_losses == []


def test_a_new_family_module_joins_the_import_closure_of_what_imports_the_families(tmp_path: Path) -> None:
    """A stage's deps are its import closure: a family found at run time is in it though nothing imports it
    by name, so adding one reruns train."""
    package = tmp_path / "pillars" / "families"
    package.mkdir(parents=True)
    (tmp_path / "pillars/__init__.py").write_text("")
    (package / "__init__.py").write_text("IMPORTS_EVERY_MODULE = True\n")
    (package / "tree.py").write_text("FAMILY = None\n")
    (tmp_path / "pillars/stage.py").write_text("from pillars.families import __name__ as found\n")
    assert package / "tree.py" in import_closure("pillars.stage", tmp_path)
