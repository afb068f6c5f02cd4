"""Pillar 9, assess: plots that fit the task and permutation importance per input column."""

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from pillars.stages.assess import curves, permutation_importance


def test_binary_curves() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    tables = curves(y, np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9]), "binary", bins=3)
    assert set(tables) == {"confusion", "roc", "pr", "calibration"}
    assert tables["roc"][["fpr", "tpr"]].iloc[-1].tolist() == [1.0, 1.0]
    assert tables["confusion"]["predicted"].tolist() == [0, 0, 0, 1, 0, 1]


def test_regression_gets_residuals_only() -> None:
    tables = curves(np.array([1.0, 2.0]), np.array([1.5, 1.0]), "regression", bins=3)
    assert list(tables) == ["residuals"]
    assert tables["residuals"]["residual"].tolist() == [-0.5, 1.0]


def test_importance_groups_features_by_input_column(make_params) -> None:
    generator = np.random.default_rng(0)
    x = pd.DataFrame(generator.normal(size=(800, 3)), columns=["signal", "colour_red", "colour_blue"])
    y = (x["signal"] > 0).astype("int64").to_numpy()
    model = LogisticRegression().fit(x.to_numpy(), y)
    importance = permutation_importance(
        model, x, y, {"signal": "signal", "colour_red": "colour", "colour_blue": "colour"}, make_params()
    )
    assert importance["column"].tolist() == ["signal", "colour"]
    assert importance["importance"].iloc[0] > 0.3 > abs(importance["importance"].iloc[1])
