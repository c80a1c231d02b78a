"""The listener's puts when a queue actor's answer is lost (jobico.serve.listener.ActorBackend):
its own resends carry one key, so a put that committed is not committed again. No Ray runs:
the queue is a real QueueStore behind a send that loses answers, as a dying actor would."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from jobico.batching import Coalescer
from jobico.config import Settings
from jobico.errors import Unavailable
from jobico.queue.store import NewEvent, Put, QueueStore
from jobico.serve import listener
from jobico.serve.listener import ActorBackend


def event() -> NewEvent:
    return NewEvent(
        queue="q", event="ev", package="p", revision=1, key=None, payload=b"{}",
        received_at=1.0, limit=100,
    )  # fmt: skip


class LossyQueue:
    """Commits every put it is sent, then loses the answers of the first `lose` sends (a queue
    actor that died after its commit, before its answer came back)."""

    def __init__(self, path: Path, lose: int) -> None:
        self.store, self.lose = QueueStore(path), lose
        self.keys: list[str | None] = []

    async def send(self, puts: list[Put]) -> list[list[str] | Exception]:
        results = self.store.put_batches(puts)
        self.keys += [put.key for put in puts]
        if self.lose:
            self.lose -= 1
            raise Unavailable("a Jobico actor died or is restarting")
        return results

    def depth(self) -> int:
        return len(self.store.lease(100, 30_000, per_key=100))


class Backend(ActorBackend):
    def __init__(self, queue: LossyQueue) -> None:
        super().__init__(Settings())
        self.queue = queue

    async def _queue(self, tenant: str) -> Coalescer[Put, list[str]]:
        return Coalescer(self.queue.send, size=lambda p: len(p.events))


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listener, "PUT_RETRIES_S", (0.0, 0.0, 0.0))


@pytest.mark.parametrize("sender_key", [None, "ev/msg_1"])
def test_a_put_whose_answer_was_lost_is_sent_again_under_one_key_and_committed_once(
    tmp_path: Path, sender_key: str | None
) -> None:
    queue = LossyQueue(tmp_path / "q.db", lose=2)
    ids = asyncio.run(Backend(queue).enqueue("t", [event()], sender_key))
    assert len(ids) == 1 and queue.depth() == 1
    assert len(queue.keys) == 3 and len(set(queue.keys)) == 1


def test_when_no_answer_comes_back_at_all_the_put_is_unavailable_though_it_committed(
    tmp_path: Path,
) -> None:
    """What a sender without an Idempotency-Key must know: its resend is a new put."""
    queue = LossyQueue(tmp_path / "q.db", lose=10)
    with pytest.raises(Unavailable):
        asyncio.run(Backend(queue).enqueue("t", [event()], None))
    assert queue.depth() == 1
