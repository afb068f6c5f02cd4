"""How the served model is held to the offline one: the raw rows behind a split, the offline predictions
(assess writes them), and the comparison of served answers with them (deploy, the container smoke test)."""

from typing import Any

import numpy as np
import pandas as pd

from pillars.core.metrics import labels_from_scores
from pillars.core.schema import ROW_COLUMN, DataSchema, parse_types
from pillars.serve.conformal import Conformal, predicted_sets

IN_SET = "in_set_"  # offline predictions: whether class <code> is in the row's conformal set


def raw_rows(
    raw: pd.DataFrame, split: pd.DataFrame, schema: DataSchema, placeholders: list[str]
) -> dict[str, np.ndarray]:
    """The raw input rows behind a curated split, typed as the service receives them: integer fields as
    integers (the service's types are strict: 44.0 is no integer), missing values as None."""
    rows = raw.iloc[split[ROW_COLUMN].to_numpy()].reset_index(drop=True)
    typed, _ = parse_types(rows, schema, placeholders)
    dtypes = {name: column.dtype for name, column in schema.columns.items()}
    return {name: as_sent(typed[name], dtypes.get(name)) for name in typed.columns}


def as_sent(values: pd.Series, dtype: str | None) -> np.ndarray:
    """Typed values as a client sends them: whole numbers of an integer field as integers, missing as None."""
    if dtype == "integer":
        present = values.dropna()
        whole = bool((present == present.round()).all())
        if whole:  # else sent as they are, and refused: the data breaks its schema
            values = values.astype("Int64")
    return values.astype(object).where(values.notna(), None).to_numpy(dtype=object)


def offline_predictions(
    frame: pd.DataFrame, scores: np.ndarray, task: str, threshold: float, conformal: Conformal | None
) -> pd.DataFrame:
    """The selected model's test scores and labels (binary: at its decision threshold) per raw row, and its
    conformal intervals (`lower`, `upper`) or class sets (`in_set_<code>`): what the served model must
    reproduce (deploy)."""
    predictions = pd.DataFrame({ROW_COLUMN: frame[ROW_COLUMN].to_numpy()})
    if scores.ndim == 2:
        for code in range(scores.shape[1]):
            predictions[f"score_{code}"] = scores[:, code]
    else:
        predictions["score"] = scores
    if task != "regression":
        predictions["label"] = labels_from_scores(scores, task, threshold)
    if conformal is not None and task == "regression":
        predictions["lower"], predictions["upper"] = conformal.interval(scores)
    elif conformal is not None:
        for code, inside in enumerate(predicted_sets(conformal, scores, threshold).T):
            predictions[f"{IN_SET}{code}"] = inside
    return predictions


def record_uncertainty(records: list[dict[str, Any]], labels: list[str]) -> pd.DataFrame | None:
    """The conformal intervals (`lower`, `upper`) or sets (a boolean column per label) of /predict answers
    as a frame; None when the answers carry none."""
    if records and "interval" in records[0]:
        return pd.DataFrame([row["interval"] for row in records], columns=["lower", "upper"], dtype="float64")
    if records and "set" in records[0]:
        return pd.DataFrame([[label in row["set"] for label in labels] for row in records], columns=labels)
    return None


def bulk_uncertainty(answer: dict[str, Any]) -> pd.DataFrame | None:
    """The same for a /predict_bulk answer."""
    found = answer.get("intervals") or answer.get("sets")
    return None if found is None else pd.DataFrame(found).astype("float64" if "intervals" in answer else bool)


def uncertainty_mismatches(
    served: list[pd.DataFrame | None], offline: pd.DataFrame, labels: list[str], tolerance: float
) -> int:
    """Rows whose served interval or set differs from the offline one (interval ends: beyond `tolerance`,
    relative to their size as values are; an unbounded end is served as null). Every row, when the offline
    predictions have them and the answers do not."""
    sets = [f"{IN_SET}{code}" for code in range(len(labels))]
    if "lower" not in offline and not set(sets) <= set(offline):
        return 0
    if any(part is None for part in served) or not served:
        return len(offline)
    answered = pd.concat(served, ignore_index=True)
    if "lower" in offline:
        off = np.zeros(len(offline), dtype=bool)
        for end, unbounded in (("lower", -np.inf), ("upper", np.inf)):
            got = np.nan_to_num(answered[end].to_numpy(dtype="float64"), nan=unbounded)
            expected = offline[end].to_numpy()
            same = (got == expected) | (
                np.abs(got - expected) <= tolerance * np.maximum(1.0, np.abs(expected))
            )
            off |= ~same
        return int(off.sum())
    return int((answered[labels].to_numpy() != offline[sets].to_numpy()).any(axis=1).sum())


def parity(answer: dict, offline: pd.DataFrame, labels: list[str], tolerance: float) -> dict[str, Any]:
    """How the served answers compare with assess's offline predictions."""
    uncertain = uncertainty_mismatches(answer["uncertainty"], offline, labels, tolerance)
    if "label" not in offline:
        # Regression: values, compared relative to their size. Float32 features give float32 sums whose last
        # bit depends on how BLAS splits the work across threads, and the server runs fewer threads.
        served = np.asarray(answer["predictions"], dtype="float64")
        expected = offline["score"].to_numpy()
        relative = np.abs(served - expected) / np.maximum(1.0, np.abs(expected))
        largest = float(relative.max()) if len(served) else 0.0
        return {
            "rows": len(served),
            "max_relative_difference": largest,
            "interval_mismatches": uncertain,
            "passed": largest <= tolerance and uncertain == 0,
        }
    served_codes = pd.Series(answer["predictions"]).map({label: code for code, label in enumerate(labels)})
    probabilities = pd.concat(answer["probabilities"], ignore_index=True)[labels].to_numpy()
    if "score" in offline:
        expected = offline["score"].to_numpy()
        difference = np.abs(probabilities[:, 1] - expected)
    else:
        expected = offline[[f"score_{code}" for code in range(len(labels))]].to_numpy()
        difference = np.abs(probabilities - expected).max(axis=1)
    mismatched = int((served_codes.to_numpy() != offline["label"].to_numpy()).sum())
    largest = float(difference.max()) if len(difference) else 0.0
    return {
        "rows": len(served_codes),
        "label_mismatches": mismatched,
        "set_mismatches": uncertain,
        "max_difference": largest,
        "passed": mismatched == 0 and largest <= tolerance and uncertain == 0,
    }
