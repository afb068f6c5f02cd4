"""Shadow replay: the logged production requests through the candidate and the champion, before anything ships.

Every logged row (the service's collected logs and batch inference's, in log order; the last
`shadow.window_rows` of them if params say so) is scored in process, in batches, by the candidate's serving
model and by the champion's (none on a first release: the report says so). The report proves the replay
faithful: every row logged by one of the two models gets exactly its logged answer again (otherwise the stage
fails and names the rows). It then says how the candidate would have answered the traffic the champion
answered: decision agreement (classification) or the distribution of differences (regression), overall and
per slice; the rows the champion served that the candidate would refuse; and, where ground truth arrived,
the paired difference of the metric with its interval, as the gate compares (handed in: monitoring does not
import training). Params may block promotion on each. No I/O but reading the logs; no times in the report.
"""

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pillars.core.params import ShadowParams
from pillars.monitoring.logs import KEY_COLUMNS, MAX_EXAMPLES, Skipped, encoded_labels, log_lines
from pillars.serve.model import ServingModel

OVERALL = "overall"
MISSING = "missing"  # the slice of rows without a value
INSUFFICIENT = "insufficient"
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# The gate's paired comparison on labelled rows, handed in by the stage (pillars.training.evidence): the
# labels, the candidate's and the champion's scores, their decision thresholds, and named row masks (OVERALL,
# then one per slice) -> a report per name with its "verdict" and "meets" (False: short of `shadow.labelled`).
PairedEvidence = Callable[
    [np.ndarray, np.ndarray, np.ndarray, tuple[float, float], dict[str, np.ndarray]],
    dict[str, dict[str, Any]],
]


@dataclass(frozen=True)
class LoggedRequests:
    """Every logged row in log order: its raw inputs as logged, and the version and answer of the model that
    answered it."""

    inputs: dict[str, list[Any]]  # raw values per input field (None in rows whose line lacks the field)
    present: dict[str, np.ndarray]  # per input field: the rows whose line logged it
    versions: np.ndarray  # the model version that answered each row
    keys: pd.DataFrame  # request_id, row: what feedback is keyed by, and how rows are named
    predictions: np.ndarray  # the logged answers (labels or values)
    probabilities: dict[str, np.ndarray]  # per class label as logged (NaN where a line lacks the label)
    lines: int
    skipped: Skipped

    @property
    def rows(self) -> int:
        return len(self.versions)


def _from(record: dict[str, Any], start: int) -> dict[str, Any]:
    """A log record without its first `start` rows."""
    return {
        **record,
        "request_id": record["request_id"][start:],
        "row": record["row"][start:],
        "prediction": record["prediction"][start:],
        "inputs": {name: values[start:] for name, values in record["inputs"].items()},
        "probabilities": {label: values[start:] for label, values in (record["probabilities"] or {}).items()},
    }


def last_rows(records: list[dict[str, Any]], rows: int) -> list[dict[str, Any]]:
    """The records holding the last `rows` logged rows (the first one cut short where needed)."""
    kept: list[dict[str, Any]] = []
    left = rows
    for record in reversed(records):
        size = len(record["request_id"])
        if size >= left:
            kept.append(_from(record, size - left))
            break
        kept.append(record)
        left -= size
    return kept[::-1]


