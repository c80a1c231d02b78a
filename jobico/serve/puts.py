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
from dataclasses import dataclass
from typing import Protocol

from jobico.batching import Coalescer, Send
from jobico.errors import Unavailable
from jobico.lru import LRU
from jobico.queue.events import NewEvent, Put
from jobico.queue.localputs import PutClient, local_first
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


@dataclass(frozen=True)
class _Sender:
    """A tenant's queue as this listener sends to it."""

    queue: TenantQueue
    coalescer: Coalescer[Put, list[str]]
    local: PutClient | None  # the local socket's connection, if puts go over it

    def close(self) -> None:
        if self.local is not None:
            self.local.close()


class Puts:
    """`enqueue` for the listener's app (its Backend), a tenant's queue looked up once and kept
    until it fails or, past `max_queues` tenants (JOBICO_CACHE_QUEUES), until it is the least
    recently used. `local`: try the local socket (JOBICO_LOCAL_PUTS).

    An evicted tenant's local connection is closed: a put in flight on it fails Unavailable and
    is sent again under its key, like one whose actor died, so it commits once; the next put
    looks the queue up again."""

    def __init__(
        self,
        find: Find,
        *,
        local: bool,
        idempotency_ttl_s: float,
        pauses: Pauses = PUT_RETRIES_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        connect: Connect = PutClient.connect,
        max_queues: int = 1024,
    ) -> None:
        self._find, self._local_puts, self._ttl_s = find, local, idempotency_ttl_s
        self._pauses, self._sleep, self._connect = pauses, sleep, connect
        self._senders: LRU[str, _Sender] = LRU(max_queues, on_evict=lambda _, s: s.close())
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
        sender = self._senders.get(tenant)
        return sender is not None and sender.local is not None

    def in_use(self) -> list[TenantQueue]:
        """The queue actors this listener sends to (its health check pings them)."""
        return [sender.queue for sender in self._senders.values()]

    async def _sender(self, tenant: str) -> Coalescer[Put, list[str]]:
        if (known := self._senders.get(tenant)) is not None:
            return known.coalescer
        async with self._opening:  # a burst for a new tenant looks it up and connects once
            if (known := self._senders.get(tenant)) is None:
                queue = await self._find(tenant)
                send: Send[Put, list[str]] = queue.put_many
                local = await self._connect_local(tenant, queue) if self._local_puts else None
                if local is not None:
                    send = local_first(local, queue.put_many)
                known = _Sender(queue, Coalescer(send, size=lambda p: len(p.events)), local)
                self._senders.put(tenant, known)
            return known.coalescer

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
        if (sender := self._senders.pop(tenant)) is not None:
            sender.close()
