"""Pillar 11, package: the selected model and its feature pipeline become a BentoML model and a Bento.

The serving model (`pillars.serve.model.ServingModel`) bundles every rule a raw row goes through in
training. Before anything is shipped it must reproduce, on the raw test rows, exactly the feature matrix of
the fitted pipeline and the scores of the selected model; otherwise the stage stops. The BentoML model
carries labels and metadata (task, metrics, params, and the lineage as content hashes of this stage's
inputs); the Bento is built from `bentofile.yaml` and written to models/service.bento, byte-stable (see
`pillars.bento.build`), which DVC tracks, so other machines and CI can `bentoml import` it without
retraining.
"""

import json
import math
import pickle
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from pillars.bento.build import build_bento, runtime_python, save_model, write_archive
from pillars.bento.parity import raw_rows, uncertainty_mismatches
from pillars.core import data_handoffs, layout, model_handoffs
from pillars.core.errors import PillarsError, run_cli
from pillars.core.io import read_parquet, read_pickle
from pillars.core.lineage import lineage
from pillars.core.metrics import predict_scores
from pillars.core.params import Params, load_params
from pillars.core.rules import calendar_names, folded_aliases
from pillars.core.schema import FLAG_SUFFIX, DataSchema, canonical_name, is_lineage, load_checked
from pillars.serve.conformal import Conformal
from pillars.serve.estimators import load_model
from pillars.serve.model import InputField, ServingModel, compile_features, content_version

BENTOFILE = Path("bentofile.yaml")
RUNTIME_IMPORTS = ("pillars.serve.service",)  # bentoml build imports the bentofile's service by name
BUILD_CONTEXT = Path("src")
LINEAGE_INPUTS = (  # declared deps of package: the data and fitted objects the served model comes from
    layout.RAW_DIR,
    layout.CURATED_DIR,
    layout.FEATURE_PIPELINE,
    layout.SELECTED_MODEL,
)


class PackageInputs(NamedTuple):
    """What the serving model is made of, loaded by the edge."""

    pipeline_bytes: bytes  # the fitted feature pipeline, pickled
    model_bytes: bytes  # the selected model, pickled
    features: dict[str, str]  # curate's selected feature columns (column -> role)
    labels: dict[str, int]  # standardize's target encoding
    outlier_limits: dict[str, list]  # cleanse's resolved outlier limits
    selection: dict[str, Any]  # metrics/selection.json
    test_metrics: dict[str, float | None]  # assess's test metrics
    lineage: dict[str, str]  # content hashes of the inputs
    threshold: float  # binary: the selected model's decision threshold (train tuned it)
    conformal: Conformal  # assess's calibration of the selected model's intervals or class sets


def input_fields(
    schema: DataSchema, params: Params, features: dict[str, str], outlier_limits: dict[str, list]
) -> tuple[InputField, ...]:
    """The raw columns the model needs (its features, and the columns its outlier flags come from)."""
    fields = []
    for name, column in schema.columns.items():
        feature = canonical_name(name)
        flag = canonical_name(name + FLAG_SUFFIX)
        derived = set(calendar_names(feature, column.with_time)) if column.dtype == "datetime" else set()
        if name == params.dataset.target or is_lineage(name) or not {feature, flag, *derived} & set(features):
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
                expected=(column.min, column.max) if column.is_numeric else (None, None),
                impossible=(impossible.min, impossible.max) if impossible else (None, None),
                outlier=(rule.action, tuple(outlier_limits[name])) if rule else None,
                outlier_feature=flag if flag in features else None,
                factor=unit.factor if unit else None,
                aliases=folded_aliases(params.standardize.aliases.get(name, {}), params.standardize.case),
                date_format=column.format,
                with_time=column.with_time,
            )
        )
    covered = (
        {item.feature for item in fields}
        | {item.outlier_feature for item in fields}
        | {
            part
            for item in fields
            if item.dtype == "datetime"
            for part in calendar_names(item.feature, item.with_time)
        }
    )
    if missing := sorted(set(features) - covered):
        raise PillarsError(f"package: features {missing} do not come from a column of the schema")
    return tuple(fields)


def fitted_conformal(calibration: model_handoffs.ConformalCalibration) -> Conformal:
    """assess's calibration as the serving model holds it (an unbounded threshold is written as null)."""
    threshold = math.inf if calibration.threshold is None else calibration.threshold
    return Conformal(calibration.alpha, calibration.task, threshold, calibration.rows)


def single_threaded(model: Any) -> Any:
    """The model predicting on one thread: the service scales with workers, and for the small batches it
    sees, a thread pool costs more than it saves (one XGBoost row: 0.3 ms on one thread, 15 ms on two)."""
    if "n_jobs" in model.get_params():
        model.set_params(n_jobs=1)
    return model


