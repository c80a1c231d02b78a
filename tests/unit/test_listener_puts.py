"""The listener's puts into its tenants' queues (jobico.serve.puts), guarantee by guarantee. No
Ray runs: each queue actor is a fake committing into a real QueueStore, which can die after its
commit (the answer lost) or before it; the local socket is a real PutServer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from jobico.errors import QueueFull, Unavailable
from jobico.queue.events import NewEvent, Put
from jobico.queue.localputs import PutClient, PutServer, socket_path
from jobico.queue.store import QueueStore
from jobico.serve.puts import PUT_RETRIES_S, RETRY_WINDOW_S, Puts

T = TypeVar("T")
NO_PAUSES = (0.0, 0.0, 0.0)
TTL_S = 1234.0


def event(n: int = 0, *, limit: int = 100) -> NewEvent:
    return NewEvent(
        queue="q", event="ev", package="p", revision=1, key=None, payload=b'{"n":%d}' % n,
        received_at=1.0, limit=limit,
    )  # fmt: skip


class FakeQueue:
    """A tenant's queue actor: commits what it is sent into its store. The next `lose` sends
    commit and then lose their answers (it died after the commit); the next `dead` sends are
    refused before committing (it is gone). `socket`: its local put socket on this node."""

    def __init__(self, store: QueueStore, *, lose: int = 0, dead: int = 0) -> None:
        self.store, self.lose, self.dead = store, lose, dead
        self.socket: str | None = None
        self.sends: list[list[Put]] = []  # by actor call
        self.asked_socket = 0

    async def put_many(self, puts: list[Put]) -> list[list[str] | Exception]:
        if self.dead:
            self.dead -= 1
            raise Unavailable("a Jobico actor died or is restarting")
        self.sends.append(puts)
        results = self.store.put_batches(puts)
        if self.lose:
            self.lose -= 1
            raise Unavailable("a Jobico actor died or is restarting")
        return results

    async def local_socket(self) -> str | None:
        self.asked_socket += 1
        return self.socket

    async def ping(self) -> None:
        pass

    def depth(self) -> int:
        return len(self.store.lease(100, 30_000, per_key=100))


class Actors:
    """Ray's named actors: each lookup of a tenant answers its current queue actor (a test
    replaces it, as Ray restarts one), and yields to the loop as a real lookup does."""

    def __init__(self, **queues: FakeQueue) -> None:
        self.queues = queues
        self.finds: list[str] = []

    async def find(self, tenant: str) -> FakeQueue:
        self.finds.append(tenant)
        await asyncio.sleep(0)
        return self.queues[tenant]


class Connects:
    """PutClient.connect, counted."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, path: str) -> PutClient:
        self.paths.append(path)
        return await PutClient.connect(path)


def puts_for(
    actors: Actors, *, local: bool = False, connect: Connects | None = None, max_queues: int = 1024
) -> Puts:
    return Puts(
        actors.find,
        local=local,
        idempotency_ttl_s=TTL_S,
        pauses=NO_PAUSES,
        connect=connect or Connects(),
        max_queues=max_queues,
    )


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await scenario()

    return asyncio.run(main())


@pytest.fixture
def queue(tmp_path: Path) -> FakeQueue:
    return FakeQueue(QueueStore(tmp_path / "q.db"))


# --- a dead queue actor ---------------------------------------------------------------------------


@pytest.mark.parametrize("sender_key", [None, "ev/msg_1"])
def test_a_put_whose_queue_actor_died_after_committing_is_resent_until_it_answers_and_commits_once(
    queue: FakeQueue, sender_key: str | None
) -> None:
    queue.lose = 2
    ids = run(lambda: puts_for(Actors(t=queue)).enqueue("t", [event()], sender_key))
    assert len(ids) == 1 and queue.depth() == 1
    keys = [put.key for send in queue.sends for put in send]
    assert len(keys) == 3 and len(set(keys)) == 1


