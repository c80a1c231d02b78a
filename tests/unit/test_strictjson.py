"""The one JSON parser of events (jobico.strictjson): what Python's json reads beyond JSON is
refused as InvalidInput naming what was read; JSON itself parses as Python's json parses it."""

from __future__ import annotations

import json

import pytest

from jobico import strictjson
from jobico.errors import InvalidInput


def refusal(raw: bytes, **bounds: int) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        strictjson.loads(raw, "the text", **bounds)
    return caught.value


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": [1, 2.5, -0.0, 1e300, true, null], "b": {"c": "d"}}',
        b'"caf\xc3\xa9 \\u00e9 \\ud83d\\ude00"',
        b"[]",
        b" 12 ",
        '{"a": "\\ud83d\\ude00 \u00e9"}'.encode("utf-16"),
    ],
)
def test_json_parses_to_what_pythons_json_parses_it_to(raw: bytes) -> None:
    assert strictjson.loads(raw, "the text") == json.loads(raw)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"a": NaN}', "NaN is not JSON"),
        (b"[Infinity]", "Infinity is not JSON"),
        (b"[-Infinity]", "-Infinity is not JSON"),
        (b"[1e400]", "number 1e400 is out of range"),
        (b"[-1e400]", "number -1e400 is out of range"),
    ],
)
def test_numbers_no_json_can_carry_onward_are_refused(raw: bytes, why: str) -> None:
    assert refusal(raw).message == f"the text is not valid JSON: {why}"


@pytest.mark.parametrize(
    "raw",
    [
        rb'"\ud800"',
        rb'{"a\uDFFFb": 1}',
        rb'["\ude00\ud83d"]',  # a pair the wrong way round
    ],
)
def test_a_lone_surrogate_escape_is_refused(raw: bytes) -> None:
    message = refusal(raw).message
    assert message.startswith("the text is not valid JSON: ") and "lone UTF-16 surrogate" in message


@pytest.mark.parametrize(
    "raw",
    [
        b'"\xed\xa0\x80"',  # U+D800 as UTF-8 would spell it, were it allowed
        '"\\ud800"'.encode("utf-16-le"),
        '"\ud800"'.encode("utf-16", "surrogatepass"),
        '["\\udc00"]'.encode("utf-32"),
    ],
)
def test_a_lone_surrogate_in_bytes_or_in_a_utf16_or_utf32_text_is_refused_too(raw: bytes) -> None:
    assert "lone UTF-16 surrogate" in refusal(raw).message


def test_text_whose_bytes_lead_like_a_surrogates_parses_when_it_holds_none() -> None:
    assert strictjson.loads('{"a": "\ud55c"}'.encode(), "the text") == {"a": "\ud55c"}  # 한


def test_an_escaped_surrogate_pair_is_the_character_it_encodes() -> None:
    assert strictjson.loads(rb'"\ud83d\ude00"', "the text") == "\U0001f600"


@pytest.mark.parametrize("raw", [b"", b"{", b'{"a": 1,}', b"\xff", b"[1] [2]"])
def test_text_that_is_not_json_is_refused_with_the_parsers_reason(raw: bytes) -> None:
    assert refusal(raw).message.startswith("the text is not valid JSON: ")


def test_nesting_past_the_bound_is_refused_with_its_limit() -> None:
    error = refusal(b'{"a": [[["deep"]]]}', max_depth=3)
    assert error.message == "JSON is nested deeper than 3 levels"
    assert error.details == {"limit": 3}
    assert strictjson.loads(b'{"a": [["deep"]]}', "the text", max_depth=3) == {"a": [["deep"]]}


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    raw = b'{"a": "[[[[{{{{", "b": ["\\"]]]]{{{{"]}'
    assert strictjson.loads(raw, "the text", max_depth=2) == json.loads(raw)


def test_without_a_bound_nesting_past_the_parsers_recursion_is_refused_not_raised() -> None:
    assert refusal(b"[" * 100_000 + b"]" * 100_000).message.startswith("the text is not valid JSON")


def test_a_duplicate_key_keeps_its_last_value_as_in_pythons_json() -> None:
    assert strictjson.loads(b'{"a": 1, "a": 2}', "the text") == {"a": 2}
