"""What `make init` checks before it writes anything: that the data can carry the task, the split and a
model. Each check stops with one line that names the problem and the fix, instead of a stage failing
minutes into `make run` (or a scikit-learn traceback). Pure functions of the data and the params."""

import math

import pandas as pd

from pillars.core.errors import PillarsError
from pillars.core.params import Split
from pillars.init.profile import Task

MIN_CLASS_ROWS = 2  # a class needs a row in train (curate stops otherwise) and one to check the model on
SHOWN_VALUES = 5  # values named in a message


def shown(values: list[str]) -> str:
    """A few values for a message, with how many more there are."""
    more = f" and {len(values) - SHOWN_VALUES} more" if len(values) > SHOWN_VALUES else ""
    return f"{values[:SHOWN_VALUES]}{more}"


def check_task(known: pd.Series, task: Task, target: str) -> None:
    """The task fits the target's values (`known`: the rows with a target): regression needs numbers of
    more than two values, binary two labels, and every class of a classification task two rows."""
    labels = sorted(known.astype("str").unique())
    if len(labels) < 2:
        raise PillarsError(f"TARGET={target!r}: {shown(labels)} in every row with a value; nothing to learn")
    if task == "regression":
        text = sorted(known[pd.to_numeric(known, errors="coerce").isna()].astype("str").unique())
        if text:
            raise PillarsError(
                f"TASK=regression: {target} has values that are not numbers ({shown(text)}); "
                "use TASK=binary or TASK=multiclass, or fix those values"
            )
        if len(labels) == 2:
            raise PillarsError(f"TASK=regression: {target} has two values {labels}; use TASK=binary")
        return
    if task == "binary" and len(labels) > 2:
        raise PillarsError(
            f"TASK=binary: {target} has {len(labels)} values ({shown(labels)}); use TASK=multiclass"
        )
    counts = known.astype("str").value_counts()
    rare = sorted(counts.index[counts < MIN_CLASS_ROWS])
    if rare:
        raise PillarsError(
            f"{target}: class(es) {shown(rare)} have a single row; a class needs at least {MIN_CLASS_ROWS} "
            "(one to train on, one to check): merge them into another class or remove their rows"
        )


def check_positive(positive: str | None, task: Task, labels: list[str], target: str) -> None:
    """POSITIVE names one of a binary target's two labels."""
    if positive is None:
        return
    if task != "binary":
        raise PillarsError(
            f"POSITIVE={positive!r}: only for a binary target ({target} is {task}); leave it out"
        )
    if positive not in labels:
        raise PillarsError(f"POSITIVE={positive!r} is not a value of {target} ({labels}); use one of them")


def rows_needed(split: Split) -> tuple[int, list[str]]:
    """The fewest rows with a target for which curate gives train, valid and test a row each (it stops on
    an empty one), and the splits that set it. Nothing else is a hard need: small-data cross-validation
    uses fewer folds, or none, on few rows (`train.small_data`), and slices smaller than
    `validate_model.slices.min_rows` are skipped."""
    fractions = split.fractions()
    needed = {name: math.ceil(1 / fractions[name] - 1e-9) for name in ("train", "valid", "test")}
    most = max(needed.values())
    return most, [name for name, rows in needed.items() if rows == most]


def check_rows(rows: int, split: Split) -> None:
    """Enough rows with a target for the split (`rows_needed`)."""
    needed, splits = rows_needed(split)
    if rows < needed:
        shares = " and ".join(f"{name} {split.fractions()[name]:g}" for name in splits)
        raise PillarsError(
            f"DATA: {rows} rows with a target; at least {needed} are needed (curate.split gives {shares} of "
            "the rows, and each split needs one); add rows, or raise those shares in params.yaml"
        )


def check_features(columns: list[str], target: str, drops: dict[str, str]) -> None:
    """At least one column besides the target is left for a model after init's drops."""
    if any(name != target and name not in drops for name in columns):
        return
    dropped = "; ".join(f"{name} ({reason})" for name, reason in drops.items())
    have = f"only columns a model should not use: {dropped}" if dropped else "no other column"
    raise PillarsError(
        f"DATA: nothing to learn {target!r} from: besides it the data has {have}; "
        "add columns that describe the rows"
    )
