"""An event's JSON Schema, compiled once for the listener: jsonschema's verdicts and messages,
with jsonschema-rs answering "valid" first where the two are known to agree, and every check
bounded in cost (docs/security.md: one request must not stall a replica).

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
- `pattern`, `patternProperties`: RE2 here (below) against jsonschema-rs's own engine (`\\d`
  matches other digits there);
- `multipleOf`: `jsonschema` divides floats (0.07 is not a multiple of 0.01 there), jsonschema-rs
  does not;
- a `$ref` outside the schema itself: jsonschema-rs would fetch it, `jsonschema` does not.
`tests/unit/test_schemas.py` holds the rest to this with generated schemas and events.

Bounds on `jsonschema`'s side, since a hostile body may take the slow path on purpose:
- regular expressions run on RE2, which cannot backtrack: Python's `re` took 0.5 s for
  `^(a+)+$` against 25 characters, doubling with each one more. A pattern RE2 cannot compile
  (backreferences, lookaround) is refused with the schema (`read_schema`);
- at most `MAX_PROBLEMS` errors are collected: a body of 500,000 wrong items held a replica's
  loop for 10 s while every error was built;
- `uniqueItems` over items that do not sort is decided by hashing (jsonschema compares every
  pair: 13 s for 3,000 objects);
- every keyword and every regex search checks the deadline of a `Deadline`, so a caller can stop a
  check that runs too long (OverBudget) and, off the event loop, let other threads in.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice, pairwise
from typing import Any

import jsonschema
import jsonschema._keywords
import jsonschema._legacy_keywords
import jsonschema._utils
import jsonschema.exceptions
import jsonschema.validators
import jsonschema_rs
import re2

from jobico.errors import JobicoError
from jobico.jsonpointer import pointer

MAX_PROBLEMS = 10  # errors collected per event: the 422 answer lists these
MAX_REASON = 300  # characters of one reason: jsonschema's messages quote the whole instance


@dataclass(frozen=True)
class SchemaProblem:
    path: str  # JSON pointer into the event ("" = the event itself)
    reason: str


# An event -> its problems (at most MAX_PROBLEMS), the most telling first; [] when it is valid.
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


class OverBudget(Exception):
    """A check ran past the `Deadline` set around it."""


def read_schema(data: bytes) -> tuple[type[Any], Any]:
    """A schema's validator class (by its `$schema`, latest draft by default) and the schema,
    checked against its draft's metaschema and for patterns RE2 cannot run; SchemaUnusable if
    it is not usable. `jobico deploy` checks schema files with this, and the listener compiles
    them with it."""
    try:
        schema = json.loads(data)
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
    except ValueError as e:
        raise SchemaUnusable(f"not valid JSON: {e}") from None
    except jsonschema.exceptions.SchemaError as e:
        where = "/".join(map(str, e.absolute_path)) or "(root)"
        raise SchemaUnusable(f"not a valid JSON Schema at {where}: {e.message}") from None
    for where, pattern in _patterns(schema, ""):
        try:
            _regex(pattern)
        except re2.error as e:
            raise SchemaUnusable(
                f"pattern {pattern!r} at {where or '(root)'} is not supported: {_why(e)}; "
                "patterns run on RE2, which has no backreferences or lookaround"
            ) from None
    return cls, schema


def compile_schema(data: bytes, *, name: str = "schema", **details: Any) -> Validate:
    """The validator of a schema (JSON bytes); JobicoError, with `details`, if it is not a
    usable JSON Schema."""
    try:
        cls, schema = read_schema(data)
    except SchemaUnusable as e:
        raise JobicoError(f"{name} is unusable: {e.message}", **details) from None
    checker = _bounded_class(cls)(schema, format_checker=_formats(cls.FORMAT_CHECKER))
    accepts = fast_path_for(cls, schema)

    def validate(instance: object) -> list[SchemaProblem]:
        if accepts is not None and _accepted(accepts, instance):
            return []
        errors = list(islice(checker.iter_errors(instance), MAX_PROBLEMS))
        if not errors:
            return []
        best = jsonschema.exceptions.best_match(errors)  # the most telling one goes first
        rest = [e for e in errors if e is not best]
        return [SchemaProblem(pointer(e.absolute_path), _short(e.message)) for e in [best, *rest]]

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


def _short(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"


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


def _patterns(node: object, where: str) -> Iterator[tuple[str, str]]:
    """(JSON pointer, regex) of every `pattern` and `patternProperties` name in a schema."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _patterns(item, f"{where}/{i}")
        return
    if not isinstance(node, dict):
        return
    for keyword, value in node.items():
        at = f"{where}/{_escape(keyword)}"
        if keyword in _DATA:
            continue
        if keyword == "pattern" and isinstance(value, str):
            yield at, value
        elif keyword in _SCHEMA_MAPS | {"patternProperties"} and isinstance(value, dict):
            for name, sub in value.items():
                if keyword == "patternProperties":
                    yield f"{at}/{_escape(name)}", name
                yield from _patterns(sub, f"{at}/{_escape(name)}")
        else:
            yield from _patterns(value, at)


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


# --- RE2 for jsonschema's regular expressions ----------------------------------------------------

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # refusals are reported with the schema, not on stderr
_RE2_OPTIONS.never_capture = True  # only "does it match" is asked


@functools.lru_cache(maxsize=4096)
def _regex(pattern: str) -> Any:
    # A bytes pattern, searched in UTF-8 bytes: re2's str interface maps every match's offsets
    # back to characters, which made a search 2.5 times as long.
    return re2.compile(pattern.encode("utf-8", "surrogatepass"), _RE2_OPTIONS)


def _why(error: Exception) -> str:
    (reason, *_) = error.args or ("cannot compile",)
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)


