"""Pillar 11, package: the selected model and its feature pipeline become a BentoML model and a Bento.

The serving model (`pillars.serving.ServingModel`) bundles every rule a raw row goes through in training.
Before anything is shipped it must reproduce, on the raw test rows, exactly the feature matrix of the fitted
pipeline and the scores of the selected model; otherwise the stage stops. The BentoML model carries labels
and metadata (task, metrics, params, dvc.lock data hashes, git revision); the Bento is built from
`bentofile.yaml` and exported to models/service.bento, which DVC tracks, so other machines and CI can
`bentoml import` it without retraining.

The archive is not byte-stable: BentoML writes creation times into it, and the metadata carries the git
revision. Its model and Bento versions are content hashes, so they are stable.
"""

import contextlib
import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pillars import layout
from pillars.errors import PillarsError, run_cli
from pillars.io import read_json, read_parquet, read_pickle
from pillars.metrics import predict_scores
from pillars.params import Params, load_params
from pillars.rules import folded_aliases
from pillars.schema import DataSchema, canonical_name, is_lineage, load_checked, parse_types
from pillars.serving import (
    MODEL_NAME,
    SERVING_FILE,
    InputField,
    ServingModel,
    compile_features,
    content_version,
    dumps,
)
from pillars.stages.assess import lineage
from pillars.stages.cleanse import FLAG_SUFFIX, ROW_COLUMN

BENTOFILE = Path("bentofile.yaml")
BENTO_NAME = "pillars-service"  # as in bentofile.yaml
BUILD_CONTEXT = Path("src")


def input_fields(
    schema: DataSchema, params: Params, features: dict[str, str], outlier_limits: dict[str, list]
) -> tuple[InputField, ...]:
    """The raw columns the model needs (its features, and the columns its outlier flags come from)."""
    fields = []
    for name, column in schema.columns.items():
        feature = canonical_name(name)
        flag = canonical_name(name + FLAG_SUFFIX)
        if name == params.dataset.target or is_lineage(name) or not {feature, flag} & set(features):
            continue
        rule = params.cleanse.outliers.get(name)
        impossible = params.cleanse.impossible.get(name)
        unit = params.standardize.units.get(name)
        fields.append(
            InputField(
                name=name,
                feature=feature,
                dtype=column.dtype,
                nullable=column.nullable,
                categories=tuple(column.categories) if column.categories is not None else None,
                expected=(column.min, column.max),
                impossible=(impossible.min, impossible.max) if impossible else (None, None),
                outlier=(rule.action, tuple(outlier_limits[name])) if rule else None,
                outlier_feature=flag if flag in features else None,
                factor=unit.factor if unit else None,
                aliases=folded_aliases(params.standardize.aliases.get(name, {}), params.standardize.case),
            )
        )
    covered = {item.feature for item in fields} | {item.outlier_feature for item in fields}
    if missing := sorted(set(features) - covered):
        raise PillarsError(f"package: features {missing} do not come from a column of the schema")
    return tuple(fields)


