"""The listener's HTTP app, made from its parts: the ingest pipeline behind the fast lane, the
routes FastAPI documents, the health probe and the error handlers. No Ray here:
`jobico.serve.listener` runs this app in a Serve deployment and supplies the Backend (the queue
actors) and the Gate (credentials and rates, `jobico.serve.gate`)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from jobico.errors import Unavailable
from jobico.serve.fastlane import ListenerAPI
from jobico.serve.gate import Gate
from jobico.serve.httperrors import install_error_handlers
from jobico.serve.ingest import Backend, Ingest, Limits, Observe, unobserved
from jobico.serve.openapi import BATCH_BODY, EVENT_BODY, HEALTH_ANSWERS, post_docs, responses
from jobico.serve.routes import Routes

log = logging.getLogger(__name__)


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
    ingest = Ingest(routes, backend, limits, gate or Gate(), observe or unobserved)
    app = ListenerAPI(
        ingest, title="Jobico listener", summary="Webhooks that queue events for WASM jobs"
    )
    install_error_handlers(app)

    # The fast lane answers these two before FastAPI routes them; declared here all the same,
    # for the OpenAPI document and for whatever the fast lane passes on.
    @app.post("/events/{tenant}/{event}", **post_docs(BATCH_BODY, "Post a batch of events"))
    async def post_events(tenant: str, event: str, request: Request) -> Response:
        return await ingest.answer(True, tenant, event, request.headers.get, request.stream())

    @app.post("/webhooks/{tenant}/{event}", **post_docs(EVENT_BODY, "Post one event (a webhook)"))
    async def post_webhook(tenant: str, event: str, request: Request) -> Response:
        return await ingest.answer(False, tenant, event, request.headers.get, request.stream())

    @app.get("/healthz", responses=responses(HEALTH_ANSWERS))
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
