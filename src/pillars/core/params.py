"""The one typed loader for params.yaml: every stage reads its section through `load_params`.

Unknown keys, wrong types and impossible values stop the run with a message that names the key,
e.g. ``params.yaml: curate.split.train: must be at most 1 (got 1.5)``.
"""

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pillars.core.errors import PillarsError

PARAMS_FILE = Path("params.yaml")

Share = Annotated[float, Field(ge=0, le=1)]
ColumnName = Annotated[str, Field(min_length=1)]


class Section(BaseModel):
    """Base for every params section: unknown keys are errors, values are checked strictly."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DatasetParams(Section):
    """What the data is: shared by every stage, so it is the one section not named after a stage."""

    name: str = Field(min_length=1)  # names the data in the schema and in the packaged model's metadata
    # what is predicted: one of two classes, one of several, or a number
    task: Literal["binary", "multiclass", "regression"]
    target: ColumnName  # the column to predict (its raw name, as in the schema)
    positive_label: str | None = None  # binary only, and required there: the target label encoded as 1
    # the committed data contract; `make schema` proposes one for a person to review
    schema_path: str = Field(alias="schema", min_length=1)
    placeholders: list[str] = []  # strings that mean "missing" (e.g. "?"): read as missing, never a category
    # columns that identify a row: a repeated key is quarantined and the split hashes them; []: the whole row
    key_columns: list[ColumnName] = []

    @model_validator(mode="after")
    def _positive_label_matches_task(self) -> "DatasetParams":
        if self.task == "binary" and self.positive_label is None:
            raise ValueError("positive_label: required when task is binary (the label encoded as 1)")
        if self.task != "binary" and self.positive_label is not None:
            raise ValueError(f"positive_label: only used when task is binary (task is {self.task})")
        return self


class FileSource(Section):
    """A local file or glob of files: CSV or TSV, Parquet, JSON lines or a JSON list of records. `sep`: the
    field separator of CSV/TSV (null: `,` for CSV, a tab for TSV), so ingest reads the file as init did."""

    kind: Literal["file"]  # file: a local file or a glob of files
    # unique among the sources; the value of the `_source` column for their rows
    name: str = Field(min_length=1)
    # a file or a glob (`**` recurses), relative to the repository root; matches read in sorted order
    path: str = Field(min_length=1)
    # auto: by each file's suffix; json: a list of records
    format: Literal["auto", "csv", "tsv", "parquet", "jsonl", "json"] = "auto"
    # CSV/TSV only, one character; null: `,` for CSV, a tab for TSV
    sep: str | None = Field(default=None, min_length=1, max_length=1)

    @model_validator(mode="after")
    def _sep_for_delimited_text(self) -> "FileSource":
        if self.sep is not None and self.format not in ("auto", "csv", "tsv"):
            raise ValueError(f"sep: only for CSV and TSV files (format is {self.format})")
        if self.sep in ("\n", "\r", '"'):
            raise ValueError(f"sep: {self.sep!r} cannot separate fields (a line break or the quote)")
        return self


class SqlSource(Section):
    """A SQL query against a SQLAlchemy URL (sqlite:///file.db, postgresql+psycopg://...)."""

    kind: Literal["sql"]  # sql: the rows of a query
    # unique among the sources; the value of the `_source` column for their rows
    name: str = Field(min_length=1)
    url: str = Field(min_length=1)  # SQLAlchemy URL of the database (logs hide its password)
    query: str = Field(min_length=1)  # the SELECT whose rows are ingested


class HttpSource(Section):
    """An HTTP(S) endpoint answering CSV or JSON (a list of records, or {records_key: [...]})."""

    kind: Literal["http"]  # http: one GET of an endpoint
    # unique among the sources; the value of the `_source` column for their rows
    name: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://")  # the endpoint (http:// or https://)
    # csv, or json: a list of records (or an object holding it under `records_key`)
    format: Literal["csv", "json"]
    # json: the key whose value is the list of records; null: the answer is the list
    records_key: str | None = None
    timeout_s: float = Field(default=30.0, gt=0)  # seconds allowed per attempt, to connect and to read
    # further attempts after a connection error, 429 or 5xx; 0: one attempt
    retries: int = Field(default=3, ge=0, le=10)
    # exponential backoff factor between attempts, in seconds; 0: retry at once
    backoff_s: float = Field(default=1.0, ge=0)
    # environment variable holding a bearer token (Authorization header); null: none
    token_env: str | None = None


Source = Annotated[FileSource | SqlSource | HttpSource, Field(discriminator="kind")]


class IngestParams(Section):
    """Where the raw data comes from; several sources are unioned with a `_source` column."""

    # unioned in this order; each a file, sql or http source by its `kind` (keys below)
    sources: list[Source] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> "IngestParams":
        names = [source.name for source in self.sources]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"sources: names must be unique, repeated: {duplicated}")
        return self


