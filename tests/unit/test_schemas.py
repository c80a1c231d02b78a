"""The listener's schema validator: jsonschema's verdicts, whether or not jsonschema-rs answered
first. Generated schemas across drafts and generated events hold the two to agreeing."""

from __future__ import annotations

import json
import time
from typing import Any

import jsonschema
import jsonschema.validators
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from jobico.errors import JobicoError
from jobico.schemas import (
    MAX_PROBLEMS,
    Deadline,
    OverBudget,
    SchemaUnusable,
    compile_schema,
    fast_path_for,
    read_schema,
)

DRAFT4 = "http://json-schema.org/draft-04/schema#"
DRAFT6 = "http://json-schema.org/draft-06/schema#"
DRAFT7 = "http://json-schema.org/draft-07/schema#"
DRAFT2019 = "https://json-schema.org/draft/2019-09/schema"
DRAFT2020 = "https://json-schema.org/draft/2020-12/schema"

NAMES = st.sampled_from(["a", "b", "format", "pattern", "é"])
# Values where Python's equality and JSON's part ways (True == 1, 1 == 1.0), numbers past 64
# bits, and strings with characters outside the BMP.
EDGES = st.sampled_from(
    [True, False, 0, 1, 1.0, -0.0, 0.5, 10**20, -(10**30), 1e20, "", "1", "😀", "é", None]
)
SCALARS = st.one_of(
    EDGES, st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=4)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(NAMES, inner, max_size=4)),
    max_leaves=12,
)
NUMBERS = st.one_of(st.integers(-5, 5), st.sampled_from([0.5, 1.0, 1e20, 10**20]))
SIZES = st.integers(0, 3)
TYPES = st.sampled_from(["null", "boolean", "integer", "number", "string", "array", "object"])


def schemas(draft: str) -> st.SearchStrategy[Any]:
    """Schemas of `draft` built from the keywords it has (and a few jsonschema-only ones)."""
    modern = draft != DRAFT4
    since7 = draft in (DRAFT7, DRAFT2019, DRAFT2020)
    since2019 = draft in (DRAFT2019, DRAFT2020)

    def node(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        keywords: dict[str, st.SearchStrategy[Any]] = {
            "type": st.one_of(TYPES, st.lists(TYPES, min_size=1, max_size=3, unique=True)),
            "enum": st.lists(JSON, min_size=1, max_size=3),
            "minimum": NUMBERS,
            "maximum": NUMBERS,
            "minLength": SIZES,
            "maxLength": SIZES,
            "minItems": SIZES,
            "maxItems": SIZES,
            "uniqueItems": st.booleans(),
            "items": inner,
            "required": st.lists(NAMES, min_size=1, max_size=2, unique=True),
            "properties": st.dictionaries(NAMES, inner, max_size=2),
            "additionalProperties": st.one_of(st.booleans(), inner),
            "minProperties": SIZES,
            "maxProperties": SIZES,
            "allOf": st.lists(inner, min_size=1, max_size=2),
            "anyOf": st.lists(inner, min_size=1, max_size=2),
            "oneOf": st.lists(inner, min_size=1, max_size=2),
            "not": inner,
            # checked by jsonschema alone: a schema with these never takes the fast path
            "multipleOf": st.sampled_from([0.01, 0.1, 2, 3]),
            "pattern": st.sampled_from([r"^\s*$", r"^\d+$", "^[a-z]+$"]),
            "format": st.sampled_from(["date", "email", "ipv4"]),
        }
        if modern:
            keywords |= {
                "const": JSON,
                "exclusiveMinimum": NUMBERS,
                "exclusiveMaximum": NUMBERS,
                "contains": inner,
                "propertyNames": inner,
            }
        else:
            keywords |= {"exclusiveMinimum": st.booleans(), "exclusiveMaximum": st.booleans()}
        if since7:
            keywords |= {"if": inner, "then": inner, "else": inner}
        if since2019:
            keywords |= {
                "dependentRequired": st.dictionaries(NAMES, st.lists(NAMES, max_size=2)),
                "dependentSchemas": st.dictionaries(NAMES, inner, max_size=2),
                "unevaluatedProperties": st.one_of(st.booleans(), inner),
                "unevaluatedItems": st.one_of(st.booleans(), inner),
                "minContains": SIZES,
                "maxContains": SIZES,
            }
        if draft == DRAFT2020:
            keywords |= {"prefixItems": st.lists(inner, min_size=1, max_size=2)}
        chosen = st.lists(st.sampled_from(sorted(keywords)), max_size=3, unique=True)
        built = chosen.flatmap(lambda names: st.fixed_dictionaries({n: keywords[n] for n in names}))
        return st.one_of(built, st.booleans()) if modern else built

    leaf: st.SearchStrategy[Any] = st.one_of(st.just({}), st.fixed_dictionaries({"type": TYPES}))
    tree = st.recursive(leaf, node, max_leaves=6)
    return tree.map(lambda s: {"$schema": draft, **s} if isinstance(s, dict) else s)


def authority(schema: Any) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)  # type: ignore[no-any-return]


