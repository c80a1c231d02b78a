"""Ray shell of the executions recorder: adds return once the records are on disk.

Executors acknowledge an event only after its record is stored, so `add` waits for a flush.
Concurrent adds share one (one Parquet file per tenant and date each time): an idle recorder
writes at once, a busy one gathers everything that arrives during a write into the next.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ray

from jobico import auth
from jobico.actors import cluster, metrics
from jobico.actors.grants import Verifier
from jobico.batching import Coalescer
from jobico.config import Settings
from jobico.recorder import Recorder

Records = list[dict[str, Any]]


class RecorderActor:
    def __init__(self, settings: Settings) -> None:
        # The actor decides when to flush; the core's own size trigger is out of the way.
        self._recorder = Recorder(settings.records_uri, flush_records=10**9, compact_bytes=1 << 20)
        self._writes: Coalescer[Records, None] = Coalescer(self._write, size=len)
        self._grants = Verifier(settings)

    async def add(self, records: Records) -> None:
        await self._writes.submit(records)

    async def query(self, **filters: Any) -> Records:
        return await asyncio.to_thread(self._recorder.query, **filters)

    async def find(self, grant: auth.Grant, **filters: Any) -> Records:
        """`query` for clients: a tenant token sees its own tenant's records only."""
        tenant = auth.scope(await self._grants.averify(grant), filters.pop("tenant", None))
        return await self.query(tenant=tenant, **filters)

    async def final_ids(self, tenant: str, event_ids: list[str]) -> set[str]:
        return await asyncio.to_thread(self._recorder.final_ids, tenant, event_ids)

    def ping(self) -> str:
        return "ok"

    async def _write(self, groups: list[Records]) -> list[None]:
        def write() -> None:
            for records in groups:
                self._recorder.add(records)
            self._recorder.flush()
            for records in groups:
                metrics.recorded(records)

        await asyncio.to_thread(write)
        return [None] * len(groups)


def start(settings: Settings) -> Any:
    opts = cluster.options(cluster.RECORDER, settings, max_concurrency=1000)
    return ray.remote(RecorderActor).options(**opts).remote(settings)
