"""Ray shell of one tenant's durable queues: `jobico.queue.service` on a Ray actor, with the
tenant's file, its grant checks and its local-puts socket."""

from __future__ import annotations

from typing import Any

import ray

from jobico.access.auth import Grant
from jobico.actors import cluster
from jobico.actors.grants import Verifier
from jobico.config import Settings
from jobico.model import check_name
from jobico.queue.events import Leased, NewEvent, Put
from jobico.queue.groupcommit import GroupCommitter
from jobico.queue.localputs import socket_path
from jobico.queue.service import RECHECK_S, QueueService
from jobico.queue.store import QueueStore


class QueueActor:
    def __init__(self, settings: Settings, tenant: str, *, recheck_s: float = RECHECK_S) -> None:
        check_name("tenant", tenant)
        store = QueueStore(settings.home / "queues" / f"{tenant}.db")
        local_puts = socket_path(settings.home, settings.namespace, tenant)
        self._queues = QueueService(
            GroupCommitter(store),
            tenant,
            Verifier(settings),
            recheck_s=recheck_s,
            local_puts=local_puts if settings.local_puts else None,
        )
        cluster.freeze_heap()

    async def put(self, events: list[NewEvent]) -> list[str]:
        return await self._queues.put(events)

    async def put_many(self, batches: list[Put]) -> list[list[str] | Exception]:
        return await self._queues.put_many(batches)

    async def local_puts(self) -> tuple[str, str] | None:
        """(node id, socket path) for `put_many` from this node without a Ray call
        (`jobico.queue.localputs`), or None when local puts are off or the socket cannot be made."""
        path = await self._queues.open_local_puts()
        return None if path is None else (ray.get_runtime_context().get_node_id(), str(path))

    async def lease(
        self,
        max_items: int,
        lease_ms: int,
        per_key: int = 1,
        wait_s: float = 0.0,
        max_keys: int | None = None,
    ) -> list[Leased]:
        return await self._queues.lease(max_items, lease_ms, per_key, wait_s, max_keys)

    async def extend(self, ids: list[str], lease_ms: int) -> None:
        await self._queues.extend(ids, lease_ms)

    async def settle(
        self,
        ack: list[str],
        retry: list[tuple[str, int, str, int]],
        bury: list[tuple[str, str, int]],
        release: list[str],
    ) -> None:
        await self._queues.settle(ack, retry, bury, release)

    async def internal_figures(self) -> dict[str, dict[str, Any]]:
        return await self._queues.internal_figures()

    # --- for clients, with a grant for this queue's tenant ---

    async def figures(self, grant: Grant) -> dict[str, dict[str, Any]]:
        return await self._queues.figures(grant)

    async def dead_letters(self, grant: Grant) -> list[dict[str, Any]]:
        return await self._queues.dead_letters(grant)

    async def replay(self, grant: Grant, ids: list[str] | None) -> int:
        return await self._queues.replay(grant, ids)

    async def drop(self, grant: Grant, ids: list[str] | None) -> int:
        return await self._queues.drop(grant, ids)

    def ping(self) -> str:
        return "ok"


def handle(settings: Settings, tenant: str) -> Any:
    """The tenant's queue actor, created on first use."""
    opts = cluster.options(cluster.queue_name(tenant), settings, max_concurrency=1000)
    return ray.remote(QueueActor).options(**opts).remote(settings, tenant)
