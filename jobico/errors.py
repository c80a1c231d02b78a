"""The whole error tree of Jobico; every error a user can see is one of these.

    JobicoError                      root; `message` is what the user reads
    ├── InvalidInput                 the caller sent something wrong (HTTP 400, exit 2)
    │   ├── PackageInvalid           a package YAML breaks a rule; `path` names the field
    │   ├── FileInvalid              an uploaded or referenced file is unusable; `file` names it
    │   ├── InvalidName              a tenant, package or file name that could escape its place
    │   ├── BodyTooLarge             a request body over the listener's limit (HTTP 413)
    │   └── EventRejected            an event fails its JSON Schema (HTTP 422)
    ├── NotFound                     no such tenant, package, revision, file or event (404, exit 3)
    ├── Unauthenticated              no token or credentials, or bad ones (401, exit 8)
    ├── Forbidden                    a valid token acting outside its tenant (403, exit 9)
    ├── Conflict                     the thing exists already (409, exit 4)
    ├── QueueFull                    a tenant queue is over its limit (429, exit 5)
    ├── QuotaExceeded                a tenant quota (bytes, packages) is used up (429, exit 5)
    │   └── RateLimited              events per second over the tenant's rate (429 + Retry-After)
    └── Unavailable                  a component cannot be reached (503, exit 6)
        └── NotRunning               the platform is not up

Errors cross Ray actor boundaries, so each one pickles with all its details: constructors take
the message plus keyword details, and `__reduce__` rebuilds from exactly those.
"""

from __future__ import annotations

from typing import Any


class JobicoError(Exception):
    """Root of every error Jobico raises on purpose."""

    code = "jobico_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.details))

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """The one JSON error shape: {"code", "message", **details}."""
        return {"code": self.code, "message": self.message, **self.details}


def _rebuild(cls: type[JobicoError], message: str, details: dict[str, Any]) -> JobicoError:
    return cls(message, **details)


class InvalidInput(JobicoError):
    code = "invalid_input"


class PackageInvalid(InvalidInput):
    code = "package_invalid"


class FileInvalid(InvalidInput):
    code = "file_invalid"


class InvalidName(InvalidInput):
    code = "invalid_name"


class BodyTooLarge(InvalidInput):
    code = "body_too_large"


class EventRejected(InvalidInput):
    code = "event_rejected"


class NotFound(JobicoError):
    code = "not_found"


class Unauthenticated(JobicoError):
    code = "unauthenticated"


class Forbidden(JobicoError):
    code = "forbidden"


class Conflict(JobicoError):
    code = "conflict"


class QueueFull(JobicoError):
    code = "queue_full"


class QuotaExceeded(JobicoError):
    code = "quota_exceeded"


class RateLimited(QuotaExceeded):
    code = "rate_limited"


class Unavailable(JobicoError):
    code = "unavailable"


class NotRunning(Unavailable):
    code = "not_running"


# Where each group lands at the edges: the HTTP listener and the CLI read these two tables only.
HTTP_STATUS: dict[type[JobicoError], int] = {
    EventRejected: 422,
    BodyTooLarge: 413,
    InvalidInput: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    QueueFull: 429,
    QuotaExceeded: 429,
    Unavailable: 503,
    JobicoError: 500,
}

EXIT_CODE: dict[type[JobicoError], int] = {
    InvalidInput: 2,
    NotFound: 3,
    Conflict: 4,
    QueueFull: 5,
    QuotaExceeded: 5,
    Unavailable: 6,
    Unauthenticated: 8,
    Forbidden: 9,
    JobicoError: 1,
}


def from_code(code: str, message: str, details: dict[str, Any]) -> JobicoError:
    """The error a `code` names (as in `to_dict`), rebuilt from its message and details; an
    unknown code comes back as a JobicoError."""
    cls = _BY_CODE.get(code, JobicoError)
    return cls(message, **details)


def _subclasses(cls: type[JobicoError]) -> list[type[JobicoError]]:
    return [cls, *(c for sub in cls.__subclasses__() for c in _subclasses(sub))]


_BY_CODE: dict[str, type[JobicoError]] = {c.code: c for c in _subclasses(JobicoError)}


def lookup(table: dict[type[JobicoError], int], error: JobicoError) -> int:
    """The entry of the most specific class in `table` that `error` is an instance of."""
    for cls in type(error).__mro__:
        if cls in table:
            return table[cls]  # type: ignore[index]
    return table[JobicoError]
