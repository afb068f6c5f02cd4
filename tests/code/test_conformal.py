"""Split-conformal uncertainty (pillars.serve.conformal): intervals and class sets cover the truth at the
promised rate on new rows drawn like the calibration rows, the finite-sample rank is the textbook one, a set
is never empty, too few calibration rows give unbounded intervals rather than a false promise, and assess's
offline columns are what the parity check compares served answers with."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from pillars.bento.parity import IN_SET, offline_predictions, uncertainty_mismatches
from pillars.core.schema import ROW_COLUMN
from pillars.serve.conformal import Conformal, calibrate, covered
from tests.helpers import ROOT

ALPHA = 0.1


def regression(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A truth and a model's predictions with heteroscedastic errors."""
    generator = np.random.default_rng(seed)
    x = generator.uniform(0, 4, rows)
    prediction = 3 * x
    return prediction + generator.normal(0, 0.5 + x / 2, rows), prediction


def classification(rows: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from the model's own (calibrated) class probabilities."""
    generator = np.random.default_rng(seed)
    probabilities = generator.dirichlet(np.full(classes, 0.7), rows)
    cumulative = probabilities.cumsum(axis=1)
    y = (generator.random((rows, 1)) > cumulative).sum(axis=1)
    return y, probabilities[:, 1] if classes == 2 else probabilities


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_coverage_on_new_rows_is_the_promised_rate(task: str) -> None:
    make = (
        regression
        if task == "regression"
        else lambda rows, seed: classification(rows, 2 if task == "binary" else 4, seed)
    )
    conformal = calibrate(task, *make(2_000, seed=1), ALPHA, 0.5)
    coverage = covered(conformal, *make(40_000, seed=2), threshold=0.5).mean()
    assert 1 - ALPHA - 0.015 <= coverage <= 1 - ALPHA + 0.02, coverage
    assert (conformal.alpha, conformal.rows) == (ALPHA, 2_000) and math.isfinite(conformal.threshold)


def test_a_binary_model_deciding_away_from_one_half_keeps_the_promised_rate() -> None:
    """The predicted label (here at 0.3) is always in the set, and the calibration counts it so: the coverage
    stays at 1 - alpha instead of rising with every row whose predicted label the bare rule would leave out."""
    conformal = calibrate("binary", *classification(2_000, 2, seed=3), ALPHA, 0.3)
    coverage = covered(conformal, *classification(40_000, 2, seed=4), threshold=0.3).mean()
    assert 1 - ALPHA - 0.015 <= coverage <= 1 - ALPHA + 0.02, coverage


def test_the_threshold_is_the_finite_sample_rank_and_too_few_rows_are_unbounded() -> None:
    y = np.arange(1.0, 10.0)  # residuals 1..9 against predictions of 0
    nine = calibrate("regression", y, np.zeros(9), ALPHA, 0.5)
    assert nine.threshold == 9.0, "ceil((9 + 1) * 0.9) = 9: the largest of nine"
    assert calibrate("regression", y[:8], np.zeros(8), ALPHA, 0.5).threshold == math.inf, (
        "8 rows cannot promise 90 %"
    )
    nineteen = calibrate("regression", np.arange(1.0, 20.0), np.zeros(19), ALPHA, 0.5)
    assert nineteen.threshold == 18.0, "ceil(20 * 0.9) = 18"
    low, high = nine.interval(np.array([5.0]))
    assert (low[0], high[0]) == (-4.0, 14.0)


def test_a_set_holds_the_predicted_class_and_every_class_above_the_bar() -> None:
    conformal = Conformal(ALPHA, "multiclass", threshold=0.7, rows=100)  # classes with probability >= 0.3
    probabilities = np.array([[0.5, 0.35, 0.15], [0.25, 0.25, 0.5], [0.34, 0.33, 0.33], [0.2, 0.2, 0.6]])
    assert conformal.sets(probabilities, probabilities.argmax(axis=1)).tolist() == [
        [True, True, False],
        [False, False, True],
        [True, True, True],
        [False, False, True],
    ]
    strict = Conformal(ALPHA, "multiclass", threshold=0.1, rows=100)  # only classes at 0.9 or more
    assert strict.sets(probabilities, probabilities.argmax(axis=1)).sum(axis=1).tolist() == [1, 1, 1, 1]
    # the predicted class is in its set even when it is not the likeliest (binary at a tuned threshold)
    assert strict.sets(probabilities, np.array([2, 0, 1, 2])).tolist() == [
        [False, False, True],
        [True, False, False],
        [False, True, False],
        [False, False, True],
    ]


def test_offline_columns_and_the_parity_check_find_a_differing_interval_or_set() -> None:
    frame = pd.DataFrame({ROW_COLUMN: [0, 1, 2]})
    interval = Conformal(ALPHA, "regression", threshold=2.0, rows=50)
    offline = offline_predictions(frame, np.array([1.0, 2.0, 3.0]), "regression", 0.5, interval)
    assert offline["lower"].tolist() == [-1.0, 0.0, 1.0] and offline["upper"].tolist() == [3.0, 4.0, 5.0]
    served = pd.DataFrame({"lower": [-1.0, 0.0, 1.0], "upper": [3.0, 4.0, 5.5]})
    assert uncertainty_mismatches([served], offline, [], 1e-6) == 1
    assert uncertainty_mismatches([served.assign(upper=[3.0, 4.0, 5.0])], offline, [], 1e-6) == 0
    assert uncertainty_mismatches([None], offline, [], 1e-6) == 3, "answers without intervals: every row"
    sets = Conformal(ALPHA, "binary", threshold=0.6, rows=50)
    offline = offline_predictions(frame, np.array([0.1, 0.5, 0.9]), "binary", 0.5, sets)
    assert offline[[f"{IN_SET}0", f"{IN_SET}1"]].to_numpy().tolist() == [
        [True, False],
        [True, True],
        [False, True],
    ]
    answered = pd.DataFrame({"no": [True, True, False], "yes": [False, False, True]})
    assert uncertainty_mismatches([answered], offline, ["no", "yes"], 1e-6) == 1


def test_the_bundled_pipeline_keeps_its_promise_on_test() -> None:
    """metrics/assess.json as the pipeline wrote it (test_repro checks a fresh run writes the same bytes): the
    class sets calibrated on valid cover the test rows within 0.02 of 1 - alpha, and package serves the same
    calibration."""
    conformal = json.loads((ROOT / "metrics/assess.json").read_text())["conformal"]
    calibration = json.loads((ROOT / "metrics/conformal.json").read_text())
    assert abs(conformal["test_coverage"] - (1 - conformal["alpha"])) <= 0.02, conformal
    assert (
        calibration["alpha"] == conformal["alpha"]
        and calibration["evaluated_on"] == conformal["calibrated_on"]
    )
    assert 1 <= conformal["mean_set_size"] < 2, "informative: most rows get one class"
