"""The JSON client every caller of a served Bento uses (deploy, replay, the container smoke test)."""

import http.client
import json
import time
import urllib.parse
from http import HTTPStatus
from typing import Any

import numpy as np
import pandas as pd

from pillars.core.errors import PillarsError
from pillars.core.rules import DATETIME_KINDS

ISO_FORMAT = "%Y-%m-%dT%H:%M:%S"
OVERLOAD_RETRIES = 5  # of a request answered 503, waiting 0.05, 0.1, 0.2 ... s in between
OVERLOAD_BACKOFF_S = 0.05


class Client:
    """A keep-alive JSON client for one served Bento (one per thread)."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)

    def post(self, path: str, payload: Any) -> Any:
        """POST a payload (or JSON already encoded, as bytes) and return the decoded answer.

        A 503 is retried with backoff: BentoML's adaptive batching sheds load with it ("process is
        overloaded") before scoring, so a retry is a new request, not a duplicate."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload)
        for attempt in range(OVERLOAD_RETRIES + 1):
            self.connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = self.connection.getresponse()
            answer = response.read()
            if response.status != HTTPStatus.SERVICE_UNAVAILABLE or attempt == OVERLOAD_RETRIES:
                break
            time.sleep(OVERLOAD_BACKOFF_S * 2**attempt)
        if response.status != HTTPStatus.OK:
            raise PillarsError(f"{path} answered {response.status}: {answer[:500].decode(errors='replace')}")
        return json.loads(answer)


def as_json_columns(columns: dict[str, np.ndarray], start: int, stop: int) -> dict[str, list]:
    """A slice of typed columns as JSON values: NaN and None become null, dates and times become ISO 8601
    text (which the service always reads)."""
    return {
        name: _json_values(pd.Series(values[start:stop], dtype=object)) for name, values in columns.items()
    }


def _json_values(part: pd.Series) -> list:
    if pd.api.types.infer_dtype(part, skipna=True) in DATETIME_KINDS:
        part = pd.to_datetime(part, utc=True).dt.tz_localize(None).dt.strftime(ISO_FORMAT).astype(object)
    return part.where(part.notna(), None).tolist()


def as_records(columns: dict[str, list]) -> list[dict[str, Any]]:
    """Columns as a list of row objects."""
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]
