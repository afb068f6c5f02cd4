"""The model service (pillar 11): the packaged model behind HTTP, built into a Bento from bentofile.yaml.

- `POST /predict` takes `{"records": [...]}`, one object per row keyed by the raw column names of the
  committed schema. The record type is generated from the schema inside the packaged model, so types,
  nullability and impossible-value limits are checked before any row reaches the model: a bad request is a
  400 naming the record, the field and the reason. Concurrent requests are batched together.
- `POST /predict_bulk` takes `{"columns": {name: [values...]}}`: many rows in one call, column by column, so
  no per-row objects are built.
- Every answer carries a `request_id` (per record; per call for bulk, whose rows are keyed by position):
  every scored row is logged with its inputs, outputs and model version (see `pillars.serve.capture`;
  `PILLARS_MONITOR_DIR`, default ./monitoring, "off" to disable) for the monitor stage, and ground truth
  that arrives later is joined on that id.
- Unknown categories and values outside the schema's range are scored as in training and returned as
  warnings. Bodies over `package.max_request_mb` get 413. When `PILLARS_API_TOKEN` is set, every path but
  the health checks, `/metrics` and the OpenAPI document needs `Authorization: Bearer <token>`.

Serve the current model with `make serve`; the model comes from the BentoML store (`PILLARS_MODEL_TAG`,
default: the latest `pillars-model`).
"""

import hmac
import inspect
import json
import os
from pathlib import Path
from typing import Annotated, Any, TypeVar

import bentoml
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from pillars.serve.capture import log_from_environment, log_line, new_request_ids, utc_now
from pillars.serve.model import MODEL_NAME, SERVING_FILE, InputField, Scored, ServingModel, loads

Documented = TypeVar("Documented")
MODEL_TAG = os.environ.get("PILLARS_MODEL_TAG", f"{MODEL_NAME}:latest")
TOKEN_ENV = "PILLARS_API_TOKEN"
OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics", "/docs.json"})
PYTHON_TYPES: dict[str, type] = {
    "integer": int,
    "float": float,
    "boolean": bool,
    "string": str,
    "datetime": str,
}

MODEL_REFERENCE = bentoml.models.BentoModel(MODEL_TAG)
SERVING: ServingModel = loads(Path(MODEL_REFERENCE.resolve().path_of(SERVING_FILE)).read_bytes())


def field_annotation(item: InputField) -> Any:
    """The pydantic type of one input field: its schema type, limits and nullability."""
    annotation: Any = PYTHON_TYPES[item.dtype]
    if item.is_numeric:
        low, high = item.limits
        annotation = Annotated[annotation, Field(ge=low, le=high)]
    return annotation | None if item.nullable else annotation


def attribute(item: InputField, position: int) -> str:
    """A Python attribute name for a field (the JSON key stays the raw column name)."""
    return item.feature if item.feature.isidentifier() else f"field_{position}"


def record_type(fields: tuple[InputField, ...]) -> type[BaseModel]:
    """One row: every input field required (null allowed where the schema allows missing values)."""
    definitions: dict[str, Any] = {
        attribute(item, position): (
            field_annotation(item),
            Field(alias=item.name, description=_describe(item)),
        )
        for position, item in enumerate(fields)
    }
    return create_model("Record", __config__=ConfigDict(extra="ignore"), **definitions)


class EqualLengths(BaseModel):
    """Base of the bulk request type: every column must have one value per row."""

    model_config = ConfigDict(extra="ignore")

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


Record = record_type(SERVING.fields)
Columns = columns_type(SERVING.fields)
ATTRIBUTES = [(item.name, attribute(item, position)) for position, item in enumerate(SERVING.fields)]


class RequestGuard:
    """ASGI middleware: optional bearer-token auth and a request size limit (BentoML has neither)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        token = os.environ.get(TOKEN_ENV)
        self.expected = f"Bearer {token}".encode() if token else None

    def needs_token(self, path: str) -> bool:
        return self.expected is not None and path not in OPEN_PATHS

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if self.needs_token(scope["path"]) and not hmac.compare_digest(
            headers.get(b"authorization", b""), self.expected or b""
        ):
            await _reject(send, 401, f"missing or wrong bearer token (Authorization: Bearer <{TOKEN_ENV}>)")
            return
        declared = headers.get(b"content-length")
        if declared is not None:  # the server holds the body to this length
            if not declared.isdigit():
                await _reject(send, 400, "Content-Length is not a number")
            elif int(declared) > self.max_bytes:
                await _reject(
                    send, 413, f"request body of {int(declared)} bytes is over the limit of {self.max_bytes}"
                )
            else:
                await self.app(scope, receive, send)
            return
        # A chunked body declares no length: read it here, up to the limit, and hand it on. (Raising from
        # inside the app's receive would reach BentoML's endpoint wrapper, which answers 500.)
        messages: list[dict] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await _reject(send, 413, f"request body is over the limit of {self.max_bytes} bytes")
                return
            if not message.get("more_body", False):
                break
        buffered = iter(messages)

        async def replayed_receive() -> dict:
            return next(buffered, None) or await receive()

        await self.app(scope, replayed_receive, send)


async def _reject(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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

    def _score(self, columns: dict[str, list], api: str, request_ids: list[str], rows: list[int]) -> Scored:
        """Score, count, and log every scored row before the answer leaves."""
        try:
            scored = self.serving.score(self.serving.typed(columns))
        except ValueError as error:
            raise bentoml.exceptions.InvalidArgument(str(error)) from error
        self.served.labels(api=api).inc(len(scored.predictions))
        for warning in scored.warnings:
            self.warned.labels(field=warning["field"]).inc()
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
        return scored

    # The APIs are async: scoring takes about a millisecond, less than handing it to a thread pool costs;
    # workers (one process per core) give the parallelism.
    @bentoml.api(batchable=True, max_batch_size=512, max_latency_ms=10_000)
    @same_doc_everywhere
    async def predict(self, records: list[Record]) -> list[dict[str, Any]]:  # type: ignore[valid-type]
        """For each record: request_id, prediction, probabilities per class (classification), model_version,
        warnings.

        Plain dicts, not a pydantic response model: BentoML rebuilds a model's JSON schema on every answer,
        which cost about 2 ms of a 5 ms single-row request."""
        columns = {name: [getattr(record, key) for record in records] for name, key in ATTRIBUTES}
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
        return [
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

    @bentoml.api(route="/predict_bulk")
    @same_doc_everywhere
    async def predict_bulk(self, columns: Columns) -> dict[str, Any]:  # type: ignore[valid-type]
        """Many rows in one call, column by column: predictions and probabilities as columns too; one
        request_id for the call (feedback names rows by request_id and position)."""
        values = {name: getattr(columns, key) for name, key in ATTRIBUTES}
        rows = len(next(iter(values.values())))
        (request_id,) = new_request_ids(1)
        scored = self._score(values, "predict_bulk", [request_id] * rows, list(range(rows)))
        return {
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

    @bentoml.api(route="/model")
    @same_doc_everywhere
    async def model(self) -> dict[str, Any]:
        """The model version and its lineage: task, metrics, params, data hashes, git revision."""
        return {
            "model_version": self.serving.version,
            "labels": list(self.serving.labels),
            **self.serving.metadata,
        }


PillarsService.add_asgi_middleware(RequestGuard, max_bytes=SERVING.max_request_bytes)
