"""Ray shell of one tenant's durable queues: group-committed puts, long-poll leases, settling."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import ray

from jobico.access.auth import Grant
from jobico.actors import cluster
from jobico.actors.grants import Verifier
from jobico.config import Settings
from jobico.model import check_name
from jobico.queue.groupcommit import GroupCommitter
from jobico.queue.localputs import PutServer, socket_path
from jobico.queue.store import Leased, NewEvent, Put, QueueStore

log = logging.getLogger(__name__)

# Delayed retries and expired leases become ready without a put or a settle; a waiting lease
# looks again this often.
_RECHECK_S = 0.25


class QueueActor:
    def __init__(self, settings: Settings, tenant: str, *, recheck_s: float = _RECHECK_S) -> None:
        self._tenant = check_name("tenant", tenant)
        self._recheck_s = recheck_s
        self._grants = Verifier(settings)
        self._store = QueueStore(settings.home / "queues" / f"{tenant}.db")
        self._committer = GroupCommitter(self._store)
        self._local_puts = (
            PutServer(self.put_many, socket_path(settings.home, settings.namespace, tenant))
            if settings.local_puts
            else None
        )
        self._changes = 0
        self._arrived = asyncio.Condition()
        cluster.freeze_heap()

    async def put(self, events: list[NewEvent]) -> list[str]:
        """Returns once the events are committed (fsync'd) together with concurrent puts."""
        ids = await self._committer.put(events)
        await self._wake_leases()
        return ids

    async def put_many(self, batches: list[Put]) -> list[list[str] | Exception]:
        """Several senders' batches in one call (the listener coalesces its requests): each
        gets its ids or its own error (QueueFull), as if put one by one."""
        results = await self._committer.put_many(batches)
        await self._wake_leases()
        return [r if isinstance(r, list | Exception) else Exception(repr(r)) for r in results]

    async def local_puts(self) -> tuple[str, str] | None:
        """(node id, socket path) for `put_many` from this node without a Ray call
        (`jobico.queue.localputs`), or None when local puts are off or the socket cannot be made."""
        if self._local_puts is None:
            return None
        try:
            await self._local_puts.start()
        except OSError as e:
            log.warning("local puts for %s are off, Ray calls only: %s", self._tenant, e)
            self._local_puts = None
            return None
        return ray.get_runtime_context().get_node_id(), str(self._local_puts.path)

    async def _wake_leases(self) -> None:
        """Events may have become ready: waiting leases look again."""
        self._changes += 1
        async with self._arrived:
            self._arrived.notify_all()

    async def lease(
        self,
        max_items: int,
        lease_ms: int,
        per_key: int = 1,
        wait_s: float = 0.0,
        max_keys: int | None = None,
    ) -> list[Leased]:
        """Ready events (see `QueueStore.lease`), waiting up to `wait_s` for some to arrive
        when there are none."""
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            seen = self._changes
            items = await self._committer.call(
                self._store.lease, max_items, lease_ms, per_key=per_key, max_keys=max_keys
            )
            remaining = deadline - asyncio.get_running_loop().time()
            if items or remaining <= 0:
                return items
            async with self._arrived:
                try:
                    await asyncio.wait_for(
                        self._arrived.wait_for(lambda seen=seen: self._changes != seen),  # type: ignore[misc]
                        min(remaining, self._recheck_s),
                    )
                except TimeoutError:
                    pass

    async def extend(self, ids: list[str], lease_ms: int) -> None:
        """Keep a long batch's lease alive while its executor is still running it."""
        await self._committer.call(self._store.extend, ids, lease_ms)

    async def settle(
        self,
        ack: list[str],
        retry: list[tuple[str, int, str, int]],
        bury: list[tuple[str, str, int]],
        release: list[str],
    ) -> None:
        await self._committer.call(self._store.settle, ack, retry, bury, release)
        # Settling frees keys (an unkeyed queue is one key): their next events are ready now.
        await self._wake_leases()

    async def stats(self) -> dict[str, dict[str, Any]]:
        return await self._committer.call(self._store.stats)

    # --- for clients, with a grant for this queue's tenant ---

    async def figures(self, grant: Grant) -> dict[str, dict[str, Any]]:
        await self._grants.acheck(grant, self._tenant)
        return await self.stats()

    async def dead_letters(self, grant: Grant) -> list[dict[str, Any]]:
        await self._grants.acheck(grant, self._tenant)
        return await self._committer.call(self._store.dead_letters)

    async def replay(self, grant: Grant, ids: list[str] | None) -> int:
        await self._grants.acheck(grant, self._tenant)
        count = await self._committer.call(self._store.replay, ids)
        await self._wake_leases()
        return count

    async def drop(self, grant: Grant, ids: list[str] | None) -> int:
        await self._grants.acheck(grant, self._tenant)
        return await self._committer.call(self._store.drop, ids)

    def ping(self) -> str:
        return "ok"


def handle(settings: Settings, tenant: str) -> Any:
    """The tenant's queue actor, created on first use."""
    opts = cluster.options(cluster.queue_name(tenant), settings, max_concurrency=1000)
    return ray.remote(QueueActor).options(**opts).remote(settings, tenant)
