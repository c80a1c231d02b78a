"""Delivering events: leases of ready events in arrival order (one key's run at a time),
their heartbeat, and settling a batch: ack, retry after a backoff, bury, release.

A key is leasable only while none of its events is in flight and its head is past its
backoff, so order per key holds across redeliveries and retries.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from jobico.errors import InvalidInput
from jobico.queue.events import Leased
from jobico.queue.puts import forget_chained
from jobico.queue.schema import COLUMNS, Database, named

_READY = f"""
SELECT {COLUMNS}, attempt, lease_until IS NOT NULL FROM events
WHERE is_head = 1 AND not_before <= :now AND (lease_until IS NULL OR lease_until < :now)
ORDER BY seq LIMIT :n"""
_RUN = f"""
SELECT {COLUMNS}, attempt, lease_until IS NOT NULL FROM events
WHERE queue = ? AND key IS ? AND seq > ? ORDER BY seq LIMIT ?"""
_TAKE = "UPDATE events SET attempt = attempt + 1, lease_until = ? WHERE seq = ?"
_EXTEND = "UPDATE events SET lease_until = ? WHERE id = ? AND lease_until IS NOT NULL"
_ACK = "DELETE FROM events WHERE id = ?"
# A retry (or bury) names the attempt it reports on: a report from a lease that already ran
# out and was handed out again matches nothing.
_RETRY = """
UPDATE events SET lease_until = NULL, not_before = ?, error = ?
WHERE id = ? AND attempt = ifnull(?, attempt)"""
_BURY = f"""
INSERT INTO dead ({COLUMNS}, attempts, error, died_at)
SELECT {COLUMNS}, attempt, :error, :now FROM events
WHERE id = :id AND attempt = ifnull(:attempt, attempt)"""
_RELEASE = """
UPDATE events SET lease_until = NULL, attempt = max(attempt - 1, 0)
WHERE id = ? AND lease_until IS NOT NULL"""


def lease(
    db: Database,
    max_items: int,
    lease_ms: int,
    *,
    per_key: int,
    max_keys: int | None,
    now: float,
) -> list[Leased]:
    """Up to `max_items` ready events in arrival order: runs of up to `per_key` consecutive
    events of one (queue, key), each run starting at the key's oldest event (its head), of at
    most `max_keys` keys. A run goes to one executor, which runs it in order (and releases
    what it did not reach)."""
    if lease_ms <= 0:
        raise InvalidInput(f"lease_ms must be positive, got {lease_ms}")
    if max_keys is not None and max_keys <= 0:  # 0 would read as no bound at all
        raise InvalidInput(f"max_keys must be positive or None, got {max_keys}")
    if max_items <= 0:
        return []
    with db.transaction() as conn:
        rows: list[Sequence[Any]] = []
        heads = max_items if max_keys is None else min(max_items, max_keys)
        for head in conn.execute(_READY, {"now": now, "n": heads}).fetchall():
            room = min(per_key, max_items - len(rows))
            if room <= 0:
                break
            rows.append(head)
            rows += conn.execute(_RUN, (head[2], head[6], head[1], room - 1)).fetchall()
        conn.executemany(_TAKE, [(now + lease_ms / 1000, row[1]) for row in rows])
    return [
        Leased(**named(row[:-2]), attempt=row[-2] + 1, redelivered=bool(row[-1])) for row in rows
    ]


def extend(db: Database, ids: Sequence[str], lease_ms: int, now: float) -> None:
    """Push the leases of events still being run further out (an executor's heartbeat)."""
    with db.transaction() as conn:
        conn.executemany(_EXTEND, [(now + lease_ms / 1000, id_) for id_ in ids])


def settle(
    db: Database,
    ack: Sequence[str],
    retry: Sequence[tuple[str, int, str, int]],
    bury: Sequence[tuple[str, str, int]],
    release: Sequence[str],
    now: float,
) -> None:
    """An executed batch's verdicts in one transaction.

    - ack: done, deleted. Unknown ids are ignored (a redelivered copy may have finished first).
    - retry (id, delay_ms, error, attempt): the lease ends now and the event is ready again
      after `delay_ms`. It stays its key's head, so later events of the key wait for it.
    - bury (id, error, attempt): moved to the dead letters with its last error and attempts;
      its key moves on.
    - release: leased events that were not run (after a failure earlier in their run), ready
      again at once; the lease does not count as an attempt.
    """
    with db.transaction() as conn:
        conn.executemany(_ACK, [(id_,) for id_ in ack])
        forget_chained(conn, ack)
        conn.executemany(
            _RETRY, [(now + max(d, 0) / 1000, err, id_, att) for id_, d, err, att in retry]
        )
        for id_, err, att in bury:
            _bury(conn, id_, err, att, now)
        conn.executemany(_RELEASE, [(id_,) for id_ in release])


def _bury(conn: sqlite3.Connection, id_: str, error: str, attempt: int, now: float) -> None:
    params = {"id": id_, "error": error, "attempt": attempt, "now": now}
    if conn.execute(_BURY, params).rowcount:
        conn.execute("DELETE FROM events WHERE id = ?", (id_,))
