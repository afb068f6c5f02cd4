"""The ensemble candidate: greedy selection with replacement on held-out scores, and the Blend it makes."""

import pickle

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score

from pillars.core.errors import PillarsError
from pillars.core.metrics import predict_scores
from pillars.serve.estimators import Blend, blend_scores
from pillars.training.cost import prediction_cost
from pillars.training.ensemble import select_weights


def noisy_views(rows: int = 3000) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Three candidates that see the truth through independent noise, and one that sees nothing."""
    generator = np.random.default_rng(1)
    signal = generator.normal(size=rows)
    y = (signal > 0).astype("int64")
    views = {
        name: 1 / (1 + np.exp(-(signal + generator.normal(scale=scale, size=rows))))
        for name, scale in (("a", 1.0), ("b", 1.0), ("c", 1.5))
    }
    views["noise"] = generator.random(rows)
    return y, views


def test_the_blend_beats_every_candidate_and_leaves_the_useless_one_out() -> None:
    y, views = noisy_views()
    fitted = select_weights(views, y, "binary", "roc_auc", size=20)
    assert sum(fitted.weights.values()) == pytest.approx(1.0)
    assert "noise" not in fitted.weights
    assert all(weight * 20 == pytest.approx(round(weight * 20)) for weight in fitted.weights.values())
    assert fitted.value > max(roc_auc_score(y, scores) for scores in views.values())
    assert fitted.value == pytest.approx(roc_auc_score(y, blend_scores(views, fitted.weights)))
    again = select_weights(views, y, "binary", "roc_auc", size=20)
    assert again == fitted, "the same scores give the same weights"


def test_a_lower_is_better_metric_is_minimised() -> None:
    y, views = noisy_views()
    values = {name: np.clip(scores, 1e-6, 1 - 1e-6) for name, scores in views.items()}
    fitted = select_weights(values, y, "binary", "log_loss", size=10)
    best_single = min(
        float(-np.mean(y * np.log(scores) + (1 - y) * np.log(1 - scores))) for scores in values.values()
    )
    assert fitted.value < best_single


def test_undefined_everywhere_names_the_metric() -> None:
    y = np.zeros(10, dtype="int64")  # one class: ROC AUC has no value
    with pytest.raises(PillarsError, match="roc_auc is undefined on the held-out rows"):
        select_weights({"a": np.linspace(0, 1, 10)}, y, "binary", "roc_auc", size=3)


def test_a_blend_predicts_the_weighted_average_and_pickles() -> None:
    generator = np.random.default_rng(2)
    x = generator.normal(size=(300, 3))
    y = (x[:, 0] > 0).astype("int64")
    members = {"strong": LogisticRegression().fit(x, y), "weak": LogisticRegression(C=0.001).fit(x, y)}
    blend = Blend(members, {"strong": 0.75, "weak": 0.25}, regression=False, n_jobs=2)
    expected = 0.75 * members["strong"].predict_proba(x) + 0.25 * members["weak"].predict_proba(x)
    assert np.allclose(blend.predict_proba(x), expected)
    assert np.array_equal(blend.predict(x), expected.argmax(axis=1))
    assert np.allclose(predict_scores(pickle.loads(pickle.dumps(blend)), x, "binary"), expected[:, 1])
    blend.set_params(n_jobs=1)
    assert blend.get_params()["n_jobs"] == 1 and members["strong"].get_params()["n_jobs"] == 1
    assert prediction_cost(blend) == prediction_cost(members["strong"]) + prediction_cost(members["weak"])
    regression = Blend({"r": Ridge().fit(x, x[:, 0])}, {"r": 1.0}, regression=True, n_jobs=1)
    assert np.allclose(regression.predict(x), Ridge().fit(x, x[:, 0]).predict(x))
