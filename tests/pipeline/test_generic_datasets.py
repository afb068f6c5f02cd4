"""Generic, not Adult-specific: stages 1-10 run on datasets of another shape and task, with params only."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.helpers import QUICK_TRAINING, deep_merge, run, with_task

pytestmark = pytest.mark.slow

ROWS = 3_000
# A model family of the user's own, added as one file: the regression case trains it beside ours
TREE_FAMILY = '''"""One decision tree, tuned on its depth: a family of the user's own."""

from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from pillars.core.params import TrainParams
from pillars.training.families.spec import Family, Fitted, Report, Rows, TrainingData, defined_on_valid, held_out_scores

Tree = DecisionTreeClassifier | DecisionTreeRegressor


def tree(hyper: dict, task: str, seed: int) -> Tree:
    estimator = DecisionTreeRegressor if task == "regression" else DecisionTreeClassifier
    return estimator(**hyper, random_state=seed)


def fit(hyper: dict, data: TrainingData, settings: TrainParams, report: Report) -> Fitted:
    model = tree(hyper, data.task, settings.seed).fit(data.x_train, data.y_train)
    (value, undefined), scores = held_out_scores(model, data, settings.metric)
    if value is not None:
        report(0, value)
    return Fitted(model, value, scores, undefined=undefined)


def refit(hyper: dict, rows: Rows, settings: TrainParams, rounds: int | None) -> Tree:
    return tree(hyper, rows.task, settings.seed).fit(rows.x, rows.y)


