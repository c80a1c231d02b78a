"""One tenant's queues as its queue actor serves them (asyncio, no Ray): puts group-committed,
leases that wait for events to arrive, settling, local puts, and the clients' calls held to
grants for the tenant. The actor (`jobico.actors.queue`) hands every call to this.

Every change that can make events ready (a put, a settle, a replay) goes through `_changed`,
which wakes the waiting leases. A delayed retry or a lease that runs out becomes ready with no
change, so a waiting lease also looks again every `recheck_s`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from jobico.access.auth import Grant
from jobico.queue.events import Leased, NewEvent, Put
from jobico.queue.groupcommit import GroupCommitter
from jobico.queue.localputs import PutServer

log = logging.getLogger(__name__)

RECHECK_S = 0.25


class Grants(Protocol):
    """Checks a client's grant: `tenant` if it may act for it, else Forbidden."""

    async def acheck(self, grant: Grant, tenant: str) -> str: ...


class QueueService:
    """The calls of one tenant's queue actor, over the store that `committer` owns."""

    def __init__(
        self,
        committer: GroupCommitter,
        tenant: str,
        grants: Grants,
        *,
        recheck_s: float = RECHECK_S,
        local_puts: Path | None = None,
    ) -> None:
        """`local_puts`: the socket to serve `put_many` on for this node (None: Ray only)."""
        self._tenant = tenant
        self._committer, self._store = committer, committer.store
        self._grants = grants
        self._recheck_s = recheck_s
        self._local_puts = PutServer(self.put_many, local_puts) if local_puts else None
        self._changes = 0
        self._arrived = asyncio.Condition()

    # --- for the listener and executors ---

    async def put(self, events: Sequence[NewEvent]) -> list[str]:
        """Returns once the events are committed (fsync'd) together with concurrent puts."""
        ids = await self._committer.put(events)
        await self._changed()
        return ids

    async def put_many(self, batches: Sequence[Put]) -> list[list[str] | Exception]:
        """Several senders' batches in one call (the listener coalesces its requests): each
        gets its ids or its own error (QueueFull), as if put one by one."""
        results = await self._committer.put_many(batches)
        await self._changed()
        return _carried(results)

    async def open_local_puts(self) -> Path | None:
        """The socket serving `put_many` to this node, or None when local puts are off or the
        socket cannot be made (then they stay off: puts come by Ray call)."""
        if self._local_puts is None:
            return None
        try:
            await self._local_puts.start()
        except OSError as e:
            log.warning("local puts for %s are off, Ray calls only: %s", self._tenant, e)
            self._local_puts = None
            return None
        return self._local_puts.path

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
            await self._wait_for_change(seen, min(remaining, self._recheck_s))

    async def extend(self, ids: Sequence[str], lease_ms: int) -> None:
        """Keep a long batch's lease alive while its executor is still running it."""
        await self._committer.call(self._store.extend, ids, lease_ms)

    async def settle(
        self,
        ack: Sequence[str],
        retry: Sequence[tuple[str, int, str, int]],
        bury: Sequence[tuple[str, str, int]],
        release: Sequence[str],
    ) -> None:
        """A batch's verdicts (see `QueueStore.settle`)."""
        await self._committer.call(self._store.settle, ack, retry, bury, release)
        # Settling frees keys (an unkeyed queue is one key): their next events are ready now.
        await self._changed()

    async def internal_figures(self) -> dict[str, dict[str, Any]]:
        return await self._committer.call(self._store.stats)

    # --- for clients, with a grant for this tenant ---

    async def figures(self, grant: Grant) -> dict[str, dict[str, Any]]:
        await self._grants.acheck(grant, self._tenant)
        return await self.internal_figures()

    async def dead_letters(self, grant: Grant) -> list[dict[str, Any]]:
        await self._grants.acheck(grant, self._tenant)
        return await self._committer.call(self._store.dead_letters)

    async def replay(self, grant: Grant, ids: Sequence[str] | None) -> int:
        await self._grants.acheck(grant, self._tenant)
        count = await self._committer.call(self._store.replay, ids)
        await self._changed()
        return count

    async def drop(self, grant: Grant, ids: Sequence[str] | None) -> int:
        await self._grants.acheck(grant, self._tenant)
        return await self._committer.call(self._store.drop, ids)

    # --- waking leases ---

    async def _changed(self) -> None:
        """Events may have become ready: waiting leases look again."""
        self._changes += 1
        async with self._arrived:
            self._arrived.notify_all()

    async def _wait_for_change(self, seen: int, timeout: float) -> None:
        """Until a change after the `seen`th, or `timeout` seconds."""
        async with self._arrived:
            try:
                await asyncio.wait_for(
                    self._arrived.wait_for(lambda: self._changes != seen), timeout
                )
            except TimeoutError:
                pass


def _carried(results: Sequence[list[str] | BaseException]) -> list[list[str] | Exception]:
    """Each put's answer as a Ray call can return it: an error that is not an Exception (a
    cancelled commit's CancelledError) becomes a plain Exception naming it."""
    return [r if isinstance(r, list | Exception) else Exception(repr(r)) for r in results]
