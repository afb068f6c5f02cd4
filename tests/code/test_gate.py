"""The request gate's pure parts: strict JSON, capped problems, values cut short (tests/service serves it)."""

import time

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pillars.serve.gate import (
    MAX_PROBLEMS,
    SHOWN_CHARACTERS,
    RefusedRequestError,
    is_json,
    parse_json,
    problems_of,
    shown,
)


class Row(BaseModel):
    model_config = ConfigDict(strict=True)

    age: int = Field(ge=0, le=120)
    job: str


class Rows(BaseModel):
    records: list[Row]


def test_parse_json_reads_strict_json() -> None:
    assert parse_json(b'{"records": [{"age": 39, "job": "x"}]}') == {"records": [{"age": 39, "job": "x"}]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": 1, "a": 2}', 'repeats the key(s) "a"'),
        (b'[{"b": 1}, {"c": 1, "b": 2, "c": 3}]', 'repeats the key(s) "c"'),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"a": Infinity}', "not valid JSON"),
        (b'{"a": "\\ud800"}', "not valid JSON"),
        (b'{"a": "\xff"}', "not valid JSON"),
        (b"[" * 2000 + b"]" * 2000, "not valid JSON"),
        (b"", "not valid JSON"),
    ],
)
def test_parse_json_refuses_what_parsers_disagree_on(body: bytes, message: str) -> None:
    with pytest.raises(RefusedRequestError) as refused:
        parse_json(body)
    assert refused.value.status == 400
    assert message in refused.value.message


def test_problems_are_the_first_few_with_their_count() -> None:
    with pytest.raises(ValidationError) as error:
        Rows.model_validate({"records": [{"age": True, "job": 3}] + [{}] * 50})
    refused = problems_of(error.value)
    assert refused.status == 400
    assert refused.count == 2 + 50 * 2
    assert len(refused.problems) == MAX_PROBLEMS
    assert refused.problems[:3] == [
        "records[0].age: Input should be a valid integer (got true)",
        "records[0].job: Input should be a valid string (got 3)",
        "records[1].age: Field required",
    ]
    assert b'"problem_count":102' in refused.body()


def test_shown_cuts_long_values_and_quotes_text() -> None:
    assert shown("39") == '"39"'
    assert shown(None) == "null"
    long = shown("x" * 10_000)
    assert len(long) < SHOWN_CHARACTERS + 30
    assert long.endswith("(10002 characters)")


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (b"application/json", True),
        (b"Application/JSON; charset=utf-8", True),
        (b"text/plain", False),
        (b"multipart/form-data", False),
        (None, False),
    ],
)
def test_only_json_content_types_pass(content_type: bytes | None, expected: bool) -> None:
    assert is_json(content_type) is expected


def test_an_object_with_a_million_keys_and_one_repeat_is_refused_quickly() -> None:
    """Repeats are counted in linear time: a quadratic count of a 1,000,000-key object would never end."""
    body = b'{"records": [{' + b", ".join(b'"k%d": 1' % key for key in range(1_000_000)) + b', "k7": 2}]}'
    started = time.perf_counter()
    with pytest.raises(RefusedRequestError, match='repeats the key\\(s\\) "k7"'):
        parse_json(body)
    assert time.perf_counter() - started < 10
