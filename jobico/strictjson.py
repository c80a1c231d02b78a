"""Strict JSON: the one parser of events, for the listener, `jobico send` and `jobico run-local`.

Python's json module reads more than JSON: NaN and Infinity, numbers it can only hold as inf
(1e400), and escapes of lone UTF-16 surrogates that no UTF-8 text can carry. All three are
refused here, as InvalidInput naming what was read ("body is not valid JSON: ..."), so an event
any edge takes can be checked, queued and handed to a guest. A duplicate key keeps its last
value, as in Python's json. Nesting can be bounded before parsing: the parser recurses per level.
"""

from __future__ import annotations

import json
import math
import re

from jobico.errors import InvalidInput


def loads(raw: bytes, what: str, *, max_depth: int | None = None) -> object:
    """`raw` parsed; InvalidInput saying "`what` is not valid JSON" and why, or that it nests
    deeper than `max_depth` (None: as deep as the parser's recursion allows)."""
    if max_depth is not None:
        _check_depth(raw, max_depth)
    try:
        parsed = json.loads(raw, parse_float=_finite_float, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError too
        raise InvalidInput(f"{what} is not valid JSON: {e}") from None
    _check_surrogates(raw, parsed, what)
    return parsed


def _check_surrogates(raw: bytes, parsed: object, what: str) -> None:
    """Refuse a lone UTF-16 surrogate (`"\\ud800"`): the parser takes the escape (and its
    bytes, `ED A0 80`, which it decodes leniently), but no UTF-8 text can hold it, so the event
    could be neither checked nor queued. Only a text that may hold one pays for this check."""
    if not _may_hold_surrogate(raw):
        return
    try:
        json.dumps(parsed, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        why = "a string escapes a lone UTF-16 surrogate, which UTF-8 cannot carry"
        raise InvalidInput(f"{what} is not valid JSON: {why}") from None


def _may_hold_surrogate(raw: bytes) -> bool:
    """An escape `\\ud…` (as a pair escapes an emoji too), a byte 0xED (which leads U+D000 to
    U+DFFF in UTF-8, surrogates among them), or a text in UTF-16 or UTF-32, which the parser
    also reads."""
    if b"\\ud" in raw or b"\\uD" in raw or b"\xed" in raw:
        return True
    return json.detect_encoding(raw) not in ("utf-8", "utf-8-sig")


_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)  # a JSON string, escapes and all
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN = frozenset(b"[{")


def _check_depth(raw: bytes, max_depth: int) -> None:
    """Refuse nesting deeper than `max_depth` before parsing: the parser recurses per level."""
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return  # cannot be deeper than it has openers: the usual case, decided in C
    depth = 0
    for byte in _STRING.sub(b"", raw).translate(None, _NOT_BRACKET):
        depth += 1 if byte in _OPEN else -1
        if depth > max_depth:
            raise InvalidInput(f"JSON is nested deeper than {max_depth} levels", limit=max_depth)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to inf, which no JSON can carry onward
        raise ValueError(f"number {text} is out of range")
    return value


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
