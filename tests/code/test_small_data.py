"""Small data end to end through the stage edges: train's out-of-fold predictions are what validate_model and
select judge, and the model card says how the model was tuned. Tiny generated files in a temporary folder."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from pillars.core import layout
from pillars.core.data_handoffs import FEATURE_MANIFEST
from pillars.core.errors import PillarsError
from pillars.core.io import write_json, write_parquet, write_pickle
from pillars.core.metrics import evaluate
from pillars.core.model_handoffs import BEST_PARAMS, TRAIN_REPORT
from pillars.serve.conformal import calibrate
from pillars.stages import select, validate_model
from pillars.stages.assess import CardInputs, block, conformal_report, model_card
from pillars.training.oof import oof_table
from tests.helpers import deep_merge, gate_report, selection_of

TRAIN_ROWS, VALID_ROWS = 300, 100


@pytest.fixture
def small_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, default_params_raw: dict) -> Path:
    """A workspace after a small-data `train`: features, curated splits, out-of-fold predictions of two
    candidates (linear good on every row, xgboost good on the valid rows only) and metrics/train.json."""
    monkeypatch.chdir(tmp_path)
    raw = deep_merge(
        default_params_raw,
        {
            "train": {"candidates": ["xgboost", "linear"], "ensemble": {"size": 0}},  # no ensemble stand-in
            "validate_model": {"thresholds": {"roc_auc": {"min": 0.7}}, "slices": {"min_rows": 50}},
            "select": {"tie_tolerance": 0.0},
        },
    )
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    generator = np.random.default_rng(5)
    y = {"train": generator.integers(0, 2, TRAIN_ROWS), "valid": generator.integers(0, 2, VALID_ROWS)}
    for split, labels in y.items():
        x = generator.normal(size=(len(labels), 2)) + labels[:, None]
        write_parquet(
            layout.feature_split(split), pd.DataFrame({"f0": x[:, 0], "f1": x[:, 1], "income": labels})
        )
        people = {"gender": np.where(np.arange(len(labels)) % 3, "female", "male"), "race": "white"}
        write_parquet(layout.curated_split(split), pd.DataFrame(people | {"income": labels}))
    FEATURE_MANIFEST.write(
        {
            "target": "income",
            "inputs": {"f0": "numeric", "f1": "numeric"},
            "features": [{"name": name, "source": name} for name in ("f0", "f1")],
        }
    )
    pooled = np.concatenate([y["train"], y["valid"]])
    noise = generator.random(len(pooled))
    predictions = {
        "linear": 0.6 * pooled + 0.4 * noise,  # good everywhere
        "xgboost": np.where(np.arange(len(pooled)) < TRAIN_ROWS, noise, 0.9 * pooled + 0.1 * noise),
    }
    folds = np.arange(len(pooled)) % 5
    for family, scores in predictions.items():
        write_parquet(layout.candidate_oof(family), oof_table(scores, folds, TRAIN_ROWS))
        stand_in = LogisticRegression(C=1.0 if family == "linear" else 2.0).fit([[0.0], [1.0]], [0, 1])
        write_pickle(layout.candidate_model(family), stand_in)  # fitted: select counts its serving cost
    tuning = {
        "method": "cv",
        "folds": 5,
        "rows": TRAIN_ROWS + VALID_ROWS,
        "max_rows": 2000,
        "baseline": {"family": "linear"},
    }
    TRAIN_REPORT.write({"metric": "roc_auc", "tuning": tuning, "candidates": {}})
    return tmp_path


def test_validate_model_and_select_judge_out_of_fold_predictions(small_workspace: Path) -> None:
    validate_model.main()
    report = json.loads(layout.MODEL_VALIDATION_REPORT.read_text())
    assert report["evaluated_on"] == "out_of_fold" and report["tuning"]["method"] == "cv"
    linear, xgboost = report["candidates"]["linear"], report["candidates"]["xgboost"]
    assert linear["passed"] and linear["out_of_fold"]["roc_auc"] > 0.9
    assert not xgboost["passed"], "perfect on the valid rows, but out-of-fold on train it is noise"
    assert xgboost["out_of_fold"]["roc_auc"] < 0.7 and not xgboost["checks"]["roc_auc"]["passed"]
    assert xgboost["checks"]["slice:gender=female:roc_auc"]["rows"] == 266, "slices over train + valid"

    select.main()
    selection = json.loads(layout.SELECTION_REPORT.read_text())
    assert selection["model"] == "linear" and selection["evaluated_on"] == "out_of_fold"
    assert selection["out_of_fold"] == linear["out_of_fold"]["roc_auc"]
    assert layout.SELECTED_MODEL.read_bytes() == layout.candidate_model("linear").read_bytes()


def test_out_of_fold_predictions_must_match_the_splits(small_workspace: Path) -> None:
    write_parquet(
        layout.candidate_oof("linear"), oof_table(np.zeros(TRAIN_ROWS), np.zeros(TRAIN_ROWS), TRAIN_ROWS)
    )
    with pytest.raises(PillarsError, match=r"linear\.oof\.parquet: the out-of-fold predictions do not cover"):
        validate_model.main()


@pytest.mark.parametrize("method", ["holdout", "cv"])
def test_model_card_says_how_the_model_was_tuned(make_params, method: str) -> None:
    """The tuning wording beside the undefined-metric wording: n/a with the reason, skipped slices."""
    params = make_params()
    tuning = (
        {"method": "cv", "folds": 5, "rows": 380, "max_rows": 2000}
        if method == "cv"
        else {"method": "holdout", "rows": {"train": 300, "valid": 80}}
    )
    inputs = CardInputs(
        selection=selection_of("linear"),
        validation=gate_report("linear", eligible=["linear"]),
        train_summary=TRAIN_REPORT.check(
            {
                "tuning": tuning | {"baseline": {"family": "linear"}},
                "candidates": {"linear": {"trials": 6, "pruned": 0}},
            }
        ),
        best_params=BEST_PARAMS.check({"linear": {"C": 1.0}}),
        split_rows={"train": 300, "valid": 80},
        lineage={},
    )
    y, scores = np.array([0, 1, 0, 1, 0, 0]), np.array([0.2, 0.8, 0.4, 0.6, 0.3, 0.1])
    negatives = y == 0
    report = {
        "test": block(evaluate("binary", y, scores)),
        "candidates": {"linear": block(evaluate("binary", y[negatives], scores[negatives]))},
        "baseline": {"family": "linear", **block(evaluate("binary", y, scores))},
        "slices": {"gender=male": {"rows": 4, "skipped": "fewer than 10 rows"}},
        "conformal": conformal_report(
            calibrate("binary", y, scores, 0.1, 0.5), y, scores, 0.5, "out_of_fold"
        ),
    }
    card = model_card(params, inputs, report, pd.DataFrame({"column": [], "importance": []}))
    assert "| linear | yes | n/a: one class only (every row is class 0) |" in card, "undefined: n/a"
    assert "| gender=male | 4 | skipped: fewer than 10 rows |" in card
    assert "6 held-out rows are too few for alpha 0.1 (at least 9): every interval is unbounded" in card
    assert "library's defaults: no tuned trial" not in card, "train did not say the defaults won"
    if method == "cv":
        assert "- Tuned by Optuna on 5-fold cross-validation on train + valid (380 rows" in card
        assert "then refit on train + valid" in card
        assert "- Selected on out-of-fold predictions of train + valid by roc_auc" in card
    else:
        assert "- Tuned by Optuna on the valid split (holdout): 6 trials (0 pruned)" in card
        assert "- Selected on the valid split by roc_auc: best." in card


def test_reports_name_the_selection_score(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pull-request report and the sweep table read the score select ranked on: valid, or out-of-fold."""
    from pillars.ci.pr_report import selection_section
    from pillars.lifecycle.sweep import SORT_KEY, sort_key

    base = {
        "model": "linear",
        "reason": "r",
        "metric": "roc_auc",
        "ranking": [{"family": "linear", "valid": 0.9}],
    }
    head = {
        "model": "linear",
        "reason": "r",
        "metric": "roc_auc",
        "evaluated_on": "out_of_fold",
        "ranking": [{"family": "linear", "out_of_fold": 0.92}],
        "not_eligible": [],
    }
    section = selection_section(base, head)
    assert "| candidate | out-of-fold roc_auc | base | change |" in section
    assert "| linear | 0.9200 | 0.9000 | +0.0200 |" in section
    assert "The base judged on valid, this branch on out-of-fold." in section

    monkeypatch.chdir(tmp_path)
    assert sort_key() == SORT_KEY == "metrics/selection.json:valid"
    write_json(layout.SELECTION_REPORT, head)
    assert sort_key() == "metrics/selection.json:out_of_fold"
