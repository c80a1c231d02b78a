"""Ray shell of a job executor: one lane per tenant (`jobico.execution.lane`, which owns the
delivery protocol) over the tenant's queue actor and the recorder, its guests on threads
tenants take turns on (`jobico.execution.guests`), so the actor stays responsive (status,
drain) while guests run.
"""

from __future__ import annotations

import asyncio
import os
from functools import partial
from typing import Any

import ray

from jobico.actors import cluster
from jobico.actors.pubsub import PACKAGES, Subscriber
from jobico.actors.remote import RayQueue, RayRecorder
from jobico.config import Settings
from jobico.execution.autoscale import node_cpus
from jobico.execution.executor import Executor
from jobico.execution.guests import PooledGuests, warn_niceness
from jobico.execution.lane import Lanes
from jobico.lru import LRU
from jobico.model import Revision
from jobico.pubsub import Changes
from jobico.wasm import Sandbox

# Keys (runs) per lease, per guest thread. A flood spread over many keys would otherwise come
# 1,024 runs a lease: setting them up and recording them held the executor's event loop for
# 25-40 ms at a time, and every other tenant's lease, run and settle on it waited. A few runs
# per thread keep the threads busy all the same.
KEYS_PER_THREAD = 4


class ExecutorActor:
    def __init__(self, settings: Settings, name: str) -> None:
        self._settings, self.name = settings, name
        self._node = ray.get_runtime_context().get_node_id()
        node = self._node[:8]
        self._sandbox = Sandbox(
            defaults=settings.guest_defaults,
            maxima=settings.guest_maxima,
            cache_dir=settings.home / "cache" / "modules",
            max_modules=settings.cache_modules,
            max_instances=settings.cache_instances,
        )
        self._core = Executor(self._sandbox, self._revision, self._module, name=f"{node}/{name}")
        # Revisions never change: one evicted is read again from control, the same.
        self._revisions: LRU[tuple[str, str, int], Revision] = LRU(settings.cache_revisions)
        self._guests = PooledGuests(self._core, settings.guest_threads)
        self._lanes = Lanes(
            partial(RayQueue, settings), RayRecorder(settings), self._guests,
            lease_ms=settings.lease_timeout_ms,
            max_keys=KEYS_PER_THREAD * settings.guest_threads,
        )  # fmt: skip
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscriber: Subscriber | None = None
        self._cpus = node_cpus()
        self._measuring: asyncio.Task[None] | None = None
        warn_niceness(os.getpriority(os.PRIO_PROCESS, 0))
        cluster.freeze_heap()

    async def start(self) -> str:
        """Follow the packages topic and run a lane for every tenant that has packages."""
        self._loop = asyncio.get_running_loop()
        self._lanes.resume()
        if self._measuring is None:
            self._measuring = self._loop.create_task(self._guests.measure())
        if self._subscriber is None:
            self._subscriber = Subscriber(self._settings, PACKAGES, self._on_packages)
            await asyncio.to_thread(self._subscriber.start)
        return "ok"

    async def drain(self) -> None:
        """Stop leasing; return once the batches in hand are settled (before scale-down)."""
        if self._subscriber:
            self._subscriber.stop()
            self._subscriber = None
        await self._lanes.drain()

    def stats(self) -> dict[str, Any]:
        """Figures for `jobico status` and the autoscaler: over the last second, how busy the
        node's CPUs were and how many CPUs this executor's guests kept busy."""
        return {
            "name": self.name,
            "tenants": self._lanes.tenants,
            "executed": self._lanes.executed,
            "nice": os.getpriority(os.PRIO_PROCESS, 0),
            "node": self._node,
            "cpus": self._cpus,
            **self._guests.load,
        }

    def ping(self) -> str:
        return "ok"

    def _on_packages(self, changes: Changes) -> None:
        tenants = {key.split("/", 1)[0] for key, value in changes.items.items() if value}
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._lanes.open, tenants)

    # --- lookups, on the guest thread ---

    def _revision(self, tenant: str, package: str, number: int) -> Revision:
        def load() -> Revision:
            control = cluster.actor(cluster.CONTROL, self._settings)
            return cluster.call(control.internal_revision.remote(tenant, package, number))  # type: ignore[no-any-return]

        return self._revisions.load((tenant, package, number), load)

    def _module(self, tenant: str, digest: str) -> bytes:
        repository = cluster.actor(cluster.REPOSITORY, self._settings)
        return cluster.call(repository.read.remote(tenant, digest))  # type: ignore[no-any-return]


def start(settings: Settings, name: str, node_index: int) -> Any:
    opts = cluster.options(name, settings, node_index=node_index, max_concurrency=100)
    return ray.remote(ExecutorActor).options(**opts).remote(settings, name)
