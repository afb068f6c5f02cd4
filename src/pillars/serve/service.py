"""The model service (pillar 11): the packaged model behind HTTP, built into a Bento from bentofile.yaml.

- `POST /predict` takes `{"records": [...]}`, one object per row keyed by the raw column names of the
  committed schema. The record type is generated from the schema inside the packaged model, so types
  (strictly: no `true` or `"39"` for a number), nullability and impossible-value limits are checked before
  any row reaches the model. Concurrent requests are batched together.
- `POST /predict_bulk` takes `{"columns": {name: [values...]}}`: many rows in one call, column by column, so
  no per-row objects are built.
- Every answer carries its conformal uncertainty (`pillars.serve.conformal`, calibrated by assess): an
  `interval` per regression prediction, a `set` of class labels per classification (bulk: `intervals` with
  `lower` and `upper`, `sets` as one column of booleans per label), holding the truth on at least
  1 - `assess.conformal_alpha` of new rows.
- Every request passes the gate first (`pillars.serve.gate`): JSON only, a body and row limit (`package`
  params), strict JSON without repeated keys, and every row checked before batching, so a bad request is a
  4xx naming the record, the field and the reason, alone: it never fails the requests batched with it.
  When `PILLARS_API_TOKEN` is set, every path but the health checks, `/metrics` and the OpenAPI document
  needs `Authorization: Bearer <token>`.
- Every answer carries a `request_id` (per record; per call for bulk, whose rows are keyed by position):
  every scored row is logged with its inputs, outputs and model version (see `pillars.serve.capture`;
  `PILLARS_MONITOR_DIR`, default ./monitoring, "off" to disable) for the monitor stage, and ground truth
  that arrives later is joined on that id. `pillars_rows_scored_total` counts rows once they are logged.
- Unknown categories and values outside the schema's range are scored as in training and returned as
  warnings naming the field, with the value cut short.
- Each worker (one per core) predicts on one thread: more only oversubscribe the cores.

Serve the current model with `make serve`; the model comes from the BentoML store (`PILLARS_MODEL_TAG`,
default: the latest `pillars-model`).
"""

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import bentoml
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from pillars.serve.capture import log_from_environment, log_line, new_request_ids, utc_now
from pillars.serve.gate import VALIDATED, RefusedRequestError, RequestGate, problems_of
from pillars.serve.model import (
    MODEL_NAME,
    SERVING_FILE,
    InputField,
    Scored,
    ServingModel,
    loads,
    narrowest,
    pin_threads,
    thread_counts,
)

Documented = TypeVar("Documented")
MODEL_TAG = os.environ.get("PILLARS_MODEL_TAG", f"{MODEL_NAME}:latest")
# Numbers beyond +-2**53 are refused: float64, which scoring uses, holds every integer only up to there, and
# the prediction log (orjson) cannot write integers of 2**64 and more
NUMBER_LIMIT = 2**53
THREADS_PER_WORKER = 1  # one worker process per core: more threads per worker only oversubscribe the cores
PYTHON_TYPES: dict[str, type] = {
    "integer": int,
    "float": float,
    "boolean": bool,
    "string": str,
    "datetime": str,
}

MODEL_REFERENCE = bentoml.models.BentoModel(MODEL_TAG)
SERVING: ServingModel = loads(Path(MODEL_REFERENCE.resolve().path_of(SERVING_FILE)).read_bytes())
pin_threads(SERVING.model, THREADS_PER_WORKER)  # after loading: it pins the thread pools the model loaded


def field_annotation(item: InputField) -> Any:
    """The pydantic type of one input field: its schema type, limits and nullability."""
    annotation: Any = PYTHON_TYPES[item.dtype]
    if item.is_numeric:
        low, high = narrowest(item.limits, (-NUMBER_LIMIT, NUMBER_LIMIT))
        annotation = Annotated[annotation, Field(ge=low, le=high)]
    return annotation | None if item.nullable else annotation


def attribute(item: InputField, position: int) -> str:
    """A Python attribute name for a field (the JSON key stays the raw column name)."""
    return item.feature if item.feature.isidentifier() else f"field_{position}"


def record_type(fields: tuple[InputField, ...]) -> type[BaseModel]:
    """One row: every input field required (null allowed where the schema allows missing values), strictly
    typed (no `true` or `"39"` for a number, no number for a text); other keys are ignored."""
    definitions: dict[str, Any] = {
        attribute(item, position): (
            field_annotation(item),
            Field(alias=item.name, description=_describe(item)),
        )
        for position, item in enumerate(fields)
    }
    return create_model("Record", __config__=ConfigDict(extra="ignore", strict=True), **definitions)


class EqualLengths(BaseModel):
    """Base of the bulk request type: every column must have one value per row."""

    model_config = ConfigDict(extra="ignore", strict=True)

    @model_validator(mode="after")
    def _equal_lengths(self) -> "EqualLengths":
        fields = type(self).model_fields
        lengths = {fields[name].alias or name: len(values) for name, values in self.__dict__.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"every column needs the same number of values, got {lengths}")
        return self


