"""Ray shell that keeps the executors running: as many as the backlog calls for, each started.

Every second it reads each tenant's queue figures, asks the scaler for a count, starts or
drains executors (named `executor:<n>`), and keeps the figures for `jobico status`.
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
from jobico.execution.autoscale import Policy, Scaler

log = logging.getLogger(__name__)

_TICK_S = 1.0


def executor_name(n: int) -> str:
    return f"executor:{n}"


class SupervisorActor:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._scaler = Scaler(
            Policy(
                minimum=settings.executors_min,
                maximum=settings.executors_max,
                backlog_per_executor=settings.backlog_per_executor,
                idle_s=settings.executors_idle_s,
                busy_cpu=settings.executors_busy_cpu,
                guest_share=settings.executors_guest_share,
            )
        )
        self._scaling = {"backlog": 0, "target": settings.executors_min, "held": False}
        self._calls_for_more = False  # at the last tick: the backlog called for more executors
        self._executors: dict[str, Any] = {}
        self._queues: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Bring the executors to the minimum, then keep adjusting in the background."""
        if self._task is None:
            await self._adjust(self._settings.executors_min)
            self._task = asyncio.get_running_loop().create_task(self._run())
        return "ok"

    async def report(self) -> dict[str, Any]:
        # A snapshot: the scaling loop may add or drain executors while their stats come.
        handles = dict(self._executors)
        stats = await asyncio.gather(
            *(cluster.acall(h.stats.remote()) for h in handles.values()),
            return_exceptions=True,
        )
        executors = [
            s if isinstance(s, dict) else {"name": n, "error": str(s)}
            for n, s in zip(handles, stats, strict=True)
        ]
        policy = self._scaler.policy
        scaling = {
            **self._scaling,
            "running": len(self._executors),
            "minimum": policy.minimum,
            "maximum": policy.maximum,
        }
        return {"executors": executors, "queues": self._queues, "scaling": scaling}

    async def stop(self) -> None:
        """Drain and stop every executor (what `jobico down` does before killing actors)."""
        if self._task:
            self._task.cancel()
            self._task = None
        await self._adjust(0)

    def ping(self) -> str:
        return "ok"

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(_TICK_S)
            try:
                self._queues = await self._queue_figures()
                backlog = sum(q["depth"] for t in self._queues.values() for q in t.values())
                room, held = await self._room(backlog)
                target = self._scaler.target(
                    len(self._executors), backlog, time.monotonic(), room=room
                )
                self._scaling = {"backlog": backlog, "target": target, "held": held}
                metrics.queues(self._queues)
                await self._adjust(target)
                metrics.executors(len(self._executors), target)
            except Exception:  # a component restarting: the next tick tries again
                log.exception("supervisor tick failed")

    async def _room(self, backlog: int) -> tuple[bool, bool]:
        """Whether the node the next executor would go to can use one (`Scaler.full_nodes`),
        and whether that is why none is added. Executors measure their last second; a
        backlog that has just appeared waits one tick while they take it up, or a burst put
        at once would be judged by the quiet second before it."""
        running, calls_for_more = len(self._executors), self._calls_for_more
        self._calls_for_more = self._scaler.wanted(backlog) > running
        if not self._calls_for_more:
            return True, False
        if not calls_for_more:
            return False, False
        stats = await asyncio.gather(
            *(cluster.acall(h.stats.remote()) for h in self._executors.values()),
            return_exceptions=True,
        )
        full = self._scaler.full_nodes(s for s in stats if isinstance(s, dict))
        if full and cluster.node_of(running) in full:  # as placing one does (on_node)
            return False, True
        return True, False

    async def _queue_figures(self) -> dict[str, dict[str, Any]]:
        control = cluster.actor(cluster.CONTROL, self._settings)
        tenants = await cluster.acall(control.tenants.remote())
        handles = [queue_actor.handle(self._settings, t) for t in tenants]
        figures = await asyncio.gather(*(cluster.acall(h.stats.remote()) for h in handles))
        return dict(zip(tenants, figures, strict=True))

    async def _adjust(self, target: int) -> None:
        for n in range(target):
            name = executor_name(n)
            if name not in self._executors:
                self._executors[name] = executor.start(self._settings, name, node_index=n)
            # start() is idempotent, and re-arms an executor that Ray restarted.
            await cluster.acall(self._executors[name].start.remote())
        for name in [executor_name(n) for n in range(target, len(self._executors))]:
            handle = self._executors.pop(name)
            with contextlib.suppress(Exception):
                await cluster.acall(handle.drain.remote())
            ray.kill(handle, no_restart=True)


def start(settings: Settings) -> Any:
    opts = cluster.options(cluster.SUPERVISOR, settings, max_concurrency=100)
    return ray.remote(SupervisorActor).options(**opts).remote(settings)
