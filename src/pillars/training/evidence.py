"""Evidence that one model's predictions beat, or are no worse than, another's on the same rows.

A gate that compares point values promotes a seed-only retrain by chance and refuses a real improvement by
chance. Here every comparison is paired (both models on the same rows) and carries its uncertainty:

- the difference of a metric (candidate - reference) with a percentile interval from a seeded paired
  bootstrap: each resample as row counts (how often each row was drawn), a block of resamples at a time, the
  same blocks for both models; the common metrics are computed for a whole block at once from what is
  prepared once per model (a sort, the per-row losses); any other metric of `core.metrics` falls back to
  one call per resample;
- the tests: DeLong's test for ROC AUC (the fast midrank algorithm of Sun & Xu 2014), McNemar's mid-p test
  for accuracy (whether it is better; whether it is worse than the margin: the bootstrap), the bootstrap for
  every other metric;
- Holm's step-down correction across slices, so that many slices do not make a verdict by chance.

Verdicts, with the gain (the difference oriented so that positive is better) and one-sided tests at
(1 - confidence) / 2, the tails of the interval: `better` when the gain is shown above `min_gain` (0, or a
gain a seed-only retrain does not reach: the tests are conditional on the two fitted models, and two seeds of
one model do differ a little, truly, on the population); `worse` when it is
shown below -margin (the non-inferiority margin: a loss within it is tolerated); `not worse` when neither is
shown; `insufficient` when the rows cannot say (too few, a class missing, the metric undefined): a verdict,
never an exception. `not worse` is the absence of evidence of a loss beyond the margin: the interval says
how much the rows could tell.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import stats

from pillars.core.metrics import BINARY_THRESHOLD, METRICS, Task, labels_from_scores, measure
from pillars.core.params import EvidenceCheck

BETTER, NOT_WORSE, WORSE, INSUFFICIENT = "better", "not worse", "worse", "insufficient"
RANK = {WORSE: 0, NOT_WORSE: 1, BETTER: 2}  # how far a verdict goes (insufficient: not judged)
BLOCK_CELLS = 1 << 22  # row counts drawn at a time (resamples x rows): 16 MiB of int32, kept in cache


def alpha(settings: EvidenceCheck) -> float:
    """The level of each one-sided test: a tail of the two-sided interval."""
    return (1 - settings.confidence) / 2


@dataclass(frozen=True)
class Comparison:
    """One paired comparison: the values, the difference with its interval, the test and the verdict."""

    metric: str
    rows: int
    verdict: str
    candidate: float | None = None
    reference: float | None = None
    difference: float | None = None  # candidate - reference, in the metric's units
    interval: tuple[float, float] | None = None  # the bootstrap interval of the difference
    test: str | None = None  # what decided `better`
    p_better: float | None = None  # one-sided: the gain is above min_gain (Holm-adjusted across slices)
    p_worse: float | None = None  # one-sided: the gain is below -margin (Holm-adjusted across slices)
    reason: str | None = None  # insufficient: why

    def report(self) -> dict[str, Any]:
        """The comparison as the gate's report shows it (numbers rounded; insufficient: why, under
        `skipped`, as every check that is not judged)."""
        if self.reason is not None:
            return {"verdict": self.verdict, "rows": self.rows, "skipped": self.reason}
        assert self.interval is not None
        return {
            "verdict": self.verdict,
            "rows": self.rows,
            "value": _round(self.candidate),
            "reference": _round(self.reference),
            "difference": _round(self.difference),
            "interval": [_round(end) for end in self.interval],
            "test": self.test,
            "p_better": _round(self.p_better),
            "p_worse": _round(self.p_worse),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def resample_counts(rows: int, settings: EvidenceCheck) -> Iterator[np.ndarray]:
    """The paired bootstrap, a block of resamples at a time: how often each row was drawn (block, rows).
    Seeded, and the same blocks score both models; int32 (a sample of 2^30 rows does not fit in memory)."""
    generator = np.random.default_rng(settings.seed)
    block = max(1, BLOCK_CELLS // rows)
    for start in range(0, settings.resamples, block):
        size = min(block, settings.resamples - start)
        drawn = generator.integers(0, rows, size=(size, rows)) + (np.arange(size) * rows)[:, None]
        yield np.bincount(drawn.ravel(), minlength=size * rows).reshape(size, rows).astype("int32")


# The metric of row counts (resamples, rows), per resample (NaN: undefined on the resample)
Resampled = Callable[[np.ndarray], np.ndarray]
# (truth, scores, threshold, task) -> the metric of row counts: what does not depend on the counts (a sort,
# the per-row losses) is done once, for every block of resamples
Weighted = Callable[[np.ndarray, np.ndarray, float, Task], Resampled]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def _mean_of(loss: Callable[[np.ndarray, np.ndarray, float, Task], np.ndarray]) -> Weighted:
    """A metric that is the mean of a per-row value."""

    def weighted(y: np.ndarray, scores: np.ndarray, threshold: float, task: Task) -> Resampled:
        values = loss(y, scores, threshold, task)
        return lambda counts: counts @ values / counts.sum(axis=1)

    return weighted


def _log_loss(y: np.ndarray, scores: np.ndarray, threshold: float, task: Task) -> np.ndarray:
    eps = np.finfo(scores.dtype).eps
    if task == "binary":
        p = np.clip(scores, eps, 1 - eps)
        return -(y * np.log(p) + (1 - y) * np.log(1 - p))
    p = scores / scores.sum(axis=1, keepdims=True)
    return -np.log(np.clip(p[np.arange(len(y)), y.astype("int64")], eps, 1 - eps))


def _rmse(y: np.ndarray, scores: np.ndarray, threshold: float, task: Task) -> Resampled:
    mse = _mean_of(lambda y, s, t, task: (s - y) ** 2)(y, scores, threshold, task)
    return lambda counts: np.sqrt(mse(counts))


def _confusion(name: str) -> Weighted:
    """Precision, recall or F1 of the positive class from the weighted confusion counts."""

    def weighted(y: np.ndarray, scores: np.ndarray, threshold: float, task: Task) -> Resampled:
        predicted = labels_from_scores(scores, task, threshold) == 1
        positive = y == 1
        cells = np.vstack([predicted & positive, predicted & ~positive, ~predicted & positive]).T

        def resampled(counts: np.ndarray) -> np.ndarray:
            tp, fp, fn = (counts @ cells.astype("float64")).T
            if name == "precision":
                return _ratio(tp, tp + fp)
            if name == "recall":
                return _ratio(tp, tp + fn)
            return _ratio(2 * tp, 2 * tp + fp + fn)

        return resampled

    return weighted


def _auc(positive: np.ndarray, scores: np.ndarray) -> Resampled:
    """The Mann-Whitney statistic: each drawn positive times the drawn negatives below it (ties count half),
    read from the negatives' running counts in score order: one sort serves every resample."""
    positives, negatives = np.flatnonzero(positive), np.flatnonzero(~positive)
    negatives = negatives[np.argsort(scores[negatives], kind="stable")]
    ranked = scores[negatives]
    below, not_above = (np.searchsorted(ranked, scores[positives], side) for side in ("left", "right"))

    def resampled(counts: np.ndarray) -> np.ndarray:
        running = np.zeros((len(counts), len(negatives) + 1), dtype=counts.dtype)
        np.cumsum(counts[:, negatives], axis=1, out=running[:, 1:])
        drawn = counts[:, positives]
        twice_wins = np.einsum("ij,ij->i", drawn, running[:, below] + running[:, not_above], dtype="int64")
        return _ratio(twice_wins / 2, drawn.sum(axis=1, dtype="int64") * running[:, -1])

    return resampled


