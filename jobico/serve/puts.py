"""The listener's puts into its tenants' queues (no Ray): concurrent requests for a tenant go to
its queue in one send, over the queue actor's local socket when it runs on this node, else as
one actor call; a put whose queue actor died is sent again, under its key, to the restarted one.

`jobico.serve.listener` supplies the queue actors (`Find`, `TenantQueue`); unit tests supply
fakes. Puts are idempotent by key, so a put whose answer was lost (the actor died after its
commit) is never refused while committed, and never committed twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

from jobico.batching import Coalescer, Send
from jobico.errors import Unavailable
from jobico.queue.localputs import PutClient, local_first
from jobico.queue.store import NewEvent, Put
from jobico.retry import Pauses, aretry

log = logging.getLogger(__name__)

# A put whose queue actor died is sent again after these pauses (a restart takes a second or
# two); its key keeps a resend from committing twice for RETRY_WINDOW_S.
PUT_RETRIES_S = (0.1, 0.3, 0.6, 1.0, 2.0)
RETRY_WINDOW_S = 600.0


class TenantQueue(Protocol):
    """A tenant's queue actor as the listener reaches it (in the listener: its Ray handle)."""

    async def put_many(self, puts: list[Put]) -> list[list[str] | Exception]:
        """Each put's ids, or its own error (QueueFull). Unavailable: the actor is gone."""
        ...

    async def local_socket(self) -> str | None:
        """The path of the actor's local put socket, if it runs on this node; else None."""
        ...

    async def ping(self) -> None:
        """Returns once the actor answers (the listener's health check)."""
        ...


# A tenant's queue actor, looked up (or created); Unavailable while it cannot be reached.
Find = Callable[[str], Awaitable[TenantQueue]]
Connect = Callable[[str], Awaitable[PutClient]]


class Puts:
    """`enqueue` for the listener's app (its Backend), a tenant's queue looked up once and kept
    until it fails. `local`: try the local socket (JOBICO_LOCAL_PUTS)."""

    def __init__(
        self,
        find: Find,
        *,
        local: bool,
        idempotency_ttl_s: float,
        pauses: Pauses = PUT_RETRIES_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        connect: Connect = PutClient.connect,
    ) -> None:
        self._find, self._local_puts, self._ttl_s = find, local, idempotency_ttl_s
        self._pauses, self._sleep, self._connect = pauses, sleep, connect
        self._queues: dict[str, TenantQueue] = {}
        self._senders: dict[str, Coalescer[Put, list[str]]] = {}
        self._local: dict[str, PutClient] = {}
        self._opening = asyncio.Lock()

    async def enqueue(self, tenant: str, events: list[NewEvent], key: str | None) -> list[str]:
        """The events' ids once committed, under the sender's key or one of this request's own;
        Unavailable once the queue actor has not answered through every pause."""
        if key is None:
            put = Put(events, key=f"listener/{uuid.uuid4().hex}", ttl_s=RETRY_WINDOW_S)
        else:
            put = Put(events, key=f"sender/{key}", ttl_s=self._ttl_s)

        async def send() -> list[str]:
            return await (await self._sender(tenant)).submit(put)

        def forget(error: BaseException, pause: float) -> None:
            self._forget(tenant)  # the actor may have been replaced: look it up again

        return await aretry(send, self._pauses, Unavailable, forget, self._sleep)

    def sends_locally(self, tenant: str) -> bool:
        """Whether this tenant's puts go over the queue actor's local socket right now."""
        return tenant in self._local

    def in_use(self) -> list[TenantQueue]:
        """The queue actors this listener sends to (its health check pings them)."""
        return list(self._queues.values())

    async def _sender(self, tenant: str) -> Coalescer[Put, list[str]]:
        if (known := self._senders.get(tenant)) is not None:
            return known
        async with self._opening:  # a burst for a new tenant looks it up and connects once
            if tenant not in self._senders:
                queue = await self._find(tenant)
                self._queues[tenant] = queue
                send: Send[Put, list[str]] = queue.put_many
                if self._local_puts and (local := await self._connect_local(tenant, queue)):
                    self._local[tenant] = local
                    send = local_first(local, queue.put_many)
                self._senders[tenant] = Coalescer(send, size=lambda p: len(p.events))
            return self._senders[tenant]

    async def _connect_local(self, tenant: str, queue: TenantQueue) -> PutClient | None:
        """A connection to the queue actor's local put socket, if it is on this node. An
        Unavailable actor is the caller's to retry, as for a put."""
        path = await queue.local_socket()
        if path is None:
            return None
        try:
            return await self._connect(path)
        except OSError as e:
            log.warning("puts for %s go through Ray calls: %s", tenant, e)
            return None

    def _forget(self, tenant: str) -> None:
        self._senders.pop(tenant, None)
        self._queues.pop(tenant, None)
        if (local := self._local.pop(tenant, None)) is not None:
            local.close()
