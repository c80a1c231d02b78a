"""One tenant's queues as its actor serves them (jobico.queue.service): leases that wait for
work, the puts, settles and replays that wake them, client calls held to grants for the
tenant, and local puts."""

from __future__ import annotations

import asyncio
import pathlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from jobico.access import auth
from jobico.access.auth import Grant
from jobico.errors import Forbidden, QueueFull
from jobico.queue.events import Leased, NewEvent, Put
from jobico.queue.groupcommit import GroupCommitter
from jobico.queue.localputs import PutClient
from jobico.queue.service import QueueService
from jobico.queue.store import QueueStore

LEASE_MS = 30_000
KEY = b"k" * 32
TENANT = "acme"


def ev(n: int = 0, key: str | None = None, *, limit: int = 100_000) -> NewEvent:
    return NewEvent(
        queue="q",
        event="ev",
        package="pkg",
        revision=1,
        key=key,
        payload=b'{"n":%d}' % n,
        received_at=time.time(),
        limit=limit,
    )


class KeyGrants:
    """Grant checks as the actor's Verifier makes them, with the key at hand."""

    async def acheck(self, grant: Grant, tenant: str) -> str:
        return auth.require(auth.verify(KEY, grant, time.time()), tenant)


def grant_for(tenant: str | None) -> Grant:
    """A valid grant for `tenant` (None: an admin's, for every tenant)."""
    return auth.sign(KEY, "token1", tenant, int(time.time()) + 300)


@dataclass
class Served:
    queues: QueueService
    store: QueueStore

    async def waiting_lease(self) -> asyncio.Task[list[Leased]]:
        """A lease that may wait 30 s, started and past its first look at the queue."""
        before = self.store.commits
        task = asyncio.create_task(self.queues.lease(10, LEASE_MS, 1, 30.0))
        await until(lambda: self.store.commits > before)  # its look committed an empty lease
        return task

    async def dead_letter(self) -> str:
        """The id of an event put, leased and buried."""
        [dead] = await self.queues.put([ev(0)])
        await self.queues.lease(10, LEASE_MS)
        await self.queues.settle([], [], [(dead, "boom", 1)], [])
        return dead


@asynccontextmanager
async def serving(
    path: pathlib.Path,
    *,
    recheck_s: float = 60.0,
    local_puts: pathlib.Path | None = None,
    committer: Callable[[QueueStore], GroupCommitter] = GroupCommitter,
) -> AsyncIterator[Served]:
    """A service over a fresh store. Rechecks are a minute apart unless a test asks for
    them: a waiting lease that returns within seconds was woken."""
    with QueueStore(path / "queue.db") as store:
        commits = committer(store)
        yield Served(
            QueueService(commits, TENANT, KeyGrants(), recheck_s=recheck_s, local_puts=local_puts),
            store,
        )
        await commits.aclose()


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.005)


def run(scenario: Callable[[], Coroutine[object, object, None]]) -> None:
    asyncio.run(scenario())


# --- waiting leases ------------------------------------------------------------------------