def test_a_put_never_answered_through_every_pause_is_unavailable_though_it_committed(
    queue: FakeQueue,
) -> None:
    """What a sender without an Idempotency-Key must know: its resend is a new put."""
    queue.lose = 10
    with pytest.raises(Unavailable):
        run(lambda: puts_for(Actors(t=queue)).enqueue("t", [event()], None))
    assert len(queue.sends) == len(NO_PAUSES) + 1 and queue.depth() == 1


def test_a_put_is_resent_after_each_pause_of_the_schedule(queue: FakeQueue) -> None:
    queue.lose = 10
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    actors = Actors(t=queue)
    puts = Puts(actors.find, local=False, idempotency_ttl_s=TTL_S, sleep=sleep)
    with pytest.raises(Unavailable):
        run(lambda: puts.enqueue("t", [event()], None))
    assert slept == list(PUT_RETRIES_S)


def test_a_put_whose_queue_actor_was_replaced_goes_to_the_one_found_again(
    tmp_path: Path, queue: FakeQueue
) -> None:
    restarted = FakeQueue(queue.store)  # Ray's restart of the same actor: the same store
    actors = Actors(t=queue)

    async def dies_then_restarts() -> list[str]:
        puts = puts_for(actors)
        first = await puts.enqueue("t", [event(0)], None)
        queue.dead = 1
        actors.queues["t"] = restarted
        return first + await puts.enqueue("t", [event(1)], None)

    ids = run(dies_then_restarts)
    assert actors.finds == ["t", "t"] and len(ids) == 2
    assert len(queue.sends) == 1 and len(restarted.sends) == 1 and restarted.depth() == 2


def test_a_full_queue_is_answered_at_once_not_resent(queue: FakeQueue) -> None:
    with pytest.raises(QueueFull):
        run(
            lambda: puts_for(Actors(t=queue)).enqueue(
                "t", [event(n, limit=1) for n in (1, 2)], None
            )
        )
    assert len(queue.sends) == 1 and queue.depth() == 0


# --- keys ----------------------------------------------------------------------------------------


def test_a_senders_key_is_kept_for_the_idempotency_ttl_and_a_request_without_one_gets_its_own(
    queue: FakeQueue,
) -> None:
    async def scenario() -> None:
        puts = puts_for(Actors(t=queue))
        for key in ("ev/msg_1", None, None):
            await puts.enqueue("t", [event()], key)

    run(scenario)
    sent = [put for send in queue.sends for put in send]
    assert (sent[0].key, sent[0].ttl_s) == ("sender/ev/msg_1", TTL_S)
    assert all(p.key and p.key.startswith("listener/") for p in sent[1:])
    assert sent[1].key != sent[2].key and sent[1].ttl_s == sent[2].ttl_s == RETRY_WINDOW_S


def test_the_same_senders_key_twice_commits_once_and_answers_the_first_ids(
    queue: FakeQueue,
) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        puts = puts_for(Actors(t=queue))
        return await puts.enqueue("t", [event()], "ev/k"), await puts.enqueue(
            "t", [event()], "ev/k"
        )

    first, again = run(scenario)
    assert first == again and queue.depth() == 1


# --- coalescing ----------------------------------------------------------------------------------


def test_concurrent_puts_for_one_tenant_go_in_one_send_each_answered_its_own(
    queue: FakeQueue,
) -> None:
    async def scenario() -> list[list[str] | BaseException]:
        puts = puts_for(Actors(t=queue))
        await puts.enqueue("t", [event(0, limit=5)], None)  # the queue found, as under load
        batches = [[event(n, limit=5) for _ in range(size)] for n, size in enumerate((1, 2, 9, 1))]
        return await asyncio.gather(
            *(puts.enqueue("t", batch, None) for batch in batches), return_exceptions=True
        )

    one, two, too_many, last = run(scenario)
    assert len(queue.sends) == 2 and len(queue.sends[1]) == 4
    assert isinstance(too_many, QueueFull)  # its own error: the others still commit
    assert [len(ids) for ids in (one, two, last) if isinstance(ids, list)] == [1, 2, 1]
    assert queue.depth() == 5