def assert_same_verdict(schema: Any, instance: Any) -> None:
    try:
        reference = authority(schema)
    except jsonschema.SchemaError:
        assume(False)  # not a schema jobico deploy would take
    problems = compile_schema(json.dumps(schema).encode())(instance)
    assert (problems == []) == reference.is_valid(instance), (schema, instance, problems)


@pytest.mark.parametrize("draft", [DRAFT4, DRAFT6, DRAFT7, DRAFT2019, DRAFT2020])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_listener_validator_gives_jsonschemas_verdict_on_every_draft(
    draft: str, data: st.DataObject
) -> None:
    schema = data.draw(schemas(draft), label="schema")
    assert_same_verdict(schema, data.draw(JSON, label="event"))


@given(instance=JSON)
@example(instance=0.07)
@example(instance={"a": "\ufeff"})
@example(instance={"a": "abc\n"})
@example(instance={"a": "\ud800"})
@example(instance={"a\n": "x"})
def test_keywords_the_validators_read_differently_get_jsonschemas_verdict(instance: Any) -> None:
    """0.07 is no multiple of 0.01 to jsonschema (which divides floats) but is to jsonschema-rs;
    "\\ufeff" is whitespace to ECMA's \\s but not to RE2's; a lone surrogate cannot cross
    into Rust."""
    for schema in (
        {"multipleOf": 0.01},
        {"properties": {"a": {"pattern": r"^\s*$"}}},
        {"properties": {"a": {"pattern": "^[a-z]+$"}}},
        {"patternProperties": {"^a$": {"maxLength": 0}}},
        {"properties": {"a": {"format": "email"}}},
        {"properties": {"a": {"maxLength": 1}}},
    ):
        assert_same_verdict(schema, instance)


def test_only_schemas_both_validators_read_alike_take_the_fast_path() -> None:
    def fast(schema: Any) -> bool:
        return fast_path_for(jsonschema.validators.validator_for(schema), schema) is not None

    assert fast({"type": "object", "properties": {"format": {"type": "string"}}})
    assert fast({"$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n"})
    assert fast({"enum": [{"pattern": "x"}]})  # data, not a keyword
    assert not fast({"properties": {"a": {"format": "date"}}})
    assert not fast({"items": {"pattern": "^a"}})
    assert not fast({"anyOf": [{"multipleOf": 0.5}]})
    assert not fast({"$ref": "https://example.com/other.json"})
    assert not fast({"$schema": "http://json-schema.org/draft-03/schema#"})


def test_the_greet_schema_takes_the_fast_path_and_still_explains_refusals() -> None:
    schema = {
        "type": "object",
        "properties": {"age": {"type": "integer", "minimum": 0}},
        "required": ["name"],
    }
    assert fast_path_for(jsonschema.Draft202012Validator, schema) is not None
    check = compile_schema(json.dumps(schema).encode())
    assert check({"name": "x", "age": 3}) == []
    (problem, *_) = check({"name": "x", "age": -1})
    assert (problem.path, problem.reason) == ("/age", "-1 is less than the minimum of 0")


def test_a_schema_that_is_not_json_schema_is_refused_with_the_details_given() -> None:
    with pytest.raises(JobicoError, match="greet is unusable") as refused:
        compile_schema(b'{"type": 5}', name="greet", tenant="t")
    assert refused.value.details == {"tenant": "t"}


def check(schema: Any, instance: Any) -> list[Any]:
    return compile_schema(json.dumps(schema).encode())(instance)


def timed(schema: Any, instance: Any) -> tuple[list[Any], float]:
    start = time.perf_counter()
    problems = check(schema, instance)
    return problems, time.perf_counter() - start


