"""A lane's delivery guarantee, case by case: every acknowledged event ends with exactly one
final record and its chained events put once, whatever step the lane dies after.

The lane runs over in-memory seams: a real QueueStore on a tmp SQLite file (real leases,
expiry and settles) read on a fake clock, a recorder that keeps every record it is given, and
guests that answer every event. A lane "dies" at a step when that step's seam is called:
from then on none of its calls returns, as if its process were gone, and its leases run out.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobico.errors import Unavailable
from jobico.execution.executor import Verdicts
from jobico.execution.guests import PooledGuests
from jobico.execution.lane import (
    LEASE_WAIT_S,
    MAX_SETTLING,
    SETTLE_RETRIES_S,
    Burial,
    Finals,
    Lane,
    Lanes,
    Retrial,
)
from jobico.queue.events import Leased, NewEvent, Put, chained_key
from jobico.queue.store import QueueStore
from jobico.wasm import Sandbox
from tests.unit.test_executor import executor, revision

TENANT = "t"
LEASE_MS = 3_000
LEASE_S = LEASE_MS / 1000


class Clock:
    """Time that moves only when a test says so; sleepers and waiters wake on every change."""

    def __init__(self) -> None:
        self.now = 0.0
        self._waiters: list[asyncio.Future[None]] = []

    def poke(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self.changed()

    async def changed(self) -> None:
        """Until time moves or the queues change."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    async def sleep(self, seconds: float) -> None:
        until = self.now + seconds
        await self.wait(lambda: self.now >= until)

    async def advance(self, seconds: float, step: float = 0.1) -> None:
        """Move time on a step at a time, letting every task woken run before the next."""
        end = self.now + seconds
        while self.now < end:
            self.now = min(self.now + step, end)
            self.poke()
            await idle()


async def never() -> None:
    """What a call into a dead process does: it never returns."""
    await asyncio.get_running_loop().create_future()


async def idle() -> None:
    for _ in range(100):
        await asyncio.sleep(0)


async def until(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0)


class World:
    """What outlives a lane: the tenant's queues, the records, and the runs guests made."""

    def __init__(self, store: QueueStore) -> None:
        self.store, self.clock = store, Clock()
        self.records: list[dict[str, Any]] = []
        self.ran: collections.Counter[str] = collections.Counter()
        self.lanes: list[asyncio.Task[None]] = []

    def put(self, *keys: str | None, event: str = "ev") -> list[str]:
        put = Put([new_event(event, key) for key in keys])
        [ids] = self.store.put_batches([put], now=self.clock.now)
        assert isinstance(ids, list)
        self.clock.poke()
        return ids

    def start(self, **faults: Any) -> Process:
        """A new lane (an executor started), on seams that fail as `faults` say."""
        process = Process(self, **faults)
        lane = Lane(
            TENANT, process, process, process, process,
            lease_ms=LEASE_MS, max_keys=16, sleep=self.clock.sleep,
        )  # fmt: skip
        self.lanes.append(asyncio.get_running_loop().create_task(lane.serve()))
        return process

    def finals(self) -> collections.Counter[str]:
        return collections.Counter(r["event_id"] for r in self.records if r["final"])

    def depth(self, queue: str | None = None) -> int:
        """Events still in the queues (waiting or leased)."""
        stats = self.store.stats(now=self.clock.now)
        return sum(
            q["depth"] + q["in_flight"] for name, q in stats.items() if queue in (None, name)
        )

    def chained(self) -> int:
        return sum(1 for r in self.records if r["event"] == "ev_ok")