class ValidateDataParams(Section):
    """How strict the raw-data check is beyond the committed schema."""

    # a column the schema does not know: fail stops the run, report lists it
    unexpected_columns: Literal["fail", "report"] = "report"
    # a non-finite number, or a missing value where the schema allows none: stop the run, or let cleanse
    # quarantine the row with the reason
    broken_values: Literal["fail", "quarantine"] = "fail"
    # `make schema`: a text column with more distinct values gets no category set
    max_categories: int = Field(default=100, ge=1)
    examples: int = Field(default=5, ge=1, le=100)  # example values shown per finding


class Bounds(Section):
    """Inclusive limits: a value must be at least `min` and/or at most `max` (a column's range, a threshold)."""

    min: float | None = None  # inclusive lower limit; null: none
    max: float | None = None  # inclusive upper limit; null: none

    @model_validator(mode="after")
    def _ordered(self) -> "Bounds":
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self

    def holds(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class OutlierRule(Section):
    """Outlier limits for one column: fixed bounds, or Tukey fences `iqr_k` interquartile ranges out."""

    min: float | None = None  # fixed lower limit: smaller values are outliers; null: none
    max: float | None = None  # fixed upper limit: larger values are outliers; null: none
    # instead of min/max: fences this many interquartile ranges beyond the quartiles (1.5 is usual)
    iqr_k: float | None = Field(default=None, gt=0)
    # flag: a `<column>_outlier` column marks it; clip: the value moves to the limit; quarantine: the row goes
    action: Literal["flag", "clip", "quarantine"]

    @model_validator(mode="after")
    def _one_method(self) -> "OutlierRule":
        has_bounds = self.min is not None or self.max is not None
        if has_bounds == (self.iqr_k is not None):
            raise ValueError("give either min/max bounds or iqr_k, not both and not neither")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self


class CleanseParams(Section):
    """Which rows leave the data (into data/quarantine/) and which values are flagged or clipped."""

    exact_duplicates: bool = True  # quarantine repeated rows (the first is kept); false: keep them
    # column: limits outside which a value cannot be real (the row is quarantined)
    impossible: dict[ColumnName, Bounds] = {}
    # column: its outlier rule; its limits and actions apply in serving too
    outliers: dict[ColumnName, OutlierRule] = {}


class UnitConversion(Section):
    """Multiply a numeric column by `factor` to express it in `unit`."""

    factor: float  # every value is multiplied by it (0.001: dollars to thousand dollars)
    # the unit after conversion, recorded in columns.json (e.g. "thousand USD")
    unit: str = Field(min_length=1)


class StandardizeParams(Section):
    """How category spellings and units are made canonical."""

    # category spellings folded to lower or upper case, or kept as they are
    case: Literal["lower", "upper", "keep"] = "lower"
    # column: {spelling: canonical spelling}, applied after case folding (in serving too)
    aliases: dict[ColumnName, dict[str, str]] = {}
    units: dict[ColumnName, UnitConversion] = {}  # column: the conversion of its numbers to another unit


class Split(Section):
    """How curate splits the rows: each split's share, and the method that assigns rows to splits.

    `method`: `hash` (a seeded hash of each row: append-stable, stratified in expectation), `stratified`
    (exact per-class counts, classification only) or `time` (rows ordered by the column `by`: the earliest
    to train, then valid, test and holdout). Left out or null: `time` when `by` names a column, else `hash`."""

    train: Share  # share of the rows the models are fitted on
    valid: Share  # share for tuning and the gate (validate_model, select)
    test: Share  # share for assess's report and the deployment check
    holdout: Share = 0.0  # share kept back for batch inference and the monitoring demo; 0: none
    # hash, stratified or time (see curate.split); null or left out: time when `by` is set, else hash
    method: Literal["hash", "stratified", "time"] = "hash"
    by: ColumnName | None = None  # method time: the column that orders the rows (numbers or datetimes)

    @model_validator(mode="before")
    @classmethod
    def _by_means_time(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("method") is None:  # left out or null
            return {**data, "method": "hash" if data.get("by") is None else "time"}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> "Split":
        total = self.train + self.valid + self.test + self.holdout
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"train + valid + test + holdout must be 1 (got {total:g})")
        if min(self.train, self.valid, self.test) == 0:
            raise ValueError("train, valid and test must each be larger than 0")
        if self.method == "time" and self.by is None:
            raise ValueError(
                "method time needs `by`, the column whose values order the rows (numbers or datetimes)"
            )
        if self.method != "time" and self.by is not None:
            raise ValueError(
                f"`by` orders the rows for method time, but the method is {self.method}: "
                "remove `by` or the method"
            )
        return self

    def fractions(self) -> dict[str, float]:
        """Each split's share of the rows, in split order."""
        return {"train": self.train, "valid": self.valid, "test": self.test, "holdout": self.holdout}


class CurateParams(Section):
    """The split and the column selection; every dropped column needs a reason."""

    seed: int = Field(ge=0)  # salts the row hash (hash) or seeds the shuffle within classes (stratified)
    split: Split
    # column: the reason it is not a feature (every dropped column needs one)
    drop: dict[ColumnName, str] = {}
    # a column whose most frequent value covers this share of train is dropped
    near_constant_share: Share = 0.995
    # a text column with this share of distinct values in train is dropped (an id)
    max_unique_share: Share = 0.9


class FeaturizeParams(Section):
    """How the feature pipeline imputes, encodes and scales."""

    # what a missing number becomes: train's median or mean
    numeric_impute: Literal["median", "mean"] = "median"
    scale_numeric: bool = True  # standard scaling; trees are invariant to it, linear models need it
    # rarer categories (in train) share one `infrequent` column; 0: none do
    min_category_share: Annotated[float, Field(ge=0, lt=1)] = 0.001
    # rows transformed at a time: bounds memory on large data
    chunk_rows: int = Field(default=500_000, ge=1_000)
    # the pipeline is fitted on train, or on every k-th row of a larger train
    fit_rows: int = Field(default=1_000_000, ge=1_000)


class SearchDimension(Section):
    """One hyperparameter's search range: float or int between low and high (optionally log), or choices."""

    # float or int: a range from low to high; categorical: one of choices
    type: Literal["float", "int", "categorical"]
    low: float | None = None  # float, int: the smallest value tried (> 0 on a log scale)
    high: float | None = None  # float, int: the largest value tried
    log: bool = False  # float, int: sampled on a log scale (learning rates, regularization)
    choices: list[str | float | int | bool] | None = None  # categorical: the values tried

    @model_validator(mode="after")
    def _consistent(self) -> "SearchDimension":
        if self.type == "categorical":
            if not self.choices or self.low is not None or self.high is not None:
                raise ValueError("categorical needs choices (and no low/high)")
        elif self.low is None or self.high is None or self.low > self.high or self.choices is not None:
            raise ValueError(f"{self.type} needs low <= high (and no choices)")
        elif self.log and self.low <= 0:
            raise ValueError("log scale needs low > 0")
        return self


class FamilyParams(Section):
    """One candidate family: its trial budget, fixed estimator arguments, search space, and the point of
    the space tried first (the library's defaults), so tuning never ends below an untuned model on the
    metric it tunes."""

    # the most trials of this family's study (a budget or drop_margin may stop it sooner)
    n_trials: int = Field(ge=1)
    # estimator arguments that are not searched (e.g. n_estimators, early_stopping_rounds)
    fixed: dict[str, str | float | int | bool | None] = {}
    space: dict[str, SearchDimension] = {}  # hyperparameter: the range it is searched in
    # hyperparameter: its value in the first trial (the library's default; inside the space)
    start: dict[str, str | float | int | bool] = {}

    @model_validator(mode="after")
    def _start_is_in_the_space(self) -> "FamilyParams":
        for name, value in self.start.items():
            dimension = self.space.get(name)
            if dimension is None:
                raise ValueError(f"start.{name}: not a dimension of the search space {sorted(self.space)}")
            if dimension.type == "categorical":
                if value not in (dimension.choices or []):
                    raise ValueError(f"start.{name}: {value!r} is not one of the choices {dimension.choices}")
            elif (
                dimension.low is not None
                and dimension.high is not None
                and not (dimension.low <= float(value) <= dimension.high)
            ):  # numeric: both are set
                raise ValueError(f"start.{name}: {value!r} is outside [{dimension.low}, {dimension.high}]")
        return self


class PrunerParams(Section):
    """Optuna's MedianPruner: stop a trial whose intermediate score is below the median of earlier trials."""

    n_startup_trials: int = Field(default=5, ge=0)  # trials that run to the end before any is pruned
    n_warmup_steps: int = Field(default=10, ge=0)  # reports a trial makes before it may be pruned
    round_interval: int = Field(default=10, ge=1)  # XGBoost reports to the pruner every this many rounds


FamilyName = str  # a model family: a module of pillars.training.families (train checks the names)


class SmallDataParams(Section):
    """Small data: when train + valid have at most `max_rows` rows (0: never), each trial is scored by
    k-fold cross-validation on train + valid, and the chosen configuration is refit on train + valid."""

    max_rows: int = Field(default=2000, ge=0)  # train + valid rows up to which data is small; 0: never
    folds: int = Field(default=5, ge=2, le=20)  # k of the k-fold cross-validation


class Costs(Section):
    """What one wrong decision costs (any unit, the same for both)."""

    false_positive: float = Field(default=1.0, ge=0)  # deciding positive for a row that is negative
    false_negative: float = Field(default=1.0, ge=0)  # deciding negative for a row that is positive


class ThresholdParams(Section):
    """Binary: the decision threshold, tuned on the held-out rows for F1 or the expected cost (fixed: 0.5)."""

    # f1: the best F1; cost: the least expected cost per row (`costs`); fixed: 0.5
    objective: Literal["f1", "cost", "fixed"] = "f1"
    costs: Costs = Costs()


class EnsembleParams(Section):
    """The ensemble candidate: `size` greedy picks with replacement among the tuned candidates (0: none)."""

    # greedy picks with replacement (weights are multiples of 1/size); 0: no ensemble
    size: int = Field(default=25, ge=0)


class FamilyCost(Section):
    """What a trial of one family costs on the data it was measured on (`make budget`): a fixed part, and a
    part per pruner step (`train.pruner.round_interval` boosting rounds, `warm_start_step` iterations, a
    fold). Seconds, measured once; the run itself only counts trials and steps."""

    trial_s: float = Field(ge=0)  # a trial's fixed part, however many steps it runs, in seconds
    step_s: float = Field(ge=0)  # the part per step reported to the pruner, in seconds


class BudgetParams(Section):
    """The train stage's share of a time budget, as counted work: a trial counts its family's `trial_s` plus
    `step_s` per step it reported, and the studies stop proposing trials once their work reaches `seconds`.
    Counted, never timed, so a run takes about `seconds` on the machine it was measured on and gives the
    same models on any machine."""

    minutes: float = Field(gt=0)  # the whole `make run` it was sized for (for people; train reads seconds)
    seconds: float = Field(gt=0)  # train's share, in counted seconds: the studies stop proposing trials there
    costs: dict[FamilyName, FamilyCost]  # family: its measured costs (`make budget` writes them)


ENSEMBLE = "ensemble"  # the ensemble candidate's name


class TrainParams(Section):
    """The Optuna studies: one per candidate family, seeded, pruned, resumable."""

    seed: int = Field(ge=0)  # seeds every sampler and model
    # threads per fit, or auto: 1 below a million cells (train rows x features), else max_threads
    n_jobs: Annotated[int, Field(ge=1)] | Literal["auto"]
    max_threads: int = Field(default=2, ge=1)  # threads per fit under `n_jobs: auto` on larger data
    # the objective tuned on valid, and select's primary metric (binary: roc_auc, average_precision, log_loss;
    # multiclass: log_loss, roc_auc_ovr; regression: rmse, mae)
    metric: str
    # families tuned, in this order (select's `order` tie-breaker); each needs its `families` entry
    candidates: list[FamilyName] = Field(min_length=1)
    # a family whose first trial is worse than the best first trial by more than this share of it stops there;
    # null: never
    drop_margin: float | None = Field(default=None, ge=0)
    budget: BudgetParams | None = None
    # Optuna storage URL the studies persist in (a rerun resumes them); journal:///path: a file
    storage: str = Field(min_length=1)
    # seconds per study; null: no limit (a time limit breaks determinism)
    timeout_s: float | None = Field(default=None, gt=0)
    cv_folds: int = Field(default=3, ge=2)  # linear: folds of train whose running mean the pruner sees
    # hist_gradient_boosting: iterations between reports to the pruner
    warm_start_step: int = Field(default=25, ge=1)
    # hist_gradient_boosting: reports without improvement before it stops
    patience: int = Field(default=3, ge=1)
    # trials proposed together from those finished before them, run at once on Dask; results depend on it,
    # never on the worker count
    round_size: int = Field(default=1, ge=1)
    # a larger train split stays on disk: XGBoost trains on it a row group at a time (candidates must be
    # [xgboost]); null: never
    external_memory_rows: int | None = Field(default=5_000_000, ge=1)
    pruner: PrunerParams = PrunerParams()
    small_data: SmallDataParams = SmallDataParams()
    ensemble: EnsembleParams = EnsembleParams()
    threshold: ThresholdParams = ThresholdParams()
    # family: its trial budget, fixed arguments, search space and first trial
    families: dict[FamilyName, FamilyParams]

    @property
    def blends(self) -> bool:
        """Whether train fits the ensemble candidate (it needs two candidates to average)."""
        return self.ensemble.size > 0 and len(self.candidates) > 1

    @property
    def candidate_names(self) -> list[str]:
        """Every candidate model train writes: one per family, then the ensemble."""
        return [*self.candidates, ENSEMBLE] if self.blends else list(self.candidates)

    @model_validator(mode="after")
    def _candidates_have_settings(self) -> "TrainParams":
        missing = [name for name in self.candidates if name not in self.families]
        if missing:
            raise ValueError(f"candidates: {missing} have no entry under train.families")
        if len(set(self.candidates)) != len(self.candidates):
            raise ValueError("candidates: each family may be listed once")
        if self.budget is not None and (
            unmeasured := [name for name in self.candidates if name not in self.budget.costs]
        ):
            raise ValueError(f"budget.costs: no cost for {unmeasured}: run `make budget MINUTES=...` again")
        if self.external_memory_rows is not None and self.external_memory_rows < self.small_data.max_rows:
            raise ValueError(
                f"external_memory_rows ({self.external_memory_rows}) is below small_data.max_rows "
                f"({self.small_data.max_rows}): small data is cross-validated in memory"
            )
        return self


class ChampionCheck(Section):
    """How much worse than the production model (on the primary metric) a candidate may be."""

    # in train.metric's units, against models/champion/; no champion: not judged
    max_drop: float = Field(ge=0)


class SliceCheck(Section):
    """Per-slice thresholds: every value of every listed column with enough rows must meet `limit`."""

    columns: list[ColumnName] = []  # each value of each of these columns is a slice; []: no slice check
    metric: str  # the metric each slice is judged on
    limit: Bounds
    min_rows: int = Field(default=100, ge=1)  # smaller slices are reported, not judged


# the least verdict a paired comparison must reach; any: shown, not judged
Requirement = Literal["any", "not_worse", "better"]


class EvidenceRequirements(Section):
    """The verdict each paired comparison must reach for a candidate to pass (insufficient: not judged)."""

    champion: Requirement = "not_worse"  # against the champion (models/champion/), on the rows both scored
    # against the best family's library defaults (models/baseline.pkl): tuning must not cost anything
    defaults: Requirement = "not_worse"
    slices: Requirement = "not_worse"  # every slice against each of them, Holm-corrected across the slices


class EvidenceCheck(Section):
    """Paired comparisons with uncertainty: the candidate against the champion and the library defaults on the
    same rows, with a seeded paired bootstrap interval and DeLong's (ROC AUC) or McNemar's (accuracy) test."""

    metrics: list[str] = []  # the metrics compared; []: train.metric
    resamples: int = Field(default=2000, ge=10)  # paired bootstrap resamples of the rows
    seed: int = Field(default=0, ge=0)  # seeds the resamples
    # of each two-sided interval; each one-sided test is at (1 - confidence) / 2
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    # non-inferiority margin in the metric's units: `worse` only where a loss beyond it is shown
    margin: float = Field(default=0.005, ge=0)
    # `better` only where a gain beyond this is shown (metric units): above what a seed-only retrain reaches
    min_gain: float = Field(default=0.001, ge=0)
    min_rows: int = Field(default=100, ge=2)  # fewer rows (overall or in a slice): `insufficient`
    require: EvidenceRequirements = EvidenceRequirements()


class ValidateModelParams(Section):
    """The gate before selection: absolute thresholds, the champion comparison and slice thresholds."""

    # metric: the limits a candidate must meet on valid (small data: out of fold)
    thresholds: dict[str, Bounds] = {}
    champion: ChampionCheck
    slices: SliceCheck
    evidence: EvidenceCheck = EvidenceCheck()  # paired comparisons with intervals (pillars.training.evidence)


class SelectParams(Section):
    """How the top model is chosen among the candidates that passed validation."""

    # candidates this close to the best train.metric on valid are tied; 0: exact ties only
    tie_tolerance: float = Field(default=0.0, ge=0)
    # cost: the cheapest to serve (work per row, counted); size: the smallest model file; order: the first in
    # train.candidates
    tie_breaker: Literal["cost", "size", "order"] = "cost"


class AssessParams(Section):
    """Test-split reporting: calibration bins and permutation-importance repeats."""

    calibration_bins: int = Field(default=10, ge=2)  # bins of predicted probability in the calibration curve
    # shuffles per input column for permutation importance, on the test split
    importance_repeats: int = Field(default=3, ge=1)
    # permutation importance uses at most this many test rows (a seeded sample)
    importance_rows: int = Field(default=10_000, ge=100)
    seed: int = Field(default=0, ge=0)  # seeds that sample and the shuffles
    # conformal uncertainty: intervals (regression) and class sets that hold the truth on at least 1 - this
    # of new rows, calibrated on rows the model did not train on (valid, or out of fold)
    conformal_alpha: float = Field(default=0.1, gt=0, lt=1)


class PackageParams(Section):
    """The model service: limits that travel inside the Bento."""

    max_request_mb: float = Field(default=32, gt=0)  # larger request bodies get 413
    max_records: int = Field(default=1000, ge=1)  # more records in one /predict request get 413
    max_bulk_rows: int = Field(default=100_000, ge=1)  # more rows in one /predict_bulk request get 413


class ShadowParams(Section):
    """The shadow stage: logged production requests replayed through the candidate and the champion."""

    # the last this many logged rows (log order: file name, then line) are replayed; 0: every logged row
    window_rows: int = Field(default=0, ge=0)
    batch_rows: int = Field(default=10_000, ge=1)  # rows scored per call, per model
    # fewer rows both models score (overall or in a slice): insufficient, not judged
    min_rows: int = Field(default=100, ge=1)
    # classification: the share of rows both models decide alike; blocked when the rows show less (overall or in a
    # judged slice: the disagreement's one-sided bound at validate_model.evidence.confidence is over 1 - this)
    min_agreement: Share = 0.975
    # regression: the 95th percentile of |candidate - champion| above this blocks (target units); null: reported
    max_difference: float | None = Field(default=None, gt=0)
    # rows the champion served that the candidate would refuse, as a share of the replayed rows; more blocks
    max_rejected_share: Share = 0.0
    # labelled logged rows: the verdict the candidate must reach against the champion on train.metric (paired,
    # as the gate compares); any: reported only
    labelled: Requirement = "not_worse"


class LatencyBudget(Section):
    """Single-row request latency limits, in milliseconds, at concurrency 1."""

    p50_ms: float = Field(gt=0)  # fail when the median single-row latency is above this
    p99_ms: float = Field(gt=0)  # fail when the 99th-percentile single-row latency is above this


class DeployParams(Section):
    """The deployment check: the built Bento, served locally, must answer like the offline model."""

    # seconds allowed until the served model's /readyz answers 200
    ready_timeout_s: float = Field(default=60, gt=0)
    tolerance: float = Field(default=1e-6, ge=0)  # largest allowed probability difference to assess
    bulk_rows: int = Field(default=10_000, ge=1)  # rows per bulk request when sending the test split
    latency_requests: int = Field(default=300, ge=10)  # single-row requests timed at concurrency 1
    # single-row requests sent with `concurrency` in flight
    throughput_requests: int = Field(default=1000, ge=10)
    concurrency: int = Field(default=32, ge=1)  # requests in flight in the throughput check
    min_throughput_rps: float = Field(default=50, gt=0)  # single-row requests/s at `concurrency`: fail below
    budget: LatencyBudget


class InferParams(Section):
    """Batch inference: which files to score, on how many threads."""

    inputs: str = Field(default="data/inference", min_length=1)  # every CSV/Parquet/JSONL file in it
    # auto: by each file's suffix; else every file is read as this format
    format: Literal["auto", "csv", "parquet", "jsonl"] = "auto"
    threads: int = Field(default=1, ge=1)  # the model predicts on these (each native thread pool pinned)


class DriftLimits(Section):
    """When a column has drifted: a significant test and an effect size over its threshold."""

    p_value: float = Field(default=0.01, gt=0, lt=1)  # KS (numeric) / chi-square (categorical)
    psi: float = Field(default=0.2, gt=0)  # population stability index, both kinds
    wasserstein: float = Field(default=0.1, gt=0)  # numeric: in reference standard deviations
    jensen_shannon: float = Field(default=0.1, gt=0, le=1)  # categorical: base-2 distance
    max_drifted_features: int = Field(default=0, ge=0)  # more drifted input features than this: retrain


class QualityLimits(Section):
    """Production data quality against the committed schema: over a limit is an alert."""

    max_missing_increase: Share = 0.05  # missing share minus the reference's
    max_unseen_share: Share = 0.01  # categories the schema does not know
    max_out_of_range_share: Share = 0.01  # values outside the schema's range
    max_skipped_share: Share = 0.01  # log rows skipped (corrupt, other model version, schema change)


class PerformanceLimits(Section):
    """Model performance on logged predictions whose labels arrived."""

    max_drop: float = Field(default=0.02, ge=0)  # train.metric, worse than assess's test value by more
    min_labels: int = Field(default=200, ge=1)  # fewer labels (overall or in a window): not measured


class ReplayParams(Section):
    """`make monitor-demo`: traffic replayed through a running service, as drawn and shifted."""

    rows: int = Field(default=2000, ge=1)  # holdout rows sent in each of the two replays (drawn, shifted)
    seed: int = 5  # seeds which rows are drawn
    concurrency: int = Field(default=8, ge=1)  # requests in flight while replaying
    shift: dict[ColumnName, float] = {}  # numeric column: amount added to every value


class MonitorParams(Section):
    """The monitor stage: logged production data vs the training reference."""

    logs: str = Field(default="data/monitoring/logs", min_length=1)  # every *.jsonl file under it
    feedback: str = Field(default="data/monitoring/feedback", min_length=1)  # labels keyed by request_id
    min_rows: int = Field(default=500, ge=1)  # fewer monitored rows: no decision yet ("wait")
    window_rows: int = Field(default=1000, ge=1)  # rows per window of the performance-over-time view
    bins: int = Field(default=10, ge=2)  # quantile bins of the reference for numeric PSI
    drift: DriftLimits = DriftLimits()
    quality: QualityLimits = QualityLimits()
    performance: PerformanceLimits = PerformanceLimits()
    replay: ReplayParams = ReplayParams()


class ComputeParams(Section):
    """Where the work runs: this process (`local`), or a Dask cluster (`dask`): the scheduler at `address`,
    or (no address) a local cluster of `workers` processes with `threads_per_worker` threads each.
    `partition_rows`: rows per row group of every data file, which are the partitions on Dask."""

    # local: this process; dask: a Dask cluster (train's trials run on its workers)
    engine: Literal["local", "dask"] = "local"
    # dask: the scheduler (tcp://host:8786), reaching train.storage; null: a local cluster
    address: str | None = None
    workers: int = Field(default=2, ge=1)  # dask without address: worker processes of the local cluster
    threads_per_worker: int = Field(default=1, ge=1)  # dask without address: tasks at a time per worker
    # rows per row group of every data file, and per partition on Dask
    partition_rows: int = Field(default=500_000, ge=1)


class Params(Section):
    """The whole params.yaml: one section per stage, plus the shared `dataset` and `compute` sections."""

    dataset: DatasetParams
    compute: ComputeParams = ComputeParams()
    ingest: IngestParams
    validate_data: ValidateDataParams
    cleanse: CleanseParams
    standardize: StandardizeParams
    curate: CurateParams
    featurize: FeaturizeParams
    train: TrainParams
    validate_model: ValidateModelParams
    select: SelectParams
    assess: AssessParams
    package: PackageParams = PackageParams()
    shadow: ShadowParams = ShadowParams()
    deploy: DeployParams
    infer: InferParams = InferParams()
    monitor: MonitorParams = MonitorParams()
    # `make sweep`: one named DVC experiment per entry, changing only the params it lists (dotted keys of any
    # section, each with its value in the experiment)
    sweeps: dict[str, dict[str, object]] = {}

    @model_validator(mode="after")
    def _metrics_fit_the_task(self) -> "Params":
        from pillars.core.metrics import METRICS, OBJECTIVES

        task = self.dataset.task
        objectives = OBJECTIVES[task]
        if self.train.metric not in objectives:
            raise ValueError(
                f"train.metric: {self.train.metric!r} is not a {task} objective (one of {objectives})"
            )
        named = {
            "validate_model.slices.metric": [self.validate_model.slices.metric],
            "validate_model.thresholds": list(self.validate_model.thresholds),
            "validate_model.evidence.metrics": list(self.validate_model.evidence.metrics),
        }
        for key, names in named.items():
            for name in names:
                if name not in METRICS[task]:
                    raise ValueError(
                        f"{key}: {name!r} is not a {task} metric (one of {sorted(METRICS[task])})"
                    )
        return self

    @model_validator(mode="after")
    def _split_method_fits(self) -> "Params":
        if self.curate.split.method == "stratified" and self.dataset.task == "regression":
            raise ValueError(
                "curate.split.method: stratified needs a classification task (dataset.task is regression); "
                "use hash or time"
            )
        return self

    def column_references(self) -> dict[str, list[str]]:
        """Every params key that names a data column, so the loader can check it against the schema."""
        return {
            "dataset.target": [self.dataset.target],
            "dataset.key_columns": list(self.dataset.key_columns),
            "cleanse.impossible": list(self.cleanse.impossible),
            "cleanse.outliers": list(self.cleanse.outliers),
            "standardize.aliases": list(self.standardize.aliases),
            "standardize.units": list(self.standardize.units),
            "curate.drop": list(self.curate.drop),
            "curate.split.by": [self.curate.split.by] if self.curate.split.by is not None else [],
            "validate_model.slices.columns": list(self.validate_model.slices.columns),
            "monitor.replay.shift": list(self.monitor.replay.shift),
        }


def _format_location(location: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in location:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in {"file", "sql", "http"} and parts and parts[-1].endswith("]"):
            continue  # pydantic names the union member it tried; the user only needs the list position
        else:
            parts.append(f".{item}" if parts else str(item))
    return "".join(parts)


def _describe(error: ValidationError, source: Path) -> str:
    lines = []
    for item in error.errors():
        where = _format_location(item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check its spelling against docs/params.md)"
        elif "input" in item and item["type"] != "missing" and not isinstance(item["input"], dict):
            message = f"{message} (got {item['input']!r})"
        lines.append(f"{source}: {where}: {message}" if where else f"{source}: {message}")
    return "\n".join(lines)


def parse_params(raw: object, source: Path = PARAMS_FILE) -> Params:
    """Check a parsed params mapping; raise PillarsError naming every offending key."""
    if not isinstance(raw, dict):
        raise PillarsError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise PillarsError(_describe(error, source)) from None


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Read and check params.yaml."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise PillarsError(f"{path}: not found; run from the repository root") from error
    except yaml.YAMLError as error:
        raise PillarsError(f"{path}: not valid YAML: {error}") from error
    return parse_params(raw, path)
