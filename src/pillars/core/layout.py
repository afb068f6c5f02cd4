"""Where each stage reads and writes: the same paths dvc.yaml declares as deps and outs."""

from pathlib import Path

RAW_DIR = Path("data/raw")
RAW_DATA = RAW_DIR / "data.parquet"
RAW_MANIFEST = RAW_DIR / "manifest.json"

DATA_VALIDATION_REPORT = Path("metrics/data_validation.json")

CLEAN_DIR = Path("data/clean")
CLEAN_DATA = CLEAN_DIR / "data.parquet"
QUARANTINE_DIR = Path("data/quarantine")
CLEANSE_QUARANTINE = QUARANTINE_DIR / "cleanse.parquet"
CLEANSE_REPORT = Path("metrics/cleanse.json")

STANDARD_DIR = Path("data/standard")
STANDARD_DATA = STANDARD_DIR / "data.parquet"
STANDARD_COLUMNS = STANDARD_DIR / "columns.json"
TARGET_ENCODING = STANDARD_DIR / "target_encoding.json"

CURATED_DIR = Path("data/curated")
COLUMN_SELECTION = CURATED_DIR / "selection.json"
CURATION_REPORT = Path("metrics/curation.json")
INFERENCE_DIR = Path("data/inference")  # batches to score; curate drops the holdout here
HOLDOUT_BATCH = INFERENCE_DIR / "holdout.parquet"

FEATURES_DIR = Path("data/features")
FEATURE_MANIFEST = FEATURES_DIR / "manifest.json"
FEATURE_PIPELINE = Path("models/feature_pipeline.pkl")

CANDIDATES_DIR = Path("models/candidates")
BASELINE_MODEL = Path(
    "models/baseline.pkl"
)  # the best family's library defaults: what tuning is measured against
TRAIN_REPORT = Path("metrics/train.json")
TRIALS_DIR = Path("metrics/train")
BEST_PARAMS = TRIALS_DIR / "best_params.json"
MODEL_VALIDATION_REPORT = Path("metrics/model_validation.json")
CHAMPION_DIR = Path("models/champion")
CHAMPION_ARCHIVE = CHAMPION_DIR / "service.bento"  # the Bento shadow replays logged traffic through
SELECTED_MODEL = Path("models/selected/model.pkl")
SELECTION_REPORT = Path("metrics/selection.json")
ASSESS_REPORT = Path("metrics/assess.json")
ASSESS_PLOTS_DIR = Path("metrics/assess")
ASSESS_DETAILS = ASSESS_PLOTS_DIR / "details.json"
MODEL_CARD = Path("metrics/model_card.md")
CONFORMAL = Path("metrics/conformal.json")  # assess: the selected model's conformal calibration, for package
TEST_PREDICTIONS = Path(
    "data/predictions/test.parquet"
)  # assess's offline scores, for the deploy parity check

SERVICE_ARCHIVE = Path("models/service.bento")
DEPLOY_REPORT = Path("metrics/deploy_check.json")  # verdicts and budget (tracked)
DEPLOY_TIMINGS = Path("build/deploy_check.json")  # the measurements behind them (untracked: they vary)
PREDICTIONS_DIR = Path("data/predictions/batches")
INFERENCE_REPORT = Path("metrics/inference.json")

MONITORING_DIR = Path("data/monitoring")
LOGS_DIR = MONITORING_DIR / "logs"  # prediction logs: the service's (collected) and batch inference's
BATCH_LOG_DIR = LOGS_DIR / "batch"
SERVICE_LOG_DIR = LOGS_DIR / "service"  # where `make serve` logs (git-ignored; `dvc add` a collection)
MONITORING_REPORT = Path("metrics/monitoring.json")
MONITORING_HTML = Path("metrics/monitoring.html")

SPLITS = ("train", "valid", "test", "holdout")
FEATURIZED_SPLITS = ("train", "valid", "test")


def curated_split(split: str) -> Path:
    """The curated rows of one split."""
    return CURATED_DIR / f"{split}.parquet"


def feature_split(split: str) -> Path:
    """The feature matrix (plus target) of one split."""
    return FEATURES_DIR / f"{split}.parquet"


def candidate_model(family: str) -> Path:
    """The tuned model of one candidate family."""
    return CANDIDATES_DIR / f"{family}.pkl"


def candidate_oof(family: str) -> Path:
    """Small-data tuning: the out-of-fold predictions of one family's chosen configuration on train + valid."""
    return CANDIDATES_DIR / f"{family}.oof.parquet"


def trials_table(family: str) -> Path:
    """The finished trials of one family's study (CSV, plotted by `dvc plots`)."""
    return TRIALS_DIR / f"{family}_trials.csv"