def _roc_auc(y: np.ndarray, scores: np.ndarray, threshold: float, task: Task) -> Resampled:
    return _auc(y == 1, scores)


def _roc_auc_ovr(y: np.ndarray, scores: np.ndarray, threshold: float, task: Task) -> Resampled:
    """One-vs-rest ROC AUC, the mean over the classes (undefined when a class is absent)."""
    per_class = [_auc(y == code, scores[:, code]) for code in range(scores.shape[1])]
    return lambda counts: np.mean([auc(counts) for auc in per_class], axis=0)


def _average_precision(y: np.ndarray, scores: np.ndarray, threshold: float, task: Task) -> Resampled:
    """Precision at each distinct score from the highest down, weighted by the recall it adds."""
    order = np.argsort(-scores, kind="stable")
    ranked, positive = scores[order], (y == 1)[order]
    ties = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])  # where each group of tied scores starts

    def resampled(counts: np.ndarray) -> np.ndarray:
        drawn = counts[:, order]
        positives, negatives = (np.add.reduceat(drawn * mask, ties, axis=1) for mask in (positive, ~positive))
        found, false = np.cumsum(positives, axis=1), np.cumsum(negatives, axis=1)
        precision = found / np.maximum(found + false, 1e-300)
        return _ratio((positives * precision).sum(axis=1), positives.sum(axis=1))

    return resampled


