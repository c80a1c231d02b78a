"""The dead letters of one tenant's queues: listed, replayed to the end of their queue, or
dropped for good. (Events get here by a bury, when their batch is settled.)"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from jobico.errors import NotFound
from jobico.queue.schema import COLUMNS, HEAD_IF_ALONE, Database, named

_DEAD = f"SELECT {COLUMNS}, attempts, error, died_at FROM dead ORDER BY seq"
_REPLAY = f"""
INSERT INTO events ({COLUMNS}, attempt, error, is_head)
SELECT id, NULL, queue, event, package, revision, key, payload, received_at, attempts, error,
       {HEAD_IF_ALONE.format(q="d.queue", k="d.key")}
FROM dead d WHERE id = ?"""


def dead_letters(db: Database) -> list[dict[str, Any]]:
    """Every dead letter, oldest arrival first; payload decoded to text."""
    with db.reading() as conn:
        rows = conn.execute(_DEAD).fetchall()
    return [_dead_dict(row) for row in rows]


def replay(db: Database, ids: Sequence[str] | None) -> int:
    """Dead letters back to the END of their queue, ready now, keeping id and attempts.

    Appended rather than put back at their old place: events after them have run already.
    Not bound by the queue limit: they were accepted once. None = all. Unknown id: NotFound.
    """
    with db.transaction() as conn:
        found = _dead_ids(conn, ids)
        for id_ in found:  # one at a time: each insert must see the previous for its head
            conn.execute(_REPLAY, (id_,))
            conn.execute("DELETE FROM dead WHERE id = ?", (id_,))
    return len(found)


def drop(db: Database, ids: Sequence[str] | None) -> int:
    """Delete dead letters for good. None = all. Unknown id: NotFound, nothing deleted."""
    with db.transaction() as conn:
        found = _dead_ids(conn, ids)
        conn.executemany("DELETE FROM dead WHERE id = ?", [(id_,) for id_ in found])
    return len(found)


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


def _dead_dict(row: Sequence[Any]) -> dict[str, Any]:
    out = named(row[:-3])
    out["payload"] = out["payload"].decode("utf-8", errors="replace")
    del out["seq"]
    out.update(attempts=row[-3], error=row[-2], died_at=row[-1])
    return out
