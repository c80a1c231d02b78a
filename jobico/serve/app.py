"""The listener's HTTP app: reads, limits, parses and validates posted events, then enqueues them.

No Ray here: `jobico.serve.listener` wraps this app in a Serve deployment and supplies the
Backend (the queue actors) and the Gate (credentials and rates, `jobico.serve.gate`). Every
error leaves in one shape, its status from `errors.HTTP_STATUS`.
"""

from __future__ import annotations

import asyncio
import functools
import http
import json
import logging
import math
import re
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from jobico.access import signatures
from jobico.errors import (
    HTTP_STATUS,
    BodyTooLarge,
    InvalidInput,
    JobicoError,
    NotFound,
    QueueFull,
    RateLimited,
    Unavailable,
    lookup,
)
from jobico.queue.store import NewEvent
from jobico.schemas import OverBudget
from jobico.serve.gate import Gate
from jobico.serve.routes import Route, Routes, checked_events

log = logging.getLogger(__name__)


class Backend(Protocol):
    """The seam the Serve deployment implements with Ray actors."""

    async def enqueue(self, tenant: str, events: list[NewEvent], key: str | None) -> list[str]:
        """Durably enqueue all or nothing; the new ids in order. Raises QueueFull, Unavailable.

        A `key` seen before (within its time to live) enqueues nothing and answers the ids of
        the first time."""
        ...

    async def healthy(self) -> bool:
        """Whether the queue and control actors can be reached."""
        ...


# (tenant, event, events accepted, the refusal's error code or None)
Observe = Callable[[str, str, int, str | None], None]


def _unobserved(tenant: str, event: str, accepted: int, refused: str | None) -> None:
    pass


@dataclass(frozen=True)
class Limits:
    body_bytes: int
    events: int
    depth: int


def create_app(
    routes: Routes,
    backend: Backend,
    *,
    max_body_bytes: int = 1024 * 1024,
    max_events: int = 1000,
    max_depth: int = 64,
    gate: Gate | None = None,
    observe: Observe | None = None,
) -> FastAPI:
    """The listener app; all its state comes from these arguments (no gate: no event
    requires credentials, no rate). `observe` hears each POST's outcome (the metrics)."""
    limits = Limits(max_body_bytes, max_events, max_depth)
    ingest = Ingest(routes, backend, limits, gate or Gate(), observe or _unobserved)
    app = ListenerAPI(
        ingest, title="Jobico listener", summary="Webhooks that queue events for WASM jobs"
    )
    _install_error_handlers(app)

    # The fast lane answers these two before FastAPI routes them; declared here all the same,
    # for the OpenAPI document and for whatever the fast lane passes on.
    @app.post("/events/{tenant}/{event}", **_docs(BATCH_BODY, "Post a batch of events"))
    async def post_events(tenant: str, event: str, request: Request) -> Response:
        return await ingest.answer(True, tenant, event, request.headers.get, request.stream())

    @app.post("/webhooks/{tenant}/{event}", **_docs(EVENT_BODY, "Post one event (a webhook)"))
    async def post_webhook(tenant: str, event: str, request: Request) -> Response:
        return await ingest.answer(False, tenant, event, request.headers.get, request.stream())

    @app.get("/healthz", responses=_responses(HEALTH_ANSWERS))
    async def healthz() -> JSONResponse:
        try:
            ok = await backend.healthy()
        except Exception as e:  # a health probe must answer, whatever broke underneath
            log.warning("health check failed: %s", e)
            ok = False
        if not ok:
            raise Unavailable("the listener cannot reach its queue or control actors")
        return JSONResponse({"status": "ok"})

    return app