FAMILY = Family(
    name="tree",
    fit=defined_on_valid(fit),
    fold_fit=fit,
    refit=refit,
    model_types=(DecisionTreeClassifier, DecisionTreeRegressor),
    prediction_cost=lambda model: int(model.get_depth()),
)
'''
TREE_PARAMS = {"n_trials": 3, "space": {"max_depth": {"type": "int", "low": 2, "high": 12}}}


def multiclass_frame(generator: np.random.Generator) -> pd.DataFrame:
    """Plant sizes from two measurements and a colour, with CamelCase and spaced names and `n/a` gaps."""
    length = generator.normal(10, 3, ROWS).round(2)
    width = generator.normal(4, 1, ROWS).round(2)
    score = length + 2 * width + generator.normal(0, 1, ROWS)
    size = np.select([score < 15, score < 20], ["Small", "Medium"], "Large")
    colour = generator.choice(["Red", "green ", "BLUE", "n/a"], ROWS, p=[0.4, 0.3, 0.25, 0.05])
    return pd.DataFrame(
        {
            "LeafLength": length,
            "Leaf Width": width,
            "Colour": colour,
            "Plant ID": [f"p{i}" for i in range(ROWS)],
            "Size Class": size,
        }
    )


def regression_frame(generator: np.random.Generator) -> pd.DataFrame:
    """House prices from area, rooms and district; a few areas are impossible."""
    area = generator.uniform(30, 250, ROWS).round(1)
    area[:5] = -1.0
    rooms = generator.integers(1, 8, ROWS)
    district = generator.choice(
        ["north", "south", "east", "west", "harbour"], ROWS, p=[0.3, 0.3, 0.2, 0.19, 0.01]
    )
    price = 1_000 * area + 5_000 * rooms + generator.normal(0, 10_000, ROWS)
    return pd.DataFrame({"area_m2": area, "rooms": rooms, "district": district, "price": price.round(2)})


CASES = {
    "multiclass": {
        "frame": multiclass_frame,
        "file": "plants.csv",
        "dataset": {
            "task": "multiclass",
            "target": "Size Class",
            "positive_label": None,
            "placeholders": ["n/a"],
        },
        "cleanse": {
            "impossible": {"LeafLength": {"min": 0}},
            "outliers": {"Leaf Width": {"iqr_k": 3.0, "action": "clip"}},
        },
        "curate_drop": {"Plant ID": "an identifier"},
    },
    "regression": {
        "frame": regression_frame,
        "own_family": True,
        "file": "houses.jsonl",
        "dataset": {"task": "regression", "target": "price", "positive_label": None, "placeholders": []},
        "cleanse": {
            "impossible": {"area_m2": {"min": 1}},
            "outliers": {"rooms": {"max": 6, "action": "flag"}},
        },
        "curate_drop": {},
    },
}


def write_dataset(repo: Path, case: dict) -> None:
    path = repo / "data/external/toy" / case["file"]
    path.parent.mkdir(parents=True)
    frame = case["frame"](np.random.default_rng(3))
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["dataset"] = {
        "name": "toy",
        "schema": "data/toy.schema.yaml",
        "key_columns": [],
        **case["dataset"],
    }
    params["ingest"] = {"sources": [{"kind": "file", "name": "toy", "path": str(path.relative_to(repo))}]}
    params["cleanse"] = {"exact_duplicates": True, **case["cleanse"]}
    params["standardize"] = {"case": "lower", "aliases": {}, "units": {}}
    params["curate"] |= {"drop": case["curate_drop"]}
    params["monitor"]["replay"]["shift"] = {}  # the committed shift names Adult's columns
    params = with_task(params, case["dataset"]["task"])
    params["train"] = deep_merge(params["train"], QUICK_TRAINING)
    if case.get("own_family"):
        (repo / "src/pillars/training/families/tree.py").write_text(TREE_FAMILY)
        params["train"]["candidates"].append("tree")
        params["train"]["families"]["tree"] = TREE_PARAMS
        # a deliberately weak family: its paired comparison with the library defaults is reported, not required
        params["validate_model"]["evidence"] = {"require": {"defaults": "any"}}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.parametrize("task", sorted(CASES))
def test_stages_one_to_ten_on_another_dataset(repo_copy: Path, task: str) -> None:
    case = CASES[task]
    write_dataset(repo_copy, case)
    copy_code = {"PYTHONPATH": str(repo_copy / "src")}  # the copy's own code: its families included
    run(["dvc", "repro", "ingest"], repo_copy, env=copy_code)
    run(["python", "-m", "pillars.core.schema", "infer"], repo_copy, env=copy_code)
    # regression: every stage, serving included; multiclass up to assess (test_own_data serves a multiclass
    # model through every stage)
    run(["dvc", "repro"] if task == "regression" else ["dvc", "repro", "assess"], repo_copy, env=copy_code)

    cleanse = json.loads((repo_copy / "metrics/cleanse.json").read_text())
    assert cleanse["rows"]["raw"] == ROWS and cleanse["rows"]["reconciled"]
    encoding = json.loads((repo_copy / "data/standard/target_encoding.json").read_text())
    selection = json.loads((repo_copy / "data/curated/selection.json").read_text())
    curated = {
        split: pd.read_parquet(repo_copy / f"data/curated/{split}.parquet")
        for split in ("train", "valid", "test", "holdout")
    }
    assert sum(len(frame) for frame in curated.values()) == cleanse["rows"]["clean"]
    features = pd.read_parquet(repo_copy / "data/features/train.parquet")
    assert len(features) == len(curated["train"])
    assert features.drop(columns=encoding["column"]).dtypes.eq("float32").all()
    assert not features.isna().any().any()

    chosen = json.loads((repo_copy / "metrics/selection.json").read_text())["model"]
    assessed = json.loads((repo_copy / "metrics/assess.json").read_text())
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    assert chosen in [*params["train"]["candidates"], "ensemble"]
    assert assessed["model"] == chosen
    assert (repo_copy / "models/selected/model.pkl").read_bytes() == (
        repo_copy / f"models/candidates/{chosen}.pkl"
    ).read_bytes()
    assert f"Model card: toy / {chosen}" in (repo_copy / "metrics/model_card.md").read_text()
    conformal = assessed["conformal"]  # calibrated on valid (or out of fold), measured on test
    assert conformal["alpha"] == 0.1 and abs(conformal["test_coverage"] - 0.9) <= 0.02, conformal

    if task == "multiclass":
        assert set(assessed["test"]) == {"log_loss", "roc_auc_ovr", "accuracy", "f1_macro"}
        assert assessed["test"]["accuracy"] > 0.6
        assert (repo_copy / "metrics/assess/confusion.csv").exists()
        assert encoding == {
            "task": "multiclass",
            "column": "size_class",
            "labels": {"Large": 0, "Medium": 1, "Small": 2},
        }
        assert set(features["size_class"]) == {0, 1, 2}
        assert selection["dropped"] == {"plant_id": "params: an identifier"}
        assert {"leaf_length", "leaf_width", "colour"} == set(selection["features"])
        assert {"colour_red", "colour_green", "colour_blue", "colour_missing"} <= set(features.columns)
    else:
        assert set(assessed["test"]) == {"rmse", "mae", "r2"}
        assert assessed["test"]["r2"] > 0.8
        assert (repo_copy / "metrics/assess/residuals.csv").exists()
        assert not (repo_copy / "metrics/assess/roc.csv").exists()
        assert encoding["task"] == "regression" and encoding["column"] == "price"
        assert cleanse["quarantined_by_reason"] == {"impossible:area_m2": 5}
        assert cleanse["flagged"]["rooms"] > 0
        assert "rooms_outlier" in selection["features"]
        assert features["price"].dtype == "float64"
        # the family added as one file was tuned, gated, ranked by its own prediction cost, and assessed
        trained = json.loads((repo_copy / "metrics/train.json").read_text())["candidates"]
        assert trained["tree"]["trials"] >= 1  # a family far behind stops early (train.drop_margin)
        ranking = json.loads((repo_copy / "metrics/selection.json").read_text())["ranking"]
        tree_rank = next(entry for entry in ranking if entry["family"] == "tree")
        assert 2 <= tree_rank["cost_per_row"] <= 12 and tree_rank["valid"] > 0
        assert "tree" in json.loads((repo_copy / "metrics/model_validation.json").read_text())["candidates"]
