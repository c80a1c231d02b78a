"""Ray shell of control (`jobico.control.service`): the registry's commands and who may act,
with pub/sub, the repository and the tenants' queue actors behind the core's seams.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import ray

from jobico.access import auth
from jobico.actors import cluster
from jobico.actors import queue as queue_actor
from jobico.actors.pubsub import INGEST, PACKAGES, Subscriber
from jobico.config import Settings
from jobico.control.service import Control
from jobico.errors import JobicoError
from jobico.model import FileInfo, Revision
from jobico.pubsub import Changes

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


class _PubSub:
    """The `packages` and `ingest` topics of the pub/sub actor."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def changes(self) -> Mapping[str, Mapping[str, Any] | None]:
        pubsub = cluster.actor(cluster.PUBSUB, self._settings)
        return cluster.call(pubsub.changes.remote(PACKAGES, 0)).items  # type: ignore[no-any-return]

    def publish(self, tenant: str, package: str, rev: Revision | None) -> None:
        pubsub = cluster.actor(cluster.PUBSUB, self._settings)
        value = rev.to_dict() if rev else None
        cluster.call(pubsub.publish.remote(PACKAGES, f"{tenant}/{package}", value))

    def ingest_changed(self, tenant: str) -> None:
        pubsub = cluster.actor(cluster.PUBSUB, self._settings)
        cluster.call(pubsub.publish.remote(INGEST, tenant, {"changed_at": time.time()}))


class _Queues:
    """The tenants' queue actors, created by control."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def ensure(self, tenant: str) -> None:
        """Create the tenant's queue actor here, owned by a long-lived actor, and wait until it
        answers: an actor whose creator dies before it starts is never started at all."""
        cluster.call(queue_actor.handle(self._settings, tenant).ping.remote())


class ControlActor(Control):
    def __init__(self, settings: Settings) -> None:
        pubsub = _PubSub(settings)
        files, queues = _RepositoryFiles(settings), _Queues(settings)
        super().__init__(settings, files=files, queues=queues, published=pubsub, notices=pubsub)


def ensure_admin_token(settings: Settings) -> bool:
    """Write the first admin token to JOBICO_HOME/admin.token (0600), as `jobico up` does;
    False when an admin token exists already (its file stays, or was moved away on purpose)."""
    control = cluster.actor(cluster.CONTROL, settings)
    issued = cluster.call(control.bootstrap_admin.remote())
    if issued is None:
        return False
    auth.write_token_file(settings.home / auth.ADMIN_TOKEN_FILE, issued.token)
    return True


def follow_ingest(
    settings: Settings, apply: Callable[[str, dict[str, Any] | None], None]
) -> Subscriber:
    """For listener replicas: `apply(tenant, config)` with each tenant's ingest config, first
    all of them, then as they change; fetched from control here, off the request path."""

    def on_change(changes: Changes) -> None:
        control = cluster.actor(cluster.CONTROL, settings)
        for tenant in changes.items:
            try:
                apply(tenant, cluster.call(control.ingest_config.remote(tenant)))
            except JobicoError as e:  # the next change or restart brings it; events wait on 401
                log.error("ingest config of tenant %s not loaded: %s", tenant, e.message)

    return Subscriber(settings, INGEST, on_change).start()


def start(settings: Settings) -> Any:
    opts = cluster.options(cluster.CONTROL, settings)
    return ray.remote(ControlActor).options(**opts).remote(settings)
