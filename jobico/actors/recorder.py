"""Ray shell of the executions recorder: adds return once the records are on disk.

Executors acknowledge an event only after its record is stored, so `add` waits for the next
flush; concurrent adds share that flush (one Parquet file per tenant and date each time),
which keeps files few while executors wait at most one flush interval.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ray

from jobico.actors import cluster
from jobico.config import Settings
from jobico.recorder import Recorder

_FLUSH_INTERVAL_S = 0.05


class RecorderActor:
    def __init__(self, settings: Settings) -> None:
        # The actor decides when to flush; the core's own size trigger is out of the way.
        self._recorder = Recorder(settings.records_uri, flush_records=10**9)
        self._next_flush: asyncio.Future[None] | None = None
        self._lock = asyncio.Lock()

    async def add(self, records: list[dict[str, Any]]) -> None:
        self._recorder.add(records)
        if self._next_flush is None:
            self._next_flush = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_later(_FLUSH_INTERVAL_S, self._start_flush)
        await asyncio.shield(self._next_flush)

    async def query(self, **filters: Any) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._recorder.query, **filters)

    def ping(self) -> str:
        return "ok"

    def _start_flush(self) -> None:
        waiting, self._next_flush = self._next_flush, None
        asyncio.get_running_loop().create_task(self._flush(waiting))

    async def _flush(self, waiting: asyncio.Future[None] | None) -> None:
        async with self._lock:  # one flush at a time; the next batch gathers meanwhile
            try:
                await asyncio.to_thread(self._recorder.flush)
            except Exception as e:  # the adders must hear of it: their events stay unacked
                if waiting is not None:
                    waiting.set_exception(e)
                return
        if waiting is not None:
            waiting.set_result(None)


def start(settings: Settings) -> Any:
    opts = cluster.options(cluster.RECORDER, settings, max_concurrency=1000)
    return ray.remote(RecorderActor).options(**opts).remote(settings)
