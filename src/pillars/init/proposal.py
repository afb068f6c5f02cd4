"""From a profile to params: the current params.yaml, with every dataset-specific setting replaced by what
fits the new data. Pure: a params mapping in (ruamel's, so comments survive), the same mapping out."""

import math
import re
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from pillars.core.params import EvidenceCheck
from pillars.core.schema import canonical_name
from pillars.init.profile import Profile
from pillars.training.families import FAMILIES

PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
STRATIFIED_MAX_ROWS = 20_000  # classification data up to this size gets the exact stratified split
MIN_SLICE_ROWS = 100  # smaller slices are reported as skipped: their metric is mostly noise
# Gates a useful model passes on any data: better than chance, or than predicting the mean
METRICS = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
SLICE_METRICS = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}


def inline(mapping: dict[str, Any]) -> CommentedMap:
    """A small mapping written on one line, as params.yaml writes limits: `{min: 0.5}`."""
    flow = CommentedMap(mapping)
    flow.fa.set_flow_style()
    return flow


def inline_list(items: list[str]) -> CommentedSeq:
    """A short list written on one line: `[a, b]`, names with other characters than letters, digits,
    `_`, `-` and `.` in double quotes (a `?` or `,` would end a plain name there)."""
    flow = CommentedSeq(item if PLAIN.fullmatch(item) else DoubleQuotedScalarString(item) for item in items)
    flow.fa.set_flow_style()
    return flow


def thresholds(task: str, classes: int) -> dict[str, dict[str, float]]:
    """The absolute gate on the valid split: no worse than guessing."""
    if task == "binary":
        return {"roc_auc": {"min": 0.5}}
    if task == "multiclass":
        return {"log_loss": {"max": round(math.log(classes), 6)}}  # a uniform guess over the classes
    return {"r2": {"min": 0.0}}  # the mean of the target


def slice_limit(task: str, classes: int) -> dict[str, float]:
    """The per-slice gate: no worse than guessing on the slice either."""
    if task == "binary":
        return {"min": 0.5}
    if task == "multiclass":
        return {"min": round(1.0 / classes, 6)}
    return {"min": -1.0}  # a slice's own mean may differ from the whole's: only a model far off fails


def evidence_margins(profile: Profile) -> dict[str, float]:
    """The gate's non-inferiority margin and least gain (`validate_model.evidence`), in train.metric's units:
    the defaults suit ROC AUC and log loss; RMSE is in the target's units, so there they are the same shares
    of the target's standard deviation."""
    defaults = EvidenceCheck()
    scale = (profile.target_std or 1.0) if profile.task == "regression" else 1.0
    return {key: float(f"{getattr(defaults, key) * scale:.3g}") for key in ("margin", "min_gain")}


def split_method(profile: Profile, rows: int) -> dict[str, Any]:
    """A time-ordered split when a date orders the rows, an exact stratified one for small classification
    data, else the hash split (rows keep their split when data is appended)."""
    if profile.time_column is not None:
        return {"method": "time", "by": profile.time_column}
    if profile.task != "regression" and rows <= STRATIFIED_MAX_ROWS:
        return {"method": "stratified", "by": None}
    return {"method": "hash", "by": None}


def file_source(sources: Any, name: str, path: str, sep: str | None) -> None:
    """The one ingest source: the file (`sep`: its field separator, when not the format's own), written
    over the current first source, in place, so that the comments on its keys stay (a new key goes before
    the last one, which carries the blank line that ends the section)."""
    values = {"name": name, "kind": "file", "path": path, "format": "auto"}
    if sep is not None:
        values["sep"] = DoubleQuotedScalarString(sep)
    del sources[1:]
    entry = sources[0]
    if not isinstance(entry, CommentedMap):  # a plain mapping: nothing to keep
        sources[0] = values
        return
    for key in [key for key in entry if key not in values]:
        del entry[key]
    for key, value in values.items():
        if key in entry:
            entry[key] = value
        else:
            entry.insert(max(len(entry) - 1, 0), key, value)


def propose(
    template: Any,
    profile: Profile,
    *,
    name: str,
    target: str,
    source: str,
    sep: str | None = None,
    rows: int,
    quick: bool,
) -> Any:
    """`template` (params.yaml as loaded) rewritten for the new data, in place; returned for chaining."""
    classes = max(len(profile.labels), 2)
    dataset = template["dataset"]
    dataset["name"] = name
    dataset["task"] = profile.task
    dataset["target"] = target
    dataset["positive_label"] = profile.positive_label
    dataset["placeholders"] = inline_list(profile.placeholders)
    dataset["key_columns"] = []
    file_source(template["ingest"]["sources"], name, source, sep)
    cleanse = template["cleanse"]
    cleanse["impossible"] = {}
    cleanse["outliers"] = {}
    template["standardize"]["aliases"] = {}
    template["standardize"]["units"] = {}
    curate = template["curate"]
    curate["drop"] = dict(profile.drops)
    curate["split"].update(split_method(profile, rows))
    train = template["train"]
    train["metric"] = METRICS[profile.task]
    train["budget"] = None  # measured on the former data: `make budget` (or init's BUDGET) measures anew
    for name, settings in train["families"].items():
        family = FAMILIES.get(name)
        if family is None:  # not a family of ours: train's check names the key
            continue
        if quick:  # `--budget quick`: tests, demos
            settings["n_trials"] = family.quick_trials
        if not family.count_losses:
            continue
        settings["space"].pop("objective", None)
        settings.setdefault("start", CommentedMap()).pop("objective", None)
        if profile.task == "regression" and profile.non_negative_target:
            choices = inline_list(family.count_losses)
            settings["space"]["objective"] = inline({"type": "categorical", "choices": choices})
            settings["start"]["objective"] = "squared_error"
    gate = template["validate_model"]
    gate["thresholds"] = {name: inline(limit) for name, limit in thresholds(profile.task, classes).items()}
    gate["slices"] = {
        "columns": inline_list(profile.slices),
        "metric": SLICE_METRICS[profile.task],
        "limit": inline(slice_limit(profile.task, classes)),
        "min_rows": MIN_SLICE_ROWS,
    }
    gate["evidence"].update(evidence_margins(profile))
    template["monitor"]["replay"]["shift"] = {}
    return template


def snake_names(columns: list[str]) -> dict[str, str]:
    """Raw column names whose snake_case name differs, raw -> snake (said in the summary)."""
    return {column: canonical_name(column) for column in columns if canonical_name(column) != column}
