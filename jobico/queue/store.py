"""The durable ordered queues of one tenant, all in one SQLite file (WAL, fsync on every commit).

`QueueStore` is the whole surface: puts (`jobico.queue.puts`), leases and settling
(`jobico.queue.leases`), dead letters (`jobico.queue.deadletters`) and figures
(`jobico.queue.figures`), over the file of `jobico.queue.schema`; each call is one transaction.
The values it takes and gives (`NewEvent`, `Put`, `Leased`) live in `jobico.queue.events`.
Plain Python: the queue actor serves it through
`jobico.queue.service`.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Sequence
from typing import Any

from jobico.queue import deadletters, figures, leases, puts
from jobico.queue.events import Leased, NewEvent, Put
from jobico.queue.schema import Database


class QueueStore:
    """Every queue of one tenant. One writer per file; safe to call from several threads.

    Calls that depend on the time take `now` (default: the clock), so tests can step it.
    """

    def __init__(self, path: pathlib.Path) -> None:
        self._db = Database(path)
        self.path = path

    @property
    def commits(self) -> int:
        """Write transactions committed; group commit makes it far below the number of puts."""
        return self._db.commits

    def put_batches(
        self, batches: Sequence[Sequence[NewEvent] | Put], *, now: float | None = None
    ) -> list[list[str] | Exception]:
        """Several callers' batches in ONE transaction; each batch all or nothing on its own,
        answered with its ids in order or its own error (InvalidInput, QueueFull). A batch with
        a key seen within its `ttl_s` commits nothing and gets the first ids again."""
        return puts.put_batches(self._db, batches, _now(now))

    def lease(
        self,
        max_items: int,
        lease_ms: int,
        *,
        per_key: int = 1,
        max_keys: int | None = None,
        now: float | None = None,
    ) -> list[Leased]:
        """Up to `max_items` ready events in arrival order, in runs of up to `per_key` events
        of one key, of at most `max_keys` keys (see `jobico.queue.leases.lease`)."""
        return leases.lease(
            self._db, max_items, lease_ms, per_key=per_key, max_keys=max_keys, now=_now(now)
        )

    def extend(self, ids: Sequence[str], lease_ms: int, *, now: float | None = None) -> None:
        """Push the leases of events still being run further out (an executor's heartbeat)."""
        leases.extend(self._db, ids, lease_ms, _now(now))

    def settle(
        self,
        ack: Sequence[str] = (),
        retry: Sequence[tuple[str, int, str, int]] = (),
        bury: Sequence[tuple[str, str, int]] = (),
        release: Sequence[str] = (),
        *,
        now: float | None = None,
    ) -> None:
        """An executed batch's verdicts in one transaction: ack, retry (id, delay_ms, error,
        attempt), bury (id, error, attempt) and release (see `jobico.queue.leases.settle`)."""
        leases.settle(self._db, ack, retry, bury, release, _now(now))

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every dead letter, oldest arrival first; payload decoded to text."""
        return deadletters.dead_letters(self._db)

    def replay(self, ids: Sequence[str] | None) -> int:
        """Dead letters back to the end of their queue, ready now. None = all."""
        return deadletters.replay(self._db, ids)

    def drop(self, ids: Sequence[str] | None) -> int:
        """Delete dead letters for good. None = all."""
        return deadletters.drop(self._db, ids)

    def stats(self, *, now: float | None = None) -> dict[str, dict[str, Any]]:
        """Per queue ever used: depth (waiting), in_flight, dead, oldest_age_s (None if empty)."""
        return figures.stats(self._db, _now(now))

    def close(self) -> None:
        """Close the file; later calls are Unavailable."""
        self._db.close()

    def __enter__(self) -> QueueStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _now(now: float | None) -> float:
    return time.time() if now is None else now