def _objects(values: list[Any]) -> np.ndarray:
    """A one-dimensional object array of the values, whatever they are (lists stay elements)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _column(records: list[dict[str, Any]], part: str, name: str | None = None) -> list[Any]:
    """One column of the records in order: a list of each record, or (`name`) one entry of its `inputs` or
    `probabilities` (None in the rows of a record without it)."""
    if name is None:
        return list(chain.from_iterable(record[part] for record in records))
    return list(
        chain.from_iterable(
            (record[part] or {}).get(name, [None] * len(record["request_id"])) for record in records
        )
    )


def read_requests(folder: Path, window_rows: int = 0) -> LoggedRequests:
    """Every row of every *.jsonl log under `folder` (file name, then line order), whichever model answered
    it; `window_rows` > 0 keeps the last that many. Corrupt lines are skipped and counted, as the monitor does."""
    skipped = Skipped()
    records: list[dict[str, Any]] = []
    lines = 0
    for _, record in log_lines(folder, skipped):
        lines += 1
        if record is not None:
            records.append(record)
    if window_rows:
        records = last_rows(records, window_rows)
    sizes = [len(record["request_id"]) for record in records]
    names = sorted({name for record in records for name in record["inputs"]})
    labels = sorted({label for record in records for label in record["probabilities"] or {}})

    def per_row(values: list[Any]) -> np.ndarray:
        return np.repeat(np.array(values, dtype=object), sizes)

    return LoggedRequests(
        inputs={name: _column(records, "inputs", name) for name in names},
        present={
            name: per_row([name in record["inputs"] for record in records]).astype(bool) for name in names
        },
        versions=per_row([record["model_version"] for record in records]),
        keys=pd.DataFrame(
            {
                "request_id": pd.Series(_column(records, "request_id"), dtype=object).astype(str),
                "row": pd.Series(_column(records, "row"), dtype="int64"),
            }
        ),
        predictions=_objects(_column(records, "prediction")),
        probabilities={
            label: np.array(_column(records, "probabilities", label), dtype="float64") for label in labels
        },
        lines=lines,
        skipped=skipped,
    )


@dataclass(frozen=True)
class Replayed:
    """One model's answers to the logged rows: scored where it accepts the row, refused (with why) elsewhere."""

    refusals: pd.Series  # why each row would be refused (None: scored)
    predictions: np.ndarray  # labels or values (None where refused)
    probabilities: dict[str, np.ndarray] | None  # per class label (NaN where refused)
    scores: np.ndarray  # as assess scores: positive-class probability, class probabilities or values
    seconds: float  # scoring time: for the untracked timings file, never the report

    @property
    def accepted(self) -> np.ndarray:
        return np.asarray(self.refusals.isna(), dtype=bool)


def replay(model: ServingModel, logged: LoggedRequests, batch_rows: int) -> Replayed:
    """Score every logged row the model accepts, `batch_rows` at a time (vectorized within a batch)."""
    started = time.perf_counter()
    rows = logged.rows
    refusals = pd.Series(None, index=range(rows), dtype=object)
    for item in model.fields:
        logged_here = logged.present.get(item.name, np.zeros(rows, dtype=bool))
        refusals = refusals.mask(refusals.isna() & ~logged_here, f"{item.name}: not in the logged inputs")
    typed = model.typed({item.name: logged.inputs.get(item.name, [None] * rows) for item in model.fields})
    refusals = refusals.fillna(model.rejections(typed))
    scored_rows = np.flatnonzero(refusals.isna().to_numpy())
    predictions = np.full(rows, None, dtype=object)
    labels = model.labels if model.task != "regression" else ()
    probabilities = {label: np.full(rows, np.nan) for label in labels}
    scores = np.full((rows, len(labels)) if model.task == "multiclass" else rows, np.nan)
    for start in range(0, len(scored_rows), batch_rows):
        batch = scored_rows[start : start + batch_rows]
        scored = model.score({name: values[batch] for name, values in typed.items()})
        predictions[batch] = _objects(scored.predictions)
        scores[batch] = scored.scores
        for label, values in (scored.probabilities or {}).items():
            probabilities[label][batch] = values
    return Replayed(refusals, predictions, probabilities or None, scores, time.perf_counter() - started)


def _named(keys: pd.DataFrame, rows: np.ndarray) -> list[str]:
    """A few rows named as feedback names them: request id and row."""
    return [
        f"request {keys['request_id'].iat[row]} row {keys['row'].iat[row]}" for row in rows[:MAX_EXAMPLES]
    ]


def faithfulness(model: ServingModel, answers: Replayed, logged: LoggedRequests) -> dict[str, Any]:
    """Whether every row this model logged gets exactly its logged answer again: the prediction and each
    class probability, bit for bit (a row now refused differs too)."""
    own = logged.versions == model.version
    same = answers.accepted & (answers.predictions == logged.predictions)
    for label, values in (answers.probabilities or {}).items():
        same &= values == logged.probabilities.get(label, np.full(logged.rows, np.nan))
    differ = np.flatnonzero(own & ~same)
    return {
        "version": model.version,
        "rows": int(own.sum()),
        "differ": len(differ),
        "examples": _named(logged.keys, differ),
    }


