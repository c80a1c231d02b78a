"""The listener as a Ray Serve deployment: the FastAPI app of `jobico.serve.app` on replicas
that follow package changes from pub/sub and enqueue into the tenants' queue actors."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import ray
from fastapi import FastAPI
from ray import serve
from ray.serve import Application

from jobico.actors import cluster, metrics
from jobico.actors import queue as queue_actor
from jobico.actors.control import follow_ingest
from jobico.actors.pubsub import PACKAGES, Subscriber
from jobico.config import Settings
from jobico.pubsub import Changes
from jobico.queue.events import NewEvent, Put
from jobico.serve.app import create_app
from jobico.serve.gate import Gate
from jobico.serve.puts import Puts
from jobico.serve.routes import Routes

APP = "jobico"
# Serve's default of 5 requests in flight per replica collapses under concurrent webhooks:
# a replica mostly waits on queue commits, so it can hold many requests at once.
MAX_ONGOING_REQUESTS = 1000


class ActorBackend:
    """The app's Backend: the tenants' queue actors, reached through their Ray handles by the
    listener's put logic (`jobico.serve.puts`)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._puts = Puts(
            self._find,
            local=settings.local_puts,
            idempotency_ttl_s=settings.idempotency_ttl_s,
            max_queues=settings.cache_queues,
        )

    async def enqueue(self, tenant: str, events: list[NewEvent], key: str | None) -> list[str]:
        return await self._puts.enqueue(tenant, events, key)

    def sends_locally(self, tenant: str) -> bool:
        """Whether this tenant's puts go over the queue actor's local socket right now."""
        return self._puts.sends_locally(tenant)

    async def _find(self, tenant: str) -> RayQueue:
        return RayQueue(await asyncio.to_thread(queue_actor.handle, self._settings, tenant))

    async def healthy(self) -> bool:
        """The control and pubsub actors answer, and so does every queue this replica uses."""
        try:
            handles = [cluster.actor(n, self._settings) for n in (cluster.CONTROL, cluster.PUBSUB)]
            pings = [cluster.acall(h.ping.remote()) for h in handles]
            pings += [queue.ping() for queue in self._puts.in_use()]
            await asyncio.wait_for(asyncio.gather(*pings), 5)
            return True
        except Exception:
            return False


class RayQueue:
    """A tenant's queue actor through its Ray handle (the puts' `TenantQueue`)."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    async def put_many(self, puts: list[Put]) -> list[list[str] | Exception]:
        return await cluster.acall(self._handle.put_many.remote(puts))  # type: ignore[no-any-return]

    async def local_socket(self) -> str | None:
        where = await cluster.acall(self._handle.local_puts.remote())
        if where is None or where[0] != ray.get_runtime_context().get_node_id():
            return None
        return str(where[1])

    async def ping(self) -> None:
        await cluster.acall(self._handle.ping.remote())


@serve.deployment(
    name="listener", max_ongoing_requests=MAX_ONGOING_REQUESTS, ray_actor_options={"num_cpus": 0}
)
@serve.ingress()
class Listener:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._routes = Routes(self._load_schema, max_schemas=settings.cache_schemas)
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