def _r2(y: np.ndarray, scores: np.ndarray, threshold: float, task: Task) -> Resampled:
    columns = np.vstack([np.ones_like(y), y, y**2, (y - scores) ** 2]).T

    def resampled(counts: np.ndarray) -> np.ndarray:
        total, first, second, residual = (counts @ columns).T
        spread = second - first**2 / total
        return 1 - _ratio(residual, np.where(spread > 1e-12 * second, spread, 0))

    return resampled


VECTORIZED: dict[str, Weighted] = {  # the metrics computed for many resamples at once (others: one by one)
    "roc_auc": _roc_auc,
    "roc_auc_ovr": _roc_auc_ovr,
    "average_precision": _average_precision,
    "accuracy": _mean_of(lambda y, s, t, task: (labels_from_scores(s, task, t) == y).astype("float64")),
    "brier": _mean_of(lambda y, s, t, task: (s - y) ** 2),
    "log_loss": _mean_of(_log_loss),
    "mae": _mean_of(lambda y, s, t, task: np.abs(s - y)),
    "rmse": _rmse,
    "r2": _r2,
    "precision": _confusion("precision"),
    "recall": _confusion("recall"),
    "f1": _confusion("f1"),
}


def resampled(metric: str, task: Task, y: np.ndarray, scores: np.ndarray, threshold: float) -> Resampled:
    """The metric of these scores as a function of row counts: at once for the common metrics, otherwise one
    call of `core.metrics` per resample on the drawn rows."""
    y = np.asarray(y, dtype="float64") if task == "regression" else np.asarray(y)
    scores = np.asarray(scores, dtype="float64")
    if metric in VECTORIZED:
        return VECTORIZED[metric](y, scores, threshold, task)

    def one_by_one(counts: np.ndarray) -> np.ndarray:
        drawn = (np.repeat(np.arange(len(y)), row) for row in counts)
        values = (measure(metric, task, y[rows], scores[rows], threshold).value for rows in drawn)
        return np.array([np.nan if value is None else value for value in values])

    return one_by_one


def midranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1 with ties sharing their mean rank, per row (models, rows)."""
    return np.asarray(stats.rankdata(values, method="average", axis=-1), dtype="float64")


def delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's ROC AUCs of several models (rows of `scores`) on the same rows and their covariance, by the
    midrank algorithm of Sun & Xu (2014), O(n log n): the structural components come from the ranks of each
    score among the positives, the negatives and all rows."""
    positive = np.asarray(y) == 1
    m, n = int(positive.sum()), int((~positive).sum())
    x, z = scores[:, positive], scores[:, ~positive]
    all_ranks = midranks(np.concatenate([x, z], axis=1))
    v10 = (all_ranks[:, :m] - midranks(x)) / n  # per positive: the share of negatives it beats
    v01 = 1 - (all_ranks[:, m:] - midranks(z)) / m  # per negative: the share of positives that beat it
    aucs = v10.mean(axis=1)
    covariance = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, covariance


