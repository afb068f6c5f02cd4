"""The request gate: ASGI middleware in front of BentoML, so that a hostile request is refused cheaply and alone.

BentoML's own request parsing accepts any Content-Type, resolves a repeated JSON key silently, puts no bound
on the rows of a request, and answers a failed validation with every error (100,000 empty records: a 156 MB
answer). The gate refuses, in this order and before any per-row work:

1. a missing or wrong bearer token, when PILLARS_API_TOKEN is set: 401
2. a body whose Content-Type is not JSON: 415
3. a body over the size limit (chunked ones too): 413
4. a body that is not strict JSON (RFC 8259: UTF-8, no NaN or Infinity, no lone surrogate, nesting within
   orjson's limit) or that repeats a key within an object: 400
5. more rows than the API allows: 413
6. a request the API's own input type refuses (types, limits, nulls) or the model cannot read (a date not in
   the schema's format): 400, with the first `MAX_PROBLEMS` problems and how many there are

Everything a row can fail is checked here, per request, before BentoML batches requests together: one bad
request never fails another one in its batch. A route's check returns the validated request, which the gate
leaves on the request's scope (`VALIDATED`) for the API to score: the body is parsed and validated once. This
module runs inside the Bento: standard library, orjson and pydantic only.
"""

import hmac
import json
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

TOKEN_ENV = "PILLARS_API_TOKEN"
OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics", "/docs.json"})
JSON_TYPES = frozenset({"application/json"})
MAX_PROBLEMS = 10  # problems listed in a 400 answer; the count says how many there are in all
VALIDATED = "pillars.validated"  # scope["state"] key of the request a check validated
SHOWN_CHARACTERS = 40  # of a value quoted in an answer


@dataclass
class RefusedRequestError(Exception):
    """A request the gate answers itself: status, message and, for a 400, the first problems found."""

    status: int
    message: str
    problems: list[str] = field(default_factory=list)
    count: int = 0

    def body(self) -> bytes:
        answer: dict[str, Any] = {"error": self.message}
        if self.problems:
            answer |= {"problems": self.problems, "problem_count": self.count}
        return orjson.dumps(answer)


def shown(value: Any) -> str:
    """A value as JSON, cut to `SHOWN_CHARACTERS`: an answer never echoes a whole input back."""
    text = orjson.dumps(value, default=repr).decode()
    return (
        text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + f"... ({len(text)} characters)"
    )


def _refuse_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) < len(pairs):  # counted only then, in linear time: an object may have a million keys
        repeated = sorted(key for key, times in Counter(key for key, _ in pairs).items() if times > 1)[
            :MAX_PROBLEMS
        ]
        raise RefusedRequestError(
            400, f"the body repeats the key(s) {', '.join(shown(key) for key in repeated)} in one object"
        )
    return found


def parse_json(body: bytes) -> Any:
    """The body as JSON, strictly: orjson's RFC 8259 parser, then a pass that refuses repeated keys (which
    every JSON parser would otherwise resolve silently, each its own way)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise RefusedRequestError(400, f"the body is not valid JSON: {error}") from None
    try:
        json.loads(body, object_pairs_hook=_refuse_repeated_keys)
    except RecursionError:
        raise RefusedRequestError(400, "the body is not valid JSON: nested too deeply") from None
    return payload


def problems_of(error: ValidationError) -> RefusedRequestError:
    """A 400 listing the first `MAX_PROBLEMS` validation errors as `where: what (got value)`."""
    problems = []
    for item in error.errors(include_url=False)[:MAX_PROBLEMS]:
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"])
        got = "" if item["type"] == "missing" else f" (got {shown(item['input'])})"
        problems.append(f"{where.lstrip('.')}: {item['msg']}{got}")
    count = error.error_count()
    return RefusedRequestError(400, f"{count} problem(s) in the request", problems, count)


def is_json(content_type: bytes | None) -> bool:
    """application/json, with any parameters (a charset other than UTF-8 is refused by the parser)."""
    return (
        content_type is not None
        and content_type.split(b";")[0].strip().decode("latin-1").lower() in JSON_TYPES
    )


@dataclass
class RequestGate:
    """The middleware. `checks` maps a route to the check of its parsed body (raising
    `RefusedRequestError`), which returns the validated request; a route without one (e.g. /model) gets the
    token, type and size checks only."""

    app: Any
    max_bytes: int
    checks: Mapping[str, Callable[[Any], Any]]
    expected: bytes | None = field(init=False)

    def __post_init__(self) -> None:
        token = os.environ.get(TOKEN_ENV)
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        try:
            self._check_headers(scope["path"], scope["method"], headers)
            body = await self._body(receive)
            if body is None:  # the client went away: nobody to answer
                return
            check = self.checks.get(scope["path"])
            if check is not None and scope["method"] == "POST":
                scope.setdefault("state", {})[VALIDATED] = check(parse_json(body))
        except RefusedRequestError as refused:
            await _answer(send, refused)
            return
        sent = False

        async def replayed_receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                message: dict[str, Any] = await receive()
                return message
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replayed_receive, send)

    def _check_headers(self, path: str, method: str, headers: dict[bytes, bytes]) -> None:
        if (
            self.expected is not None
            and path not in OPEN_PATHS
            and not hmac.compare_digest(headers.get(b"authorization", b""), self.expected)
        ):
            raise RefusedRequestError(
                401, f"missing or wrong bearer token (Authorization: Bearer <{TOKEN_ENV}>)"
            )
        declared = headers.get(b"content-length")
        has_body = (declared is not None and declared != b"0") or b"chunked" in headers.get(
            b"transfer-encoding", b""
        )
        if method == "POST" and has_body and not is_json(headers.get(b"content-type")):
            content_type = headers.get(b"content-type", b"none").decode("latin-1")
            raise RefusedRequestError(
                415, f"Content-Type {shown(content_type)} is not JSON: send application/json"
            )
        if declared is not None:
            if not declared.isdigit():
                raise RefusedRequestError(400, "Content-Length is not a number")
            if int(declared) > self.max_bytes:
                raise RefusedRequestError(
                    413, f"request body of {int(declared)} bytes is over the limit of {self.max_bytes}"
                )

    async def _body(self, receive: Any) -> bytes | None:
        """The whole body, up to the limit (a chunked body declares no length: it is counted as it comes);
        None when the client disconnects first."""
        parts: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            part = message.get("body", b"")
            received += len(part)
            if received > self.max_bytes:
                raise RefusedRequestError(413, f"request body is over the limit of {self.max_bytes} bytes")
            parts.append(part)
            if not message.get("more_body", False):
                return b"".join(parts)


async def _answer(send: Any, refused: RefusedRequestError) -> None:
    body = refused.body()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if refused.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": refused.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
