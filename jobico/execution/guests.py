"""Guests on an executor's threads: runs a slice at a time on a pool tenants take turns on,
at a CPU priority below the platform's own processes, and the CPU they keep busy.

Plain Python: `PooledGuests` is the `Guests` seam of `jobico.execution.lane` that the executor
actor hands its lanes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial

from jobico.execution.autoscale import CpuMeter
from jobico.execution.executor import Executor, Verdicts
from jobico.execution.fairshare import FairPool
from jobico.queue.events import Leased

log = logging.getLogger(__name__)

# A run holds a guest thread this long before other tenants' work gets a turn (an event is
# never cut short: a slow one holds it until it ends, at most its timeout).
SLICE_S = 0.01
GUEST_NICE = 19
# Surge threads run tenants that had nothing running (a quiet tenant beside a flood): ahead of
# the flood's guests, still well below the platform's own processes (nice 0).
SURGE_NICE = 10


class PooledGuests:
    """Runs of different ordering keys side by side on `threads` shared threads (wasmtime lets
    go of the GIL while a guest runs), a slice at a time, tenants taking turns, so the event
    loop stays free while guests run."""

    def __init__(self, executor: Executor, threads: int) -> None:
        self._executor = executor
        # At the lowest CPU priority: guests asking for more CPU than the node has must not
        # starve the listener, queues and recorder, or every tenant's events wait behind them.
        # (That needs Ray's worker processes at nice 0, not Ray's default of 15: see
        # `warn_niceness`.)
        self._pool = FairPool(threads, nice=GUEST_NICE, surge_nice=SURGE_NICE)
        # What the autoscaler weighs before adding executors to this node, over the last
        # second (measured by `measure`, so `jobico status` asking for it does not shorten it).
        self.load: dict[str, float | None] = {"node_busy": None, "guest_cpus": 0.0}

    async def run(self, tenant: str, items: list[Leased]) -> Verdicts:
        """One run, a slice at a time on the shared guest threads, in order."""
        run = self._executor.start_run(tenant, items)
        while not await asyncio.wrap_future(self._pool.submit(tenant, partial(run.step, SLICE_S))):
            pass
        return run.verdicts

    async def measure(self, every_s: float = 1.0) -> None:
        """Keep `load` current: how busy the node's CPUs were over the last `every_s`, and how
        many CPUs the guests kept busy."""
        meter, last_s, last_at = CpuMeter(), self._pool.cpu_s, time.monotonic()
        meter.busy()
        while True:
            await asyncio.sleep(every_s)
            now, cpu_s = time.monotonic(), self._pool.cpu_s
            guests = (cpu_s - last_s) / max(now - last_at, 1e-3)
            self.load = {"node_busy": meter.busy(), "guest_cpus": guests}
            last_s, last_at = cpu_s, now

    def close(self) -> None:
        """Finish the runs submitted, then stop the threads."""
        self._pool.close()


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
