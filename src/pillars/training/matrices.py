"""The feature files as train reads them: the matrices and encoded targets, and a fingerprint of their bytes
that names the studies (a changed matrix starts new ones)."""

import hashlib
import logging

import pyarrow.parquet as pq

from pillars.core import layout
from pillars.core.data_handoffs import FeatureManifest
from pillars.core.io import parquet_rows, read_parquet
from pillars.training.external import FeatureFile
from pillars.training.families.spec import TrainingData
from pillars.training.features import categorical_blocks

logger = logging.getLogger(__name__)
BLOCK_BYTES = 1 << 24


def load_training_data(
    manifest: FeatureManifest, task: str, external_memory_rows: int | None
) -> TrainingData:
    """The train and valid feature matrices with their encoded targets and categorical blocks; a train
    split of more than `external_memory_rows` rows stays on disk, for XGBoost's external memory."""
    target = manifest.target
    valid = read_parquet(layout.feature_split("valid"))
    columns = [name for name in valid.columns if name != target]
    train_path = layout.feature_split("train")
    rows = parquet_rows(train_path)
    if external_memory_rows is not None and rows > external_memory_rows:
        logger.info(
            "train: %d rows in train, more than train.external_memory_rows (%d): XGBoost's external memory",
            rows,
            external_memory_rows,
        )
        x_train = FeatureFile.of(train_path, target, columns)
        y_train = pq.read_table(train_path, columns=[target]).column(target).to_numpy()
    else:
        train = read_parquet(train_path)
        x_train, y_train = train[columns].to_numpy(), train[target].to_numpy()
    return TrainingData(
        x_train=x_train,
        y_train=y_train,
        x_valid=valid[columns].to_numpy(),
        y_valid=valid[target].to_numpy(),
        task=task,
        categorical=categorical_blocks(manifest, columns),
    )


def data_fingerprint() -> str:
    """A hash of the train and valid feature files' bytes, one after the other, read in blocks (train may
    be larger than memory)."""
    digest = hashlib.sha256()
    for split in ("train", "valid"):
        with layout.feature_split(split).open("rb") as file:
            while block := file.read(BLOCK_BYTES):
                digest.update(block)
    return digest.hexdigest()
