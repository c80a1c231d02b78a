"""Ray shell of a job executor: one lane per tenant leases a batch and runs it, then leases
the next while the last one's records and acks are being written.

Guests run on a pool of threads that tenants take turns on (jobico.execution.fairshare), so
the actor stays responsive (status, drain) while guests run. Leases are renewed until a batch is
settled, so only a dead executor's events are delivered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from functools import partial
from typing import Any

import ray

from jobico.actors import cluster
from jobico.actors import queue as queue_actor
from jobico.actors.pubsub import PACKAGES, Subscriber
from jobico.config import Settings
from jobico.errors import Unavailable
from jobico.execution.autoscale import CpuMeter, node_cpus
from jobico.execution.executor import Executor, Verdicts, runs, settle_recorded
from jobico.execution.fairshare import FairPool
from jobico.model import Revision
from jobico.pubsub import Changes
from jobico.queue.store import Leased
from jobico.wasm import Sandbox

log = logging.getLogger(__name__)

# Events per lease, and consecutive events of one key in a lease: a queue kept in order runs
# this many per round trip (lease, run, record, settle), so it is large.
BATCH = 1024
PER_KEY = 1024
# Keys (runs) per lease, per guest thread. A flood spread over many keys would otherwise come
# 1,024 runs a lease: setting them up and recording them held the executor's event loop for
# 25-40 ms at a time, and every other tenant's lease, run and settle on it waited. A few runs
# per thread keep the threads busy all the same.
KEYS_PER_THREAD = 4
SETTLE_RETRIES_S = (0.2, 0.5, 1.0, 2.0, 4.0)
# Batches of one lane being recorded and settled at once, while the next one runs.
MAX_SETTLING = 4
# A run holds a guest thread this long before other tenants' work gets a turn (an event is
# never cut short: a slow one holds it until it ends, at most its timeout).
SLICE_S = 0.01
GUEST_NICE = 19
# Surge threads run tenants that had nothing running (a quiet tenant beside a flood): ahead of
# the flood's guests, still well below the platform's own processes (nice 0).
SURGE_NICE = 10


class ExecutorActor:
    def __init__(self, settings: Settings, name: str) -> None:
        self._settings, self.name = settings, name
        self._node = ray.get_runtime_context().get_node_id()
        node = self._node[:8]
        self._sandbox = Sandbox(
            defaults=settings.guest_defaults,
            maxima=settings.guest_maxima,
            cache_dir=settings.home / "cache" / "modules",
        )
        self._core = Executor(self._sandbox, self._revision, self._module, name=f"{node}/{name}")
        self._revisions: dict[tuple[str, str, int], Revision] = {}
        self._recorder_handle: Any = None
        # Runs of different ordering keys go side by side on these threads (wasmtime lets go of
        # the GIL while a guest runs), a slice at a time, tenants taking turns. At the lowest
        # CPU priority: guests asking for more CPU than the node has must not starve the
        # listener, queues and recorder, or every tenant's events wait behind them. (That
        # needs Ray's worker processes at nice 0, not Ray's default of 15: see `warn_niceness`.)
        self._pool = FairPool(settings.guest_threads, nice=GUEST_NICE, surge_nice=SURGE_NICE)
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscriber: Subscriber | None = None
        self._draining = False
        self.executed = 0
        # What the autoscaler weighs before adding executors to this node, over the last
        # second (measured here, so `jobico status` asking for stats does not shorten it).
        self._load: dict[str, float | None] = {"node_busy": None, "guest_cpus": 0.0}
        self._cpus = node_cpus()
        self._measuring: asyncio.Task[None] | None = None
        warn_niceness(os.getpriority(os.PRIO_PROCESS, 0))
        cluster.freeze_heap()

    async def start(self) -> str:
        """Follow the packages topic and run a lane for every tenant that has packages."""
        self._loop = asyncio.get_running_loop()
        self._draining = False
        if self._measuring is None:
            self._measuring = self._loop.create_task(self._measure())
        if self._subscriber is None:
            self._subscriber = Subscriber(self._settings, PACKAGES, self._on_packages)
            await asyncio.to_thread(self._subscriber.start)
        return "ok"

    async def drain(self) -> None:
        """Stop leasing; return once the batches in hand are settled (before scale-down)."""
        if self._subscriber:
            self._subscriber.stop()
            self._subscriber = None
        # Lanes are not cancelled: a lease call in progress would hand out a batch nobody
        # runs, delayed until its lease expires. They stop after their current round.
        self._draining = True
        lanes, self._lanes = list(self._lanes.values()), {}
        await asyncio.gather(*lanes, return_exceptions=True)

    def stats(self) -> dict[str, Any]:
        """Figures for `jobico status` and the autoscaler: over the last second, how busy the
        node's CPUs were and how many CPUs this executor's guests kept busy."""
        return {
            "name": self.name,
            "tenants": sorted(self._lanes),
            "executed": self.executed,
            "nice": os.getpriority(os.PRIO_PROCESS, 0),
            "node": self._node,
            "cpus": self._cpus,
            **self._load,
        }

    async def _measure(self, every_s: float = 1.0) -> None:
        meter, last_s, last_at = CpuMeter(), self._pool.cpu_s, time.monotonic()
        meter.busy()
        while True:
            await asyncio.sleep(every_s)
            now, cpu_s = time.monotonic(), self._pool.cpu_s
            guests = (cpu_s - last_s) / max(now - last_at, 1e-3)
            self._load = {"node_busy": meter.busy(), "guest_cpus": guests}
            last_s, last_at = cpu_s, now

    def ping(self) -> str:
        return "ok"

    # --- lanes ---

    def _on_packages(self, changes: Changes) -> None:
        tenants = {key.split("/", 1)[0] for key, value in changes.items.items() if value}
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._open_lanes, tenants)

    def _open_lanes(self, tenants: set[str]) -> None:
        # A tenant whose packages were all deleted keeps its lane: its queue may still hold
        # events accepted before, which must run (or be recorded as lost) all the same.
        for tenant in tenants - set(self._lanes):
            self._lanes[tenant] = asyncio.get_running_loop().create_task(self._lane(tenant))

    async def _lane(self, tenant: str) -> None:
        lease_ms = self._settings.lease_timeout_ms
        max_keys = KEYS_PER_THREAD * self._settings.guest_threads
        # Batches run, whose records and acks are still being written. The lane leases the
        # next batch meanwhile: a tenant's new events must not wait for the recorder's write
        # of its last ones. Order per key still holds, as the queue never leases a key whose
        # earlier events are unsettled.
        settling: set[asyncio.Task[None]] = set()
        queue: Any = None
        while not self._draining:
            try:
                # Kept between rounds: looking it up costs a GCS round trip, and the queue
                # holds events that arrive meanwhile. Looked up again after a failure (a
                # queue actor replaced gets a new handle).
                if queue is None:
                    queue = await asyncio.to_thread(queue_actor.handle, self._settings, tenant)
                batch = await cluster.acall(
                    queue.lease.remote(
                        BATCH, lease_ms, per_key=PER_KEY, wait_s=2.0, max_keys=max_keys
                    )
                )
                if batch:
                    settle = await self._serve(tenant, queue, batch, lease_ms)
                    settling.add(settle)
                    settle.add_done_callback(settling.discard)
                while len(settling) >= MAX_SETTLING:
                    await asyncio.wait(settling, return_when=asyncio.FIRST_COMPLETED)
            except Exception:  # the queue restarting: its leases expire and come back
                log.exception("lane %s: lease or run failed; trying again", tenant)
                queue = None
                await asyncio.sleep(0.5)
        await asyncio.gather(*settling, return_exceptions=True)

    async def _serve(
        self, tenant: str, queue: Any, batch: list[Leased], lease_ms: int
    ) -> asyncio.Task[None]:
        """Run the batch; returns the task settling it. Its lease is renewed until settled."""
        # Recorded final before its executor died: settled as recorded, not run again.
        done, batch = settle_recorded(batch, await self._already_recorded(tenant, batch))
        if done.ack or done.bury:
            await cluster.acall(queue.settle.remote(done.ack, [], done.bury, []))
        loop = asyncio.get_running_loop()
        renew = loop.create_task(self._renew(queue, [item.id for item in batch], lease_ms))
        try:
            parts = await asyncio.gather(*(self._run(tenant, run) for run in runs(batch)))
        except BaseException:
            renew.cancel()
            raise
        return loop.create_task(self._finish(tenant, queue, Verdicts.merge(list(parts)), renew))

    async def _finish(
        self, tenant: str, queue: Any, verdicts: Verdicts, renew: asyncio.Task[None]
    ) -> None:
        try:
            await self._settle(tenant, queue, verdicts)
            self.executed += len(verdicts.records)
        except Exception:  # unsettled, the batch is delivered again when its lease expires
            log.exception("lane %s: settling a batch failed", tenant)
        finally:
            renew.cancel()

    async def _run(self, tenant: str, items: list[Leased]) -> Verdicts:
        """One run, a slice at a time on the shared guest threads, in order."""
        run = self._core.start_run(tenant, items)
        while not await asyncio.wrap_future(self._pool.submit(tenant, partial(run.step, SLICE_S))):
            pass
        return run.verdicts

    async def _settle(self, tenant: str, queue: Any, v: Verdicts) -> None:
        """Follow-ups and records first, then the acks: an acked event is fully stored."""
        if v.chained:
            answers = await cluster.acall(queue.put_many.remote(v.chained))
            for answer in answers:
                if isinstance(answer, Exception):
                    raise answer
        if v.records:
            recorder = await self._recorder()
            try:
                await cluster.acall(recorder.add.remote(v.records))
            except Unavailable:
                self._recorder_handle = None  # looked up again: it may have been replaced
                raise
        # Settling is idempotent (by id and attempt), so it is worth retrying across a restart
        # of the queue actor: otherwise the batch waits out its lease and runs again.
        for delay in SETTLE_RETRIES_S:
            try:
                await cluster.acall(queue.settle.remote(v.ack, v.retry, v.bury, v.release))
                return
            except Unavailable:
                await asyncio.sleep(delay)
                queue = await asyncio.to_thread(queue_actor.handle, self._settings, tenant)
        await cluster.acall(queue.settle.remote(v.ack, v.retry, v.bury, v.release))

    async def _already_recorded(
        self, tenant: str, batch: list[Leased]
    ) -> dict[str, tuple[str, str | None]]:
        """(status, error) of the redelivered events whose final record exists: their executor
        died after recording them but before settling. One final record per event id, even then."""
        redelivered = [item.id for item in batch if item.redelivered]
        if not redelivered:
            return {}
        recorder = await self._recorder()
        return await cluster.acall(recorder.final_outcomes.remote(tenant, redelivered))  # type: ignore[no-any-return]

    async def _recorder(self) -> Any:
        """The recorder's handle, looked up once (a restarted recorder keeps it). A lookup is
        a synchronous GCS round trip: made for every batch on the event loop, it put the GCS's
        slowest answers on a busy node in the path of every lane of every tenant."""
        if self._recorder_handle is None:
            self._recorder_handle = await asyncio.to_thread(
                cluster.actor, cluster.RECORDER, self._settings
            )
        return self._recorder_handle

    @staticmethod
    async def _renew(queue: Any, ids: list[str], lease_ms: int) -> None:
        while True:
            await asyncio.sleep(lease_ms / 3000)
            with contextlib.suppress(Exception):
                await queue.extend.remote(ids, lease_ms)

    # --- lookups, on the guest thread ---

    def _revision(self, tenant: str, package: str, number: int) -> Revision:
        key = (tenant, package, number)
        if key not in self._revisions:  # revisions never change, so they are cached for good
            control = cluster.actor(cluster.CONTROL, self._settings)
            self._revisions[key] = cluster.call(control.revision.remote(tenant, package, number))
        return self._revisions[key]

    def _module(self, tenant: str, digest: str) -> bytes:
        repository = cluster.actor(cluster.REPOSITORY, self._settings)
        return cluster.call(repository.read.remote(tenant, digest))  # type: ignore[no-any-return]


def warn_niceness(nice: int) -> None:
    """Guests run at nice 19, which keeps them behind the platform only if the platform runs
    well above it. Ray starts its workers at nice 15 unless told otherwise: then a flood of
    CPU-bound guests takes most of the CPU from the listener, queues and recorder."""
    if nice > 0:
        log.warning(
            "this executor runs at nice %d: guests (nice %d) can starve the platform's own "
            "processes. Start Ray with RAY_worker_niceness=0 (jobico up does; see "
            "docs/operating.md)",
            nice,
            GUEST_NICE,
        )


def start(settings: Settings, name: str, node_index: int) -> Any:
    opts = cluster.options(name, settings, node_index=node_index, max_concurrency=100)
    return ray.remote(ExecutorActor).options(**opts).remote(settings, name)