def columns_type(fields: tuple[InputField, ...]) -> type[BaseModel]:
    """Many rows as columns: a list of values per input field."""
    definitions: dict[str, Any] = {
        attribute(item, position): (
            list[field_annotation(item)],  # type: ignore[misc]
            Field(alias=item.name, description=_describe(item)),
        )
        for position, item in enumerate(fields)
    }
    return create_model("Columns", __base__=EqualLengths, **definitions)


def _describe(item: InputField) -> str:
    parts = [item.dtype, "nullable" if item.nullable else "required"]
    if item.categories is not None:
        parts.append(f"one of {len(item.categories)} categories (others are scored as unseen)")
    return ", ".join(parts)


class GatedInput(bentoml.IODescriptor):  # type: ignore[misc]  # bentoml exports it untyped
    """Base of the gated APIs' input types: the gate parsed and validated the body once and left the result on
    the request, and BentoML takes it from there instead of decoding and validating the body again. Without
    it (a route the gate does not check) the request fails: nothing is scored unchecked."""

    @classmethod
    async def from_http_request(cls, request: Any, serde: Any) -> "GatedInput":
        found = request.scope.get("state", {}).pop(VALIDATED, None)
        if type(found) is not cls:
            raise RuntimeError(f"{request.url.path} reached the API without the gate's validated request")
        return found


Record = record_type(SERVING.fields)
Columns = columns_type(SERVING.fields)
# The APIs' input types, as BentoML would build them from the signatures (same names, same OpenAPI schema)
PredictInput = create_model(
    "Input",
    __module__=__name__,
    __base__=GatedInput,
    records=(list[Record], Field()),  # type: ignore[valid-type]
)
BulkInput = create_model("Input", __module__=__name__, __base__=GatedInput, columns=(Columns, Field()))
ATTRIBUTES = [(item.name, attribute(item, position)) for position, item in enumerate(SERVING.fields)]


def record_columns(records: list[BaseModel]) -> dict[str, list[Any]]:
    """Validated records as columns, keyed by the raw field names."""
    return {name: [getattr(record, key) for record in records] for name, key in ATTRIBUTES}


def bulk_columns(columns: BaseModel) -> dict[str, list[Any]]:
    """A validated bulk request's columns, keyed by the raw field names."""
    return {name: getattr(columns, key) for name, key in ATTRIBUTES}


def json_numbers(values: np.ndarray) -> list[float | None]:
    """Numbers as JSON can hold them: an unbounded end (too few calibration rows) as null."""
    numbers = values.astype(object)
    numbers[~np.isfinite(values)] = None
    shown: list[float | None] = numbers.tolist()
    return shown


def _records_in(payload: Any) -> int:
    records = payload.get("records") if isinstance(payload, dict) else None
    return len(records) if isinstance(records, list) else 0


def _bulk_rows_in(payload: Any) -> int:
    columns = payload.get("columns") if isinstance(payload, dict) else None
    values = columns.values() if isinstance(columns, dict) else ()
    return max((len(column) for column in values if isinstance(column, list)), default=0)


def request_check(
    api: str,
    input_type: type[GatedInput],
    count_rows: Callable[[Any], int],
    limit: int,
    columns_of: Callable[[Any], dict[str, list[Any]]],
) -> Callable[[Any], GatedInput]:
    """The gate's check of one API's parsed body: its row limit, its input type, and the model's reading of
    the values (dates), which would otherwise fail inside a batch of other requests; the validated request,
    which the API scores."""
    field_name = next(iter(input_type.model_fields))

    def check(payload: Any) -> GatedInput:
        rows = count_rows(payload)
        if rows > limit:
            raise RefusedRequestError(413, f"{rows} rows in one request to /{api}: the limit is {limit}")
        try:
            request: GatedInput = input_type.model_validate(payload)
        except ValidationError as error:
            raise problems_of(error) from None
        try:
            SERVING.read_dates(columns_of(getattr(request, field_name)))
        except ValueError as error:
            raise RefusedRequestError(400, f"1 problem(s) in the request: {error}") from None
        return request

    return check


def same_doc_everywhere(documented: Documented) -> Documented:
    """Its docstring dedented as inspect.cleandoc does: Python 3.13 dedents docstrings when it compiles them
    and 3.11 does not, and BentoML writes them into the Bento's OpenAPI document, which must be the same
    bytes whichever Python built it."""
    documented.__doc__ = inspect.cleandoc(documented.__doc__ or "")
    return documented