# Python's re takes about 0.5 s for 25 characters against ^(a+)+$, twice as long per one more.
REDOS = "^(a+)+$"
EVIL = "a" * 40 + "!"


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        ({"pattern": REDOS}, EVIL),
        ({"propertyNames": {"pattern": REDOS}}, {EVIL: 1}),
        ({"patternProperties": {REDOS: {}}, "additionalProperties": False}, {EVIL: 1}),
        ({"patternProperties": {REDOS: {}}, "unevaluatedProperties": False}, {EVIL: 1}),
        (
            {
                "$schema": DRAFT2019,
                "patternProperties": {REDOS: {}},
                "unevaluatedProperties": False,
            },
            {EVIL: 1},
        ),
        ({"patternProperties": {REDOS: {"type": "null"}}}, {EVIL: 1, "aaa": 1}),
    ],
)
def test_patterns_run_in_linear_time_wherever_jsonschema_uses_them(
    schema: Any, instance: Any
) -> None:
    problems, took = timed(schema, instance)
    assert problems and took < 0.1


def test_patterns_use_re2s_dialect_where_it_differs_from_pythons() -> None:
    """RE2's `$` is the end of the text (Python's also matches before a final newline), and
    its \\d is ASCII digits only, as in ECMA 262."""
    assert check({"pattern": "^[a-z]+$"}, "abc") == []
    assert check({"pattern": "^[a-z]+$"}, "abc\n") != []
    assert check({"pattern": "^\\d$"}, "\u0663") != []  # ARABIC-INDIC DIGIT THREE
    assert check({"pattern": "^.$"}, "é") == []  # a character, not a byte


@pytest.mark.parametrize(
    ("pattern", "why"),
    [("(a)\\1", "invalid escape sequence"), ("a(?=b)", "invalid perl operator")],
)
def test_a_pattern_re2_cannot_run_is_refused_naming_it_and_where(pattern: str, why: str) -> None:
    schema = {"properties": {"a/b": {"pattern": pattern}}, "patternProperties": {"x": {}}}
    with pytest.raises(SchemaUnusable) as refused:
        read_schema(json.dumps(schema).encode())
    message = refused.value.message
    assert f"pattern {pattern!r} at /properties/a~1b/pattern is not supported" in message
    assert why in message and "no backreferences or lookaround" in message
    with pytest.raises(SchemaUnusable, match="at /patternProperties/"):
        read_schema(json.dumps({"patternProperties": {pattern: {}}}).encode())
    read_schema(json.dumps({"enum": [{"pattern": pattern}]}).encode())  # data, not a pattern


def test_at_most_a_few_problems_are_collected_from_a_body_of_wrong_items() -> None:
    """500,000 wrong-typed items held a replica's loop for 10 s while every error was built."""
    problems, took = timed({"type": "array", "items": {"type": "integer"}}, ["x"] * 500_000)
    assert len(problems) == MAX_PROBLEMS and took < 0.5
    assert problems[0].reason == "'x' is not of type 'integer'"


def test_a_reason_quoting_a_huge_instance_is_cut_short() -> None:
    (problem,) = check({"type": "object"}, list(range(100_000)))
    assert len(problem.reason) <= 300 and problem.reason.endswith("…")


def test_unique_items_over_objects_is_decided_without_comparing_every_pair() -> None:
    """jsonschema compares every pair of items that do not sort: 13 s for 3,000 objects, so
    minutes for these 20,000. The 3 s bound leaves room for a machine loaded by Ray tests."""
    items = [{"a": i} for i in range(20_000)]
    assert timed({"uniqueItems": True}, items)[1] < 3
    problems, took = timed({"uniqueItems": True}, [*items, {"a": 5.0}])
    assert problems and took < 3
    # jsonschema's equality: 1 and 1.0 are one value, 1 and True are two
    assert check({"uniqueItems": True}, [{"a": 1}, {"a": True}]) == []
    assert check({"uniqueItems": True}, [{"a": [1]}, {"a": [1.0]}]) != []


def test_a_check_past_its_deadline_stops_with_over_budget() -> None:
    schema = {"type": "array", "items": {"type": "string", "pattern": "^a$"}}
    validate = compile_schema(json.dumps(schema).encode())
    start = time.perf_counter()
    with pytest.raises(OverBudget), Deadline(time.monotonic() + 0.05, share_gil=True):
        validate(["a"] * 500_000)  # about 3 s of jsonschema without a deadline
    assert time.perf_counter() - start < 0.5
    assert validate(["a"] * 10) == []  # no deadline outside the block


def test_format_regex_keeps_pythons_verdict_on_short_strings_and_bounds_long_ones() -> None:
    """Python's re compiles a megabyte in about 2 s, in one call no deadline can stop."""
    schema = {"format": "regex"}
    assert check(schema, "(a)\\1") == []  # a backreference is a regex, as jsonschema says
    assert check(schema, "(") != []
    problems, took = timed(schema, "[a-z]" * 200_000)
    assert problems == [] and took < 1
    assert check(schema, "(a)\\1" + "a" * 5000) != []  # past 4096 characters, RE2's verdict
