"""The listener as a Ray Serve deployment: the FastAPI app of `jobico.serve.app` on replicas
that follow package changes from pub/sub and enqueue into the tenants' queue actors."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import ray
from fastapi import FastAPI
from ray import serve
from ray.serve import Application

from jobico.actors import cluster, metrics
from jobico.actors import queue as queue_actor
from jobico.actors.control import follow_ingest
from jobico.actors.pubsub import PACKAGES, Subscriber
from jobico.batching import Coalescer, Send
from jobico.config import Settings
from jobico.errors import Unavailable
from jobico.pubsub import Changes
from jobico.queue.localputs import PutClient, local_first
from jobico.queue.store import NewEvent, Put
from jobico.serve.app import create_app
from jobico.serve.gate import Gate
from jobico.serve.routes import Routes

log = logging.getLogger(__name__)

APP = "jobico"
# Serve's default of 5 requests in flight per replica collapses under concurrent webhooks:
# a replica mostly waits on queue commits, so it can hold many requests at once.
MAX_ONGOING_REQUESTS = 1000
# A put whose queue actor died is sent again after these pauses (a restart takes a second or
# two); its key keeps a resend from committing twice for RETRY_WINDOW_S.
PUT_RETRIES_S = (0.1, 0.3, 0.6, 1.0, 2.0)
RETRY_WINDOW_S = 600.0


class ActorBackend:
    """The app's Backend: the tenants' queue actors. Concurrent requests for one tenant go to
    its queue in one send (their batches still commit, or fail, each on its own): over a Unix
    socket when the queue actor is on this replica's node (`jobico.queue.localputs`), else as one
    actor call."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._queues: dict[str, Coalescer[Put, list[str]]] = {}
        self._handles: dict[str, Any] = {}
        self._local: dict[str, PutClient] = {}
        self._opening = asyncio.Lock()

    async def enqueue(self, tenant: str, events: list[NewEvent], key: str | None) -> list[str]:
        """Puts are idempotent by key, so one whose answer was lost (the queue actor died after
        committing) is sent again until the restarted actor answers: never refused while
        committed, never committed twice."""
        if key is None:
            put = Put(events, key=f"listener/{uuid.uuid4().hex}", ttl_s=RETRY_WINDOW_S)
        else:
            put = Put(events, key=f"sender/{key}", ttl_s=self._settings.idempotency_ttl_s)
        for delay in PUT_RETRIES_S:
            try:
                return await (await self._queue(tenant)).submit(put)
            except Unavailable:
                self._forget(tenant)
                await asyncio.sleep(delay)
        return await (await self._queue(tenant)).submit(put)

    async def _queue(self, tenant: str) -> Coalescer[Put, list[str]]:
        if (known := self._queues.get(tenant)) is not None:
            return known
        async with self._opening:  # a burst for a new tenant looks it up and connects once
            if tenant not in self._queues:
                queue = await asyncio.to_thread(queue_actor.handle, self._settings, tenant)
                self._handles[tenant] = queue
                send = self._sender(queue)
                if self._settings.local_puts and (local := await self._connect(tenant, queue)):
                    self._local[tenant] = local
                    send = local_first(local, send)
                self._queues[tenant] = Coalescer(send, size=lambda p: len(p.events))
            return self._queues[tenant]

    async def _connect(self, tenant: str, queue: Any) -> PutClient | None:
        """A connection to the queue actor's local put socket, if it is on this node. An
        Unavailable actor is the caller's to retry, as for a put."""
        ask = getattr(queue, "local_puts", None)  # None: a queue actor started by an older Jobico
        where = None if ask is None else await cluster.acall(ask.remote())
        if where is None or where[0] != ray.get_runtime_context().get_node_id():
            return None
        try:
            return await PutClient.connect(where[1])
        except OSError as e:
            log.warning("puts for %s go through Ray calls: %s", tenant, e)
            return None

    def sends_locally(self, tenant: str) -> bool:
        """Whether this tenant's puts go over the queue actor's local socket right now."""
        return tenant in self._local

    def _forget(self, tenant: str) -> None:
        """Look the queue actor up again next time (it may have been replaced)."""
        self._queues.pop(tenant, None)
        self._handles.pop(tenant, None)
        if (local := self._local.pop(tenant, None)) is not None:
            local.close()

    @staticmethod
    def _sender(queue: Any) -> Send[Put, list[str]]:
        async def send(batches: list[Put]) -> list[list[str] | Exception]:
            return await cluster.acall(queue.put_many.remote(batches))  # type: ignore[no-any-return]

        return send

    async def healthy(self) -> bool:
        """The control and pubsub actors answer, and so does every queue this replica uses."""
        try:
            handles = [cluster.actor(n, self._settings) for n in (cluster.CONTROL, cluster.PUBSUB)]
            pings = [cluster.acall(h.ping.remote()) for h in [*handles, *self._handles.values()]]
            await asyncio.wait_for(asyncio.gather(*pings), 5)
            return True
        except Exception:
            return False


