"""Ray shell of the pub/sub topics, and the subscriber that listener replicas and executors run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import ray

from jobico.actors import cluster
from jobico.config import Settings
from jobico.pubsub import Changes, LongPoll, Topics

PACKAGES = "packages"  # key "tenant/package" -> current revision dict, None when deleted
FILES = "files"  # key "tenant/name" -> newest FileInfo dict
INGEST = "ingest"  # key tenant -> {"changed_at"}: its ingest secrets or rate changed (no values)


class PubSubActor:
    def __init__(self, settings: Settings) -> None:
        self._poll = LongPoll(Topics(settings.home / "pubsub"))

    async def publish(self, topic: str, key: str, value: Any) -> int:
        return await self._poll.publish(topic, key, value)

    async def listen(self, topic: str, since: int, timeout_s: float = 30.0) -> Changes:
        return await self._poll.listen(topic, since, timeout_s)

    def changes(self, topic: str, since: int = 0) -> Changes:
        return self._poll.topics.changes(topic, since)

    def ping(self) -> str:
        return "ok"


def start(settings: Settings) -> Any:
    opts = cluster.options(cluster.PUBSUB, settings, max_concurrency=1000)
    return ray.remote(PubSubActor).options(**opts).remote(settings)


class Subscriber:
    """Follows one topic in a daemon thread and hands every batch of changes to `on_change`.

    The first answer (since=0) is the whole state; afterwards only what changed. If the pubsub
    actor restarts, the thread retries and resumes from the version it last saw.
    """

    def __init__(
        self,
        settings: Settings,
        topic: str,
        on_change: Callable[[Changes], None],
        *,
        poll_s: float = 10.0,
    ) -> None:
        self.version = 0
        self._settings, self._topic, self._on_change, self._poll_s = (
            settings,
            topic,
            on_change,
            poll_s,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"subscriber-{topic}", daemon=True)

    def start(self) -> Subscriber:
        self.sync()
        self._thread.start()
        return self

    def sync(self, timeout_s: float = 0.0) -> None:
        """One round trip: apply whatever changed since the last version seen."""
        handle = cluster.actor(cluster.PUBSUB, self._settings)
        changes = cluster.call(handle.listen.remote(self._topic, self.version, timeout_s))
        if changes.items or changes.reset:
            self._on_change(changes)
        self.version = changes.version

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync(self._poll_s)
            except Exception:  # the actor restarting or Ray going down: try again shortly
                self._stop.wait(0.5)
