"""RFC 6901 JSON pointers: where an event's ordering key lives (`/customer/id`)."""

from __future__ import annotations

from typing import Any

_MISSING = object()


def resolve(document: Any, pointer: str) -> Any:
    """The value at `pointer`, or raise KeyError naming the first token that does not resolve."""
    if pointer == "":
        return document
    value = document
    for raw in pointer.lstrip("/").split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        value = _step(value, token)
        if value is _MISSING:
            raise KeyError(token)
    return value


def _step(value: Any, token: str) -> Any:
    if isinstance(value, dict):
        return value.get(token, _MISSING)
    if isinstance(value, list) and token.isdigit() and int(token) < len(value):
        return value[int(token)]
    return _MISSING
