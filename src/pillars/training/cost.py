"""What a fitted model costs to score one row, counted rather than timed.

A count is the same on every machine and every run, so a selection that breaks ties with it stays
reproducible; a timing would change the choice from run to run. Serving time follows the count for the
families here: a tree ensemble tests one node per level of each tree, a linear model does one multiply-add
per coefficient.
"""

import re
from typing import Any

import lightgbm as lgb
import numpy as np
import xgboost as xgb
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from pillars.core.errors import PillarsError
from pillars.serve.estimators import Blend, CatBoostModel, NativeCategorical

DEPTH = re.compile(r'"depth"\s*:\s*(\d+)')  # of a split node, in XGBoost's JSON dump of a tree


def _deepest_paths(dumps: list[str]) -> int:
    """Summed over trees: the node tests on the longest path (a split at depth d puts its leaves at d + 1)."""
    return sum(max((int(depth) + 1 for depth in DEPTH.findall(tree)), default=0) for tree in dumps)


def _depth(node: dict) -> int:
    """The node tests on the longest path below a node of LightGBM's tree dump (a leaf: none)."""
    if "split_index" not in node:
        return 0
    return 1 + max(_depth(node["left_child"]), _depth(node["right_child"]))


def prediction_cost(model: Any) -> int:
    """Node tests (tree ensembles: the longest path of every tree the prediction uses) or multiply-adds
    (linear models) to score one row; a blend costs what its members cost together."""
    if isinstance(model, Blend):
        return sum(prediction_cost(member) for member in model.members.values())
    if isinstance(model, NativeCategorical):  # coding the categories back is one lookup per row, not counted
        return prediction_cost(model.model)
    if isinstance(model, CatBoostModel):  # symmetric trees: every row tests `depth` nodes per tree
        return int(model.model.tree_count_) * int(model.model.get_all_params()["depth"])
    if isinstance(model, lgb.LGBMModel):  # the dump holds the trees up to the best round, which predict uses
        return sum(_depth(tree["tree_structure"]) for tree in model.booster_.dump_model()["tree_info"])
    if isinstance(model, xgb.XGBModel):
        booster = model.get_booster()
        best = getattr(model, "best_iteration", None)  # predictions stop there after early stopping
        used = booster if best is None else booster[: best + 1]
        return _deepest_paths(used.get_dump(dump_format="json"))
    if isinstance(model, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        return int(sum(tree.nodes["depth"].max() for trees in model._predictors for tree in trees))
    if hasattr(model, "coef_"):
        return int(np.size(model.coef_))
    raise PillarsError(f"no prediction cost is known for a {type(model).__name__}")
