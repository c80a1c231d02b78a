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

from jobico.queue import NewEvent, QueueStore

T = TypeVar("T")
_Waiter = tuple[Sequence[NewEvent], "asyncio.Future[list[str]]"]


class GroupCommitter:
    """Commits concurrent `put` calls together, on one worker thread that owns the store.

    Every store call goes through that one thread (`call` for the others), so SQLite never
    blocks the event loop and calls never queue on the store's lock.
    """

    def __init__(self, store: QueueStore, *, max_events: int = 10_000) -> None:
        self.store = store
        self._max_events = max_events  # bounds one transaction, so one commit never stalls long
        self._pending: list[_Waiter] = []
        self._flusher: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobico-commit")
        self.commits = 0  # transactions committed by put; below the number of puts under load

    async def put(self, events: Sequence[NewEvent]) -> list[str]:
        """Enqueue durably (returns once committed); the ids in order, or this batch's error."""
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._pending.append((events, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def call(self, fn: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        """Run another store method (lease, ack, ...) on the store's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(fn, *args, **kwargs))

    async def aclose(self) -> None:
        """Finish the commits under way, then stop the thread (the store stays open)."""
        if self._flusher is not None:
            await self._flusher
        self._thread.shutdown(wait=True)

    async def _flush(self) -> None:
        while self._pending:
            await self._commit(self._take())

    def _take(self) -> list[_Waiter]:
        """The oldest waiters, up to max_events events (always at least one waiter)."""
        count, size = 0, 0
        for events, _ in self._pending:
            if count and size + len(events) > self._max_events:
                break
            count, size = count + 1, size + len(events)
        group, self._pending = self._pending[:count], self._pending[count:]
        return group

    async def _commit(self, group: list[_Waiter]) -> None:
        batches = [events for events, _ in group]
        try:
            results = await self.call(self.store.put_batches, batches)
            self.commits += 1
        except asyncio.CancelledError:
            for _, future in group:
                future.cancel()
            raise
        except Exception as error:  # the database failed: every caller in the group hears it
            results = [error] * len(group)
        for (_, future), result in zip(group, results, strict=True):
            if future.done():  # its caller was cancelled; its events are committed regardless
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
