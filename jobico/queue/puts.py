"""Putting events: each sender's batch checked field by field, bounded by its queues' limits,
and idempotent by key (the `requests` table); several senders' batches in one transaction.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from typing import Any

from jobico.errors import InvalidInput, JobicoError, QueueFull
from jobico.queue.events import NewEvent, Put, chained_key, new_event_id
from jobico.queue.schema import HEAD_IF_ALONE, Database

RETRY_AFTER_S = 1  # what a full queue tells senders to wait: executors drain batches that fast

_INSERT = f"""
INSERT INTO events (id, queue, event, package, revision, key, payload, received_at, is_head)
VALUES (:id, :queue, :event, :package, :revision, :key, :payload, :received_at,
        {HEAD_IF_ALONE.format(q=":queue", k=":key")})"""
# An acked event never runs again, so the key of the events it chained is no longer needed.
_FORGET_KEY = "DELETE FROM requests WHERE key = ?"
_MAX_INT = 2**63 - 1  # SQLite's integers are 64-bit signed; a larger one fails to bind


def put_batches(
    db: Database, batches: Sequence[Sequence[NewEvent] | Put], now: float
) -> list[list[str] | Exception]:
    """Several callers' batches in ONE transaction; each batch all or nothing on its own.

    A batch that is invalid or would overflow a queue gets its error in its place and writes
    nothing; the others still commit. A database failure fails them all (raised).
    """
    with db.transaction() as conn:
        results = [_put_one(conn, _as_put(b), now) for b in batches]
        if db.commits % 1000 == 0:  # expired keys go now and then, not on every commit
            conn.execute("DELETE FROM requests WHERE expires_at < ?", (now,))
        return results


def forget_chained(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    """Drop the idempotency keys of what the events `ids` chained: they are done for good."""
    conn.executemany(_FORGET_KEY, [(chained_key(id_),) for id_ in ids])


def _put_one(conn: sqlite3.Connection, put: Put, now: float) -> list[str] | Exception:
    # Checked before anything touches SQLite: a value it cannot bind (or a limit that is
    # not a number) would fail the whole transaction, every other caller's put with it.
    try:
        _check_put(put)
    except JobicoError as error:
        return error
    if put.key is not None:
        seen = conn.execute(
            "SELECT ids FROM requests WHERE key = ? AND expires_at >= ?", (put.key, now)
        ).fetchone()
        if seen:
            return list(json.loads(seen[0]))
    try:
        _check_room(conn, put.events)
    except JobicoError as error:
        return error
    rows = [{**_event_row(event), "id": new_event_id()} for event in put.events]
    conn.executemany(_INSERT, rows)
    ids = [row["id"] for row in rows]
    if put.key is not None:
        conn.execute(
            "INSERT OR REPLACE INTO requests VALUES (?, ?, ?)",
            (put.key, json.dumps(ids), now + put.ttl_s),
        )
    return ids


def _check_room(conn: sqlite3.Connection, events: Sequence[NewEvent]) -> None:
    """QueueFull if any queue would hold more than its limit (waiting + in flight)."""
    added: dict[str, int] = {}
    limits: dict[str, int] = {}
    for event in events:
        added[event.queue] = added.get(event.queue, 0) + 1
        # Events of one queue may carry different limits across a redeploy: the lower wins.
        limits[event.queue] = min(limits.get(event.queue, event.limit), event.limit)
    for queue, n in added.items():
        row = conn.execute("SELECT n FROM depth WHERE queue = ?", (queue,)).fetchone()
        held = row[0] if row else 0
        if held + n > limits[queue]:
            raise QueueFull(
                f"queue {queue!r} is full: it holds {held} of at most {limits[queue]} events",
                queue=queue,
                limit=limits[queue],
                retry_after=RETRY_AFTER_S,
            )


# --- the shape of a put ------------------------------------------------------------------------


def _check_put(put: object) -> None:
    """InvalidInput unless every field of the put and its events has the type it is stored as.

    Puts come from Ray calls and from local-put frames, whose fields are whatever the sender
    packed; the listener builds them right, but one bad put must fail alone."""
    if not isinstance(put, Put):
        raise InvalidInput(f"not a put: {type(put).__name__}")
    if put.key is not None and not _is_text(put.key):
        raise InvalidInput("a put's idempotency key must be text")
    if not _is_number(put.ttl_s) or put.ttl_s < 0:
        raise InvalidInput(f"a put's ttl_s must be a finite number of seconds, got {put.ttl_s!r}")
    if not isinstance(put.events, list | tuple):
        raise InvalidInput(f"a put's events must be a list, got {type(put.events).__name__}")
    for event in put.events:
        _check_event(event)


def _check_event(event: object) -> None:
    if not isinstance(event, NewEvent):
        raise InvalidInput(f"not an event: {type(event).__name__}")
    for name in ("queue", "event", "package"):
        if not _is_text(getattr(event, name)) or not getattr(event, name):
            raise InvalidInput(f"an event's {name} must be text")
    if event.key is not None and not _is_text(event.key):
        raise InvalidInput("an event's ordering key must be text or none")
    if not isinstance(event.payload, bytes):
        raise InvalidInput(f"event payload must be bytes, got {type(event.payload).__name__}")
    if not _is_int(event.revision) or event.revision < 0:
        raise InvalidInput(f"an event's revision must be a whole number, got {event.revision!r}")
    if not _is_int(event.limit) or event.limit < 0:
        raise InvalidInput(f"an event's queue limit must be a whole number, got {event.limit!r}")
    if not _is_number(event.received_at):
        raise InvalidInput(f"an event's received_at must be a time, got {event.received_at!r}")


def _is_text(value: object) -> bool:
    """A str SQLite can store: UTF-8 encodable (a lone surrogate is not)."""
    if not isinstance(value, str):
        return False
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value <= _MAX_INT


def _is_number(value: object) -> bool:
    """A finite int or float: NaN would be stored as NULL, which a NOT NULL column refuses."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and abs(value) <= _MAX_INT


def _as_put(batch: Sequence[NewEvent] | Put) -> Put:
    return batch if isinstance(batch, Put) else Put(batch)


def _event_row(event: NewEvent) -> dict[str, Any]:
    return {
        "queue": event.queue,
        "event": event.event,
        "package": event.package,
        "revision": event.revision,
        "key": event.key,
        "payload": event.payload,
        "received_at": event.received_at,
    }
