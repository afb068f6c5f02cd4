"""The exported Bento (models/service.bento), imported into a fresh BentoML home and served on 127.0.0.1.

The archive is what CI ships, so these tests import it rather than use the model store: the served model
scores like the offline one, bad and hostile requests get a small 4xx that says what is wrong (never a 500)
and fail alone, the token and the size limits hold, schemathesis finds no server error, and the archive holds
what `bentoml containerize` needs. Two servers start per module (about 5 s each): one open, one with a token.
"""

import contextlib
import http.client
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pytest

from pillars.bento.client import as_json_columns, as_records
from pillars.bento.fuzz import schemathesis
from pillars.bento.parity import IN_SET, raw_rows
from pillars.bento.server import import_archive, served
from pillars.core import layout
from pillars.core.io import read_parquet
from pillars.core.params import load_params
from pillars.core.schema import load_checked
from pillars.serve.capture import DIR_ENV, logged_rows
from pillars.serve.gate import MAX_PROBLEMS

pytestmark = pytest.mark.slow

TOKEN = "s3cret"
READY_TIMEOUT_S = 60
PARITY_ROWS = 500
RECORDS_PER_REQUEST = 100  # the parity rows go as 5 concurrent /predict requests, which the server batches
BULK_ROWS = 10_000
TOLERANCE = 1e-6
OPEN_PATHS = ("/readyz", "/livez", "/metrics", "/docs.json")
FUZZ_EXAMPLES = 25  # schemathesis cases per API operation and phase here; `make fuzz` runs many more


