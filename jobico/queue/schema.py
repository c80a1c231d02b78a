"""The SQLite file behind one tenant's queues: its tables and triggers, the connection (WAL,
fsync on every commit), and transactions of exactly one call each.

Also the SQL shared by the store's parts: an event's columns and the test for a key's head.
"""

from __future__ import annotations

import pathlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from jobico.errors import Unavailable
from jobico.homedir import private_dir

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

# An event as it is put, leased and buried: the columns the events and dead tables share.
COLUMNS = "id, seq, queue, event, package, revision, key, payload, received_at"
# Whether an event of queue {q} and key {k} would be its key's head: none of the key is there.
HEAD_IF_ALONE = "NOT EXISTS (SELECT 1 FROM events e WHERE e.queue = {q} AND e.key IS {k})"


def named(row: Sequence[Any]) -> dict[str, Any]:
    """The leading `COLUMNS` of a row, by name."""
    return dict(zip(COLUMNS.split(", "), row, strict=True))


class Database:
    """One queue file. One writer per file; safe to call from several threads."""

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

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All of the block's writes, or none of them."""
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

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, for reads only: no other call runs meanwhile."""
        with self._lock:
            yield self._connection()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise Unavailable(f"queue store {self.path} is closed")
        return self._conn
