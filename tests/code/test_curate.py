"""Pillar 5, curate: a deterministic, append-stable split and column selection with reasons."""

import itertools

import numpy as np
import pandas as pd
import pytest

from pillars.core.errors import PillarsError
from pillars.stages.curate import (
    allocate,
    curate,
    curation_report,
    split_assignment,
    stratified_assignment,
    time_assignment,
)

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


def test_regression_reports_rows_without_class_shares(make_params) -> None:
    params = make_params(
        dataset={"target": "label", "task": "regression", "positive_label": None, "key_columns": []},
        curate={"drop": {}},
    )
    frame = people(3_000).assign(label=lambda rows: rows["age"] * 1.5 + 0.25)  # a continuous target
    splits, _, report = curate(frame, ROLES, params)
    assert report["rows"] == {name: len(split) for name, split in splits.items()}
    assert sum(report["rows"].values()) == 3_000
    assert "class_share" not in report


def test_params_drop_is_recorded(make_params) -> None:
    params = make_params(
        dataset={"target": "label", "key_columns": []}, curate={"drop": {"age": "leaks the label"}}
    )
    _, selection, _ = curate(people(2_000), ROLES, params)
    assert selection["dropped"]["age"] == "params: leaks the label"
    assert "age" not in selection["features"]


def test_a_class_missing_from_train_stops_the_run_and_from_valid_or_test_is_recorded() -> None:
    def split(*labels: int) -> pd.Series:
        return pd.Series(labels).value_counts()

    with pytest.raises(PillarsError, match=r"class\(es\) \['1'\] have no row in the train split"):
        curation_report({"train": split(0, 0), "valid": split(0, 1), "test": split(0, 1)}, "binary")
    report = curation_report(
        {"train": split(0, 1, 2), "valid": split(0, 1), "test": split(0, 2), "holdout": split(0)},
        "multiclass",
    )
    assert report["absent_classes"] == {"valid": ["2"], "test": ["1"]}  # metrics there name the gap


def test_empty_data_stops_the_run(make_params) -> None:
    with pytest.raises(PillarsError, match="no rows left after cleansing"):
        curate(people(0), ROLES, make_params(dataset={"target": "label"}, curate={"drop": {}}))


def classes(rows: int, seed: int = 0) -> pd.DataFrame:
    """A small multiclass frame: three classes of 50 %, 35 % and 15 %."""
    frame = people(rows, seed)
    generator = np.random.default_rng(seed + 100)
    return frame.assign(label=generator.choice([0, 1, 2], rows, p=[0.5, 0.35, 0.15]))


def stratified_params(make_params):
    return make_params(
        dataset={"task": "multiclass", "target": "label", "positive_label": None, "key_columns": []},
        curate={"drop": {}, "split": {"method": "stratified"}},
    )


def test_exact_stratified_split_counts_are_within_one_row_of_ideal(make_params) -> None:
    frame = classes(350)
    splits, _, report = curate(frame, ROLES, stratified_params(make_params))
    overall = frame["label"].value_counts()
    for split, fraction in FRACTIONS.items():
        counts = splits[split]["label"].value_counts().reindex(overall.index, fill_value=0)
        assert ((counts - overall * fraction).abs() < 1).all(), (split, counts.to_dict())
    assert report["method"] == "stratified"
    assert sum(report["rows"].values()) == 350
    assert report["max_class_share_gap"] < 0.02, "hash splits of 35 valid rows miss by several points"


def test_exact_stratified_split_ignores_row_order_and_follows_the_seed(make_params) -> None:
    frame = classes(300)
    keys = ["age", "city", "country", "ident"]
    first = stratified_assignment(frame, keys, "label", 7, FRACTIONS)
    assert first.equals(stratified_assignment(frame, keys, "label", 7, FRACTIONS)), "reproducible"
    shuffled = frame.sample(frac=1.0, random_state=1)
    again = stratified_assignment(shuffled.reset_index(drop=True), keys, "label", 7, FRACTIONS)
    assert again.to_numpy().tolist() == first.loc[shuffled.index].to_numpy().tolist(), "order-free"
    assert not first.equals(stratified_assignment(frame, keys, "label", 8, FRACTIONS)), "seeded"