def slice_masks(logged: LoggedRequests, columns: list[str]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Row masks of every value of every slice column (`column=value`, missing values as one slice), and
    the columns that were not logged (no slices)."""
    masks: dict[str, np.ndarray] = {}
    absent = []
    for column in columns:
        if column not in logged.inputs:
            absent.append(column)
            continue
        values = np.array(
            [MISSING if value is None or value != value else str(value) for value in logged.inputs[column]],
            dtype=object,
        )
        for value in sorted(set(values)):
            masks[f"{column}={value}"] = values == value
    return masks, absent


def _rounded(value: float) -> float:
    return round(float(value), 6)


def _share(part: int, whole: int) -> float | None:
    return _rounded(part / whole) if whole else None


def disagreement_bound(disagree: int, rows: int, alpha: float) -> float:
    """The share of rows on which the models decide differently, as low as the rows allow at level `alpha`
    (one-sided Clopper-Pearson): what the rows show at least, so that a small slice blocks only on evidence."""
    return float(stats.beta.ppf(alpha, disagree, rows - disagree + 1)) if disagree else 0.0


def differences(
    candidate: Replayed, champion: Replayed, rows: np.ndarray, task: str, alpha: float
) -> dict[str, Any]:
    """The two models' answers on these rows: how often they decide alike, and the disagreement the rows show
    at least (classification); or the distribution of candidate - champion (regression)."""
    size = int(rows.sum())
    if task != "regression":
        agree = int((candidate.predictions[rows] == champion.predictions[rows]).sum())
        return {
            "rows": size,
            "agree": agree,
            "agreement": _share(agree, size),
            "disagreement_at_least": _rounded(disagreement_bound(size - agree, size, alpha)),
        }
    if not size:
        return {"rows": 0}
    gaps = candidate.scores[rows] - champion.scores[rows]
    return {
        "rows": size,
        "mean_difference": _rounded(gaps.mean()),
        "quantiles": {
            f"p{round(q * 100)}": _rounded(value)
            for q, value in zip(QUANTILES, np.quantile(gaps, QUANTILES), strict=True)
        },
        "p95_absolute": _rounded(np.quantile(np.abs(gaps), 0.95)),
    }


def shortfall(found: dict[str, Any], settings: ShadowParams) -> str | None:
    """Why these differences block promotion (None: they do not)."""
    allowed = _rounded(1 - settings.min_agreement)
    if "agreement" in found and found["disagreement_at_least"] > allowed:
        return (
            f"decision agreement {found['agreement']}: the models disagree on at least "
            f"{found['disagreement_at_least']} of the rows, more than 1 - shadow.min_agreement = {allowed}"
        )
    limit = settings.max_difference
    if "p95_absolute" in found and limit is not None and found["p95_absolute"] > limit:
        return f"95th percentile of |difference| {found['p95_absolute']} > shadow.max_difference {limit}"
    return None


def comparison(
    candidate: Replayed,
    champion: Replayed,
    masks: dict[str, np.ndarray],
    task: str,
    settings: ShadowParams,
    alpha: float,
) -> tuple[dict[str, Any], list[str]]:
    """The answers compared on the rows both models score, overall and per slice (under `shadow.min_rows`
    rows: insufficient, not judged), and what blocks: a disagreement shown (at level `alpha`) above what
    `shadow.min_agreement` allows."""
    both = candidate.accepted & champion.accepted
    blocked = []
    judged: dict[str, dict[str, Any]] = {}
    for name, rows in {OVERALL: both, **{name: mask & both for name, mask in masks.items()}}.items():
        found = differences(candidate, champion, rows, task, alpha)
        if found["rows"] < settings.min_rows:
            found |= {"verdict": INSUFFICIENT, "skipped": f"fewer than {settings.min_rows} rows"}
        elif reason := shortfall(found, settings):
            found["verdict"] = "blocked"
            blocked.append(f"{name}: {reason}")
        else:
            found["verdict"] = "passed"
        judged[name] = found
    return {**judged.pop(OVERALL), "slices": judged}, blocked


def refused(
    candidate: Replayed, served: np.ndarray, logged: LoggedRequests, settings: ShadowParams
) -> tuple[dict[str, Any], list[str]]:
    """The served rows that the candidate would refuse, counted by reason, and whether that blocks."""
    rows = np.flatnonzero(served & ~candidate.accepted)
    share = _share(len(rows), logged.rows)
    found = {
        "rows": len(rows),
        "share": share,
        "reasons": dict(sorted(Counter(candidate.refusals.iloc[rows]).items())),
        "examples": _named(logged.keys, rows),
    }
    if share is not None and share > settings.max_rejected_share:
        return found, [
            f"the candidate would refuse {len(rows)} served rows (share {share} > "
            f"shadow.max_rejected_share {settings.max_rejected_share})"
        ]
    return found, []


def labelled(
    truth: pd.DataFrame,
    logged: LoggedRequests,
    models: tuple[ServingModel, ServingModel],
    answers: tuple[Replayed, Replayed],
    masks: dict[str, np.ndarray],
    evidence: PairedEvidence,
) -> tuple[dict[str, Any], list[str]]:
    """The paired comparison of candidate and champion on the replayed rows whose ground truth arrived
    (feedback joined on request_id and row), overall and per slice; blocks when the overall verdict falls
    short of `shadow.labelled`."""
    candidate, champion = models
    if candidate.labels != champion.labels:
        return {"verdict": "skipped", "skipped": "the two models know different class labels"}, []
    labels = logged.keys.merge(truth, on=KEY_COLUMNS, how="left")["label"]
    encoded = encoded_labels(labels, candidate)
    rows = ~np.isnan(encoded) & answers[0].accepted & answers[1].accepted
    if not rows.any():
        return {"verdict": "skipped", "skipped": "no feedback for the rows both models score", "rows": 0}, []
    y = encoded[rows] if candidate.task == "regression" else encoded[rows].astype("int64")
    reports = evidence(
        y,
        answers[0].scores[rows],
        answers[1].scores[rows],
        (candidate.threshold, champion.threshold),
        {OVERALL: np.ones(int(rows.sum()), dtype=bool), **{name: mask[rows] for name, mask in masks.items()}},
    )
    overall = reports.pop(OVERALL)
    blocked = (
        [] if overall["meets"] is not False else [f"labelled rows: the candidate is {overall['verdict']}"]
    )
    return {**overall, "slices": reports}, blocked


@dataclass(frozen=True)
class Shadow:
    """The report (deterministic: no times), why promotion is blocked, and each model's scoring time."""

    report: dict[str, Any]
    unfaithful: list[str]  # "model version: rows" for every model that did not reproduce its logged answers
    blocked: list[str]
    seconds: dict[str, float]


def shadow(
    logged: LoggedRequests,
    truth: pd.DataFrame,
    candidate: ServingModel,
    champion: ServingModel | None,
    no_champion: str,
    slice_columns: list[str],
    settings: ShadowParams,
    evidence: PairedEvidence,
    alpha: float,
) -> Shadow:
    """Replay the logged rows through the candidate and the champion (`no_champion` says why there is none);
    `alpha`: the level of the one-sided bound on disagreement (the gate's)."""
    models = {"candidate": candidate} | ({"champion": champion} if champion is not None else {})
    answers = {role: replay(model, logged, settings.batch_rows) for role, model in models.items()}
    faithful = {role: faithfulness(models[role], found, logged) for role, found in answers.items()}
    unfaithful = [
        f"{role} {found['version']}: {found['differ']} of its {found['rows']} logged rows differ "
        f"({', '.join(found['examples'])})"
        for role, found in faithful.items()
        if found["differ"]
    ]
    masks, absent = slice_masks(logged, slice_columns)
    report: dict[str, Any] = {
        "rows": {
            "logged": logged.rows,
            "replayed": min(len(found.refusals) for found in answers.values()),  # answered or refused
            "logged_by_other_models": int(
                (~np.isin(logged.versions, [m.version for m in models.values()])).sum()
            ),
            "window_rows": settings.window_rows or None,
            "lines": logged.lines,
            "skipped": {reason: logged.skipped.counts[reason] for reason in sorted(logged.skipped.counts)},
            "skipped_examples": logged.skipped.examples,
        },
        "task": candidate.task,
        "faithful": faithful,
        "slices_not_logged": absent,
    }
    served = answers["champion"].accepted if champion is not None else np.ones(logged.rows, dtype=bool)
    report["refused"], blocked = refused(answers["candidate"], served, logged, settings)
    if champion is None:
        report["champion"] = {"verdict": "skipped", "skipped": no_champion}
    else:
        pair = (answers["candidate"], answers["champion"])
        report["champion"], differ = comparison(*pair, masks, candidate.task, settings, alpha)
        report["labelled"], worse = labelled(truth, logged, (candidate, champion), pair, masks, evidence)
        blocked += differ + worse
    report["verdict"] = "failed" if unfaithful else "blocked" if blocked else "passed"
    report["blocked"] = blocked
    return Shadow(report, unfaithful, blocked, {role: found.seconds for role, found in answers.items()})