def test_puts_for_different_tenants_go_to_their_own_queues(tmp_path: Path) -> None:
    a, b = FakeQueue(QueueStore(tmp_path / "a.db")), FakeQueue(QueueStore(tmp_path / "b.db"))

    async def scenario() -> None:
        puts = puts_for(Actors(a=a, b=b))
        await asyncio.gather(
            puts.enqueue("a", [event(0)], None), puts.enqueue("b", [event(1)], None)
        )

    run(scenario)
    assert (a.depth(), b.depth()) == (1, 1) and len(a.sends) == len(b.sends) == 1


def test_a_burst_for_a_new_tenant_looks_its_queue_up_and_connects_once(
    tmp_path: Path, queue: FakeQueue
) -> None:
    actors, connects = Actors(t=queue), Connects()

    async def scenario() -> int:
        async with local_server(queue, tmp_path):
            puts = puts_for(actors, local=True, connect=connects)
            await asyncio.gather(*(puts.enqueue("t", [event(n)], None) for n in range(20)))
        return queue.depth()

    assert run(scenario) == 20
    assert actors.finds == ["t"] and queue.asked_socket == 1 and len(connects.paths) == 1


def test_a_tenants_queue_is_looked_up_once_while_it_answers(queue: FakeQueue) -> None:
    actors = Actors(t=queue)

    async def scenario() -> None:
        puts = puts_for(actors)
        for n in range(3):
            await puts.enqueue("t", [event(n)], None)

    run(scenario)
    assert actors.finds == ["t"]


# --- the local socket ----------------------------------------------------------------------------


class local_server:
    """A PutServer in front of `queue`'s store, as its actor serves one on its node; `queue`
    then names its socket. `die` puts fail by closing the connection unanswered."""

    def __init__(self, queue: FakeQueue, home: Path, *, die: int = 0) -> None:
        self.queue, self.die, self.served = queue, die, 0
        self.server = PutServer(self.put_many, socket_path(home, "test", str(id(queue))))

    async def put_many(self, puts: list[Put]) -> list[list[str] | Exception]:
        if self.die:
            self.die -= 1
            raise ConnectionResetError("the queue actor died")  # the connection closes
        self.served += 1
        return self.queue.store.put_batches(puts)

    async def __aenter__(self) -> local_server:
        await self.server.start()
        self.queue.socket = str(self.server.path)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.close()


def test_puts_go_over_the_local_socket_when_the_queue_actor_is_on_this_node(
    tmp_path: Path, queue: FakeQueue
) -> None:
    async def scenario() -> tuple[int, bool]:
        async with local_server(queue, tmp_path) as server:
            puts = puts_for(Actors(t=queue), local=True)
            await puts.enqueue("t", [event()], None)
            return server.served, puts.sends_locally("t")

    assert run(scenario) == (1, True)
    assert queue.sends == [] and queue.depth() == 1


def test_puts_go_by_actor_call_when_the_queue_actor_is_on_another_node(queue: FakeQueue) -> None:
    puts = puts_for(Actors(t=queue), local=True)
    run(lambda: puts.enqueue("t", [event()], None))
    assert len(queue.sends) == 1 and not puts.sends_locally("t") and queue.asked_socket == 1


def test_with_local_puts_off_the_queue_actor_is_not_asked_for_its_socket(
    tmp_path: Path, queue: FakeQueue
) -> None:
    async def scenario() -> bool:
        async with local_server(queue, tmp_path):
            puts = puts_for(Actors(t=queue), local=False)
            await puts.enqueue("t", [event()], None)
            return puts.sends_locally("t")

    assert run(scenario) is False
    assert queue.asked_socket == 0 and len(queue.sends) == 1


