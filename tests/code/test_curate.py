"""Pillar 5, curate: a deterministic, append-stable split and column selection with reasons."""

import numpy as np
import pandas as pd
import pytest

from pillars.core.errors import PillarsError
from pillars.stages.curate import curate, split_assignment

FRACTIONS = {"train": 0.7, "valid": 0.1, "test": 0.1, "holdout": 0.1}


def people(rows: int, seed: int = 0) -> pd.DataFrame:
    generator = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": generator.integers(18, 90, rows).astype("float64"),
            "city": generator.choice(["oslo", "rome", "lima"], rows),
            "country": "no",
            "ident": [f"id-{seed}-{index}" for index in range(rows)],
            "label": (generator.random(rows) < 0.3).astype("int64"),
            "_source": "s",
        }
    )


ROLES = {
    "age": "numeric",
    "city": "categorical",
    "country": "categorical",
    "ident": "categorical",
    "label": "target",
    "_source": "lineage",
}


def test_split_is_deterministic_and_close_to_the_fractions() -> None:
    frame = people(20_000)
    first = split_assignment(frame, ["age", "city", "ident"], 7, FRACTIONS)
    assert first.equals(split_assignment(frame, ["age", "city", "ident"], 7, FRACTIONS))
    shares = first.value_counts(normalize=True)
    for name, fraction in FRACTIONS.items():
        assert shares[name] == pytest.approx(fraction, abs=0.01)
    assert not first.equals(split_assignment(frame, ["age", "city", "ident"], 8, FRACTIONS))


def test_a_row_keeps_its_split_when_data_is_appended() -> None:
    old = people(5_000, seed=1)
    grown = pd.concat([people(3_000, seed=2), old], ignore_index=True)  # new rows even come first
    before = split_assignment(old, ["age", "city", "ident"], 7, FRACTIONS)
    after = (
        split_assignment(grown, ["age", "city", "ident"], 7, FRACTIONS).iloc[3_000:].reset_index(drop=True)
    )
    assert before.equals(after)


def test_selection_reasons_and_class_shares(make_params) -> None:
    params = make_params(
        dataset={"target": "label", "key_columns": []},
        curate={"drop": {}, "near_constant_share": 0.99, "max_unique_share": 0.9},
    )
    splits, selection, report = curate(people(10_000), ROLES, params)
    assert selection["features"] == {"age": "numeric", "city": "categorical"}
    assert selection["dropped"]["country"].startswith("near-constant: 'no' in 100.00% of train rows")
    assert selection["dropped"]["ident"].startswith("id-like:")
    assert list(splits["train"].columns) == ["age", "city", "label", "_source"]
    assert sum(report["rows"].values()) == 10_000
    assert report["max_class_share_gap"] < 0.03
    assert set(report["class_share"]["test"]) == {"0", "1"}


def test_params_drop_is_recorded(make_params) -> None:
    params = make_params(
        dataset={"target": "label", "key_columns": []}, curate={"drop": {"age": "leaks the label"}}
    )
    _, selection, _ = curate(people(2_000), ROLES, params)
    assert selection["dropped"]["age"] == "params: leaks the label"
    assert "age" not in selection["features"]


def test_a_class_too_rare_to_split_stops_the_run(make_params) -> None:
    frame = people(2_000).assign(label=0)
    frame.loc[0, "label"] = 1
    params = make_params(dataset={"target": "label", "key_columns": []}, curate={"drop": {}})
    with pytest.raises(
        PillarsError, match=r"class\(es\) \['1'\] have no row in the (valid|test|train) split"
    ):
        curate(frame, ROLES, params)


def test_empty_data_stops_the_run(make_params) -> None:
    with pytest.raises(PillarsError, match="no rows left after cleansing"):
        curate(people(0), ROLES, make_params(dataset={"target": "label"}, curate={"drop": {}}))
