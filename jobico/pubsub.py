"""Versioned topics of definition changes; a subscriber catches up from the version it last saw.

Each topic is a map key -> (version, value), where value None is a tombstone (deleted). A
subscriber sends the last version it saw and gets the latest value of every key changed since,
so however long it was away it converges in one answer (Ray Serve's LongPollHost works the
same way). Topics are kept in diskcache, so versions never go backwards across restarts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diskcache


@dataclass(frozen=True)
class Changes:
    version: int  # the topic's version after these changes; pass it back as `since`
    items: dict[str, Any]  # key -> latest value (None = deleted)
    reset: bool = False  # the subscriber was ahead (the store was replaced): drop local state


class Topics:
    def __init__(self, path: Path) -> None:
        self._db = diskcache.Cache(str(path))

    def version(self, topic: str) -> int:
        return int(self._db.get(("version", topic), 0))

    def publish(self, topic: str, key: str, value: Any) -> int:
        with self._db.transact():
            version = self.version(topic) + 1
            self._db.set(("version", topic), version)
            self._db.set(("item", topic, key), (version, value))
        return version

    def changes(self, topic: str, since: int) -> Changes:
        current = self.version(topic)
        reset = since > current
        floor = 0 if reset else since
        items = {}
        for k in self._db.iterkeys():
            if k[0] == "item" and k[1] == topic:
                version, value = self._db[k]
                if version > floor:
                    items[k[2]] = value
        return Changes(current, items, reset)

    def close(self) -> None:
        self._db.close()


class LongPoll:
    """Waits on Topics: `listen` answers at once if there is news, else when news arrives."""

    def __init__(self, topics: Topics) -> None:
        self.topics = topics
        self._changed = asyncio.Condition()

    async def publish(self, topic: str, key: str, value: Any) -> int:
        version = self.topics.publish(topic, key, value)
        async with self._changed:
            self._changed.notify_all()
        return version

    async def listen(self, topic: str, since: int, timeout_s: float) -> Changes:
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.topics.version(topic) != since), timeout_s
                )
            except TimeoutError:
                pass
        return self.topics.changes(topic, since)
