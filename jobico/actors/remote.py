"""Ray-backed seams for the plain cores: a named actor's handle kept between calls, and the
tenant's queue and the recorder as an executor lane's `Queue`, `Chain` and `Recorder`
(`jobico.execution.lane`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

from jobico.actors import cluster
from jobico.actors import queue as queue_actor
from jobico.config import Settings
from jobico.errors import Unavailable


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
