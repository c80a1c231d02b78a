"""Ray shell of the control registry: deploys, rollbacks and deletes are published to pub/sub."""

from __future__ import annotations

import logging
import time
from typing import Any

import ray

from jobico.actors import cluster
from jobico.actors import queue as queue_actor
from jobico.actors.pubsub import PACKAGES
from jobico.config import Settings
from jobico.control import Registry
from jobico.errors import JobicoError
from jobico.model import FileInfo, Package, Revision

log = logging.getLogger(__name__)


class _RepositoryFiles:
    """The registry's view of the repository actor."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def info(self, tenant: str, name: str) -> FileInfo | None:
        repo = cluster.actor(cluster.REPOSITORY, self._settings)
        return cluster.call(repo.info.remote(tenant, name))  # type: ignore[no-any-return]

    def read(self, tenant: str, digest: str) -> bytes:
        repo = cluster.actor(cluster.REPOSITORY, self._settings)
        return cluster.call(repo.read.remote(tenant, digest))  # type: ignore[no-any-return]


class ControlActor:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._registry = Registry(
            settings.home / "control", _RepositoryFiles(settings), maxima=settings.limit_maxima
        )
        self._info: dict[str, Any] = {}
        self._reconcile_at_start()

    def deploy(self, package: Package, update: bool = False) -> Revision:
        rev = self._registry.deploy(package, update=update)
        self._ensure_queue(rev.tenant)
        self._publish(rev.tenant, rev.package, rev)
        return rev

    def rollback(self, tenant: str, package: str, to: int | None = None) -> Revision:
        rev = self._registry.rollback(tenant, package, to)
        self._publish(tenant, package, rev)
        return rev

    def delete(self, tenant: str, package: str) -> None:
        self._registry.delete(tenant, package)
        self._publish(tenant, package, None)

    def revision(self, tenant: str, package: str, number: int | None = None) -> Revision:
        return self._registry.revision(tenant, package, number)

    def packages(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return self._registry.packages(tenant)

    def tenants(self) -> list[str]:
        return self._registry.tenants()

    def set_info(self, info: dict[str, Any]) -> None:
        """Where the platform's endpoints are (listener, dashboard), as `jobico up` saw them."""
        self._info = dict(info)

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    def ping(self) -> str:
        return "ok"

    def _publish(self, tenant: str, package: str, rev: Revision | None) -> None:
        pubsub = cluster.actor(cluster.PUBSUB, self._settings)
        value = rev.to_dict() if rev else None
        cluster.call(pubsub.publish.remote(PACKAGES, f"{tenant}/{package}", value))

    def _reconcile_at_start(self) -> None:
        """Reconcile, waiting for pubsub and the queues if they restart along with this actor:
        an exception here would fail the actor's creation, which Ray does not retry."""
        for delay in (0.2, 0.5, 1.0, 2.0, 4.0, 8.0):
            try:
                self._reconcile()
                return
            except JobicoError as e:
                log.warning("reconcile at start failed (%s); again in %s s", e, delay)
                time.sleep(delay)
        log.error("control started without reconciling; the next deploy publishes its package")

    def _ensure_queue(self, tenant: str) -> None:
        """Create the tenant's queue actor here, owned by a long-lived actor, and wait until it
        answers: an actor whose creator dies before it starts is never started at all."""
        cluster.call(queue_actor.handle(self._settings, tenant).ping.remote())

    def _reconcile(self) -> None:
        """A crash between a registry write and its publish must not leave subscribers behind,
        and every tenant's queue must be there after a restart of the platform."""
        for tenant in self._registry.tenants():
            self._ensure_queue(tenant)
        pubsub = cluster.actor(cluster.PUBSUB, self._settings)
        published = cluster.call(pubsub.changes.remote(PACKAGES, 0)).items
        live = {f"{r.tenant}/{r.package}": r for r in self._registry.current()}
        for key, rev in live.items():
            if (published.get(key) or {}).get("number") != rev.number:
                self._publish(rev.tenant, rev.package, rev)
        for key, value in published.items():
            if value is not None and key not in live:
                tenant, package = key.split("/", 1)
                self._publish(tenant, package, None)


def start(settings: Settings) -> Any:
    opts = cluster.options(cluster.CONTROL, settings)
    return ray.remote(ControlActor).options(**opts).remote(settings)