class Process:
    """One lane's seams (queue, chain, recorder, guests), as its executor process sees them.

    `crash_at`: the seam whose call kills the process (that call and every later one never
    return). `fail`: seams that raise Unavailable on their next n calls. `hold`: seams whose
    calls wait for the test to set an event."""

    def __init__(
        self,
        world: World,
        crash_at: str | None = None,
        fail: dict[str, int] | None = None,
        hold: dict[str, asyncio.Event] | None = None,
    ) -> None:
        self._world, self._crash_at = world, crash_at
        self._fail = collections.Counter(fail or {})
        self._hold = hold or {}
        self.dead = False
        self.calls: list[str] = []

    async def _step(self, name: str) -> None:
        if name == self._crash_at:
            self.dead = True
        if self.dead:
            await never()
        self.calls.append(name)
        if name in self._hold:
            await self._hold[name].wait()
        if self._fail[name] > 0:
            self._fail[name] -= 1
            raise Unavailable(f"{name}: the queue actor is restarting")

    # Queue
    async def lease(
        self, max_items: int, lease_ms: int, *, per_key: int, wait_s: float, max_keys: int
    ) -> list[Leased]:
        await self._step("lease")
        clock = self._world.clock
        until_s = clock.now + wait_s
        while True:  # like the queue actor: waits up to wait_s for events to arrive
            if self.dead:
                await never()
            leased = self._world.store.lease(
                max_items, lease_ms, per_key=per_key, max_keys=max_keys, now=clock.now
            )
            if leased or clock.now >= until_s:
                return leased
            await clock.changed()

    async def extend(self, ids: list[str], lease_ms: int) -> None:
        await self._step("extend")
        self._world.store.extend(ids, lease_ms, now=self._world.clock.now)

    async def settle(
        self, ack: list[str], retry: list[Retrial], bury: list[Burial], release: list[str]
    ) -> None:
        await self._step("settle")
        self._world.store.settle(ack, retry, bury, release, now=self._world.clock.now)
        self._world.clock.poke()

    # Chain
    async def put_many(self, batches: list[Put]) -> list[list[str] | Exception]:
        await self._step("put_many")
        answers = self._world.store.put_batches(batches, now=self._world.clock.now)
        self._world.clock.poke()
        return answers

    # Recorder
    async def add(self, records: list[dict[str, Any]]) -> None:
        await self._step("add")
        self._world.records += records

    async def final_outcomes(self, tenant: str, event_ids: list[str]) -> Finals:
        await self._step("final_outcomes")
        finals: Finals = {}
        for r in self._world.records:
            if r["final"] and r["event_id"] in event_ids:
                finals.setdefault(r["event_id"], (r["status"], r["error"]))
        return finals

    # Guests: every event answers ok; a source event chains one event to q_ok.
    async def run(self, tenant: str, items: list[Leased]) -> Verdicts:
        await self._step("run")
        verdicts = Verdicts()
        for item in items:
            self._world.ran[item.id] += 1
            verdicts.records.append(record(item, "ok"))
            verdicts.ack.append(item.id)
            if item.event == "ev":
                ok = new_event("ev_ok", None)
                verdicts.chained.append(Put([ok], key=chained_key(item.id), ttl_s=86_400))
        return verdicts


def new_event(event: str, key: str | None) -> NewEvent:
    queue = "q" if event == "ev" else "q_ok"
    return NewEvent(
        queue=queue, event=event, package="pkg", revision=1, key=key, payload=b'{"a":1}',
        received_at=0.0,
    )  # fmt: skip


def record(item: Leased, status: str, error: str | None = None) -> dict[str, Any]:
    return {
        "tenant": TENANT, "event_id": item.id, "attempt": item.attempt, "event": item.event,
        "status": status, "error": error, "final": True,
    }  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[QueueStore]:
    with QueueStore(tmp_path / "queues.db") as s:
        yield s


def play(test: Callable[[World], Coroutine[Any, Any, None]], store: QueueStore) -> None:
    asyncio.run(test(World(store)))  # cancels the lanes left, dead or alive, at the end


async def everything_delivered_once(world: World, sources: list[str]) -> None:
    """Every source event and its chained event stored and acked, each recorded final once."""
    await until(
        lambda: world.depth() == 0 and world.chained() == len(sources), "the queues to drain"
    )
    await idle()
    assert all(world.finals()[event_id] == 1 for event_id in sources)
    assert set(world.finals().values()) == {1}  # the chained events too: one final record each
    assert world.chained() == len(sources)  # chained once per source, never twice
    assert world.store.dead_letters() == []


