"""Ray shell of a job executor: one lane per tenant (`jobico.execution.lane`, which owns the
delivery protocol), over the tenant's queue actor, the recorder and control.

Guests run on a pool of threads that tenants take turns on (jobico.execution.fairshare), so
the actor stays responsive (status, drain) while guests run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import ray

from jobico.actors import cluster
from jobico.actors import queue as queue_actor
from jobico.actors.pubsub import PACKAGES, Subscriber
from jobico.config import Settings
from jobico.errors import Unavailable
from jobico.execution.autoscale import CpuMeter, node_cpus
from jobico.execution.executor import Executor, Verdicts
from jobico.execution.fairshare import FairPool
from jobico.execution.lane import Lane, PooledGuests
from jobico.model import Revision
from jobico.pubsub import Changes
from jobico.wasm import Defaults, Sandbox

log = logging.getLogger(__name__)

# Keys (runs) per lease, per guest thread. A flood spread over many keys would otherwise come
# 1,024 runs a lease: setting them up and recording them held the executor's event loop for
# 25-40 ms at a time, and every other tenant's lease, run and settle on it waited. A few runs
# per thread keep the threads busy all the same.
KEYS_PER_THREAD = 4
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
            defaults=Defaults.of(settings),
            maxima=settings.limit_maxima,
            cache_dir=settings.home / "cache" / "modules",
        )
        self._core = Executor(self._sandbox, self._revision, self._module, name=f"{node}/{name}")
        self._revisions: dict[tuple[str, str, int], Revision] = {}
        self._recorder = RayRecorder(settings)
        # Runs of different ordering keys go side by side on these threads (wasmtime lets go of
        # the GIL while a guest runs), a slice at a time, tenants taking turns. At the lowest
        # CPU priority: guests asking for more CPU than the node has must not starve the
        # listener, queues and recorder, or every tenant's events wait behind them. (That
        # needs Ray's worker processes at nice 0, not Ray's default of 15: see `warn_niceness`.)
        self._pool = FairPool(settings.guest_threads, nice=GUEST_NICE, surge_nice=SURGE_NICE)
        self._guests = PooledGuests(self._core, self._pool)
        self._lanes: dict[str, tuple[Lane, asyncio.Task[None]]] = {}
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
        self._draining = True
        lanes, self._lanes = list(self._lanes.values()), {}
        for lane, _ in lanes:
            lane.stop()
        await asyncio.gather(*(serving for _, serving in lanes), return_exceptions=True)

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
        for tenant in tenants - set(self._lanes) if not self._draining else ():
            queue = RayQueue(self._settings, tenant)
            lane = Lane(
                tenant, queue, queue, self._recorder, self._guests,
                lease_ms=self._settings.lease_timeout_ms,
                max_keys=KEYS_PER_THREAD * self._settings.guest_threads,
                on_settled=self._count,
            )  # fmt: skip
            self._lanes[tenant] = (lane, asyncio.get_running_loop().create_task(lane.serve()))

    def _count(self, verdicts: Verdicts) -> None:
        self.executed += len(verdicts.records)

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


class Remote:
    """A named actor's handle, kept between calls (a lookup is a synchronous GCS round trip)
    and looked up again after a failure of `forget_on` (an actor replaced gets a new handle)."""

    def __init__(self, lookup: Callable[[], Any], forget_on: type[Exception]) -> None:
        self._lookup, self._forget_on = lookup, forget_on
        self._handle: Any = None

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self._handle is None:
            self._handle = await asyncio.to_thread(self._lookup)
        try:
            return await cluster.acall(getattr(self._handle, method).remote(*args, **kwargs))
        except self._forget_on:
            self._handle = None
            raise


class RayQueue(Remote):
    """The tenant's queue actor as a lane's `Queue` and `Chain`."""

    def __init__(self, settings: Settings, tenant: str) -> None:
        super().__init__(partial(queue_actor.handle, settings, tenant), forget_on=Exception)

    async def lease(self, *args: Any, **kwargs: Any) -> Any:
        return await self.call("lease", *args, **kwargs)

    async def extend(self, *args: Any) -> Any:
        return await self.call("extend", *args)

    async def settle(self, *args: Any) -> Any:
        return await self.call("settle", *args)

    async def put_many(self, *args: Any) -> Any:
        return await self.call("put_many", *args)


class RayRecorder(Remote):
    """The recorder actor as a lane's `Recorder`, one for all lanes (a restarted recorder
    keeps its handle: it is looked up again only when it did not answer)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(partial(cluster.actor, cluster.RECORDER, settings), forget_on=Unavailable)

    async def add(self, *args: Any) -> Any:
        return await self.call("add", *args)

    async def final_outcomes(self, *args: Any) -> Any:
        return await self.call("final_outcomes", *args)


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
