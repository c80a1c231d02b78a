"""Ray shell of the executions recorder: adds return once the records are on disk.

Executors acknowledge an event only after its record is stored, so `add` waits for a write.
Each tenant has its own writes, side by side with other tenants': a tenant's few records never
wait behind another's thousands (or its partition's compaction). A tenant's concurrent adds
share one write (one Parquet file per date): an idle tenant's records are written at once, a
busy tenant's gather during a write into the next. A tenant's small files are merged after a
write, in the background: the next write does not wait for the merge, so neither do the
executor's acks nor the tenant's next events (a merge of 64 files took 60-90 ms, 240 ms on a
busy node, and was the p99 of a quiet tenant's latency while it was part of the write).
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import ray

from jobico.access import auth
from jobico.actors import cluster, metrics
from jobico.actors.grants import Verifier
from jobico.batching import Coalescer
from jobico.config import Settings
from jobico.records.recorder import Recorder

Records = list[dict[str, Any]]


class RecorderActor:
    def __init__(self, settings: Settings) -> None:
        self._recorder = Recorder(settings.records_uri, compact_bytes=1 << 20)
        self._writes: dict[str, Coalescer[Records, None]] = {}
        self._merges: dict[str, asyncio.Task[int]] = {}
        self._grants = Verifier(settings)
        cluster.freeze_heap()

    async def add(self, records: Records) -> None:
        tenants: dict[str, Records] = {}
        for record in records:
            tenants.setdefault(str(record.get("tenant")), []).append(record)
        await asyncio.gather(*(self._writer(t).submit(rs) for t, rs in tenants.items()))

    def _writer(self, tenant: str) -> Coalescer[Records, None]:
        if tenant not in self._writes:
            self._writes[tenant] = Coalescer(partial(self._write, tenant), size=len)
        return self._writes[tenant]

    async def internal_records(self, **filters: Any) -> Records:
        return await asyncio.to_thread(self._recorder.query, **filters)

    async def records(self, grant: auth.Grant, **filters: Any) -> Records:
        """A tenant token sees its own tenant's records only."""
        tenant = auth.scope(await self._grants.averify(grant), filters.pop("tenant", None))
        return await self.internal_records(tenant=tenant, **filters)

    async def final_outcomes(
        self, tenant: str, event_ids: list[str]
    ) -> dict[str, tuple[str, str | None]]:
        return await asyncio.to_thread(self._recorder.final_outcomes, tenant, event_ids)

    def ping(self) -> str:
        return "ok"

    async def _write(self, tenant: str, groups: list[Records]) -> list[None]:
        def write() -> None:
            self._recorder.add([record for records in groups for record in records])
            for records in groups:
                metrics.recorded(records)

        await asyncio.to_thread(write)
        self._merge_if_due(tenant)
        return [None] * len(groups)

    def _merge_if_due(self, tenant: str) -> None:
        """Start merging the tenant's small files unless a merge of them is under way (a
        partition falling due meanwhile is merged after a later write)."""
        merging = self._merges.get(tenant)
        if (merging is None or merging.done()) and self._recorder.due(tenant):
            merge = asyncio.to_thread(self._recorder.compact_due, tenant)
            self._merges[tenant] = asyncio.get_running_loop().create_task(merge)


def start(settings: Settings) -> Any:
    opts = cluster.options(cluster.RECORDER, settings, max_concurrency=1000)
    return ray.remote(RecorderActor).options(**opts).remote(settings)