def test_a_waiting_lease_returns_as_soon_as_a_put_arrives(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as s:
            waiting = await s.waiting_lease()
            ids = await s.queues.put([ev(0)])
            assert [item.id for item in await asyncio.wait_for(waiting, 5)] == ids

    run(scenario)


def test_a_waiting_lease_returns_as_soon_as_put_many_commits(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as s:
            waiting = await s.waiting_lease()
            [ids] = await s.queues.put_many([Put([ev(0)])])
            assert [item.id for item in await asyncio.wait_for(waiting, 5)] == ids

    run(scenario)


def test_a_waiting_lease_returns_as_soon_as_a_settle_frees_its_key(
    tmp_path: pathlib.Path,
) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as s:
            first, second = await s.queues.put([ev(0, "a"), ev(1, "a")])
            assert [item.id for item in await s.queues.lease(10, LEASE_MS)] == [first]
            waiting = await s.waiting_lease()  # the key is in flight: nothing to lease
            await s.queues.settle([first], [], [], [])
            assert [item.id for item in await asyncio.wait_for(waiting, 5)] == [second]

    run(scenario)


def test_a_waiting_lease_returns_as_soon_as_a_dead_letter_is_replayed(
    tmp_path: pathlib.Path,
) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as s:
            dead = await s.dead_letter()
            waiting = await s.waiting_lease()
            assert await s.queues.replay(grant_for(TENANT), None) == 1
            assert [item.id for item in await asyncio.wait_for(waiting, 5)] == [dead]

    run(scenario)


def test_a_waiting_lease_finds_a_delayed_retry_when_it_looks_again(
    tmp_path: pathlib.Path,
) -> None:
    async def scenario() -> None:
        # Nothing wakes a lease when a backoff ends: only its own rechecks find the event.
        async with serving(tmp_path, recheck_s=0.01) as s:
            [retried] = await s.queues.put([ev(0)])
            await s.queues.lease(10, LEASE_MS)
            await s.queues.settle([], [(retried, 100, "boom", 1)], [], [])
            again = await asyncio.wait_for(s.queues.lease(10, LEASE_MS, 1, 30.0), 5)
            assert [(item.id, item.attempt) for item in again] == [(retried, 2)]

    run(scenario)


def test_a_lease_with_nothing_ready_returns_nothing_when_its_wait_is_over(
    tmp_path: pathlib.Path,
) -> None:
    async def scenario() -> None:
        async with serving(tmp_path, recheck_s=0.01) as s:
            assert await s.queues.lease(10, LEASE_MS) == []  # no wait: one look
            assert await asyncio.wait_for(s.queues.lease(10, LEASE_MS, 1, 0.05), 5) == []

    run(scenario)


# --- puts ----------------------------------------------------------------------------------


def test_put_many_answers_each_batch_its_ids_or_its_own_error(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as s:
            ok, full = await s.queues.put_many(
                [Put([ev(0, "a")]), Put([ev(1, limit=1), ev(2, limit=1)])]
            )
            assert isinstance(full, QueueFull)
            assert [item.id for item in await s.queues.lease(10, LEASE_MS)] == ok

    run(scenario)


class CancelledCommits(GroupCommitter):
    """A committer whose every put was cancelled mid-commit."""

    async def put_many(self, puts: Sequence[Put]) -> list[list[str] | BaseException]:
        return [asyncio.CancelledError() for _ in puts]


def test_a_put_answered_by_an_error_that_is_no_exception_gets_a_plain_exception(
    tmp_path: pathlib.Path,
) -> None:
    async def scenario() -> None:
        async with serving(tmp_path, committer=CancelledCommits) as s:
            [answer] = await s.queues.put_many([Put([ev(0)])])
            assert type(answer) is Exception and "CancelledError" in str(answer)

    run(scenario)


# --- clients' calls, with a grant ----------------------------------------------------------


CLIENT_CALLS: dict[str, Callable[[QueueService, Grant], Awaitable[object]]] = {
    "figures": lambda q, g: q.figures(g),
    "dead_letters": lambda q, g: q.dead_letters(g),
    "replay": lambda q, g: q.replay(g, None),
    "drop": lambda q, g: q.drop(g, None),
}


@pytest.mark.parametrize("call", CLIENT_CALLS)
def test_a_client_call_with_a_grant_for_another_tenant_is_forbidden_and_changes_nothing(
    tmp_path: pathlib.Path, call: str
) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as s:
            dead = await s.dead_letter()
            with pytest.raises(Forbidden):
                await CLIENT_CALLS[call](s.queues, grant_for("other"))
            assert [d["id"] for d in s.store.dead_letters()] == [dead]

    run(scenario)


@pytest.mark.parametrize("tenant", [TENANT, None])
def test_client_calls_serve_a_grant_for_the_tenant_or_an_admins(
    tmp_path: pathlib.Path, tenant: str | None
) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as s:
            dead = await s.dead_letter()
            grant = grant_for(tenant)
            assert (await s.queues.figures(grant))["q"]["dead"] == 1
            assert [d["id"] for d in await s.queues.dead_letters(grant)] == [dead]
            assert await s.queues.replay(grant, [dead]) == 1
            await s.queues.lease(10, LEASE_MS)
            await s.queues.settle([], [], [(dead, "again", 2)], [])
            assert await s.queues.drop(grant, None) == 1
            assert s.store.dead_letters() == []

    run(scenario)


# --- local puts ----------------------------------------------------------------------------


def test_local_puts_are_off_unless_a_socket_is_given(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as s:
            assert await s.queues.open_local_puts() is None

    run(scenario)


def test_a_local_put_is_committed_and_wakes_a_waiting_lease(tmp_path: pathlib.Path) -> None:
    socket = tmp_path / "sockets" / "q.sock"

    async def scenario() -> None:
        async with serving(tmp_path, local_puts=socket) as s:
            assert await s.queues.open_local_puts() == socket
            client = await PutClient.connect(str(socket))
            waiting = await s.waiting_lease()
            [ids] = await client.put_many([Put([ev(0)])])
            assert [item.id for item in await asyncio.wait_for(waiting, 5)] == ids
            client.close()

    run(scenario)


def test_local_puts_stay_off_when_their_socket_cannot_be_made(tmp_path: pathlib.Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)  # others may enter: no place for a door into the queue
    shared.chmod(0o755)

    async def scenario() -> None:
        async with serving(tmp_path, local_puts=shared / "q.sock") as s:
            assert await s.queues.open_local_puts() is None
            shared.chmod(0o700)  # even once it could be made: off for this actor's life
            assert await s.queues.open_local_puts() is None
            assert not (shared / "q.sock").exists()

    run(scenario)
