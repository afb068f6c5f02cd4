"""The data stages (1-6) and batch inference on a real `dask.distributed` local cluster (two worker processes,
started by each stage): partitions read, checked, cleansed, split, featurized and scored by the workers give
the local engine's bytes, file for file. The default data is cut into several files and partitions, so rows
cross partitions for duplicates, splits, fitted statistics, rejections and log lines."""

import hashlib
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pillars.core import layout
from tests.helpers import ROOT, run

pytestmark = pytest.mark.slow

STAGES = ("ingest", "validate_data", "cleanse", "standardize", "curate", "featurize", "infer")
PARTITION_ROWS = 4_000  # the 48,842 rows: 13 partitions
OUTPUTS = (
    layout.RAW_DIR,
    layout.DATA_VALIDATION_REPORT,
    layout.CLEAN_DIR,
    layout.QUARANTINE_DIR,
    layout.CLEANSE_REPORT,
    layout.STANDARD_DIR,
    layout.CURATED_DIR,
    layout.CURATION_REPORT,
    layout.INFERENCE_DIR,
    layout.FEATURES_DIR,
    layout.FEATURE_PIPELINE,
    layout.PREDICTIONS_DIR,
    layout.BATCH_LOG_DIR,
    layout.INFERENCE_REPORT,
)


def workspace(root: Path, engine: str, reproduced: Path) -> Path:
    """A directory with what stages 1-6 and infer read: params (this engine), schema, the source data cut
    into files of uneven size, the packaged model, and a batch to score with broken rows in a late partition."""
    root.mkdir()
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["compute"] |= {"engine": engine, "partition_rows": PARTITION_ROWS}
    params["ingest"]["sources"][0] |= {"path": "data/external/parts/part-*.parquet"}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    (root / "data").mkdir()
    shutil.copy(ROOT / "data/schema.yaml", root / "data/schema.yaml")
    source = pd.read_parquet(ROOT / "data/external/adult/adult.parquet")
    parts = root / "data/external/parts"
    parts.mkdir(parents=True)
    for number, (start, stop) in enumerate(
        [(0, 9_000), (9_000, 9_001), (9_001, 30_000), (30_000, len(source))]
    ):
        source.iloc[start:stop].to_parquet(parts / f"part-{number}.parquet", index=False)
    (root / "models").mkdir()
    shutil.copy(reproduced / layout.SERVICE_ARCHIVE, root / layout.SERVICE_ARCHIVE)
    batch = source.drop(columns="income").iloc[:9_000].astype("str")
    batch.loc[[5, 6_500, 8_999], "age"] = "not a number"
    (root / "data/inference").mkdir()
    batch.to_parquet(root / "data/inference/broken.parquet", index=False, row_group_size=PARTITION_ROWS)
    return root


def contents(root: Path) -> dict[str, str]:
    """Every output file's SHA-256, by path."""
    files = [path for output in OUTPUTS for path in sorted((root / output).rglob("*")) if path.is_file()]
    files += [root / output for output in OUTPUTS if (root / output).is_file()]
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in files
        if not path.name.startswith("part-")
    }


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory, reproduced: Path) -> dict[str, Path]:
    """A workspace per engine after stages 1-6 and infer."""
    roots = {}
    for engine in ("local", "dask"):
        roots[engine] = workspace(tmp_path_factory.mktemp(engine) / "work", engine, reproduced)
        for stage in STAGES:
            run([sys.executable, "-m", f"pillars.stages.{stage}"], roots[engine])
    return roots


def test_data_stages_and_inference_on_dask_give_the_local_bytes(engines: dict[str, Path]) -> None:
    local, dask = contents(engines["local"]), contents(engines["dask"])
    assert len(local) >= 18, sorted(local)
    assert dask == local
    cleanse = yaml.safe_load((engines["local"] / layout.CLEANSE_REPORT).read_text(encoding="utf-8"))
    assert cleanse["quarantined_by_reason"]["duplicate"] == 52  # duplicates found across files and partitions
    inference = yaml.safe_load((engines["local"] / layout.INFERENCE_REPORT).read_text(encoding="utf-8"))
    assert inference["files"]["broken.parquet"]["rejected"] == 3
    rejected = pd.read_parquet(engines["local"] / layout.PREDICTIONS_DIR / "broken.rejected.parquet")
    assert rejected["_row"].tolist() == [5, 6_500, 8_999]  # positions in the file, across partitions
    log = engines["local"] / layout.BATCH_LOG_DIR / "broken.jsonl"
    assert (
        len(log.read_text(encoding="utf-8").splitlines()) == 1
    )  # 8,997 rows: one line, whatever the partitions


@pytest.mark.parametrize(
    "split", [{"method": "stratified"}, {"method": "time", "by": "age"}], ids=["stratified", "time"]
)
def test_splits_that_look_at_every_row_give_the_local_bytes(engines: dict[str, Path], split: dict) -> None:
    for root in engines.values():
        params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
        params["curate"]["split"] |= split
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
        run([sys.executable, "-m", "pillars.stages.curate"], root)
    local, dask = contents(engines["local"]), contents(engines["dask"])
    assert dask == local
    report = yaml.safe_load((engines["local"] / layout.CURATION_REPORT).read_text(encoding="utf-8"))
    assert report["method"] == split["method"]


def test_train_in_external_memory_on_dask_gives_the_local_bytes(engines: dict[str, Path]) -> None:
    """Train larger than `train.external_memory_rows`: XGBoost reads the feature file's row groups into its
    external memory, in the trials' processes (the workers) and in the stage's, with the same result."""
    families = {"xgboost": {"n_trials": 4, "fixed": {"n_estimators": 60, "early_stopping_rounds": 10}}}
    for root in engines.values():
        params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
        params["train"] |= {
            "candidates": ["xgboost"],
            "external_memory_rows": 10_000,
            "round_size": 2,
            "storage": "sqlite:///studies.db",
        }
        params["train"]["families"]["xgboost"] |= families["xgboost"]
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
        run([sys.executable, "-m", "pillars.stages.train"], root)
    trained = {
        engine: {
            str(path.relative_to(root)): path.read_bytes()
            for output in (layout.CANDIDATES_DIR, layout.TRIALS_DIR)
            for path in sorted((root / output).rglob("*"))
            if path.is_file()
        }
        | {str(layout.TRAIN_REPORT): (root / layout.TRAIN_REPORT).read_bytes()}
        for engine, root in engines.items()
    }
    assert trained["dask"] == trained["local"]
    report = yaml.safe_load(trained["local"][str(layout.TRAIN_REPORT)])
    assert report["tuning"]["train_matrix"] == "external_memory"
    assert report["candidates"]["xgboost"]["trials"] == 4
    assert sorted(trained["local"]) == [
        "metrics/train.json",
        "metrics/train/best_params.json",
        "metrics/train/xgboost_trials.csv",
        "models/candidates/xgboost.pkl",
    ]