def mcnemar_mid_p(candidate_right: np.ndarray, reference_right: np.ndarray) -> float:
    """McNemar's exact mid-p, one-sided: that the candidate is right more often where the two disagree."""
    wins = int((candidate_right & ~reference_right).sum())
    disagreements = wins + int((~candidate_right & reference_right).sum())
    return float(stats.binom.sf(wins - 1, disagreements, 0.5) - stats.binom.pmf(wins, disagreements, 0.5) / 2)


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment (None: not tested, left out of the count)."""
    tested = [(p, i) for i, p in enumerate(p_values) if p is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(tested)):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[i] = running
    return adjusted


def verdict(p_better: float, p_worse: float, level: float) -> str:
    """`better` if the gain is shown above 0, `worse` if shown below -margin, at one-sided `level`."""
    if p_better < level:
        return BETTER
    return WORSE if p_worse < level else NOT_WORSE


def insufficient_reason(task: Task, y: np.ndarray, min_rows: int) -> str | None:
    """Why these rows cannot decide: too few, or (classification) one class only."""
    if len(y) < min_rows:
        return f"fewer than {min_rows} rows ({len(y)})"
    if task != "regression" and len(present := np.unique(y)) < 2:
        return f"one class only (every row is class {int(present[0])})"
    return None


def _normal_p(excess: float, se: float) -> float:
    """One-sided p that a normal estimate `excess` shows its mean above 0 (se 0: certain either way)."""
    if se <= 0:
        return 0.0 if excess > 0 else 1.0
    return float(stats.norm.sf(excess / se))


def compare(
    metric: str,
    task: Task,
    y: np.ndarray,
    candidate: np.ndarray,
    reference: np.ndarray,
    settings: EvidenceCheck,
    thresholds: tuple[float, float] = (BINARY_THRESHOLD, BINARY_THRESHOLD),
) -> Comparison:
    """The paired comparison of two models' scores on the same rows (labels: each model at its threshold)."""
    y, candidate, reference = np.asarray(y), np.asarray(candidate), np.asarray(reference)
    reason = insufficient_reason(task, y, settings.min_rows)
    values = [
        measure(metric, task, y, scores, t)
        for scores, t in ((candidate, thresholds[0]), (reference, thresholds[1]))
    ]
    if reason is None:
        reason = next(
            (f"{metric} undefined: {value.undefined}" for value in values if value.value is None), None
        )
    if reason is not None:
        return Comparison(metric, len(y), INSUFFICIENT, reason=reason)
    of_candidate, of_reference = (
        resampled(metric, task, y, scores, t)
        for scores, t in ((candidate, thresholds[0]), (reference, thresholds[1]))
    )
    differences = np.concatenate(
        [of_candidate(counts) - of_reference(counts) for counts in resample_counts(len(y), settings)]
    )
    defined = differences[np.isfinite(differences)]
    if len(defined) < (1 - alpha(settings)) * len(differences):
        return Comparison(
            metric,
            len(y),
            INSUFFICIENT,
            reason=f"{metric} undefined on {len(differences) - len(defined)} of {len(differences)} resamples",
        )
    sign = 1.0 if METRICS[task][metric].greater_is_better else -1.0
    difference = float(values[0].value) - float(values[1].value)  # type: ignore[arg-type]
    gains = sign * defined
    p_better = float(np.mean(gains <= settings.min_gain))
    p_worse = float(np.mean(gains >= -settings.margin))
    test = "bootstrap"
    if metric == "roc_auc" and task == "binary":
        _, covariance = delong(y, np.vstack([candidate, reference]).astype("float64"))
        se = float(np.sqrt(max(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1], 0.0)))
        gain = sign * difference
        p_better, p_worse = _normal_p(gain - settings.min_gain, se), _normal_p(-(gain + settings.margin), se)
        test = "delong"
    elif metric == "accuracy" and task != "regression":
        right = [
            labels_from_scores(s, task, t) == y
            for s, t in ((candidate, thresholds[0]), (reference, thresholds[1]))
        ]
        # McNemar tests a gain above 0: beyond min_gain, the bootstrap must show it too
        p_better = max(p_better if settings.min_gain > 0 else 0.0, mcnemar_mid_p(right[0], right[1]))
        test = "mcnemar mid-p (beyond min_gain, and not worse: bootstrap)"
    low, high = np.quantile(defined, [alpha(settings), 1 - alpha(settings)])
    return Comparison(
        metric,
        len(y),
        verdict(p_better, p_worse, alpha(settings)),
        values[0].value,
        values[1].value,
        difference,
        (float(low), float(high)),
        test,
        p_better,
        p_worse,
    )


def with_holm(comparisons: dict[str, Comparison], settings: EvidenceCheck) -> dict[str, Comparison]:
    """Comparisons of several slices, their p-values adjusted by Holm across the slices and the verdicts
    decided again on the adjusted values (insufficient ones are not counted)."""
    names = list(comparisons)
    better = holm([comparisons[name].p_better for name in names])
    worse = holm([comparisons[name].p_worse for name in names])
    adjusted = {}
    for name, p_b, p_w in zip(names, better, worse, strict=True):
        comparison = comparisons[name]
        if p_b is None or p_w is None:
            adjusted[name] = comparison
            continue
        adjusted[name] = replace(
            comparison, p_better=p_b, p_worse=p_w, verdict=verdict(p_b, p_w, alpha(settings))
        )
    return adjusted


def meets(comparison: Comparison, required: str) -> bool | None:
    """Whether a comparison reaches the required verdict (`any`: always; insufficient: not judged, None)."""
    if comparison.verdict == INSUFFICIENT:
        return None
    return required == "any" or RANK[comparison.verdict] >= RANK[required.replace("_", " ")]
