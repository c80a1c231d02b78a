"""A tenant's lane on an executor: the delivery protocol from a lease to its settle.

Owns lease pipelining (the next batch is leased while the last one's records and acks are
written), lease renewal while guests run, settling without a rerun the redelivered events whose
final record exists, settle retries across a restart of the queue, and the order "chained events,
then records, then acks" that is the delivery guarantee: an acked event is fully stored, and an
event not acked is delivered again and stored once (chained puts are keyed by their source
event, final records are looked up before a rerun).

Plain Python over small seams (`Queue`, `Chain`, `Recorder`, `Guests`): the executor actor
hands `Lanes` Ray-backed ones, the unit tests in-memory ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import Any, Protocol

from jobico.errors import Unavailable
from jobico.execution.executor import Verdicts, runs, settle_recorded
from jobico.queue.events import Leased, Put
from jobico.retry import aretry

log = logging.getLogger(__name__)

# Events per lease, and consecutive events of one key in a lease: a queue kept in order runs
# this many per round trip (lease, run, record, settle), so it is large.
BATCH = 1024
PER_KEY = 1024
# How long a lease call waits for events to arrive when there are none.
LEASE_WAIT_S = 2.0
# Settling is idempotent (by id and attempt), so it is worth retrying across a restart of the
# queue actor: otherwise the batch waits out its lease and runs again.
SETTLE_RETRIES_S = (0.2, 0.5, 1.0, 2.0, 4.0)
# Batches of one lane being recorded and settled at once, while the next one runs.
MAX_SETTLING = 4
# After a failed lease or run: the queue restarting, whose leases expire and come back.
FAILURE_PAUSE_S = 0.5

Finals = dict[str, tuple[str, str | None]]  # event id: (status, error) of its final record
Retrial = tuple[str, int, str, int]  # event id, delay in ms, error, attempt
Burial = tuple[str, str, int]  # event id, error, attempt


class Queue(Protocol):
    """The tenant's queue, as a lane uses it (`jobico.queue.store.QueueStore` semantics)."""

    async def lease(
        self, max_items: int, lease_ms: int, *, per_key: int, wait_s: float, max_keys: int
    ) -> list[Leased]: ...

    async def extend(self, ids: list[str], lease_ms: int) -> None: ...

    async def settle(
        self, ack: list[str], retry: list[Retrial], bury: list[Burial], release: list[str]
    ) -> None: ...


class Chain(Protocol):
    """Where chained result events go: each put gets its ids or its own error."""

    async def put_many(self, batches: list[Put]) -> Sequence[list[str] | Exception]: ...


class TenantQueue(Queue, Chain, Protocol):
    """A tenant's queue, which takes its chained events too."""


class Recorder(Protocol):
    async def add(self, records: list[dict[str, Any]]) -> None: ...

    async def final_outcomes(self, tenant: str, event_ids: list[str]) -> Finals: ...


class Guests(Protocol):
    """Runs one run (the events of one ordering key, in order) and decides their verdicts."""

    async def run(self, tenant: str, items: list[Leased]) -> Verdicts: ...