@serve.deployment(
    name="listener", max_ongoing_requests=MAX_ONGOING_REQUESTS, ray_actor_options={"num_cpus": 0}
)
@serve.ingress()
class Listener:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._routes = Routes(self._load_schema)
        self._subscriber = Subscriber(settings, PACKAGES, self._apply).start()
        # Each replica takes its share of a tenant's events per second.
        self._share = 1 / max(1, settings.listener_replicas)
        self._gate = Gate(default_rate=settings.quota_events_per_s * self._share)
        self._ingest = follow_ingest(settings, self._apply_ingest)
        cluster.freeze_heap()

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(
            self._routes,
            ActorBackend(self._settings),
            max_body_bytes=self._settings.max_body_kb * 1024,
            gate=self._gate,
            observe=metrics.ingest,
        )

    def _apply(self, changes: Changes) -> None:
        self._routes.apply(changes.items, reset=changes.reset)

    def _apply_ingest(self, tenant: str, config: dict[str, Any] | None) -> None:
        self._gate.apply(tenant, config, share=self._share)

    def _load_schema(self, tenant: str, digest: str) -> bytes:
        repository = cluster.actor(cluster.REPOSITORY, self._settings)
        return cluster.call(repository.read.remote(tenant, digest))  # type: ignore[no-any-return]

    def __del__(self) -> None:
        self._subscriber.stop()
        self._ingest.stop()


def deploy(settings: Settings) -> None:
    """Start Serve's HTTP proxy on the listener address and run the listener app there; a
    listener already running is left as it is (`jobico up` is idempotent)."""
    _quiet()
    if status(settings) == "ok":
        return
    serve.start(
        proxy_location=settings.proxy_location,
        http_options={"host": settings.host, "port": settings.port},
    )
    serve.run(application(settings), name=APP, route_prefix="/")


def application(settings: Settings) -> Application:
    return Listener.options(  # type: ignore[attr-defined,no-any-return]
        num_replicas=settings.listener_replicas,
        logging_config={"enable_access_log": settings.access_log},
    ).bind(settings)


def app(args: dict[str, Any]) -> Application:
    """The builder `serve deploy` calls (`import_path: jobico.serve.listener:app`, see
    cluster/serve.yaml): settings come from the JOBICO_* variables of the Serve config's
    runtime_env, as `jobico up` reads them from its own environment."""
    return application(Settings.from_env())


def undeploy(settings: Settings) -> None:
    """Remove the listener app; Serve itself stays for any other apps on the cluster."""
    _quiet()
    try:
        serve.delete(APP)
    except Exception:  # Serve was never started on this cluster
        pass


def status(settings: Settings) -> str:
    try:
        app = serve.status().applications.get(APP)
    except Exception:  # Serve not running on this cluster
        return "not running"
    return "not running" if app is None else ("ok" if app.status == "RUNNING" else str(app.status))


def _quiet() -> None:
    """Serve narrates deploys at INFO on the driver; the CLI's own output says what matters."""
    logging.getLogger("ray.serve").setLevel(logging.WARNING)
