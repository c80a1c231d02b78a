"""Group commit for an asyncio owner of a QueueStore: concurrent puts share one fsync'd commit.

While one transaction is being written, new callers' batches gather; the next transaction takes
them all. Each caller still gets only its own ids or its own error.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from jobico.batching import Coalescer
from jobico.queue.events import NewEvent, Put
from jobico.queue.store import QueueStore

T = TypeVar("T")


class GroupCommitter:
    """Commits concurrent `put` calls together, on one worker thread that owns the store.

    Every store call goes through that one thread (`call` for the others), so SQLite never
    blocks the event loop and calls never queue on the store's lock.
    """

    def __init__(self, store: QueueStore, *, max_events: int = 10_000) -> None:
        self.store = store
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobico-commit")
        # max_events bounds one transaction, so one commit never stalls the others for long.
        self._batches: Coalescer[Put, list[str]] = Coalescer(
            self._commit, size=lambda put: len(put.events), max_size=max_events
        )

    @property
    def commits(self) -> int:
        """Transactions committed by put: far below the number of puts under load."""
        return self._batches.sends

    async def put(self, events: Sequence[NewEvent] | Put) -> list[str]:
        """Enqueue durably (returns once committed); the ids in order, or this batch's error."""
        return await self._batches.submit(events if isinstance(events, Put) else Put(events))

    async def put_many(self, puts: Sequence[Put]) -> list[list[str] | BaseException]:
        """`put` for several batches at once, each all or nothing on its own: the ids, or that
        batch's error, in order."""
        return await self._batches.submit_many(puts)

    async def call(self, fn: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        """Run another store method (lease, settle, ...) on the store's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(fn, *args, **kwargs))

    async def aclose(self) -> None:
        """Finish the commits under way, then stop the thread (the store stays open)."""
        await self._batches.drain()
        self._thread.shutdown(wait=True)

    async def _commit(self, batches: list[Put]) -> list[list[str] | Exception]:
        return await self.call(self.store.put_batches, batches)