class _LinearRe:
    """What jsonschema's keyword modules call `re`: they use `re.search` alone, for `pattern`,
    `patternProperties` and the properties that `additionalProperties` and
    `unevaluatedProperties` find left over. Each search checks the deadline: one keyword may
    search every property name of an object against every pattern."""

    @staticmethod
    def search(pattern: str, string: str) -> object:
        _tick()
        return _regex(pattern).search(string.encode("utf-8", "surrogatepass"))


# jsonschema offers no seam for its regex engine, and copying the four keywords that search
# (one of them 70 lines of `unevaluatedProperties`) would drift from the pinned version; so its
# modules' `re` is replaced, for every jsonschema check in the process (deploy's included).
for _module in (jsonschema._keywords, jsonschema._utils, jsonschema._legacy_keywords):
    _module.re = _LinearRe  # type: ignore[attr-defined]


_REGEX_BY_PYTHON = 4096  # characters: Python's re compiles about 0.5 MB a second


def _formats(checker: Any) -> Any:
    """`checker` with format `regex` bounded: Python's `re` compiles a string of a megabyte in
    about 2 s in one call, which no deadline can stop; RE2 takes 0.1 s. Strings up to
    _REGEX_BY_PYTHON characters keep jsonschema's verdict, by Python's `re`; longer ones are
    regexes if RE2 compiles them."""
    if "regex" not in checker.checkers:
        return checker
    python_regex, python_raises = checker.checkers["regex"]

    def is_regex(instance: object) -> bool:
        if not isinstance(instance, str) or len(instance) <= _REGEX_BY_PYTHON:
            return bool(python_regex(instance))
        re2.compile(instance.encode("utf-8", "surrogatepass"), _RE2_OPTIONS)
        return True

    bounded = copy.copy(checker)
    bounded.checkers = {**checker.checkers, "regex": (is_regex, (python_raises, re2.error))}
    return bounded


# --- the deadline --------------------------------------------------------------------------------

# Off the loop, a check runs half a millisecond, then sleeps as long: at most half a core, so
# the replica's other work (and the node's other processes) keep the rest.
_SHARE_EVERY_S = 0.0005
_SHARE_FOR_S = 0.0005


class _Budget(threading.local):
    deadline = math.inf
    share_gil = False
    next_share = 0.0


_budget = _Budget()


class Deadline:
    """A context: checks made in this thread within it raise OverBudget once `time.monotonic()`
    passes `at`. With `share_gil` they also sleep half a millisecond in every millisecond,
    leaving the GIL: a thread running Python holds it for 5 ms at a time, and the event loop
    waits that long for each of its wake-ups (a loop's 1 ms sleeps took 6 ms beside a check,
    under 1 ms with this). A class, not a generator: it is set around every request."""

    __slots__ = ("_at", "_saved", "_share_gil")

    def __init__(self, at: float, *, share_gil: bool = False) -> None:
        self._at, self._share_gil = at, share_gil
        self._saved = (math.inf, False)

    def __enter__(self) -> None:
        self._saved = (_budget.deadline, _budget.share_gil)
        _budget.deadline, _budget.share_gil = self._at, self._share_gil

    def __exit__(self, *exc: object) -> None:
        _budget.deadline, _budget.share_gil = self._saved


def within_budget() -> None:
    """OverBudget if the enclosing `Deadline` has passed."""
    _tick()


def _tick() -> None:
    budget = _budget
    now = time.monotonic()
    if now > budget.deadline:
        raise OverBudget(f"past the deadline by {now - budget.deadline:.3f} s")
    if budget.share_gil and now >= budget.next_share:
        time.sleep(_SHARE_FOR_S)  # releases the GIL: a thread waiting for it takes it now
        budget.next_share = time.monotonic() + _SHARE_EVERY_S


_BOUNDED: dict[type[Any], type[Any]] = {}


def _bounded_class(cls: type[Any]) -> type[Any]:
    """`cls` with every keyword checking the deadline first, and `uniqueItems` in linear time."""
    bounded_cls = _BOUNDED.get(cls)
    if bounded_cls is None:
        keywords = {**cls.VALIDATORS}
        if "uniqueItems" in keywords:
            keywords["uniqueItems"] = _unique_items
        ticking = {name: _ticking(fn) for name, fn in keywords.items()}
        bounded_cls = _BOUNDED[cls] = jsonschema.validators.extend(cls, ticking)
    return bounded_cls


def _ticking(keyword: Callable[..., Any]) -> Callable[..., Any]:
    def checked(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        _tick()
        return keyword(validator, value, instance, schema)

    return checked


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if unique and validator.is_type(instance, "array") and not _uniq(instance):
        yield jsonschema.exceptions.ValidationError(f"{instance!r} has non-unique elements")


def _uniq(items: list[Any]) -> bool:
    """jsonschema's `uniq`, with the same answers: sorted neighbours compared when the items
    sort, otherwise (objects) their hashable keys instead of every pair."""
    unbool, equal = jsonschema._utils.unbool, jsonschema._utils.equal
    try:
        ordered = sorted(unbool(item) for item in items)
    except (NotImplementedError, TypeError):
        seen: set[object] = set()
        for i, item in enumerate(items):
            if i % 1024 == 0:
                _tick()
            key = _key(item)
            if key in seen:
                return False
            seen.add(key)
        return True
    return not any(equal(a, b) for a, b in pairwise(ordered))


def _key(value: object) -> object:
    """A hashable key equal for values jsonschema's `equal` calls equal (1 and 1.0, not True)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)  # 1 == 1.0 and their hashes agree
    if isinstance(value, list):
        return ("array", tuple(_key(item) for item in value))
    if isinstance(value, dict):
        return ("object", frozenset((name, _key(item)) for name, item in value.items()))
    return ("other", value)  # strings and null