def git_revision() -> str:
    """The commit the model was packaged at, marked dirty when tracked files had changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], capture_output=True).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def single_threaded(model: Any) -> Any:
    """The model predicting on one thread: the service scales with workers, and for the small batches it
    sees, a thread pool costs more than it saves (one XGBoost row: 0.3 ms on one thread, 15 ms on two)."""
    if "n_jobs" in model.get_params():
        model.set_params(n_jobs=1)
    return model


def serving_model(params: Params, schema: DataSchema) -> ServingModel:
    """The serving model of the selected model, with its lineage as metadata."""
    selection = read_json(layout.COLUMN_SELECTION)
    encoding = read_json(layout.TARGET_ENCODING)
    cleanse_report = read_json(layout.CLEANSE_REPORT)
    pipeline_bytes = layout.FEATURE_PIPELINE.read_bytes()
    model_bytes = layout.SELECTED_MODEL.read_bytes()
    fields = input_fields(schema, params, selection["features"], cleanse_report["outlier_limits"])
    labels = tuple(sorted(encoding["labels"], key=encoding["labels"].__getitem__))
    metadata = {
        "dataset": params.dataset.name,
        "task": params.dataset.task,
        "target": params.dataset.target,
        "selection": read_json(layout.SELECTION_REPORT),
        "test_metrics": read_json(layout.ASSESS_REPORT)["test"],
        "params": params.model_dump(mode="json", by_alias=True, exclude={"sweeps"}),
        "lineage": lineage(),
    }
    version = content_version(
        model_bytes,
        pipeline_bytes,
        json.dumps([field.__dict__ for field in fields], sort_keys=True, default=str).encode(),
        json.dumps(labels).encode(),
    )
    return ServingModel(
        version=version,
        task=params.dataset.task,
        labels=labels,
        fields=fields,
        placeholders=tuple(params.dataset.placeholders),
        case=params.standardize.case,
        features=compile_features(read_pickle(layout.FEATURE_PIPELINE)),
        model=single_threaded(read_pickle(layout.SELECTED_MODEL)),
        metadata=metadata,
        max_request_bytes=int(params.package.max_request_mb * 2**20),
    )


def raw_rows(split: pd.DataFrame, schema: DataSchema, params: Params) -> dict[str, np.ndarray]:
    """The raw input rows behind a curated split, typed as the service receives them."""
    raw = read_parquet(layout.RAW_DATA).iloc[split[ROW_COLUMN].to_numpy()].reset_index(drop=True)
    typed, _ = parse_types(raw, schema, params.dataset.placeholders)
    return {name: typed[name].to_numpy(dtype=object) for name in typed.columns}


def check_parity(serving: ServingModel, params: Params, schema: DataSchema) -> dict[str, Any]:
    """Stop unless the serving path reproduces the pipeline's features and the model's test scores."""
    selection = read_json(layout.COLUMN_SELECTION)
    curated = read_parquet(layout.curated_split("test"))
    pipeline = read_pickle(layout.FEATURE_PIPELINE)
    expected = np.asarray(pipeline.transform(curated[list(selection["features"])]), dtype=np.float32)
    typed = serving.typed(raw_rows(curated, schema, params))
    compiled = serving.features.transform(serving.standardized(typed), len(curated))
    if compiled.shape != expected.shape or not np.array_equal(compiled, expected, equal_nan=True):
        raise PillarsError(
            "package: the serving path does not reproduce the feature pipeline on the test split "
            f"(shape {compiled.shape} vs {expected.shape}); not shipping a model that would be scored differently"
        )
    offline = predict_scores(serving.model, expected, serving.task)
    online = serving.score(typed).scores
    difference = float(np.max(np.abs(online - offline))) if len(offline) else 0.0
    if difference > 0:
        raise PillarsError(f"package: serving scores differ from offline scores by up to {difference}")
    return {"rows": len(curated), "max_difference": difference}


def without_none(value: Any) -> Any:
    """Metadata without unset (None) entries, which BentoML's model metadata cannot hold."""
    if isinstance(value, dict):
        return {key: without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_none(item) for item in value if item is not None]
    return value


def save_model(serving: ServingModel) -> str:
    """Save the serving model into the BentoML model store (replacing an equal version); its tag."""
    import bentoml

    tag = f"{MODEL_NAME}:{serving.version}"
    with contextlib.suppress(bentoml.exceptions.NotFound):
        bentoml.models.delete(tag)
    labels = {
        "task": serving.task,
        "dataset": str(serving.metadata["dataset"]),
        "family": str(serving.metadata["selection"]["model"]),
    }
    with bentoml.models.create(tag, labels=labels, metadata=without_none(dict(serving.metadata))) as model:
        Path(model.path_of(SERVING_FILE)).write_bytes(dumps(serving))
    return tag


def build_and_export(serving: ServingModel, model_tag: str) -> str:
    """Build the Bento from bentofile.yaml around this model and export it to models/service.bento."""
    import bentoml

    os.environ["PILLARS_MODEL_TAG"] = model_tag  # the service module resolves its model from this
    sources = sorted((BUILD_CONTEXT / "pillars").glob("*.py"))
    version = content_version(
        serving.version.encode(), BENTOFILE.read_bytes(), *(path.read_bytes() for path in sources)
    )
    with contextlib.suppress(bentoml.exceptions.NotFound):
        bentoml.bentos.delete(f"{BENTO_NAME}:{version}")
    bento = bentoml.bentos.build_bentofile(
        str(BENTOFILE.resolve()),
        version=version,
        build_ctx=str(BUILD_CONTEXT.resolve()),
        labels={"model": model_tag},
    )
    layout.SERVICE_ARCHIVE.parent.mkdir(parents=True, exist_ok=True)
    temporary = layout.SERVICE_ARCHIVE.resolve().with_name(f".{layout.SERVICE_ARCHIVE.name}.tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    try:
        exported = Path(bentoml.bentos.export_bento(str(bento.tag), str(temporary / "service.bento")))
        exported.replace(layout.SERVICE_ARCHIVE)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return str(bento.tag)


def main() -> None:
    params = load_params()
    schema = load_checked(params)
    serving = serving_model(params, schema)
    parity = check_parity(serving, params, schema)
    serving = replace(serving, metadata={**serving.metadata, "git_revision": git_revision()})
    model_tag = save_model(serving)
    bento_tag = build_and_export(serving, model_tag)
    print(
        f"package: {model_tag} (serving path = pipeline on {parity['rows']} test rows) -> Bento {bento_tag} "
        f"-> {layout.SERVICE_ARCHIVE}"
    )


if __name__ == "__main__":
    run_cli(main)
