"""Coalescing concurrent calls into one: while a send is in flight, new items gather, and the
next send takes them all. Each caller still gets only its own answer or its own error.

Used at every hop where a round trip costs more than the items: queue commits (one fsync for
many puts) and the listener's puts into a queue actor (one actor call for many requests).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Send = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]


class Coalescer(Generic[T, R]):
    """`submit` items; `send` gets lists of them and answers one result (or error) per item."""

    def __init__(
        self,
        send: Send[T, R],
        *,
        size: Callable[[T], int] = lambda _: 1,
        max_size: int = 10_000,
        max_in_flight: int = 1,
    ) -> None:
        """`max_in_flight` sends may be under way at once. One suits a receiver that takes
        one send at a time anyway (a commit thread); more keep a pipeline busy where a round
        trip is mostly waiting (an actor call, whose receiver coalesces again)."""
        self._send, self._size, self._max_size = send, size, max_size
        self._max_in_flight = max_in_flight
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flushers: set[asyncio.Task[None]] = set()
        self.sends = 0  # far below the number of submits under load

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._start_flusher()
        return await future

    async def submit_many(self, items: Sequence[T]) -> list[R | BaseException]:
        """`submit` for several items at once, each answered on its own (a result or its error),
        without a task per item: a caller that already holds a batch (an actor receiving the
        listener's coalesced puts) pays one wait, not one per item."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[R]] = [loop.create_future() for _ in items]
        self._pending.extend(zip(items, futures, strict=True))
        self._start_flusher()
        return await asyncio.gather(*futures, return_exceptions=True)

    def _start_flusher(self) -> None:
        # A finished flusher leaves the set only in a later turn of the loop (done callbacks
        # are scheduled), so count the live ones: a submit in between must start its own.
        self._flushers = {f for f in self._flushers if not f.done()}
        if len(self._flushers) < self._max_in_flight:
            self._flushers.add(asyncio.create_task(self._flush()))

    async def drain(self) -> None:
        """Wait for the sends under way."""
        while live := {f for f in self._flushers if not f.done()}:
            await asyncio.wait(live)

    async def _flush(self) -> None:
        while self._pending:
            # One more turn of the event loop first: requests that are ready by then join this
            # send. Under load that makes sends fuller (fewer actor calls: +10 % single-event
            # ingest here); a timed linger was far worse, the replica's loop sleeps coarsely.
            await asyncio.sleep(0)
            if self._pending:  # another flusher may have taken them meanwhile
                await self._deliver(self._take())

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        """The oldest items up to max_size in all (always at least one)."""
        count, total = 0, 0
        for item, _ in self._pending:
            if count and total + self._size(item) > self._max_size:
                break
            count, total = count + 1, total + self._size(item)
        group, self._pending = self._pending[:count], self._pending[count:]
        return group

    async def _deliver(self, group: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._send([item for item, _ in group])
            self.sends += 1
        except asyncio.CancelledError:
            for _, future in group:
                future.cancel()
            raise
        except Exception as error:  # the send failed as a whole: every caller hears it
            results = [error] * len(group)
        for (_, future), result in zip(group, results, strict=True):
            if future.done():  # its caller gave up; what was sent stays sent
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