class Answer(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def call(
    url: str,
    method: str,
    path: str,
    body: bytes | Iterable[bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request on a fresh connection (an iterable body is sent chunked, without a Content-Length)."""
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    try:
        chunked = body is not None and not isinstance(body, bytes)
        connection.request(method, path, body, headers or {}, encode_chunked=chunked)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read().decode(errors="replace"))
    finally:
        connection.close()


def post(url: str, path: str, payload: Any, token: str | None = None) -> Answer:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return call(url, "POST", path, json.dumps(payload).encode(), headers)


@pytest.fixture(scope="module")
def archive(reproduced: Path) -> Path:
    """The package stage's archive from a fresh `dvc repro` of the repository."""
    return reproduced / layout.SERVICE_ARCHIVE


@pytest.fixture(scope="module")
def imported(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The archive imported into an empty BentoML home: the Bento's tag and the home."""
    home = tmp_path_factory.mktemp("bentoml-serve")
    return import_archive(archive, home), home


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the open server logs its predictions."""
    return tmp_path_factory.mktemp("prediction-logs")


@pytest.fixture(scope="module")
def server(imported: tuple[str, Path], logs: Path) -> Iterator[str]:
    """The base URL of the imported Bento, served without a token (even if the caller's environment has one)."""
    tag, home = imported
    with served(tag, home, READY_TIMEOUT_S, env={"PILLARS_API_TOKEN": "", DIR_ENV: str(logs)}) as (url, _):
        yield url


@pytest.fixture(scope="module")
def auth_server(imported: tuple[str, Path]) -> Iterator[str]:
    """The same Bento served with PILLARS_API_TOKEN set."""
    tag, home = imported
    with served(tag, home, READY_TIMEOUT_S, env={"PILLARS_API_TOKEN": TOKEN}) as (url, _):
        yield url


@pytest.fixture(scope="module")
def about(server: str) -> dict[str, Any]:
    """POST /model: version, labels and lineage of the served model."""
    answer = post(server, "/model", {})
    assert answer.status == 200, answer.text
    return answer.json()


class Split(NamedTuple):
    columns: dict[str, np.ndarray]  # raw rows of the curated test split, typed as the service receives them
    offline: pd.DataFrame  # assess's predictions for the same rows, in the same order


@pytest.fixture(scope="module")
def split(reproduced: Path) -> Split:
    with contextlib.chdir(reproduced):
        params = load_params()
        curated = read_parquet(layout.curated_split("test"))
        offline = read_parquet(layout.TEST_PREDICTIONS)
        columns = raw_rows(
            read_parquet(layout.RAW_DATA), curated, load_checked(params), params.dataset.placeholders
        )
    assert offline["_row"].equals(curated["_row"]), "data/predictions is stale: rerun assess"
    return Split(columns, offline)


@pytest.fixture
def record(split: Split) -> dict[str, Any]:
    """The first test row as a /predict record (raw column names; extra columns are ignored)."""
    return as_records(as_json_columns(split.columns, 0, 1))[0]


def archived_model_version(archive: Path) -> str:
    with tarfile.open(archive, "r:xz") as bento:
        versions = {
            match.group(1)
            for name in bento.getnames()
            if (match := re.fullmatch(r"\./models/pillars-model/([^/]+)/serving_model\.pkl", name))
        }
    assert len(versions) == 1, versions
    return versions.pop()


def test_predict_one_record(server: str, about: dict, archive: Path, record: dict) -> None:
    answer = post(server, "/predict", {"records": [record]})
    assert answer.status == 200, answer.text
    [prediction] = answer.json()
    assert about["labels"] == ["<=50K", ">50K"]
    assert prediction["prediction"] in about["labels"]
    assert set(prediction["probabilities"]) == set(about["labels"])
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert prediction["model_version"] == about["model_version"] == archived_model_version(archive)
    assert prediction["warnings"] == []


def test_both_apis_score_like_assess(server: str, about: dict, split: Split) -> None:
    """500 test rows through /predict_bulk and through concurrent (batched) /predict calls: assess's labels
    exactly, its probabilities within 1e-6 and its conformal class sets exactly, row for row."""
    labels = about["labels"]
    offline = split.offline.iloc[:PARITY_ROWS]
    expected_labels = [labels[code] for code in offline["label"]]
    expected_scores = offline["score"].to_numpy()

    bulk = post(server, "/predict_bulk", {"columns": as_json_columns(split.columns, 0, PARITY_ROWS)})
    assert bulk.status == 200, bulk.text
    assert bulk.json()["predictions"] == expected_labels
    np.testing.assert_allclose(
        bulk.json()["probabilities"][labels[1]], expected_scores, rtol=0, atol=TOLERANCE
    )
    expected_sets = offline[[f"{IN_SET}{code}" for code in range(len(labels))]].to_numpy()
    assert np.array_equal(pd.DataFrame(bulk.json()["sets"])[labels].to_numpy(), expected_sets)
    assert expected_sets.sum(axis=1).min() >= 1, "a set is never empty"

    def records(start: int) -> list[dict]:
        chunk = as_records(as_json_columns(split.columns, start, start + RECORDS_PER_REQUEST))
        answer = post(server, "/predict", {"records": chunk})
        assert answer.status == 200, answer.text
        return answer.json()

    with ThreadPoolExecutor(PARITY_ROWS // RECORDS_PER_REQUEST) as pool:
        answers = [
            row for chunk in pool.map(records, range(0, PARITY_ROWS, RECORDS_PER_REQUEST)) for row in chunk
        ]
    assert [row["prediction"] for row in answers] == expected_labels
    np.testing.assert_allclose(
        [row["probabilities"][labels[1]] for row in answers], expected_scores, rtol=0, atol=TOLERANCE
    )
    assert [row["set"] for row in answers] == [
        [label for label, inside in zip(labels, row, strict=True) if inside] for row in expected_sets
    ]


def test_bulk_scores_ten_thousand_rows_in_one_call(server: str, about: dict, split: Split) -> None:
    repeated = {name: np.resize(values, BULK_ROWS) for name, values in split.columns.items()}
    answer = post(server, "/predict_bulk", {"columns": as_json_columns(repeated, 0, BULK_ROWS)})
    assert answer.status == 200, answer.text
    result = answer.json()
    assert len(result["predictions"]) == BULK_ROWS
    expected = np.resize(split.offline["label"].to_numpy(), BULK_ROWS)
    assert result["predictions"] == [about["labels"][code] for code in expected]
    assert result["model_version"] == about["model_version"]


def test_malformed_json_is_a_400_that_says_json(server: str) -> None:
    answer = call(server, "POST", "/predict", b'{"records": [', {"Content-Type": "application/json"})
    assert answer.status == 400
    assert "JSON" in answer.text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("age", None, "Field required"),  # None here: the field is left out
        ("age", "old", 'valid integer (got "old")'),
        ("hours-per-week", 500, "less than or equal to 168 (got 500)"),
        # strict types: no booleans or text for numbers, no numbers for text, integers within +-2**53
        ("age", True, "valid integer (got true)"),
        ("age", "39", 'valid integer (got "39")'),
        ("age", 39.0, "valid integer (got 39.0)"),
        ("workclass", 3, "valid string (got 3)"),
        ("capital-loss", 2**53 + 1, f"less than or equal to {2**53} (got {2**53 + 1})"),
        ("capital-gain", 2**64, "valid integer (got 1.8446744073709552e+19)"),  # once failed a whole batch
    ],
    ids=["missing", "wrong-type", "impossible", "bool", "text", "float", "number-for-text", "2^53+1", "2^64"],
)
def test_invalid_record_is_a_400_naming_the_field(
    server: str, record: dict, field: str, value: Any, message: str
) -> None:
    if value is None:
        del record[field]
    else:
        record[field] = value
    answer = post(server, "/predict", {"records": [record]})
    assert answer.status == 400, answer.text
    [problem] = answer.json()["problems"]
    assert problem.startswith(f"records[0].{field}: ")
    assert message in problem


def test_null_in_a_required_field_is_a_400(server: str, record: dict) -> None:
    record["age"] = None
    answer = post(server, "/predict", {"records": [record]})
    assert answer.status == 400, answer.text
    assert answer.json()["problems"] == ["records[0].age: Input should be a valid integer (got null)"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded", None]
)
def test_a_body_that_is_not_json_by_its_content_type_is_a_415(
    server: str, record: dict, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    answer = call(server, "POST", "/predict", json.dumps({"records": [record]}).encode(), headers)
    assert answer.status == 415, answer.text
    assert "application/json" in answer.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"records": [{"age": 39, "age": 40}]}', 'repeats the key(s) "age"'),
        (b'{"records": [], "records": []}', 'repeats the key(s) "records"'),
        (b'{"records": [{"age": NaN}]}', "not valid JSON"),
        (b'{"records": [{"age": 1e999}]}', "not valid JSON"),
        (b'{"records": [{"workclass": "\\ud800"}]}', "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "not valid JSON"),
        (b'{"records": [{"workclass": "\xff"}]}', "not valid JSON"),
    ],
    ids=[
        "repeated-field",
        "repeated-records",
        "nan",
        "infinity",
        "lone-surrogate",
        "deep-nesting",
        "not-utf8",
    ],
)
def test_json_that_is_not_strict_is_a_400(server: str, body: bytes, message: str) -> None:
    answer = call(server, "POST", "/predict", body, {"Content-Type": "application/json"})
    assert answer.status == 400, answer.text
    assert message in answer.json()["error"]


def test_too_many_records_are_refused_fast_and_small(server: str, about: dict) -> None:
    """100,000 empty records (300 KB) once took 11 s and a 156 MB answer: every record's every error."""
    started = time.perf_counter()
    answer = post(server, "/predict", {"records": [{}] * 100_000})
    elapsed = time.perf_counter() - started
    assert answer.status == 413, answer.text
    assert str(about["params"]["package"]["max_records"]) in answer.json()["error"]
    assert len(answer.text) < 1_000
    assert elapsed < 2, elapsed


def test_bulk_rows_over_the_limit_are_a_413(server: str, about: dict) -> None:
    rows = about["params"]["package"]["max_bulk_rows"] + 1
    answer = post(server, "/predict_bulk", {"columns": {"age": [None] * rows}})
    assert answer.status == 413, answer.text
    assert str(rows) in answer.json()["error"]


def test_problems_are_capped_and_counted(server: str, about: dict) -> None:
    """As many empty records as allowed: the answer lists the first problems and says how many there are."""
    per_record = post(server, "/predict", {"records": [{}]}).json()["problem_count"]  # one per required field
    records = about["params"]["package"]["max_records"]
    answer = post(server, "/predict", {"records": [{}] * records})
    assert answer.status == 400, answer.text
    found = answer.json()
    assert len(found["problems"]) == MAX_PROBLEMS
    assert found["problem_count"] == records * per_record > records
    assert len(answer.text) < 2_000


def test_a_warning_quotes_a_long_value_cut_short(server: str, record: dict) -> None:
    record["workclass"] = "x" * 1_000_000
    answer = post(server, "/predict", {"records": [record]})
    assert answer.status == 200, answer.text
    [warning] = answer.json()[0]["warnings"]
    assert warning.startswith("workclass: unknown category")
    assert "(1000002 characters)" in warning
    assert len(answer.text) < 1_000


def test_bulk_columns_of_unequal_length_are_a_400_naming_the_column(server: str, split: Split) -> None:
    columns = as_json_columns(split.columns, 0, 3)
    columns["capital-gain"] = columns["capital-gain"][:2]
    answer = post(server, "/predict_bulk", {"columns": columns})
    assert answer.status == 400, answer.text
    assert "same number of values" in answer.text
    assert "'capital-gain': 2" in answer.text  # the name the client sent, not the Python attribute


def test_unknown_category_is_scored_with_a_warning(server: str, about: dict, record: dict) -> None:
    record["workclass"] = "Space-force"
    answer = post(server, "/predict", {"records": [record]})
    assert answer.status == 200, answer.text
    [prediction] = answer.json()
    assert prediction["prediction"] in about["labels"]
    [warning] = prediction["warnings"]
    assert "workclass" in warning
    assert "unknown category" in warning


@pytest.mark.parametrize(
    ("field", "value"), [("occupation", None), ("native-country", "?")], ids=["null", "placeholder"]
)
def test_missing_value_in_a_nullable_field_is_scored(
    server: str, about: dict, record: dict, field: str, value: Any
) -> None:
    record[field] = value
    answer = post(server, "/predict", {"records": [record]})
    assert answer.status == 200, answer.text
    [prediction] = answer.json()
    assert prediction["prediction"] in about["labels"]
    assert prediction["warnings"] == []


def test_oversized_body_is_a_413(server: str, about: dict) -> None:
    limit = int(about["params"]["package"]["max_request_mb"] * 2**20)
    body = b" " * (limit + 2**20)
    answer = call(server, "POST", "/predict", body, {"Content-Type": "application/json"})
    assert answer.status == 413, answer.text
    assert str(limit) in answer.text


def test_oversized_chunked_body_is_a_413(server: str, about: dict, record: dict) -> None:
    """A body without Content-Length is counted as it arrives; the server still answers afterwards."""
    megabytes = int(about["params"]["package"]["max_request_mb"]) + 1
    chunks = (b" " * 2**20 for _ in range(megabytes))
    answer = call(server, "POST", "/predict", chunks, {"Content-Type": "application/json"})
    assert answer.status == 413, answer.text
    assert post(server, "/predict", {"records": [record]}).status == 200


def test_small_chunked_body_is_scored(server: str, record: dict) -> None:
    body = json.dumps({"records": [record]}).encode()
    answer = call(server, "POST", "/predict", [body[:10], body[10:]], {"Content-Type": "application/json"})
    assert answer.status == 200, answer.text


def test_a_poisoned_request_fails_alone_in_its_batch(server: str, split: Split) -> None:
    """31 good requests and one poisoned one (an integer the log cannot write, which once failed every request
    batched with it), sent together, five times over: the poisoned ones get a 400, every good one its answer."""
    good = [as_records(as_json_columns(split.columns, row, row + 1)) for row in range(31)]
    poisoned = good[0][0] | {"capital-gain": 2**64}
    payloads = ([{"records": records} for records in good] + [{"records": [poisoned]}]) * 5
    with ThreadPoolExecutor(len(payloads) // 5) as pool:
        answers = list(pool.map(lambda payload: post(server, "/predict", payload), payloads))
    statuses = [answer.status for answer in answers]
    assert statuses == ([200] * 31 + [400]) * 5, statuses
    together = post(server, "/predict", {"records": as_records(as_json_columns(split.columns, 0, 31))})
    expected = [row["prediction"] for row in together.json()]
    for round_start in range(0, len(answers), 32):
        assert [
            answer.json()[0]["prediction"] for answer in answers[round_start : round_start + 31]
        ] == expected


def test_each_request_is_parsed_and_validated_once(imported: tuple[str, Path], record: dict) -> None:
    """The gate's validated request is what the API scores: per request one validation (the gate's), and
    BentoML neither decodes nor validates the body again; a request without the gate's is never scored.
    Counted in the real ASGI app, in a process of its own with the imported model."""
    _, home = imported
    env = os.environ | {"BENTOML_HOME": str(home), DIR_ENV: "off", "PILLARS_API_TOKEN": ""}
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("one_parse.py")), json.dumps(record)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["predict"] == [200, 2] and found["bulk"] == [200, 3] and found["refused"] == 400
    assert found["calls"] == {"validate": 3}, (
        "one validation per request (the refused one too), none by BentoML"
    )
    assert "without the gate's validated request" in found["bypassed"]


def test_rows_counted_equal_rows_logged_after_hostile_traffic(server: str, logs: Path, record: dict) -> None:
    hostile = [
        {"records": [record | {"age": True}]},
        {"records": [record | {"capital-gain": 2**64}]},
        {"records": [{}] * 10},
        {"records": [record] * 3},
        {"records": [record, record | {"age": "39"}]},
    ]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda payload: post(server, "/predict", payload), hostile * 8))
    metrics = call(server, "GET", "/metrics").text
    counted = rows_scored(metrics, "predict") + rows_scored(metrics, "predict_bulk")
    assert counted == logged_rows(logs)
    assert counted > 0


def test_each_worker_predicts_on_one_thread(about: dict) -> None:
    """Every native thread pool the serving worker loaded is pinned to one thread (workers: one per core)."""
    assert about["threads"]
    assert set(about["threads"].values()) == {1}, about["threads"]


def test_schemathesis_finds_no_server_error(server: str, tmp_path: Path) -> None:
    """Requests generated from the served OpenAPI document (valid and invalid, seeded): no answer is a 5xx.
    A bounded run; `make fuzz` runs the long one."""
    run = schemathesis(server, FUZZ_EXAMPLES, seed=0, report_dir=tmp_path)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert re.search(r"(\d+) generated, \1 passed", run.stdout), run.stdout[-2000:]


def rows_scored(metrics: str, api: str) -> float:
    found = re.search(rf'^pillars_rows_scored_total\{{api="{api}"\}} (\S+)$', metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_metrics_count_scored_rows_and_request_durations(server: str, split: Split) -> None:
    before = call(server, "GET", "/metrics").text
    answer = post(server, "/predict_bulk", {"columns": as_json_columns(split.columns, 0, 3)})
    assert answer.status == 200, answer.text
    metrics = call(server, "GET", "/metrics")
    assert metrics.status == 200
    assert rows_scored(metrics.text, "predict_bulk") == rows_scored(before, "predict_bulk") + 3
    assert re.search(
        r'^bentoml_service_request_duration_seconds_count\{endpoint="/predict_bulk"', metrics.text, re.M
    )


def test_openapi_document_names_the_raw_fields(server: str) -> None:
    answer = call(server, "GET", "/docs.json")
    assert answer.status == 200
    document = answer.json()
    assert document["openapi"].startswith("3.")
    body = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    reference = body["properties"]["records"]["items"]["$ref"]
    record = document["components"]["schemas"][reference.rsplit("/", 1)[1]]
    assert "capital-gain" in record["properties"]
    assert "age" in record["required"]


def test_predict_needs_the_bearer_token(auth_server: str, record: dict) -> None:
    anonymous = post(auth_server, "/predict", {"records": [record]})
    assert anonymous.status == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert post(auth_server, "/predict", {"records": [record]}, token="wrong").status == 401
    assert post(auth_server, "/model", {}).status == 401
    assert post(auth_server, "/predict", {"records": [record]}, token=TOKEN).status == 200


@pytest.mark.parametrize("path", OPEN_PATHS)
def test_health_metrics_and_docs_stay_open(auth_server: str, path: str) -> None:
    assert call(auth_server, "GET", path).status == 200


def test_archive_holds_the_container_build_context(archive: Path) -> None:
    """There is no Docker engine here, so `bentoml containerize` itself runs in CI (issue 6); this checks that
    the exported archive holds the build context it needs: the Dockerfile, the Bento's manifest, the model,
    the service code, and slim pinned requirements (xgboost-cpu; no training or test tools)."""
    with tarfile.open(archive, "r:xz") as bento:
        names = set(bento.getnames())
        requirements = bento.extractfile("./env/python/requirements.txt").read().decode()  # type: ignore[union-attr]
    assert {"./env/docker/Dockerfile", "./bento.yaml", "./src/pillars/serve/service.py"} <= names
    assert any(re.fullmatch(r"\./models/pillars-model/[^/]+/serving_model\.pkl", name) for name in names)
    pinned = dict(
        line.split("==", 1) for line in requirements.splitlines() if "==" in line and not line.startswith("#")
    )
    assert "xgboost-cpu" in pinned
    assert not {"xgboost", "pytest", "optuna", "dvc"} & {name.lower() for name in pinned}
    assert not re.search(r"pytest|optuna|\bdvc\b", requirements)