def test_a_local_socket_that_cannot_be_reached_leaves_the_puts_to_actor_calls(
    tmp_path: Path, queue: FakeQueue
) -> None:
    queue.socket = str(tmp_path / "gone.sock")
    puts = puts_for(Actors(t=queue), local=True)
    run(lambda: puts.enqueue("t", [event()], None))
    assert len(queue.sends) == 1 and not puts.sends_locally("t")


def test_a_put_whose_local_connection_died_is_resent_over_a_new_one_and_committed_once(
    tmp_path: Path, queue: FakeQueue
) -> None:
    actors, connects = Actors(t=queue), Connects()

    async def scenario() -> tuple[list[str], bool]:
        async with local_server(queue, tmp_path, die=1):
            puts = puts_for(actors, local=True, connect=connects)
            return await puts.enqueue("t", [event()], None), puts.sends_locally("t")

    ids, local = run(scenario)
    assert len(ids) == 1 and local and queue.depth() == 1
    assert actors.finds == ["t", "t"] and len(connects.paths) == 2 and queue.sends == []


def test_the_queue_actors_in_use_are_those_the_puts_went_to(tmp_path: Path) -> None:
    """The listener's health check pings them."""
    a, b = FakeQueue(QueueStore(tmp_path / "a.db")), FakeQueue(QueueStore(tmp_path / "b.db"))
    puts = puts_for(Actors(a=a, b=b, c=FakeQueue(QueueStore(tmp_path / "c.db"))))

    async def scenario() -> None:
        await puts.enqueue("a", [event()], None)
        await puts.enqueue("b", [event()], None)

    run(scenario)
    assert puts.in_use() == [a, b]


# --- tenants' queues at hand: bounded, the least recently used forgotten ----------------------


def stores(tmp_path: Path, *tenants: str) -> dict[str, FakeQueue]:
    return {t: FakeQueue(QueueStore(tmp_path / f"{t}.db")) for t in tenants}


def test_the_queues_at_hand_are_bounded_and_the_least_recently_used_is_forgotten(
    tmp_path: Path,
) -> None:
    queues = stores(tmp_path, "a", "b", "c")
    puts = puts_for(Actors(**queues), max_queues=2)

    async def scenario() -> None:
        for tenant in ("a", "b", "a", "c"):
            await puts.enqueue(tenant, [event()], None)

    run(scenario)
    assert puts.in_use() == [queues["a"], queues["c"]]  # b was the least recently used


def test_a_forgotten_tenants_queue_is_looked_up_again_on_its_next_put_and_commits_it(
    tmp_path: Path,
) -> None:
    queues = stores(tmp_path, "a", "b")
    actors = Actors(**queues)
    puts = puts_for(actors, max_queues=1)

    async def scenario() -> None:
        for tenant in ("a", "b", "a"):
            await puts.enqueue(tenant, [event()], None)

    run(scenario)
    assert actors.finds == ["a", "b", "a"]
    assert queues["a"].depth() == 2 and queues["b"].depth() == 1


def test_a_forgotten_tenants_local_connection_is_closed_and_opened_again_on_its_next_put(
    tmp_path: Path,
) -> None:
    queues = stores(tmp_path, "a", "b")
    connects = Connects()

    async def scenario() -> tuple[bool, bool, int]:
        async with local_server(queues["a"], tmp_path) as server:
            puts = puts_for(Actors(**queues), local=True, connect=connects, max_queues=1)
            await puts.enqueue("a", [event()], None)
            await puts.enqueue("b", [event()], None)  # by actor call: b's queue is elsewhere
            forgotten = not puts.sends_locally("a")
            await puts.enqueue("a", [event(1)], None)
            return forgotten, puts.sends_locally("a"), server.served

    assert run(scenario) == (True, True, 2)
    assert len(connects.paths) == 2 and queues["a"].depth() == 2 and queues["a"].sends == []