class ListenerAPI(FastAPI):
    """FastAPI with a fast lane: `POST /events/T/E` and `POST /webhooks/T/E` go straight to
    `Ingest`, past Starlette's routing, middleware layers and FastAPI's parameter solving.

    Those cost as much CPU per request as the ingest itself, and a replica's requests all run
    on one event loop thread: skipping them raised single-event ingest by a third
    (docs/performance.md). Every other request, and the OpenAPI document, is FastAPI's.
    """

    def __init__(self, ingest: Ingest, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ingest = ingest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path, root = scope["path"], scope.get("root_path", "")
            parts = (path[len(root) :] if root and path.startswith(root) else path).split("/")
            if len(parts) == 4 and parts[1] in _LANES and parts[2] and parts[3]:
                await self._fast(scope, receive, send, parts[1] == "events", parts[2], parts[3])
                return
        await super().__call__(scope, receive, send)

    async def _fast(
        self, scope: Scope, receive: Receive, send: Send, batch: bool, tenant: str, event: str
    ) -> None:
        headers: dict[str, str] = {}
        for name, value in reversed(scope["headers"]):  # the first of repeated headers wins
            headers[name.decode("latin-1")] = value.decode("latin-1")
        try:
            response = await self._ingest.answer(
                batch, tenant, event, headers.get, _chunks(receive)
            )
        except Exception as e:  # as FastAPI's last-resort handler would: logged, one shape
            log.error("unexpected error on POST %s", scope["path"], exc_info=e)
            response = error_response(JobicoError("internal error"))
        await response(scope, receive, send)


_LANES = frozenset(("events", "webhooks"))


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The request body as it arrives (Starlette's Request.stream, without the Request)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


@dataclass(frozen=True)
class Ingest:
    """One POST of events: read, limit, parse, validate every element, then enqueue them all;
    the answer is the response, errors included (in the one shape)."""

    routes: Routes
    backend: Backend
    limits: Limits
    gate: Gate
    observe: Observe

    async def answer(
        self,
        batch: bool,
        tenant: str,
        event: str,
        header: Callable[[str], str | None],
        body: AsyncIterator[bytes],
    ) -> Response:
        try:
            route = _route(self.routes, tenant, event)
            raw = await _read_body(header, body, self.limits.body_bytes)
            self.gate.admit(route, header, raw)  # before parsing: a stranger's JSON costs nothing
            parsed = _parse_json(raw, self.limits.depth)
            elements = _batch(parsed, self.limits.events) if batch else [parsed]
            self.gate.take(route.tenant, len(elements))
            key = _key(header, route, raw)
            ids = await _accept(self.routes, self.backend, route, elements, batch=batch, key=key)
        except JobicoError as error:
            self.observe(tenant, event, 0, error.code)
            return error_response(error)
        self.observe(tenant, event, len(ids), None)
        return JSONResponse({"ids": ids}, status_code=202)


# --- one request ---------------------------------------------------------------------------------


def _route(routes: Routes, tenant: str, event: str) -> Route:
    route = routes.get(tenant, event)
    if route is not None and route.postable:
        return route
    if route is not None:  # as good as unknown to a poster: 404, not 401
        why = "is a job's result; its job queues it, and only an auth: of its own opens it"
        raise NotFound(f"event {event!r} of tenant {tenant!r} {why}", tenant=tenant, event=event)
    if not routes.tenant_known(tenant):
        raise NotFound(f"unknown tenant {tenant!r}", tenant=tenant)
    raise NotFound(f"tenant {tenant!r} has no event {event!r}", tenant=tenant, event=event)


def _parse_json(body: bytes, max_depth: int) -> object:
    _check_depth(body, max_depth)
    try:
        parsed = json.loads(body, parse_float=_finite_float, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise InvalidInput(f"body is not valid JSON: {e}") from None
    _check_surrogates(body, parsed)
    return parsed


def _check_surrogates(body: bytes, parsed: object) -> None:
    """Refuse a lone UTF-16 surrogate (`"\\ud800"`): the parser takes the escape, but no UTF-8
    text can hold it, so the event could be neither checked nor queued. Only a body that has
    such an escape at all (`\\ud…`, as a pair escapes an emoji too) pays for this check."""
    if b"\\ud" not in body and b"\\uD" not in body:
        return
    try:
        json.dumps(parsed, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        why = "a string escapes a lone UTF-16 surrogate, which UTF-8 cannot carry"
        raise InvalidInput(f"body is not valid JSON: {why}") from None


async def _read_body(
    header: Callable[[str], str | None], chunks: AsyncIterator[bytes], limit: int
) -> bytes:
    """The body, refused as soon as it is known to exceed `limit` (declared or as it streams)."""
    declared = header("content-length")
    if declared is not None:
        if not declared.isascii() or not declared.isdigit():
            raise InvalidInput(f"Content-Length {declared!r} is not a number of bytes")
        if int(declared) > limit:
            raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:  # chunked, or more than declared: stop reading here
            raise _too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"body is larger than the limit of {limit} bytes", limit=limit)


_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)  # a JSON string, escapes and all
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN = frozenset(b"[{")


def _check_depth(body: bytes, max_depth: int) -> None:
    """Refuse nesting deeper than `max_depth` before parsing: the parser recurses per level."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return  # cannot be deeper than it has openers: the usual case, decided in C
    depth = 0
    for byte in _STRING.sub(b"", body).translate(None, _NOT_BRACKET):
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


def _batch(body: object, max_events: int) -> list[object]:
    if not isinstance(body, dict):
        raise InvalidInput('body must be a JSON object: {"data": [event, ...]}')
    data = body.get("data")
    if not isinstance(data, list) or not data:
        raise InvalidInput('"data" must be a non-empty list of events')
    if len(data) > max_events:
        raise InvalidInput(
            f"{len(data)} events in one request, at most {max_events}", limit=max_events
        )
    return data


def _key(header: Callable[[str], str | None], route: Route, body: bytes) -> str | None:
    """This request's idempotency key, scoped to the event it was posted to. For an event that
    requires a signature, the signed delivery id alone: an unsigned header must not make a
    replay new. Otherwise the sender's Idempotency-Key, or Standard Webhooks' webhook-id."""
    signed = signatures.delivery_id(route.auth[0], header, body) if route.auth else None
    key = signed if signed is not None else header("idempotency-key") or header("webhook-id")
    return f"{route.event}/{key}" if key else None


async def _accept(
    routes: Routes,
    backend: Backend,
    route: Route,
    elements: list[object],
    *,
    batch: bool,
    key: str | None,
) -> list[str]:
    """Validate every element, then enqueue them all: a request is accepted whole or not at all."""
    check = routes.cached_validator(route)
    if check is None and route.schema_digest is not None:
        check = await run_in_threadpool(routes.validator, route)  # loads: keep it off the loop
    build = functools.partial(checked_events, route, check, elements, batch=batch)
    try:
        events = build(received_at=time.time(), seconds=LOOP_BUDGET_S, on_loop=True)
    except OverBudget:  # a costly check: again in a thread, one request at a time
        off_loop = functools.partial(build, received_at=time.time(), seconds=CHECK_S, on_loop=False)
        events = await anyio.to_thread.run_sync(off_loop, limiter=_checks_limiter())
    return await backend.enqueue(route.tenant, events, key)


# The bounds of one request's schema checks (docs/security.md). They start on the event loop,
# where most take microseconds; past LOOP_BUDGET_S they start again in a thread, with CHECK_S to
# finish in, past which the request is refused (422). One such thread per replica: each that
# runs Python beside the loop's thread delays the loop's every wake-up.
LOOP_BUDGET_S = 0.002
CHECK_S = 2.0
_CHECKERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def _checks_limiter() -> anyio.CapacityLimiter:
    """The running loop's one slot for checks off the loop (a limiter serves one loop)."""
    loop = asyncio.get_running_loop()
    limiter = _CHECKERS.get(loop)
    if limiter is None:
        limiter = _CHECKERS[loop] = anyio.CapacityLimiter(1)
    return limiter


# --- errors --------------------------------------------------------------------------------------


def _install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(JobicoError, _jobico_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def error_response(error: JobicoError) -> JSONResponse:
    """The one error shape; the status comes from the error's class. A 5xx answers its code
    and a plain message only, its own message and details going to the log: they are about
    Jobico's insides (actors, exceptions, repositories), not about the request."""
    status = lookup(HTTP_STATUS, error)
    headers = {}
    if isinstance(error, QueueFull | RateLimited):
        headers["Retry-After"] = _retry_after(error.details.get("retry_after"))
    if status < 500:
        body = {"error": jsonable_encoder(error.to_dict())}
    else:
        plain = _PLAIN.get(status, _PLAIN[500])
        if error.message != plain:
            log.warning("answered %d %s: %s %s", status, error.code, error.message, error.details)
        body = {"error": {"code": error.code, "message": plain}}
    return JSONResponse(body, status_code=status, headers=headers)


_PLAIN = {
    500: "internal error",
    503: "Jobico cannot reach a component it needs right now; try again later",
}


def _retry_after(seconds: object) -> str:
    """Whole seconds, at least 1: the header takes no fractions, and 0 would invite a stampede."""
    if isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0:
        return str(math.ceil(seconds))
    return "1"


async def _jobico_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, JobicoError)
    return error_response(exc)


async def _request_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = jsonable_encoder(exc.errors())
    return error_response(InvalidInput("the request is invalid", errors=errors))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own answers (no such path, method not allowed) in the one error shape."""
    assert isinstance(exc, StarletteHTTPException)
    code = _phrase_code(exc.status_code)
    body = {"error": {"code": code, "message": str(exc.detail)}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def _phrase_code(status: int) -> str:
    for cls, cls_status in HTTP_STATUS.items():
        if cls_status == status and cls is not JobicoError:
            return cls.code
    try:
        return http.HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return f"http_{status}"


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(JobicoError("internal error"))


# --- OpenAPI -------------------------------------------------------------------------------------

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "additionalProperties": True,
        }
    },
}
IDS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["ids"],
    "properties": {"ids": {"type": "array", "items": {"type": "string"}}},
}
EVENT_BODY: dict[str, Any] = {"description": "One JSON event, checked against its schema"}
BATCH_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {"data": {"type": "array", "minItems": 1, "items": EVENT_BODY}},
}
HEALTHY: dict[str, Any] = {"type": "object", "properties": {"status": {"const": "ok"}}}
HEALTH_ANSWERS: dict[int, Any] = {
    200: ("The queue and control actors can be reached", HEALTHY),
    503: "The queue or control actors cannot be reached",
}
POST_ANSWERS: dict[int, Any] = {
    202: ("Queued durably; the new event ids, in order", IDS_SCHEMA),
    400: "Malformed JSON, no events, too many events or nested too deep",
    401: "The event requires credentials (an ingest key or a webhook signature): missing or bad",
    404: "Unknown tenant or event, or a job's result event without an auth: of its own",
    413: "Body over the size limit",
    422: "An event fails its JSON Schema or has no ordering key; nothing was queued",
    429: "The tenant's queue is full, or the tenant is over its rate; see Retry-After",
    503: "The queue cannot be reached",
}


def _responses(answers: dict[int, Any]) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {}
    for status, answer in answers.items():
        text, schema = answer if isinstance(answer, tuple) else (answer, ERROR_SCHEMA)
        out[status] = {"description": text, "content": {"application/json": {"schema": schema}}}
    return out


def _docs(body_schema: dict[str, Any], summary: str) -> dict[str, Any]:
    """Route options documenting a POST whose body the handler parses itself (for speed)."""
    return {
        "status_code": 202,
        "summary": summary,
        "response_class": JSONResponse,
        "responses": _responses(POST_ANSWERS),
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": body_schema}},
            }
        },
    }
