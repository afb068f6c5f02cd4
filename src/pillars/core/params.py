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

    name: str = Field(min_length=1)
    task: Literal["binary", "multiclass", "regression"]
    target: ColumnName
    positive_label: str | None = None
    schema_path: str = Field(alias="schema", min_length=1)
    placeholders: list[str] = []
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

    kind: Literal["file"]
    name: str = Field(min_length=1)
    path: str = Field(min_length=1)
    format: Literal["auto", "csv", "tsv", "parquet", "jsonl", "json"] = "auto"
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

    kind: Literal["sql"]
    name: str = Field(min_length=1)
    url: str = Field(min_length=1)
    query: str = Field(min_length=1)


class HttpSource(Section):
    """An HTTP(S) endpoint answering CSV or JSON (a list of records, or {records_key: [...]})."""

    kind: Literal["http"]
    name: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://")
    format: Literal["csv", "json"]
    records_key: str | None = None
    timeout_s: float = Field(default=30.0, gt=0)
    retries: int = Field(default=3, ge=0, le=10)
    backoff_s: float = Field(default=1.0, ge=0)
    token_env: str | None = None


Source = Annotated[FileSource | SqlSource | HttpSource, Field(discriminator="kind")]


class IngestParams(Section):
    """Where the raw data comes from; several sources are unioned with a `_source` column."""

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

    unexpected_columns: Literal["fail", "report"] = "report"
    # a non-finite number, or a missing value where the schema allows none: stop the run, or let cleanse
    # quarantine the row with the reason
    broken_values: Literal["fail", "quarantine"] = "fail"
    max_categories: int = Field(default=100, ge=1)
    examples: int = Field(default=5, ge=1, le=100)


class Bounds(Section):
    """Inclusive limits: a value must be at least `min` and/or at most `max` (a column's range, a threshold)."""

    min: float | None = None
    max: float | None = None

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

    min: float | None = None
    max: float | None = None
    iqr_k: float | None = Field(default=None, gt=0)
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

    exact_duplicates: bool = True
    impossible: dict[ColumnName, Bounds] = {}
    outliers: dict[ColumnName, OutlierRule] = {}


class UnitConversion(Section):
    """Multiply a numeric column by `factor` to express it in `unit`."""

    factor: float
    unit: str = Field(min_length=1)


class StandardizeParams(Section):
    """How category spellings and units are made canonical."""

    case: Literal["lower", "upper", "keep"] = "lower"
    aliases: dict[ColumnName, dict[str, str]] = {}
    units: dict[ColumnName, UnitConversion] = {}


class Split(Section):
    """How curate splits the rows: each split's share, and the method that assigns rows to splits.

    `method`: `hash` (a seeded hash of each row: append-stable, stratified in expectation), `stratified`
    (exact per-class counts, classification only) or `time` (rows ordered by the column `by`: the earliest
    to train, then valid, test and holdout). Left out or null: `time` when `by` names a column, else `hash`."""

    train: Share
    valid: Share
    test: Share
    holdout: Share = 0.0
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

    seed: int = Field(ge=0)
    split: Split
    drop: dict[ColumnName, str] = {}
    near_constant_share: Share = 0.995
    max_unique_share: Share = 0.9


class FeaturizeParams(Section):
    """How the feature pipeline imputes, encodes and scales."""

    numeric_impute: Literal["median", "mean"] = "median"
    scale_numeric: bool = True
    min_category_share: Annotated[float, Field(ge=0, lt=1)] = 0.001
    chunk_rows: int = Field(default=500_000, ge=1_000)
    fit_rows: int = Field(default=1_000_000, ge=1_000)


