"""Pillar 6, featurize: fit the feature pipeline on train only, save it, and write the feature matrices.

The fitted pipeline (src/pillars/features.py) is saved as an artifact so that serving transforms requests
exactly as training did. Matrices are written in chunks, so large data never needs a whole dense copy.
"""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.compose import ColumnTransformer

from pillars.core import layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import atomic_path, read_json, read_parquet, write_json, write_pickle
from pillars.core.params import load_params
from pillars.training.features import FEATURE_DTYPE, build_pipeline, feature_sources


def transform_chunks(
    pipeline: ColumnTransformer, frame: pd.DataFrame, chunk_rows: int
) -> Iterator[np.ndarray]:
    """Transform `chunk_rows` rows at a time, so large data never needs a whole dense copy in memory."""
    for start in range(0, len(frame), chunk_rows):
        yield np.asarray(pipeline.transform(frame.iloc[start : start + chunk_rows]), dtype=FEATURE_DTYPE)


def write_matrix(
    path: Path, pipeline: ColumnTransformer, frame: pd.DataFrame, target: str, chunk_rows: int
) -> None:
    """Stream one split's feature matrix and target into a Parquet file, one row group per chunk."""
    names = [str(name) for name in pipeline.get_feature_names_out()]
    if target in names:
        raise PillarsError(f"featurize: a feature is named like the target {target!r}; rename the column")
    schema = pa.schema(
        [pa.field(name, pa.float32()) for name in names]
        + [pa.field(target, pa.from_numpy_dtype(frame[target].dtype))]
    )
    with atomic_path(path) as temporary, pq.ParquetWriter(temporary, schema, compression="zstd") as writer:
        for start, matrix in zip(
            range(0, len(frame), chunk_rows), transform_chunks(pipeline, frame, chunk_rows), strict=True
        ):
            columns = [pa.array(matrix[:, index]) for index in range(matrix.shape[1])]
            labels = pa.array(frame[target].iloc[start : start + chunk_rows].to_numpy())
            writer.write_table(pa.Table.from_arrays([*columns, labels], schema=schema))


def main() -> None:
    params = load_params()
    selection = read_json(layout.COLUMN_SELECTION)
    features, target = selection["features"], selection["target"]
    train = read_parquet(layout.curated_split("train"))
    pipeline = build_pipeline(features, params.featurize).fit(train[list(features)])
    for split in layout.FEATURIZED_SPLITS:
        frame = train if split == "train" else read_parquet(layout.curated_split(split))
        write_matrix(layout.feature_split(split), pipeline, frame, target, params.featurize.chunk_rows)
    sources = feature_sources(pipeline)
    write_pickle(layout.FEATURE_PIPELINE, pipeline)
    write_json(
        layout.FEATURE_MANIFEST,
        {
            "target": target,
            "inputs": features,
            "features": [{"name": name, "source": source} for name, source in sources.items()],
        },
    )
    print(
        f"featurize: {len(features)} columns -> {len(sources)} features -> {layout.FEATURES_DIR}, "
        f"{layout.FEATURE_PIPELINE}"
    )


if __name__ == "__main__":
    run_cli(main)
