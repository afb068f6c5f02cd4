"""Out-of-fold predictions on disk: every train + valid row exactly once, read back in split order."""

import numpy as np
import pytest

from pillars.core.errors import PillarsError
from pillars.training.oof import oof_scores, oof_table


@pytest.mark.parametrize("columns", [0, 3])
def test_out_of_fold_table_round_trip(columns: int) -> None:
    generator = np.random.default_rng(0)
    scores = generator.random((7, columns) if columns else 7)
    folds = np.array([0, 1, 2, 0, 1, 2, 0])
    table = oof_table(scores, folds, train_rows=5)
    assert table["split"].tolist() == ["train"] * 5 + ["valid"] * 2
    assert table["row"].tolist() == [0, 1, 2, 3, 4, 0, 1]
    shuffled = table.sample(frac=1.0, random_state=1)
    assert np.array_equal(oof_scores(shuffled, 5, 2, "oof"), scores)


def test_out_of_fold_rows_must_be_covered_exactly_once() -> None:
    table = oof_table(np.linspace(0, 1, 6), np.arange(6) % 2, train_rows=4)
    with pytest.raises(
        PillarsError, match=r"oof: the out-of-fold predictions do not cover the 4 train and 2"
    ):
        oof_scores(table.iloc[:-1], 4, 2, "oof")
    duplicated = table.assign(row=[0, 1, 2, 2, 0, 1])
    with pytest.raises(PillarsError, match="exactly once"):
        oof_scores(duplicated, 4, 2, "oof")
    with pytest.raises(PillarsError, match="exactly once"):
        oof_scores(table, 3, 3, "oof")