def test_allocation_by_largest_remainder() -> None:
    counts = allocate(np.array([10, 3, 35, 0]), FRACTIONS)
    assert counts.tolist() == [[7, 1, 1, 1], [2, 1, 0, 0], [25, 4, 3, 3], [0, 0, 0, 0]]


def timed(rows: int, missing: int = 0) -> pd.DataFrame:
    frame = people(rows, seed=3)
    days = np.random.default_rng(4).integers(0, 60, rows)  # many rows share a day
    when = pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(days, unit="D"))
    when.iloc[:missing] = pd.NaT
    return frame.assign(signed_up=when)


def time_params(make_params, by: str = "signed_up"):
    return make_params(
        dataset={"target": "label", "key_columns": []},
        curate={"drop": {}, "split": {"by": by}},  # naming `by` alone means method time
    )


@pytest.mark.parametrize("kind", ["datetime", "zoned", "number"])
def test_time_split_puts_earlier_rows_first_and_missing_times_in_train(make_params, kind: str) -> None:
    frame = timed(400, missing=7)
    if kind == "number":
        frame["signed_up"] = (frame["signed_up"] - pd.Timestamp("2024-01-01")).dt.days.astype("Float64")
    if kind == "zoned":
        frame["signed_up"] = frame["signed_up"].dt.tz_localize("Europe/Oslo")
    roles = ROLES | {"signed_up": "numeric"}
    splits, _, report = curate(frame, roles, time_params(make_params))
    order = [splits[name]["signed_up"] for name in ("train", "valid", "test", "holdout")]
    for earlier, later in itertools.pairwise(order):
        assert earlier.max() <= later.min()
    assert order[0].isna().sum() == 7 and all(later.notna().all() for later in order[1:])
    assert report["method"] == "time" and report["by"] == "signed_up"
    assert report["missing_by_in_train"] == 7
    assert report["rows"] == {"train": 7 + 275, "valid": 40, "test": 39, "holdout": 39}
    ranges = report["time_range"]  # JSON values: ISO 8601 text for datetimes, numbers for numbers
    first = {"datetime": "2024-01-01T00:00:00", "zoned": "2024-01-01T00:00:00+01:00", "number": 0.0}
    assert ranges["train"]["min"] == first[kind]
    assert ranges["train"]["max"] <= ranges["valid"]["min"] <= ranges["valid"]["max"] <= ranges["test"]["min"]


def test_time_split_is_independent_of_row_order(make_params) -> None:
    frame = timed(300, missing=3)
    keys = ["age", "city", "country", "ident"]
    first = time_assignment(frame, keys, "signed_up", FRACTIONS)
    shuffled = frame.sample(frac=1.0, random_state=2)
    again = time_assignment(shuffled.reset_index(drop=True), keys, "signed_up", FRACTIONS)
    assert again.to_numpy().tolist() == first.loc[shuffled.index].to_numpy().tolist()


def test_time_split_needs_numbers_or_datetimes(make_params) -> None:
    with pytest.raises(
        PillarsError, match=r"curate\.split\.by: column 'city' has dtype .*numbers or datetimes"
    ):
        curate(timed(100), ROLES, time_params(make_params, by="city"))
    with pytest.raises(
        PillarsError, match=r"curate\.split\.by: column 'joined' is not in the standardized data"
    ):
        curate(timed(100), ROLES, time_params(make_params, by="Joined"))


def test_hash_split_report_is_unchanged(make_params) -> None:
    """The default method writes the report it always wrote (no `method` key): committed bytes stay."""
    _, _, report = curate(people(2_000), ROLES, make_params(dataset={"target": "label"}, curate={"drop": {}}))
    assert set(report) == {"rows", "share", "class_share", "max_class_share_gap"}
