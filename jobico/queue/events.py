"""What goes into a queue and what comes out: `NewEvent` and `Put` in, `Leased` out, and the
ids events get (ULID-style, sorting in arrival order).

Plain values with no storage behind them, so the listener, the executor and local puts can
build and read them without the store.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass


def chained_key(event_id: str) -> str:
    """The idempotency key of the result events chained from `event_id`: a run of it again
    (its executor died after the put) gets the first put's ids instead of new events."""
    return f"chained/{event_id}"


@dataclass(frozen=True, kw_only=True)
class NewEvent:
    """What the listener (or result chaining) enqueues."""

    queue: str  # queue id within the tenant
    event: str  # event id: the {event} of the URL, or a chained result event
    package: str
    revision: int
    key: str | None  # ordering key value, already extracted; None = the whole queue is one key
    payload: bytes  # compact JSON of the event
    received_at: float
    limit: int = 100_000  # the queue's limit from the package


@dataclass(frozen=True)
class Put:
    """One sender's batch. With a `key`, the batch is idempotent for `ttl_s`: the same key
    again commits nothing and answers the ids of the first time (a webhook's Idempotency-Key,
    or the listener's own key when it retries a put whose answer was lost)."""

    events: Sequence[NewEvent]
    key: str | None = None
    ttl_s: float = 300.0


@dataclass(frozen=True, kw_only=True)
class Leased:
    """One event handed to an executor; `attempt` is 1 on first delivery."""

    id: str
    seq: int
    queue: str
    event: str
    package: str
    revision: int
    key: str | None
    payload: bytes
    received_at: float
    attempt: int
    # Its last lease ran out unsettled: that attempt may have run, and even been recorded.
    redelivered: bool = False


class EventIds:
    """ULID-style ids: 48-bit Unix ms + 80 random bits, 26 Crockford base32 chars.

    They sort by time as strings; within one generator they strictly increase even inside one
    millisecond or if the clock steps back (the last value + 1 is used then), so a store's ids
    sort in arrival order. 80 random bits keep ids of different processes apart.
    """

    _ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def new(self) -> str:
        with self._lock:
            value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
            value = max(value, self._last + 1)
            self._last = value
        return "".join(self._ALPHABET[(value >> shift) & 31] for shift in range(125, -1, -5))


new_event_id = EventIds().new