@bentoml.service(name="pillars-service", workers="cpu_count", traffic={"timeout": 60})
@same_doc_everywhere
class PillarsService:
    """Scores raw rows with the packaged model: the same rules as the training pipeline."""

    model_reference = MODEL_REFERENCE  # at class scope, so the model goes into the Bento and container

    def __init__(self) -> None:
        self.serving = SERVING
        self.served = bentoml.metrics.Counter(
            name="pillars_rows_scored", documentation="Rows scored, by API", labelnames=["api"]
        )
        self.warned = bentoml.metrics.Counter(
            name="pillars_input_warnings",
            documentation="Scored values the schema does not expect, by field",
            labelnames=["field"],
        )

        self.log = log_from_environment()

    def _score(
        self, columns: dict[str, list[Any]], api: str, request_ids: list[str], rows: list[int]
    ) -> Scored:
        """Score, log and count every scored row before the answer leaves. The gate has checked every row
        already, so nothing here depends on what a request holds: a batch is scored whole or not at all."""
        scored = self.serving.score(self.serving.typed(columns))
        if self.log is not None:
            self.log.write(
                log_line(
                    source=api,
                    model_version=self.serving.version,
                    request_ids=request_ids,
                    rows=rows,
                    inputs=columns,
                    predictions=scored.predictions,
                    probabilities=scored.probabilities,
                    time_utc=utc_now(),
                )
            )
        self.served.labels(api=api).inc(len(scored.predictions))  # after the log: counted = logged
        for warning in scored.warnings:
            self.warned.labels(field=warning["field"]).inc()
        return scored

    # The APIs are async: scoring takes about a millisecond, less than handing it to a thread pool costs;
    # workers (one process per core) give the parallelism.
    @bentoml.api(batchable=True, max_batch_size=512, max_latency_ms=10_000, input_spec=PredictInput)
    @same_doc_everywhere
    async def predict(self, records: list[Record]) -> list[dict[str, Any]]:  # type: ignore[valid-type]
        """For each record: request_id, prediction, probabilities per class (classification), model_version,
        warnings.

        Plain dicts, not a pydantic response model: BentoML rebuilds a model's JSON schema on every answer,
        which cost about 2 ms of a 5 ms single-row request."""
        columns = record_columns(records)
        request_ids = new_request_ids(len(records))
        scored = self._score(columns, "predict", request_ids, [0] * len(records))
        probabilities = (
            [
                dict(zip(scored.probabilities, row, strict=True))
                for row in zip(*scored.probabilities.values(), strict=True)
            ]
            if scored.probabilities is not None
            else [None] * len(records)
        )
        answers = [
            {
                "request_id": request_id,
                "prediction": prediction,
                "probabilities": row_probabilities,
                "model_version": self.serving.version,
                "warnings": row_warnings,
            }
            for request_id, prediction, row_probabilities, row_warnings in zip(
                request_ids, scored.predictions, probabilities, scored.row_warnings(), strict=True
            )
        ]
        if scored.intervals is not None:
            for answer, low, high in zip(answers, *map(json_numbers, scored.intervals), strict=True):
                answer["interval"] = [low, high]
        if scored.sets is not None:
            labels = np.asarray(self.serving.labels, dtype=object)
            for answer, inside in zip(answers, scored.sets, strict=True):
                answer["set"] = labels[inside].tolist()
        return answers

    @bentoml.api(route="/predict_bulk", input_spec=BulkInput)
    @same_doc_everywhere
    async def predict_bulk(self, columns: Columns) -> dict[str, Any]:  # type: ignore[valid-type]
        """Many rows in one call, column by column: predictions and probabilities as columns too; one
        request_id for the call (feedback names rows by request_id and position)."""
        values = bulk_columns(columns)
        rows = len(next(iter(values.values())))
        (request_id,) = new_request_ids(1)
        scored = self._score(values, "predict_bulk", [request_id] * rows, list(range(rows)))
        answer = {
            "request_id": request_id,
            "model_version": self.serving.version,
            "predictions": scored.predictions,
            "probabilities": (
                {label: column.tolist() for label, column in scored.probabilities.items()}
                if scored.probabilities is not None
                else None
            ),
            "warnings": scored.warnings,
        }
        if scored.intervals is not None:
            answer["intervals"] = dict(
                zip(("lower", "upper"), map(json_numbers, scored.intervals), strict=True)
            )
        if scored.sets is not None:
            answer["sets"] = {
                label: scored.sets[:, code].tolist() for code, label in enumerate(self.serving.labels)
            }
        return answer

    @bentoml.api(route="/model")
    @same_doc_everywhere
    async def model(self) -> dict[str, Any]:
        """The model version and its lineage: task, metrics, params, data hashes, git revision."""
        return {
            "model_version": self.serving.version,
            "labels": list(self.serving.labels),
            "threads": thread_counts(),
            **self.serving.metadata,
        }


PillarsService.add_asgi_middleware(  # type: ignore[attr-defined]  # bentoml.service adds it
    RequestGate,
    max_bytes=SERVING.max_request_bytes,
    checks={
        "/predict": request_check("predict", PredictInput, _records_in, SERVING.max_records, record_columns),
        "/predict_bulk": request_check(
            "predict_bulk", BulkInput, _bulk_rows_in, SERVING.max_bulk_rows, bulk_columns
        ),
    },
)
