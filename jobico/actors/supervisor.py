"""Ray shell that keeps the executors running: as many as the backlog calls for, each started.

Every second it reads each tenant's queue figures, asks the scaler for a count
(`jobico.execution.autoscale`), starts or drains executors (named `executor:<n>`), and keeps
the figures for `jobico status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import ray

from jobico.actors import cluster, executor, metrics
from jobico.actors import queue as queue_actor
from jobico.config import Settings
from jobico.execution.autoscale import Policy, Scaler, Scaling

log = logging.getLogger(__name__)

_TICK_S = 1.0


def executor_name(n: int) -> str:
    return f"executor:{n}"


class _Executors:
    """The executors this supervisor started, by name: `executor:0` up to the count."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._handles: dict[str, Any] = {}

    def count(self) -> int:
        return len(self._handles)

    def node_of(self, index: int) -> str:
        return cluster.node_of(index)

    async def stats(self) -> dict[str, Any]:
        # A snapshot: the scaling loop may add or drain executors while their stats come.
        handles = dict(self._handles)
        stats = await asyncio.gather(
            *(cluster.acall(h.stats.remote()) for h in handles.values()),
            return_exceptions=True,
        )
        return dict(zip(handles, stats, strict=True))

    async def adjust(self, target: int) -> None:
        for n in range(target):
            name = executor_name(n)
            if name not in self._handles:
                self._handles[name] = executor.start(self._settings, name, node_index=n)
            # start() is idempotent, and re-arms an executor that Ray restarted.
            await cluster.acall(self._handles[name].start.remote())
        for name in [executor_name(n) for n in range(target, len(self._handles))]:
            handle = self._handles.pop(name)
            with contextlib.suppress(Exception):
                await cluster.acall(handle.drain.remote())
            ray.kill(handle, no_restart=True)


class SupervisorActor:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._scaler = Scaler(Policy.of(settings))
        self._scaling = Scaling(backlog=0, target=settings.executors_min)
        self._executors = _Executors(settings)
        self._queues: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Bring the executors to the minimum, then keep adjusting in the background."""
        if self._task is None:
            await self._executors.adjust(self._settings.executors_min)
            self._task = asyncio.get_running_loop().create_task(self._run())
        return "ok"

    async def report(self) -> dict[str, Any]:
        stats = await self._executors.stats()
        executors = [
            s if isinstance(s, dict) else {"name": n, "error": str(s)} for n, s in stats.items()
        ]
        policy = self._scaler.policy
        scaling = {
            **self._scaling.to_dict(),
            "running": self._executors.count(),
            "minimum": policy.minimum,
            "maximum": policy.maximum,
        }
        return {"executors": executors, "queues": self._queues, "scaling": scaling}

    async def stop(self) -> None:
        """Drain and stop every executor (what `jobico down` does before killing actors)."""
        if self._task:
            self._task.cancel()
            self._task = None
        await self._executors.adjust(0)

    def ping(self) -> str:
        return "ok"

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(_TICK_S)
            try:
                self._queues = await self._queue_figures()
                now = time.monotonic()
                self._scaling = await self._scaler.decide(self._queues, self._executors, now)
                metrics.queues(self._queues)
                await self._executors.adjust(self._scaling.target)
                metrics.executors(self._executors.count(), self._scaling.target)
            except Exception:  # a component restarting: the next tick tries again
                log.exception("supervisor tick failed")

    async def _queue_figures(self) -> dict[str, dict[str, Any]]:
        control = cluster.actor(cluster.CONTROL, self._settings)
        tenants = await cluster.acall(control.internal_tenants.remote())
        handles = [queue_actor.handle(self._settings, t) for t in tenants]
        figures = await asyncio.gather(
            *(cluster.acall(h.internal_figures.remote()) for h in handles)
        )
        return dict(zip(tenants, figures, strict=True))


def start(settings: Settings) -> Any:
    opts = cluster.options(cluster.SUPERVISOR, settings, max_concurrency=100)
    return ray.remote(SupervisorActor).options(**opts).remote(settings)
