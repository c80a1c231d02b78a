"""The reconcile: after a restart, every tenant's queue exists and pub/sub says what the registry
says.

A crash between a registry write and its publish must not leave subscribers behind, a package
deleted while control was down must be unpublished, and every tenant's queue must be there
after a restart of the platform (an event put for a tenant whose queue actor was never started
would wait for nothing). The reconcile compares revision numbers, so running it again, or after
a publish that did reach pub/sub, publishes nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from jobico.errors import JobicoError
from jobico.model import Revision
from jobico.retry import Pauses, retry

log = logging.getLogger(__name__)

# While pub/sub and the queues restart along with control (about 16 s in all).
AT_START: Pauses = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)

# Queues ensured side by side: after `jobico up` on a Ray that died, each queue actor takes
# about 0.5 s to start, and one after another control would answer nothing for half a second
# per tenant. More threads would not help: a raylet starts at most one worker process per CPU
# at a time.
ENSURE_WORKERS = 16


class Registered(Protocol):
    """What the reconcile reads of the registry."""

    def tenants(self) -> list[str]: ...
    def current(self) -> list[Revision]: ...


class Queues(Protocol):
    """The tenants' queue actors."""

    def ensure(self, tenant: str) -> None:
        """The tenant's queue exists and answers (created if it was not)."""


class Published(Protocol):
    """The `packages` topic of pub/sub, keyed `tenant/package`."""

    def changes(self) -> Mapping[str, Mapping[str, Any] | None]:
        """Each key's last published value: a revision's dict, or None once deleted."""

    def publish(self, tenant: str, package: str, rev: Revision | None) -> None:
        """A package's current revision, or None: the package is gone."""


def reconcile(
    registry: Registered, queues: Queues, published: Published, *, workers: int = ENSURE_WORKERS
) -> None:
    """Ensure every tenant's queue, then publish what pub/sub lacks: queues first, since a
    listener that learns of a package puts its events into the tenant's queue."""
    ensure_all(queues, registry.tenants(), workers=workers)
    seen = published.changes()
    live = {f"{r.tenant}/{r.package}": r for r in registry.current()}
    for key, rev in live.items():
        if (seen.get(key) or {}).get("number") != rev.number:
            published.publish(rev.tenant, rev.package, rev)
    for key, value in seen.items():
        if value is not None and key not in live:
            tenant, package = key.split("/", 1)
            published.publish(tenant, package, None)


def ensure_all(queues: Queues, tenants: Iterable[str], *, workers: int = ENSURE_WORKERS) -> None:
    """`queues.ensure` for each tenant, side by side. Every tenant is tried even when another
    fails; then the first failure is raised, so that the caller tries again."""
    tenants = list(tenants)
    if not tenants:
        return
    with ThreadPoolExecutor(min(workers, len(tenants)), thread_name_prefix="jobico-ensure") as pool:
        futures = [pool.submit(queues.ensure, t) for t in tenants]
    failures = [e for e in (f.exception() for f in futures) if e is not None]
    if failures:
        raise failures[0]


def at_start(
    run: Callable[[], None], pauses: Pauses = AT_START, sleep: Callable[[float], None] = time.sleep
) -> bool:
    """`run` (a reconcile), again while pub/sub or the queues are away; False if it never
    succeeded. Never raises a JobicoError: control's creation would fail, and Ray does not
    retry that; the next deploy then publishes its package."""

    def again(e: BaseException, pause: float) -> None:
        log.warning("reconcile at start failed (%s); again in %s s", e, pause)

    try:
        retry(run, pauses, JobicoError, before_retry=again, sleep=sleep)
    except JobicoError as e:
        log.error(
            "control started without reconciling (%s); the next deploy publishes its package", e
        )
        return False
    return True
