"""Pillar 6, featurize: fit the feature pipeline on train only, save it, and write the feature matrices.

The fitted pipeline (src/pillars/training/features.py) is saved as an artifact so that serving transforms
requests exactly as training did. It is fitted on train, or on a systematic sample of `featurize.fit_rows`
train rows (every k-th row) when train is larger: medians, scales and category shares from a million rows
are as good as from all, and the fit stays within one process's memory at any size. Matrices are written
partition by partition, each transformed `chunk_rows` rows at a time, so large data never needs a whole
dense copy.
"""

from functools import partial

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer

from pillars.compute.cluster import engine_client
from pillars.compute.partitions import collect, open_table, row_group_writer
from pillars.core import data_handoffs, layout
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import write_pickle
from pillars.core.params import load_params
from pillars.training.features import FEATURE_DTYPE, build_pipeline, feature_sources


def every_kth(frame: pd.DataFrame, step: int, columns: list[str]) -> pd.DataFrame:
    """The rows of a partition whose position in the whole table is a multiple of `step`."""
    return frame.loc[frame.index % step == 0, columns]


def feature_matrix(
    frame: pd.DataFrame, pipeline: ColumnTransformer, target: str, chunk_rows: int
) -> pd.DataFrame:
    """A partition's feature matrix (float32) and target, transformed `chunk_rows` rows at a time."""
    names = [str(name) for name in pipeline.get_feature_names_out()]
    if target in names:
        raise PillarsError(f"featurize: a feature is named like the target {target!r}; rename the column")
    chunks = [
        np.asarray(pipeline.transform(frame.iloc[start : start + chunk_rows]), dtype=FEATURE_DTYPE)
        for start in range(0, len(frame), chunk_rows)
    ]
    matrix = np.concatenate(chunks) if chunks else np.zeros((0, len(names)), dtype=FEATURE_DTYPE)
    features = pd.DataFrame(matrix, columns=names)
    features[target] = frame[target].to_numpy()
    return features


def main() -> None:
    params = load_params()
    settings = params.featurize
    selection = data_handoffs.COLUMN_SELECTION.read()
    features, target = selection.features, selection.target
    with engine_client(params.compute) as client:
        train = open_table(layout.curated_split("train"), client)
        step = -(-train.rows // settings.fit_rows)  # ceil: at most fit_rows rows
        sample = pd.concat(collect(train, partial(every_kth, step=step, columns=list(features))))
        pipeline = build_pipeline(features, settings).fit(sample)
        for split in layout.FEATURIZED_SPLITS:
            table = train if split == "train" else open_table(layout.curated_split(split), client)
            transform = partial(feature_matrix, target=target, chunk_rows=settings.chunk_rows)
            with row_group_writer(layout.feature_split(split), params.compute.partition_rows) as matrix:
                for part in table.stream(transform, pipeline=pipeline):
                    matrix.write(part)
    sources = feature_sources(pipeline)
    write_pickle(layout.FEATURE_PIPELINE, pipeline)
    data_handoffs.FEATURE_MANIFEST.write(
        {
            "target": target,
            "inputs": features,
            "features": [{"name": name, "source": source} for name, source in sources.items()],
        },
    )
    print(
        f"featurize: {len(features)} columns -> {len(sources)} features -> {layout.FEATURES_DIR}, "
        f"{layout.FEATURE_PIPELINE} (fitted on {len(sample)} of {train.rows} train rows)"
    )


if __name__ == "__main__":
    run_cli(main)
