"""The ingest pipeline: one POST of events read within its limits, admitted by the gate, parsed
strictly, validated element by element, then enqueued whole through the Backend (the seam the
Serve deployment fills with queue actors). Its answer is the response, errors included."""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

import anyio
import anyio.to_thread
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from jobico import strictjson
from jobico.access import signatures
from jobico.errors import BodyTooLarge, InvalidInput, JobicoError, NotFound
from jobico.queue.events import NewEvent
from jobico.schemas import OverBudget
from jobico.serve.gate import Gate
from jobico.serve.httperrors import error_response
from jobico.serve.routes import Route, Routes, checked_events


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


def unobserved(tenant: str, event: str, accepted: int, refused: str | None) -> None:
    pass


@dataclass(frozen=True)
class Limits:
    """One request's bounds: its body's bytes, a batch's events, JSON's nesting depth."""

    body_bytes: int
    events: int
    depth: int


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
            parsed = strictjson.loads(raw, "body", max_depth=self.limits.depth)
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
