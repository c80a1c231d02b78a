"""The fast lane: `POST /events/T/E` and `POST /webhooks/T/E` answered by the ingest pipeline
straight from ASGI, before FastAPI routes them; every other request is FastAPI's."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from jobico.errors import JobicoError
from jobico.serve.httperrors import error_response
from jobico.serve.ingest import Ingest

log = logging.getLogger(__name__)


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
