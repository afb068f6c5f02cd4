"""Run by tests/service/test_service.py in a process of its own (the service module loads its model from the
BentoML store at import): the real ASGI app of the service, in process, with BentoML's own request parsing
and pydantic's validation counted. Prints the counts and the answers as JSON."""

import asyncio
import json
import sys
from collections import Counter
from types import SimpleNamespace
from typing import Any

from _bentoml_impl import serde
from starlette.testclient import TestClient

from pillars.serve import service

calls: Counter[str] = Counter()


def counted(owner: Any, name: str, key: str) -> None:
    """Count the calls of a classmethod or method `name` of `owner`, then call through."""
    original = getattr(owner, name)
    if asyncio.iscoroutinefunction(original):

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[key] += 1
            return await original(*args, **kwargs)

    else:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[key] += 1
            return original(*args, **kwargs)

    setattr(owner, name, staticmethod(wrapper) if isinstance(owner, type) else wrapper)


def main() -> None:
    record = json.loads(sys.argv[1])
    for spec in (service.PredictInput, service.BulkInput):
        counted(spec, "model_validate", "validate")
        counted(spec, "model_validate_json", "validate_json")
    counted(serde.JSONSerde, "parse_request", "bentoml_parse")
    columns = {name: [value] * 3 for name, value in record.items()}
    with TestClient(service.PillarsService.to_asgi()) as client:
        one = client.post("/predict", json={"records": [record, record]})
        bulk = client.post("/predict_bulk", json={"columns": columns})
        refused = client.post("/predict", json={"records": [{}]})
    try:  # a request that reaches the API without the gate's validated request: refused, never scored
        bypass = SimpleNamespace(scope={}, url=SimpleNamespace(path="/predict"))
        asyncio.run(service.PredictInput.from_http_request(bypass, None))
        bypassed = "scored"
    except RuntimeError as error:
        bypassed = str(error)
    print(
        json.dumps(
            {
                "calls": dict(calls),
                "predict": [one.status_code, len(one.json())],
                "bulk": [bulk.status_code, len(bulk.json()["predictions"])],
                "refused": refused.status_code,
                "bypassed": bypassed,
            }
        )
    )


if __name__ == "__main__":
    main()