def serving_model(params: Params, schema: DataSchema, inputs: PackageInputs) -> ServingModel:
    """The serving model of the selected model, with its lineage as metadata."""
    fields = input_fields(schema, params, inputs.features, inputs.outlier_limits)
    labels = tuple(sorted(inputs.labels, key=inputs.labels.__getitem__))
    metadata = {
        "dataset": params.dataset.name,
        "task": params.dataset.task,
        "target": params.dataset.target,
        "selection": inputs.selection,
        "threshold": inputs.threshold,
        "test_metrics": inputs.test_metrics,
        "params": params.model_dump(mode="json", by_alias=True, exclude={"sweeps"}),
        "lineage": inputs.lineage,
    }
    version = content_version(
        inputs.model_bytes,
        inputs.pipeline_bytes,
        json.dumps([field.__dict__ for field in fields], sort_keys=True, default=str).encode(),
        json.dumps(labels).encode(),
        repr(inputs.threshold).encode(),
        repr(inputs.conformal).encode(),
    )
    return ServingModel(
        version=version,
        task=params.dataset.task,
        labels=labels,
        fields=fields,
        placeholders=tuple(params.dataset.placeholders),
        case=params.standardize.case,
        features=compile_features(pickle.loads(inputs.pipeline_bytes)),
        model=single_threaded(load_model(inputs.model_bytes)),
        metadata=metadata,
        max_request_bytes=int(params.package.max_request_mb * 2**20),
        max_records=params.package.max_records,
        max_bulk_rows=params.package.max_bulk_rows,
        threshold=inputs.threshold,
        conformal=inputs.conformal,
    )


def check_parity(
    serving: ServingModel,
    pipeline: Any,
    features: dict[str, str],
    test: pd.DataFrame,
    raw: dict[str, np.ndarray],
    tolerance: float,
) -> dict[str, Any]:
    """Stop unless the serving path reproduces the pipeline's features and the model's test scores, and
    assess's conformal sets or intervals (interval ends within `tolerance`, relative: assess scored the
    feature files, whose float32 sums may differ in the last bit)."""
    expected = np.asarray(pipeline.transform(test[list(features)]), dtype=np.float32)
    typed = serving.typed(raw)
    compiled = serving.features.transform(serving.standardized(typed), len(test))
    if compiled.shape != expected.shape or not np.array_equal(compiled, expected, equal_nan=True):
        raise PillarsError(
            "package: the serving path does not reproduce the feature pipeline on the test split "
            f"(shape {compiled.shape} vs {expected.shape}); not shipping a model that would be scored differently"
        )
    offline = predict_scores(serving.model, expected, serving.task)
    scored = serving.score(typed)
    difference = float(np.max(np.abs(scored.scores - offline))) if len(offline) else 0.0
    if difference > 0:
        raise PillarsError(f"package: serving scores differ from offline scores by up to {difference}")
    assessed = read_parquet(layout.TEST_PREDICTIONS)
    served = pd.DataFrame(
        dict(zip(("lower", "upper"), scored.intervals, strict=True))
        if scored.intervals is not None
        else dict(zip(serving.labels, np.asarray(scored.sets).T, strict=True))
    )
    if mismatches := uncertainty_mismatches([served], assessed, list(serving.labels), tolerance):
        raise PillarsError(
            f"package: the served conformal intervals or sets differ from assess's on {mismatches} test rows "
            f"({layout.TEST_PREDICTIONS}); rerun assess (`dvc repro assess`)"
        )
    return {"rows": len(test), "max_difference": difference}


def main() -> None:
    params = load_params()
    schema = load_checked(params)
    features = data_handoffs.COLUMN_SELECTION.read().features
    selection = model_handoffs.SELECTION.read()
    inputs = PackageInputs(
        pipeline_bytes=layout.FEATURE_PIPELINE.read_bytes(),
        model_bytes=layout.SELECTED_MODEL.read_bytes(),
        features=features,
        labels=data_handoffs.TARGET_ENCODING.read().labels,
        outlier_limits=data_handoffs.CLEANSE_REPORT.read().outlier_limits,
        selection=selection.as_written(),
        test_metrics=model_handoffs.ASSESS_REPORT.read().test,
        lineage=lineage(LINEAGE_INPUTS),
        threshold=model_handoffs.TRAIN_REPORT.read().threshold(selection.model),
        conformal=fitted_conformal(model_handoffs.CONFORMAL.read()),
    )
    serving = serving_model(params, schema, inputs)
    test = read_parquet(layout.curated_split("test"))
    raw = raw_rows(read_parquet(layout.RAW_DATA), test, schema, params.dataset.placeholders)
    parity = check_parity(
        serving, read_pickle(layout.FEATURE_PIPELINE), features, test, raw, params.deploy.tolerance
    )
    model_tag = save_model(serving)
    bento_dir = build_bento(serving, model_tag, BENTOFILE, BUILD_CONTEXT)
    write_archive(bento_dir, model_tag, layout.SERVICE_ARCHIVE, runtime_python(BENTOFILE))
    print(
        f"package: {model_tag} (serving path = pipeline on {parity['rows']} test rows) -> Bento "
        f"{bento_dir.parent.name}:{bento_dir.name} -> {layout.SERVICE_ARCHIVE}"
    )


if __name__ == "__main__":
    run_cli(main)
