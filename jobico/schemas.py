"""An event's JSON Schema, compiled once for the listener: jsonschema's verdicts and messages,
with jsonschema-rs answering "valid" first where the two are known to agree.

Why two validators: the listener checks every posted event on its one event-loop thread, and
`jsonschema` spends about 12 µs on a three-property object, against 0.1 µs for jsonschema-rs
(a Rust implementation). `jsonschema` stays the authority: it is what `jobico deploy` checks
schemas with, and its best-match messages are the 422 answers senders see. So an event
jsonschema-rs accepts is accepted at once, and every other event is judged, and explained, by
`jsonschema`: the fast path can only answer "valid" sooner, never refuse.

That is sound only where jsonschema-rs accepts nothing `jsonschema` refuses. They differ on
purpose or by platform in a few keywords, and a schema using any of them is checked by
`jsonschema` alone (`fast_path_for`):
- `format`: `jsonschema` checks the formats whose optional packages are installed, jsonschema-rs
  its own set, with its own rules;
- `pattern`, `patternProperties`: Python's `re` against ECMA 262 regular expressions (`\\s`,
  `\\d` and `$` match different strings);
- `multipleOf`: `jsonschema` divides floats (0.07 is not a multiple of 0.01 there), jsonschema-rs
  does not;
- a `$ref` outside the schema itself: jsonschema-rs would fetch it, `jsonschema` does not.
`tests/unit/test_schemas.py` holds the rest to this with generated schemas and events.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators
import jsonschema_rs

from jobico.errors import JobicoError
from jobico.jsonpointer import pointer


@dataclass(frozen=True)
class SchemaProblem:
    path: str  # JSON pointer into the event ("" = the event itself)
    reason: str


# An event -> its problems, the most telling first; [] when it is valid.
Validate = Callable[[object], list[SchemaProblem]]
Accepts = Callable[[object], bool]

# Keywords on which the two validators may disagree (see the module's docstring).
_DIVERGENT = frozenset({"format", "pattern", "patternProperties", "multipleOf"})
_REFS = frozenset({"$ref", "$dynamicRef", "$recursiveRef"})
# Keywords whose value maps names to subschemas: the names are not keywords.
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "dependentSchemas", "dependencies"})
# Keywords whose value is data, not schema.
_DATA = frozenset({"enum", "const", "default", "examples"})

_RUST_DRAFTS: dict[type[Any], Any] = {
    jsonschema.Draft4Validator: jsonschema_rs.Draft4Validator,
    jsonschema.Draft6Validator: jsonschema_rs.Draft6Validator,
    jsonschema.Draft7Validator: jsonschema_rs.Draft7Validator,
    jsonschema.Draft201909Validator: jsonschema_rs.Draft201909Validator,
    jsonschema.Draft202012Validator: jsonschema_rs.Draft202012Validator,
}


class SchemaUnusable(Exception):
    """Not JSON, or not a JSON Schema of its declared draft; `message` says which and where."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def read_schema(data: bytes) -> tuple[type[Any], Any]:
    """A schema's validator class (by its `$schema`, latest draft by default) and the schema,
    checked against its draft's metaschema; SchemaUnusable if it is not one. `jobico deploy`
    checks schema files with this, and the listener compiles them with it."""
    try:
        schema = json.loads(data)
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
    except ValueError as e:
        raise SchemaUnusable(f"not valid JSON: {e}") from None
    except jsonschema.exceptions.SchemaError as e:
        where = "/".join(map(str, e.absolute_path)) or "(root)"
        raise SchemaUnusable(f"not a valid JSON Schema at {where}: {e.message}") from None
    return cls, schema


def compile_schema(data: bytes, *, name: str = "schema", **details: Any) -> Validate:
    """The validator of a schema (JSON bytes); JobicoError, with `details`, if it is not a
    usable JSON Schema."""
    try:
        cls, schema = read_schema(data)
    except SchemaUnusable as e:
        raise JobicoError(f"{name} is unusable: {e.message}", **details) from None
    checker = cls(schema, format_checker=cls.FORMAT_CHECKER)
    accepts = fast_path_for(cls, schema)

    def validate(instance: object) -> list[SchemaProblem]:
        if accepts is not None and _accepted(accepts, instance):
            return []
        errors = list(checker.iter_errors(instance))
        if not errors:
            return []
        best = jsonschema.exceptions.best_match(errors)  # the most telling one goes first
        rest = [e for e in errors if e is not best]
        return [SchemaProblem(pointer(e.absolute_path), e.message) for e in [best, *rest]]

    return validate


def fast_path_for(cls: type[Any], schema: object) -> Accepts | None:
    """jsonschema-rs's `is_valid` for this schema under `cls`'s draft, or None where the two
    validators may disagree (or jsonschema-rs cannot compile it)."""
    rust = _RUST_DRAFTS.get(cls)
    if rust is None or not _agreed(schema):
        return None
    try:
        return rust(schema, validate_formats=False).is_valid  # type: ignore[no-any-return]
    except Exception:  # e.g. a construct jsonschema-rs does not support: jsonschema alone
        return None


def _accepted(accepts: Accepts, instance: object) -> bool:
    try:
        return accepts(instance)
    except Exception:  # a value Rust cannot take (a lone surrogate): jsonschema judges it
        return False


def _agreed(node: object) -> bool:
    """Whether a schema (or any part of it) uses only keywords both validators read alike."""
    if isinstance(node, list):
        return all(_agreed(item) for item in node)
    if not isinstance(node, dict):
        return True
    for keyword, value in node.items():
        if keyword in _DIVERGENT:
            return False
        if keyword in _REFS and not (isinstance(value, str) and value.startswith("#")):
            return False
        if keyword in _DATA:
            continue
        if keyword in _SCHEMA_MAPS and isinstance(value, dict):
            if not all(_agreed(sub) for sub in value.values()):
                return False
        elif not _agreed(value):
            return False
    return True
