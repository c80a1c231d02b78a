"""The figures of one tenant's queues: per queue, events waiting, in flight and dead, and the
age of the oldest (what `jobico status`, the metrics and the supervisor's scaling read)."""

from __future__ import annotations

from typing import Any

from jobico.queue.schema import Database


def stats(db: Database, now: float) -> dict[str, dict[str, Any]]:
    """Per queue ever used: depth (waiting), in_flight, dead, oldest_age_s (None if empty).

    A lease that ran out counts as waiting: the event is ready again."""
    with db.reading() as conn:
        out = {q: _empty() for (q,) in conn.execute("SELECT queue FROM depth")}
        for queue, total, oldest in conn.execute(
            "SELECT queue, COUNT(*), MIN(received_at) FROM events GROUP BY queue"
        ):
            out[queue].update(depth=total, oldest_age_s=max(now - oldest, 0.0))
        for queue, n in conn.execute(
            "SELECT queue, COUNT(*) FROM events WHERE lease_until >= ? GROUP BY queue", (now,)
        ):
            out[queue].update(depth=out[queue]["depth"] - n, in_flight=n)
        for queue, n in conn.execute("SELECT queue, COUNT(*) FROM dead GROUP BY queue"):
            out.setdefault(queue, _empty())["dead"] = n
    return out


def _empty() -> dict[str, Any]:
    return {"depth": 0, "in_flight": 0, "dead": 0, "oldest_age_s": None}
