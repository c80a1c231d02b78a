"""The durable ordered queues of one tenant, all in one SQLite file (WAL, fsync on every commit).

Owns event ids, arrival order, one-at-a-time per ordering key, leases, retry backoff and dead
letters. Plain Python: the Ray queue actor wraps it (with `jobico.queue.groupcommit` for group
commit).
"""

from __future__ import annotations

import json
import math
import pathlib
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from jobico.errors import InvalidInput, JobicoError, NotFound, QueueFull, Unavailable
from jobico.homedir import private_dir

RETRY_AFTER_S = 1  # what a full queue tells senders to wait: executors drain batches that fast

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- arrival order; AUTOINCREMENT: never reused
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    event TEXT NOT NULL,
    package TEXT NOT NULL,
    revision INTEGER NOT NULL,
    key TEXT,                               -- NULL: the whole queue is one key
    payload BLOB NOT NULL,
    received_at REAL NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,     -- deliveries so far
    lease_until REAL,                       -- in flight until then (NULL: not leased)
    not_before REAL NOT NULL DEFAULT 0,     -- retry backoff: not ready before then
    error TEXT,                             -- the last failure
    is_head INTEGER NOT NULL                -- oldest event of its (queue, key): the only leasable
);
CREATE INDEX IF NOT EXISTS events_by_key ON events (queue, key, seq);
CREATE INDEX IF NOT EXISTS events_heads ON events (seq) WHERE is_head = 1;
CREATE TABLE IF NOT EXISTS depth (queue TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
-- Requests already committed, by idempotency key: the same key again gets the same ids.
CREATE TABLE IF NOT EXISTS requests (
    key TEXT PRIMARY KEY, ids TEXT NOT NULL, expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS requests_expiry ON requests (expires_at);
CREATE TABLE IF NOT EXISTS dead (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, queue TEXT NOT NULL, event TEXT NOT NULL,
    package TEXT NOT NULL, revision INTEGER NOT NULL, key TEXT, payload BLOB NOT NULL,
    received_at REAL NOT NULL, attempts INTEGER NOT NULL, error TEXT, died_at REAL NOT NULL
);
-- Triggers keep the limit counts and the per-key heads exact on every path that adds or
-- removes an event (put, ack, bury, replay), inside the same transaction.
CREATE TRIGGER IF NOT EXISTS events_added AFTER INSERT ON events BEGIN
    INSERT INTO depth VALUES (NEW.queue, 1) ON CONFLICT (queue) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS events_removed AFTER DELETE ON events BEGIN
    UPDATE depth SET n = n - 1 WHERE queue = OLD.queue;
    UPDATE events SET is_head = 1 WHERE OLD.is_head = 1 AND seq = (
        SELECT MIN(seq) FROM events WHERE queue = OLD.queue AND key IS OLD.key);
END;
"""

_HEAD_IF_ALONE = "NOT EXISTS (SELECT 1 FROM events e WHERE e.queue = {q} AND e.key IS {k})"
_INSERT = f"""
INSERT INTO events (id, queue, event, package, revision, key, payload, received_at, is_head)
VALUES (:id, :queue, :event, :package, :revision, :key, :payload, :received_at,
        {_HEAD_IF_ALONE.format(q=":queue", k=":key")})"""
_COLUMNS = "id, seq, queue, event, package, revision, key, payload, received_at"
_READY = f"""
SELECT {_COLUMNS}, attempt, lease_until IS NOT NULL FROM events
WHERE is_head = 1 AND not_before <= :now AND (lease_until IS NULL OR lease_until < :now)
ORDER BY seq LIMIT :n"""
_RUN = f"""
SELECT {_COLUMNS}, attempt, lease_until IS NOT NULL FROM events
WHERE queue = ? AND key IS ? AND seq > ? ORDER BY seq LIMIT ?"""
_NACK = """
UPDATE events SET lease_until = NULL, not_before = ?, error = ?
WHERE id = ? AND attempt = ifnull(?, attempt)"""
_RELEASE = """
UPDATE events SET lease_until = NULL, attempt = max(attempt - 1, 0)
WHERE id = ? AND lease_until IS NOT NULL"""
_BURY = f"""
INSERT INTO dead ({_COLUMNS}, attempts, error, died_at)
SELECT {_COLUMNS}, attempt, :error, :now FROM events
WHERE id = :id AND attempt = ifnull(:attempt, attempt)"""
_REPLAY = f"""
INSERT INTO events ({_COLUMNS}, attempt, error, is_head)
SELECT id, NULL, queue, event, package, revision, key, payload, received_at, attempts, error,
       {_HEAD_IF_ALONE.format(q="d.queue", k="d.key")}
FROM dead d WHERE id = ?"""
_DEAD = f"SELECT {_COLUMNS}, attempts, error, died_at FROM dead"
_ACK = "DELETE FROM events WHERE id = ?"
# An acked event never runs again, so the key of the events it chained is no longer needed.
_FORGET_KEY = "DELETE FROM requests WHERE key = ?"


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


class QueueStore:
    """Every queue of one tenant. One writer per file; safe to call from several threads."""

    def __init__(self, path: pathlib.Path) -> None:
        private_dir(path.parent)  # every queued payload: the owner's only, whatever the umask
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly
        # one call. The group committer commits from a worker thread, hence the lock.
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")  # a commit is fsync'd: 202 means durable
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.path = path
        self.commits = 0  # write transactions committed; group commit makes it far below puts

    # --- writing events ------------------------------------------------------------------------

    def put_batch(self, events: Sequence[NewEvent]) -> list[str]:
        """Enqueue `events` in one transaction, all or nothing; their ids, in order."""
        result = self.put_batches([events])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def put_batches(
        self, batches: Sequence[Sequence[NewEvent] | Put], *, now: float | None = None
    ) -> list[list[str] | Exception]:
        """Several callers' batches in ONE transaction; each batch all or nothing on its own.

        A batch that is invalid or would overflow a queue gets its error in its place and
        writes nothing; the others still commit. A database failure fails them all (raised).
        """
        now = time.time() if now is None else now
        with self._transaction() as conn:
            results = [self._put_one(conn, _as_put(b), now) for b in batches]
            if self.commits % 1000 == 0:  # expired keys go now and then, not on every commit
                conn.execute("DELETE FROM requests WHERE expires_at < ?", (now,))
            return results

    def _put_one(self, conn: sqlite3.Connection, put: Put, now: float) -> list[str] | Exception:
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

    # --- delivering events ---------------------------------------------------------------------

    def lease(
        self,
        max_items: int,
        lease_ms: int,
        *,
        per_key: int = 1,
        max_keys: int | None = None,
        now: float | None = None,
    ) -> list[Leased]:
        """Up to `max_items` ready events in arrival order: runs of up to `per_key` consecutive
        events of one (queue, key), each run starting at the key's oldest event (its head), of
        at most `max_keys` keys.

        A key is leasable only while none of its events is in flight and its head is past its
        backoff, so order per key holds across redeliveries and retries; a run goes to one
        executor, which runs it in order (and `release`s what it did not reach).
        """
        if lease_ms <= 0:
            raise InvalidInput(f"lease_ms must be positive, got {lease_ms}")
        if max_keys is not None and max_keys <= 0:  # 0 would read as no bound at all
            raise InvalidInput(f"max_keys must be positive or None, got {max_keys}")
        if max_items <= 0:
            return []
        now = time.time() if now is None else now
        with self._transaction() as conn:
            rows: list[Sequence[Any]] = []
            heads = max_items if max_keys is None else min(max_items, max_keys)
            for head in conn.execute(_READY, {"now": now, "n": heads}).fetchall():
                room = min(per_key, max_items - len(rows))
                if room <= 0:
                    break
                rows.append(head)
                rows += conn.execute(_RUN, (head[2], head[6], head[1], room - 1)).fetchall()
            conn.executemany(
                "UPDATE events SET attempt = attempt + 1, lease_until = ? WHERE seq = ?",
                [(now + lease_ms / 1000, row[1]) for row in rows],
            )
        return [
            Leased(**_named(row[:-2]), attempt=row[-2] + 1, redelivered=bool(row[-1]))
            for row in rows
        ]

    def release(self, ids: Sequence[str]) -> None:
        """Give back leased events that were not run (after a failure earlier in their run):
        ready again at once, and the lease does not count as an attempt."""
        with self._transaction() as conn:
            conn.executemany(_RELEASE, [(id_,) for id_ in ids])

    def ack(self, ids: Sequence[str]) -> None:
        """Done: delete. Unknown ids are ignored (a redelivered copy may have finished first)."""
        if isinstance(ids, str):  # a bare id would be taken letter by letter and ack nothing
            raise InvalidInput("ack takes a list of event ids, not one id")
        with self._transaction() as conn:
            _ack(conn, ids)

    def nack(
        self,
        id: str,
        *,
        delay_ms: int,
        error: str,
        attempt: int | None = None,
        now: float | None = None,
    ) -> None:
        """A failed attempt: release the lease now; the event is ready again after `delay_ms`.

        It stays its key's head, so later events of the key wait for it. With `attempt`, a
        report from a lease that already expired and was handed out again is ignored.
        """
        now = time.time() if now is None else now
        with self._transaction() as conn:
            conn.execute(_NACK, (now + max(delay_ms, 0) / 1000, error, id, attempt))

    def bury(
        self, id: str, *, error: str, attempt: int | None = None, now: float | None = None
    ) -> None:
        """Move to the dead letters with its last error and attempts; its key moves on."""
        now = time.time() if now is None else now
        params = {"id": id, "error": error, "attempt": attempt, "now": now}
        with self._transaction() as conn:
            if conn.execute(_BURY, params).rowcount:
                conn.execute("DELETE FROM events WHERE id = ?", (id,))

    def extend(self, ids: Sequence[str], lease_ms: int, *, now: float | None = None) -> None:
        """Push the leases of events still being run further out (an executor's heartbeat)."""
        now = time.time() if now is None else now
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE events SET lease_until = ? WHERE id = ? AND lease_until IS NOT NULL",
                [(now + lease_ms / 1000, id_) for id_ in ids],
            )

    def settle(
        self,
        ack: Sequence[str],
        retry: Sequence[tuple[str, int, str, int]],
        bury: Sequence[tuple[str, str, int]],
        release: Sequence[str],
        *,
        now: float | None = None,
    ) -> None:
        """An executed batch's verdicts in one transaction: ack, retry (id, delay_ms, error,
        attempt), bury (id, error, attempt) and release."""
        now = time.time() if now is None else now
        with self._transaction() as conn:
            _ack(conn, ack)
            conn.executemany(
                _NACK, [(now + max(d, 0) / 1000, err, id_, att) for id_, d, err, att in retry]
            )
            for id_, err, att in bury:
                params = {"id": id_, "error": err, "attempt": att, "now": now}
                if conn.execute(_BURY, params).rowcount:
                    conn.execute("DELETE FROM events WHERE id = ?", (id_,))
            conn.executemany(_RELEASE, [(id_,) for id_ in release])

    # --- dead letters --------------------------------------------------------------------------

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every dead letter, oldest arrival first; payload decoded to text."""
        with self._lock:
            rows = self._connection().execute(f"{_DEAD} ORDER BY seq").fetchall()
        return [_dead_dict(row) for row in rows]

    def replay(self, ids: Sequence[str] | None) -> int:
        """Dead letters back to the END of their queue, ready now, keeping id and attempts.

        Appended rather than put back at their old place: events after them have run already.
        Not bound by the queue limit: they were accepted once. None = all. Unknown id: NotFound.
        """
        with self._transaction() as conn:
            found = _dead_ids(conn, ids)
            for id_ in found:  # one at a time: each insert must see the previous for its head
                conn.execute(_REPLAY, (id_,))
                conn.execute("DELETE FROM dead WHERE id = ?", (id_,))
        return len(found)

    def drop(self, ids: Sequence[str] | None) -> int:
        """Delete dead letters for good. None = all. Unknown id: NotFound, nothing deleted."""
        with self._transaction() as conn:
            found = _dead_ids(conn, ids)
            conn.executemany("DELETE FROM dead WHERE id = ?", [(id_,) for id_ in found])
        return len(found)

    # --- observing -----------------------------------------------------------------------------

    def stats(self, *, now: float | None = None) -> dict[str, dict[str, Any]]:
        """Per queue ever used: depth (waiting), in_flight, dead, oldest_age_s (None if empty)."""
        now = time.time() if now is None else now
        with self._lock:
            conn = self._connection()
            out = {q: _empty_stats() for (q,) in conn.execute("SELECT queue FROM depth")}
            for queue, total, oldest in conn.execute(
                "SELECT queue, COUNT(*), MIN(received_at) FROM events GROUP BY queue"
            ):
                out[queue].update(depth=total, oldest_age_s=max(now - oldest, 0.0))
            for queue, n in conn.execute(
                "SELECT queue, COUNT(*) FROM events WHERE lease_until >= ? GROUP BY queue",
                (now,),
            ):
                out[queue].update(depth=out[queue]["depth"] - n, in_flight=n)
            for queue, n in conn.execute("SELECT queue, COUNT(*) FROM dead GROUP BY queue"):
                out.setdefault(queue, _empty_stats())["dead"] = n
        return out

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> QueueStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise Unavailable(f"queue store {self.path} is closed")
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so a transaction never fails half way on it.
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self.commits += 1


_MAX_INT = 2**63 - 1  # SQLite's integers are 64-bit signed; a larger one fails to bind


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


def _ack(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    conn.executemany(_ACK, [(id_,) for id_ in ids])
    conn.executemany(_FORGET_KEY, [(chained_key(id_),) for id_ in ids])


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


def _dead_ids(conn: sqlite3.Connection, ids: Sequence[str] | None) -> list[str]:
    """The asked dead letters' ids in arrival order; NotFound names any that are not there."""
    if ids is None:
        return [id_ for (id_,) in conn.execute("SELECT id FROM dead ORDER BY seq")]
    found: list[tuple[int, str]] = []
    for id_ in dict.fromkeys(ids):  # dedupe, keep order
        row = conn.execute("SELECT seq FROM dead WHERE id = ?", (id_,)).fetchone()
        if row is None:
            raise NotFound(f"no dead letter with id {id_!r}", id=id_)
        found.append((row[0], id_))
    return [id_ for _, id_ in sorted(found)]


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


def _named(row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(_COLUMNS.split(", "), row, strict=True))


def _dead_dict(row: Sequence[Any]) -> dict[str, Any]:
    out = _named(row[:-3])
    out["payload"] = out["payload"].decode("utf-8", errors="replace")
    del out["seq"]
    out.update(attempts=row[-3], error=row[-2], died_at=row[-1])
    return out


def _empty_stats() -> dict[str, Any]:
    return {"depth": 0, "in_flight": 0, "dead": 0, "oldest_age_s": None}
