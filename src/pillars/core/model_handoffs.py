"""The hand-offs of the model stages (train, validate_model, select, assess, deploy, monitor) to the stages
after them, the PR report and `make run`'s summary."""

from typing import Any, Literal

from pydantic import ConfigDict, Field, RootModel, model_validator

from pillars.core import layout
from pillars.core.handoffs import Contract, Handoff
from pillars.core.metrics import BINARY_THRESHOLD

Metrics = dict[str, float | None]  # metric name -> value (None where undefined, the reason beside it)


class Threshold(Contract):
    objective: str
    value: float
    valid_value: float | None = None


class CandidateSummary(Contract):
    best_value: float | None = None
    threshold: Threshold | None = None  # binary only
    trials: int | None = None  # tuned families
    pruned: int | None = None
    best_is_defaults: bool | None = None  # tuned families: the best trial is the start point, the defaults
    weights: dict[str, float] | None = None  # the ensemble: member -> weight


class Baseline(Contract):
    family: str


class TuningSummary(Contract):
    method: Literal["holdout", "cv"]
    baseline: Baseline
    rows: int | dict[str, int]  # cv: the pooled rows; holdout: per split
    folds: int | None = None  # cv
    max_rows: int | None = None  # cv


class TrainReport(Contract):
    candidates: dict[str, CandidateSummary]
    tuning: TuningSummary

    def threshold(self, candidate: str) -> float:
        """A binary candidate's decision threshold, tuned by train; 0.5 where none was."""
        summary = self.candidates.get(candidate)
        return BINARY_THRESHOLD if summary is None or summary.threshold is None else summary.threshold.value


class BestParams(RootModel[dict[str, dict[str, Any]]]):
    """Each family's tuned hyperparameters."""

    model_config = ConfigDict(frozen=True)


# validate_model -> select, assess, the PR report, make run's summary
PAIRED = "vs_"  # the checks that pair the candidate with a reference: vs_<reference>:[slice:<slice>:]<metric>


class PairedCheck(Contract):
    """A paired comparison among a candidate's checks: the verdict, and (when judged) the difference of the
    metric (candidate - reference) with its bootstrap interval."""

    verdict: Literal["better", "not worse", "worse", "insufficient", "skipped"]
    passed: bool | None  # null: not judged (skipped, insufficient)
    rows: int | None = None  # absent when skipped
    value: float | None = None  # the candidate's metric on the compared rows
    reference: float | None = None  # the reference's
    difference: float | None = None
    interval: tuple[float, float] | None = None
    required: str | None = None  # the verdict it had to reach
    skipped: str | None = None  # why it was not judged


class Verdict(Contract):
    passed: bool
    checks: dict[str, Any]
    undefined: dict[str, str] = Field(default_factory=dict)  # metric -> why it has no value
    valid: Metrics | None = None  # holdout tuning
    out_of_fold: Metrics | None = None  # small-data (cv) tuning

    @model_validator(mode="after")
    def _paired_checks_hold_their_keys(self) -> "Verdict":
        self.comparisons()
        return self

    def measured_on(self, rows: Literal["valid", "out_of_fold"]) -> Metrics:
        """The metrics where the candidate was judged (`ModelValidation.evaluated_on`)."""
        return (self.valid if rows == "valid" else self.out_of_fold) or {}

    def comparisons(self) -> dict[str, PairedCheck]:
        """The paired comparisons (`vs_...` checks), typed."""
        return {
            name: PairedCheck.model_validate(check)
            for name, check in self.checks.items()
            if name.startswith(PAIRED)
        }


class ModelValidation(Contract):
    metric: str
    eligible: list[str]
    candidates: dict[str, Verdict]
    evaluated_on: Literal["valid", "out_of_fold"] = "valid"


# select -> package, assess, the PR report, make run's summary, make sweep
class Selection(Contract):
    model: str
    metric: str
    reason: str
    eligible: int
    not_eligible: list[str]
    evaluated_on: Literal["valid", "out_of_fold"] = "valid"


# assess -> package, make run's summary
class AssessReport(Contract):
    model: str
    test: Metrics
    baseline: dict[str, Any]  # family and the primary metric's value
    conformal: dict[str, Any] | None = None  # alpha, coverage on test, mean width or set size


# assess -> package: the selected model's conformal calibration (pillars.serve.conformal)
class ConformalCalibration(Contract):
    alpha: float
    task: str
    threshold: float | None  # None: too few held-out rows for alpha, so unbounded intervals and whole sets
    rows: int
    evaluated_on: Literal["valid", "out_of_fold"]


# deploy, monitor -> make run's summary
class DeployReport(Contract):
    passed: bool
    checks: dict[str, bool]
    bento: str


class Decision(Contract):
    action: str
    reasons: list[str]


class MonitoringReport(Contract):
    decision: Decision


TRAIN_REPORT = Handoff(layout.TRAIN_REPORT, TrainReport)
BEST_PARAMS = Handoff(layout.BEST_PARAMS, BestParams)
MODEL_VALIDATION = Handoff(layout.MODEL_VALIDATION_REPORT, ModelValidation)
SELECTION = Handoff(layout.SELECTION_REPORT, Selection)
ASSESS_REPORT = Handoff(layout.ASSESS_REPORT, AssessReport)
CONFORMAL = Handoff(layout.CONFORMAL, ConformalCalibration)
DEPLOY_REPORT = Handoff(layout.DEPLOY_REPORT, DeployReport)
MONITORING_REPORT = Handoff(layout.MONITORING_REPORT, MonitoringReport)
HANDOFFS = (
    TRAIN_REPORT,
    BEST_PARAMS,
    MODEL_VALIDATION,
    SELECTION,
    ASSESS_REPORT,
    CONFORMAL,
    DEPLOY_REPORT,
    MONITORING_REPORT,
)