async def crash_then_redeliver(world: World, crash_at: str) -> None:
    sources = world.put("a", "a", "b")
    first = world.start(crash_at=crash_at)
    await until(lambda: first.dead, f"the lane to die at {crash_at}")
    await world.clock.advance(LEASE_S + LEASE_WAIT_S)  # its leases run out
    world.start()
    await everything_delivered_once(world, sources)


# --- a lane dying between two steps: the next lane delivers each event once ---


def test_a_lane_dying_after_its_lease_before_running_loses_nothing(store: QueueStore) -> None:
    play(lambda world: crash_then_redeliver(world, "run"), store)


def test_a_lane_dying_after_running_before_chaining_loses_nothing(store: QueueStore) -> None:
    play(lambda world: crash_then_redeliver(world, "put_many"), store)


def test_a_lane_dying_after_chaining_before_recording_chains_once(store: QueueStore) -> None:
    play(lambda world: crash_then_redeliver(world, "add"), store)


def test_a_lane_dying_after_recording_before_settling_records_once(store: QueueStore) -> None:
    async def test(world: World) -> None:
        await crash_then_redeliver(world, "settle")
        assert set(world.ran.values()) == {1}  # recorded final: settled, not run again

    play(test, store)


def test_an_event_is_acked_only_after_its_chained_events_and_its_record(store: QueueStore) -> None:
    async def test(world: World) -> None:
        world.put("a")
        lane = world.start()
        await until(lambda: "settle" in lane.calls, "the batch to settle")
        first_batch = [c for c in lane.calls if c in ("run", "put_many", "add", "settle")][:4]
        assert first_batch == ["run", "put_many", "add", "settle"]

    play(test, store)


# --- settles that fail ---


def test_a_settle_that_fails_for_a_while_is_retried_and_lands_before_the_lease_ends(
    store: QueueStore,
) -> None:
    async def test(world: World) -> None:
        [event_id] = world.put(None, event="ev_ok")  # a result event: it chains nothing
        lane = world.start(fail={"settle": 2})
        await until(lambda: "settle" in lane.calls, "the first settle")
        await world.clock.advance(sum(SETTLE_RETRIES_S[:2]) + 0.1)
        assert lane.calls.count("settle") == 3
        assert world.depth() == 0  # acked within its lease: never delivered again
        assert world.ran[event_id] == 1 and world.finals() == {event_id: 1}

    play(test, store)


def test_a_settle_that_keeps_failing_lets_the_lease_run_out_and_no_second_final_record(
    store: QueueStore,
) -> None:
    async def test(world: World) -> None:
        [event_id] = world.put(None, event="ev_ok")
        lane = world.start(fail={"settle": len(SETTLE_RETRIES_S) + 1})  # every attempt fails
        await until(lambda: "settle" in lane.calls, "the first settle")
        await world.clock.advance(sum(SETTLE_RETRIES_S) + 0.1)
        assert lane.calls.count("settle") == len(SETTLE_RETRIES_S) + 1
        assert world.depth() == 1  # not acked
        await world.clock.advance(LEASE_S + LEASE_WAIT_S)  # no longer renewed: it runs out
        await until(lambda: world.depth() == 0, "the redelivered event to settle")
        assert world.ran[event_id] == 1  # its final record settled it on redelivery
        assert world.finals() == {event_id: 1}

    play(test, store)


# --- leases ---


def test_a_lease_is_renewed_while_its_guest_runs_past_it(store: QueueStore) -> None:
    async def test(world: World) -> None:
        sources = world.put("a")
        running = asyncio.Event()
        lane = world.start(hold={"run": running})
        await until(lambda: "run" in lane.calls, "the guest to start")
        await world.clock.advance(4 * LEASE_S)
        # Another executor finds nothing to lease: the event is still this lane's.
        assert world.store.lease(10, LEASE_MS, now=world.clock.now) == []
        running.set()
        await everything_delivered_once(world, sources)
        assert world.ran[sources[0]] == 1

    play(test, store)


