"""RFC 6901 JSON pointers: where an event's ordering key lives (`/customer/id`), and where in
an event a schema problem sits."""

from __future__ import annotations

from collections.abc import Iterable


def pointer(path: Iterable[object]) -> str:
    """RFC 6901 pointer of a path of keys and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


_MISSING = object()


def resolve(doc: object, ptr: str) -> object:
    """What the RFC 6901 pointer `ptr` names in `doc`; KeyError if it names nothing."""
    if ptr == "":
        return doc
    if not ptr.startswith("/"):
        raise KeyError(ptr)
    for token in (t.replace("~1", "/").replace("~0", "~") for t in ptr[1:].split("/")):
        if isinstance(doc, dict):
            doc = doc.get(token, _MISSING)
        elif isinstance(doc, list) and _is_index(token):
            doc = doc[int(token)] if int(token) < len(doc) else _MISSING
        else:
            doc = _MISSING
        if doc is _MISSING:
            raise KeyError(ptr)
    return doc


def _is_index(token: str) -> bool:
    """An array index as RFC 6901 spells it: ASCII digits, no leading zero."""
    return token.isascii() and token.isdigit() and (token == "0" or token[0] != "0")