class Lane:
    """One tenant's lane: `serve` leases, runs and settles batches until `stop`."""

    def __init__(
        self,
        tenant: str,
        queue: Queue,
        chain: Chain,
        recorder: Recorder,
        guests: Guests,
        *,
        lease_ms: int,
        max_keys: int,
        on_settled: Callable[[Verdicts], None] = lambda verdicts: None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.tenant = tenant
        self._queue, self._chain, self._recorder, self._guests = queue, chain, recorder, guests
        self._lease_ms, self._max_keys = lease_ms, max_keys
        self._on_settled, self._sleep = on_settled, sleep
        self._stopping = False

    def stop(self) -> None:
        """Stop leasing: `serve` returns once the batches in hand are settled. (A lane is not
        cancelled: a lease call in progress would hand out a batch nobody runs, delayed until
        its lease expires.)"""
        self._stopping = True

    async def serve(self) -> None:
        # Batches run, whose records and acks are still being written. The lane leases the
        # next batch meanwhile: a tenant's new events must not wait for the recorder's write
        # of its last ones. Order per key still holds, as the queue never leases a key whose
        # earlier events are unsettled.
        settling: set[asyncio.Task[None]] = set()
        while not self._stopping:
            try:
                batch = await self._queue.lease(
                    BATCH,
                    self._lease_ms,
                    per_key=PER_KEY,
                    wait_s=LEASE_WAIT_S,
                    max_keys=self._max_keys,
                )
                if batch:
                    settle = await self._run(batch)
                    settling.add(settle)
                    settle.add_done_callback(settling.discard)
                while len(settling) >= MAX_SETTLING:
                    await asyncio.wait(settling, return_when=asyncio.FIRST_COMPLETED)
            except Exception:  # the queue restarting: its leases expire and come back
                log.exception("lane %s: lease or run failed; trying again", self.tenant)
                await self._sleep(FAILURE_PAUSE_S)
        await asyncio.gather(*settling, return_exceptions=True)

    async def _run(self, batch: list[Leased]) -> asyncio.Task[None]:
        """Run the batch; returns the task settling it. Its lease is renewed until settled."""
        # Recorded final before its executor died: settled as recorded, not run again.
        done, batch = settle_recorded(batch, await self._already_recorded(batch))
        if done.ack or done.bury:
            await self._queue.settle(done.ack, [], done.bury, [])
        loop = asyncio.get_running_loop()
        renew = loop.create_task(self._renew([item.id for item in batch]))
        try:
            parts = await asyncio.gather(*(self._guests.run(self.tenant, r) for r in runs(batch)))
        except BaseException:
            renew.cancel()
            raise
        return loop.create_task(self._finish(Verdicts.merge(list(parts)), renew))

    async def _finish(self, verdicts: Verdicts, renew: asyncio.Task[None]) -> None:
        try:
            await self._settle(verdicts)
            self._on_settled(verdicts)
        except Exception:  # unsettled, the batch is delivered again when its lease expires
            log.exception("lane %s: settling a batch failed", self.tenant)
        finally:
            renew.cancel()

    async def _settle(self, v: Verdicts) -> None:
        """Follow-ups and records first, then the acks: an acked event is fully stored."""
        if v.chained:
            for answer in await self._chain.put_many(v.chained):
                if isinstance(answer, Exception):
                    raise answer
        if v.records:
            await self._recorder.add(v.records)
        await aretry(
            partial(self._queue.settle, v.ack, v.retry, v.bury, v.release),
            SETTLE_RETRIES_S,
            on=Unavailable,
            sleep=self._sleep,
        )

    async def _already_recorded(self, batch: list[Leased]) -> Finals:
        """(status, error) of the redelivered events whose final record exists: their executor
        died after recording them but before settling. One final record per event id, even then."""
        redelivered = [item.id for item in batch if item.redelivered]
        if not redelivered:
            return {}
        return await self._recorder.final_outcomes(self.tenant, redelivered)

    async def _renew(self, ids: list[str]) -> None:
        while True:
            await self._sleep(self._lease_ms / 3000)
            with contextlib.suppress(Exception):
                await self._queue.extend(ids, self._lease_ms)


class Lanes:
    """An executor's lanes, one per tenant with packages, and what they have executed."""

    def __init__(
        self,
        queues: Callable[[str], TenantQueue],
        recorder: Recorder,
        guests: Guests,
        *,
        lease_ms: int,
        max_keys: int,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._queues, self._recorder, self._guests = queues, recorder, guests
        self._lease_ms, self._max_keys, self._sleep = lease_ms, max_keys, sleep
        self._lanes: dict[str, tuple[Lane, asyncio.Task[None]]] = {}
        self._draining = False
        self.executed = 0  # records written for events run

    @property
    def tenants(self) -> list[str]:
        return sorted(self._lanes)

    def open(self, tenants: Iterable[str]) -> None:
        """A lane for each of `tenants` that has none (unless draining: call `resume` first)."""
        # A tenant whose packages were all deleted keeps its lane: its queue may still hold
        # events accepted before, which must run (or be recorded as lost) all the same.
        for tenant in set(tenants) - set(self._lanes) if not self._draining else ():
            queue = self._queues(tenant)
            lane = Lane(
                tenant, queue, queue, self._recorder, self._guests,
                lease_ms=self._lease_ms, max_keys=self._max_keys,
                on_settled=self._count, sleep=self._sleep,
            )  # fmt: skip
            self._lanes[tenant] = (lane, asyncio.get_running_loop().create_task(lane.serve()))

    def resume(self) -> None:
        self._draining = False

    async def drain(self) -> None:
        """Stop every lane leasing; return once the batches in hand are settled."""
        self._draining = True
        lanes, self._lanes = list(self._lanes.values()), {}
        for lane, _ in lanes:
            lane.stop()
        await asyncio.gather(*(serving for _, serving in lanes), return_exceptions=True)

    def _count(self, verdicts: Verdicts) -> None:
        self.executed += len(verdicts.records)