def test_a_redelivered_event_recorded_final_is_settled_as_recorded_not_run_again(
    store: QueueStore,
) -> None:
    async def test(world: World) -> None:
        answered, failed, unrecorded = world.put("a", "b", "c")
        dead = {item.id: item for item in world.store.lease(10, LEASE_MS, now=world.clock.now)}
        world.records += [record(dead[answered], "ok"), record(dead[failed], "trap", "boom")]
        await world.clock.advance(LEASE_S + 0.1)  # that executor died before settling
        world.start()
        await until(lambda: world.depth() == 0 and world.chained() == 1, "the queues to drain")
        assert (world.ran[answered], world.ran[failed], world.ran[unrecorded]) == (0, 0, 1)
        assert [d["id"] for d in world.store.dead_letters()] == [failed]  # as it was recorded
        assert [d["error"] for d in world.store.dead_letters()] == ["boom"]
        assert set(world.finals().values()) == {1}

    play(test, store)


# --- pipelining ---


def test_a_lane_runs_its_next_batch_while_the_last_ones_records_are_written(
    store: QueueStore,
) -> None:
    async def test(world: World) -> None:
        recording = asyncio.Event()
        world.put("k0", event="ev_ok")  # result events (they chain nothing), of distinct keys
        lane = world.start(hold={"add": recording})
        await until(lambda: "add" in lane.calls, "the first batch's records")
        for n in range(1, MAX_SETTLING + 1):
            world.put(f"k{n}", event="ev_ok")
            await idle()
        # MAX_SETTLING batches wait on their records; the lane leases no more meanwhile.
        assert len(world.ran) == MAX_SETTLING and world.records == []
        recording.set()
        await until(lambda: world.depth() == 0 and len(world.ran) == MAX_SETTLING + 1, "all")

    play(test, store)


# --- an executor's lanes ---


def test_draining_lanes_settles_the_batches_in_hand_then_leases_no_more(
    store: QueueStore,
) -> None:
    async def test(world: World) -> None:
        recording, opened = asyncio.Event(), []

        def queue(tenant: str) -> Process:
            opened.append(tenant)
            return process

        process = Process(world, hold={"add": recording})
        lanes = Lanes(
            queue, process, process, lease_ms=LEASE_MS, max_keys=16, sleep=world.clock.sleep
        )
        [event_id] = world.put("a", event="ev_ok")
        lanes.open([TENANT])
        lanes.open([TENANT])  # its packages changed again: still one lane
        await until(lambda: "add" in process.calls, "the batch's records")
        draining = asyncio.get_running_loop().create_task(lanes.drain())
        await world.clock.advance(LEASE_WAIT_S)  # the lane's waiting lease call returns
        assert not draining.done()  # its batch is not settled yet
        recording.set()
        await asyncio.wait_for(draining, timeout=10)
        assert world.depth() == 0 and world.finals() == {event_id: 1}
        assert (lanes.executed, lanes.tenants, opened) == (1, [], [TENANT])
        world.put("b", event="ev_ok")
        lanes.open([TENANT])  # while drained, no lane opens
        await world.clock.advance(LEASE_WAIT_S)
        assert world.depth() == 1 and lanes.tenants == []
        lanes.resume()
        lanes.open([TENANT])
        await until(lambda: world.depth() == 0, "the lane opened again to run the event")
        assert lanes.executed == 2 and lanes.tenants == [TENANT]

    play(test, store)


# --- guests on the shared pool ---


def test_pooled_guests_run_a_batch_on_the_pool_and_the_lane_stores_it(
    store: QueueStore, sb: Sandbox
) -> None:
    guests = PooledGuests(executor(sb, revision("choose")), threads=1)

    async def test(world: World) -> None:
        [source] = world.put("a")
        process = Process(world)
        lane = Lane(
            TENANT, process, process, process, guests,
            lease_ms=LEASE_MS, max_keys=16, sleep=world.clock.sleep,
        )  # fmt: skip
        serving = asyncio.get_running_loop().create_task(lane.serve())
        await until(lambda: world.chained(), "the chained event's record")
        [rec, chained] = world.records
        assert (rec["event_id"], rec["status"], rec["final"]) == (source, "ok", True)
        assert (chained["event"], chained["status"]) == ("ev_ok", "ok")
        assert world.depth() == 0
        lane.stop()
        await world.clock.advance(LEASE_WAIT_S)
        await asyncio.wait_for(serving, timeout=10)

    try:
        play(test, store)
    finally:
        guests.close()
