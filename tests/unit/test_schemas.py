"""The listener's schema validator: jsonschema's verdicts, whether or not jsonschema-rs answered
first. Generated schemas across drafts and generated events hold the two to agreeing."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import jsonschema.validators
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from jobico.errors import JobicoError
from jobico.schemas import compile_schema, fast_path_for

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

    leaf = st.one_of(st.just({}), st.fixed_dictionaries({"type": TYPES}))
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
    "\\ufeff" is whitespace to ECMA's \\s but not to Python's; "abc\\n" matches ^[a-z]+$ in
    Python only, and so does the property name "a\\n" for ^a$; a lone surrogate cannot cross
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