class SearchDimension(Section):
    """One hyperparameter's search range: float or int between low and high (optionally log), or choices."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[str | float | int | bool] | None = None

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

    n_trials: int = Field(ge=1)
    fixed: dict[str, str | float | int | bool | None] = {}
    space: dict[str, SearchDimension] = {}
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

    n_startup_trials: int = Field(default=5, ge=0)
    n_warmup_steps: int = Field(default=10, ge=0)
    round_interval: int = Field(default=10, ge=1)  # XGBoost reports to the pruner every this many rounds


FamilyName = str  # a model family: a module of pillars.training.families (train checks the names)


class SmallDataParams(Section):
    """Small data: when train + valid have at most `max_rows` rows (0: never), each trial is scored by
    k-fold cross-validation on train + valid, and the chosen configuration is refit on train + valid."""

    max_rows: int = Field(default=2000, ge=0)
    folds: int = Field(default=5, ge=2, le=20)


class Costs(Section):
    """What one wrong decision costs (any unit, the same for both)."""

    false_positive: float = Field(default=1.0, ge=0)
    false_negative: float = Field(default=1.0, ge=0)


class ThresholdParams(Section):
    """Binary: the decision threshold, tuned on the held-out rows for F1 or the expected cost (fixed: 0.5)."""

    objective: Literal["f1", "cost", "fixed"] = "f1"
    costs: Costs = Costs()


class EnsembleParams(Section):
    """The ensemble candidate: `size` greedy picks with replacement among the tuned candidates (0: none)."""

    size: int = Field(default=25, ge=0)


class FamilyCost(Section):
    """What a trial of one family costs on the data it was measured on (`make budget`): a fixed part, and a
    part per pruner step (`train.pruner.round_interval` boosting rounds, `warm_start_step` iterations, a
    fold). Seconds, measured once; the run itself only counts trials and steps."""

    trial_s: float = Field(ge=0)
    step_s: float = Field(ge=0)


class BudgetParams(Section):
    """The train stage's share of a time budget, as counted work: a trial counts its family's `trial_s` plus
    `step_s` per step it reported, and the studies stop proposing trials once their work reaches `seconds`.
    Counted, never timed, so a run takes about `seconds` on the machine it was measured on and gives the
    same models on any machine."""

    minutes: float = Field(gt=0)  # the whole `make run` it was sized for (for people; train reads seconds)
    seconds: float = Field(gt=0)
    costs: dict[FamilyName, FamilyCost]


ENSEMBLE = "ensemble"  # the ensemble candidate's name


class TrainParams(Section):
    """The Optuna studies: one per candidate family, seeded, pruned, resumable."""

    seed: int = Field(ge=0)
    n_jobs: Annotated[int, Field(ge=1)] | Literal["auto"]
    max_threads: int = Field(default=2, ge=1)
    metric: str
    candidates: list[FamilyName] = Field(min_length=1)
    drop_margin: float | None = Field(default=None, ge=0)
    budget: BudgetParams | None = None
    storage: str = Field(min_length=1)
    timeout_s: float | None = Field(default=None, gt=0)
    cv_folds: int = Field(default=3, ge=2)
    warm_start_step: int = Field(default=25, ge=1)
    patience: int = Field(default=3, ge=1)
    round_size: int = Field(default=1, ge=1)
    external_memory_rows: int | None = Field(default=5_000_000, ge=1)
    pruner: PrunerParams = PrunerParams()
    small_data: SmallDataParams = SmallDataParams()
    ensemble: EnsembleParams = EnsembleParams()
    threshold: ThresholdParams = ThresholdParams()
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

    max_drop: float = Field(ge=0)


class SliceCheck(Section):
    """Per-slice thresholds: every value of every listed column with enough rows must meet `limit`."""

    columns: list[ColumnName] = []
    metric: str
    limit: Bounds
    min_rows: int = Field(default=100, ge=1)


class ValidateModelParams(Section):
    """The gate before selection: absolute thresholds, the champion comparison and slice thresholds."""

    thresholds: dict[str, Bounds] = {}
    champion: ChampionCheck
    slices: SliceCheck


class SelectParams(Section):
    """How the top model is chosen among the candidates that passed validation."""

    tie_tolerance: float = Field(default=0.0, ge=0)
    tie_breaker: Literal["cost", "size", "order"] = "cost"


class AssessParams(Section):
    """Test-split reporting: calibration bins and permutation-importance repeats."""

    calibration_bins: int = Field(default=10, ge=2)
    importance_repeats: int = Field(default=3, ge=1)
    importance_rows: int = Field(default=10_000, ge=100)
    seed: int = Field(default=0, ge=0)


class PackageParams(Section):
    """The model service: limits that travel inside the Bento."""

    max_request_mb: float = Field(default=32, gt=0)  # larger request bodies get 413
    max_records: int = Field(default=1000, ge=1)  # more records in one /predict request get 413
    max_bulk_rows: int = Field(default=100_000, ge=1)  # more rows in one /predict_bulk request get 413


class LatencyBudget(Section):
    """Single-row request latency limits, in milliseconds, at concurrency 1."""

    p50_ms: float = Field(gt=0)
    p99_ms: float = Field(gt=0)


class DeployParams(Section):
    """The deployment check: the built Bento, served locally, must answer like the offline model."""

    ready_timeout_s: float = Field(default=60, gt=0)
    tolerance: float = Field(default=1e-6, ge=0)  # largest allowed probability difference to assess
    bulk_rows: int = Field(default=10_000, ge=1)  # rows per bulk request when sending the test split
    latency_requests: int = Field(default=300, ge=10)  # single-row requests timed at concurrency 1
    throughput_requests: int = Field(default=1000, ge=10)
    concurrency: int = Field(default=32, ge=1)
    min_throughput_rps: float = Field(default=50, gt=0)  # single-row requests/s at `concurrency`: fail below
    budget: LatencyBudget


class InferParams(Section):
    """Batch inference: which files to score, on how many threads."""

    inputs: str = Field(default="data/inference", min_length=1)  # every CSV/Parquet/JSONL file in it
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

    rows: int = Field(default=2000, ge=1)
    seed: int = 5
    concurrency: int = Field(default=8, ge=1)
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

    engine: Literal["local", "dask"] = "local"
    address: str | None = None
    workers: int = Field(default=2, ge=1)
    threads_per_worker: int = Field(default=1, ge=1)
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
    deploy: DeployParams
    infer: InferParams = InferParams()
    monitor: MonitorParams = MonitorParams()
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
            message = "unknown key (check its spelling and the README's params reference)"
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
