"""The durable ordered queue (jobico.queue.store) and its group committer
(jobico.queue.groupcommit)."""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

import jobico
from jobico.errors import InvalidInput, NotFound, QueueFull, Unavailable
from jobico.queue.events import EventIds, NewEvent, Put, chained_key
from jobico.queue.groupcommit import GroupCommitter
from jobico.queue.store import QueueStore

LEASE_MS = 1_000
T0 = 1_000_000.0  # the tests' clock: every time-dependent call gets an explicit `now`


def ev(n: int = 0, key: str | None = None, *, queue: str = "q", limit: int = 100_000) -> NewEvent:
    return NewEvent(
        queue=queue,
        event="ev",
        package="pkg",
        revision=1,
        key=key,
        payload=b'{"n":%d}' % n,
        received_at=T0 + n,
        limit=limit,
    )


@pytest.fixture
def store(tmp_path: pathlib.Path) -> Iterator[QueueStore]:
    with QueueStore(tmp_path / "queue.db") as s:
        yield s


def put(store: QueueStore, events: list[NewEvent]) -> list[str]:
    """One sender's batch: its ids, or its error raised."""
    (result,) = store.put_batches([events], now=T0)
    if isinstance(result, Exception):
        raise result
    return result


def leased_ids(store: QueueStore, now: float = T0, n: int = 100) -> list[str]:
    return [item.id for item in store.lease(n, LEASE_MS, now=now)]


# --- ids and order -------------------------------------------------------------------------


def test_event_ids_are_26_chars_and_strictly_increasing() -> None:
    gen = EventIds()
    ids = [gen.new() for _ in range(10_000)]
    assert all(len(i) == 26 for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_a_put_returns_ids_in_order_and_lease_gives_them_in_arrival_order(
    store: QueueStore,
) -> None:
    first = put(store, [ev(0, key="a"), ev(1, key="b")])
    second = put(store, [ev(2, key="c")])
    leased = store.lease(10, LEASE_MS, now=T0)
    assert [item.id for item in leased] == first + second == sorted(first + second)
    assert [item.seq for item in leased] == sorted(item.seq for item in leased)
    assert leased[0].payload == b'{"n":0}' and leased[0].attempt == 1


def test_fifo_one_at_a_time_when_the_whole_queue_is_one_key(store: QueueStore) -> None:
    ids = put(store, [ev(i) for i in range(3)])
    for expected in ids:
        assert leased_ids(store) == [expected]
        assert leased_ids(store) == []  # the next one waits for the ack
        store.settle(ack=[expected])
    assert leased_ids(store) == []


def test_max_items_bounds_a_lease(store: QueueStore) -> None:
    ids = put(store, [ev(i, key=str(i)) for i in range(5)])
    assert leased_ids(store, n=2) == ids[:2]
    assert leased_ids(store, n=10) == ids[2:]


# --- ordering keys -------------------------------------------------------------------------


def test_second_event_of_a_key_waits_while_the_first_is_in_flight(store: QueueStore) -> None:
    a1, a2 = put(store, [ev(0, key="a"), ev(1, key="a")])
    assert leased_ids(store) == [a1]
    assert leased_ids(store) == []
    store.settle(ack=[a1])
    assert leased_ids(store) == [a2]


def test_different_keys_are_leased_together(store: QueueStore) -> None:
    a1, b1, _, b2 = put(store, [ev(0, "a"), ev(1, "b"), ev(2, "a"), ev(3, "b")])
    assert leased_ids(store) == [a1, b1]
    store.settle(ack=[b1])
    assert leased_ids(store) == [b2]


def test_same_key_in_different_queues_is_independent(store: QueueStore) -> None:
    ids = put(store, [ev(0, queue="q1", key="a"), ev(1, queue="q2", key="a")])
    assert leased_ids(store) == ids


def test_key_none_serialises_the_whole_queue_but_not_other_queues(store: QueueStore) -> None:
    q1a, _, q2a = put(store, [ev(0, queue="q1"), ev(1, queue="q1"), ev(2, queue="q2")])
    assert leased_ids(store) == [q1a, q2a]


def test_acking_several_events_of_one_key_at_once_moves_the_head_right(store: QueueStore) -> None:
    ids = put(store, [ev(i, key="a") for i in range(4)])
    store.settle(ack=ids[1:3])  # not heads: the head stays the first
    assert leased_ids(store) == [ids[0]]
    store.settle(ack=[ids[0], "unknown-id"])
    assert leased_ids(store) == [ids[3]]


# --- leases, retries -----------------------------------------------------------------------


def test_expired_lease_is_redelivered_with_attempt_2_and_order_kept(store: QueueStore) -> None:
    a1, a2 = put(store, [ev(0, key="a"), ev(1, key="a")])
    assert store.lease(10, LEASE_MS, now=T0)[0].attempt == 1
    assert leased_ids(store, now=T0 + 1.0) == []  # exactly at lease_until: still in flight
    again = store.lease(10, LEASE_MS, now=T0 + 1.001)
    assert [(item.id, item.attempt) for item in again] == [(a1, 2)]
    store.settle(ack=[a1])
    assert leased_ids(store, now=T0 + 1.002) == [a2]


def test_a_retry_with_a_delay_blocks_its_key_until_ready(store: QueueStore) -> None:
    a1, a2, b1 = put(store, [ev(0, key="a"), ev(1, key="a"), ev(2, key="b")])
    assert leased_ids(store) == [a1, b1]
    store.settle(retry=[(a1, 500, "boom", 1)], now=T0 + 0.1)
    assert leased_ids(store, now=T0 + 0.5) == []  # a1 backing off, a2 behind it, b1 in flight
    retried = store.lease(10, LEASE_MS, now=T0 + 0.6)
    assert [(item.id, item.attempt) for item in retried] == [(a1, 2)]
    store.settle(ack=[a1])
    assert leased_ids(store, now=T0 + 0.7) == [a2]


def test_a_retry_from_a_stale_lease_is_ignored(store: QueueStore) -> None:
    (a1,) = put(store, [ev(0)])
    store.lease(1, LEASE_MS, now=T0)
    store.lease(1, LEASE_MS, now=T0 + 2)  # expired, handed out again as attempt 2
    store.settle(retry=[(a1, 0, "late", 1)], now=T0 + 2.1)
    assert leased_ids(store, now=T0 + 2.2) == []  # attempt 2 still holds it


def test_a_retry_is_ready_exactly_when_its_delay_is_over(store: QueueStore) -> None:
    (a1,) = put(store, [ev(0)])
    store.lease(1, LEASE_MS, now=T0)
    store.settle(retry=[(a1, 500, "boom", 1)], now=T0)
    assert leased_ids(store, now=T0 + 0.499) == []
    assert leased_ids(store, now=T0 + 0.5) == [a1]


def test_a_bury_from_a_stale_lease_is_ignored(store: QueueStore) -> None:
    (a1,) = put(store, [ev(0)])
    store.lease(1, LEASE_MS, now=T0)
    store.lease(1, LEASE_MS, now=T0 + 2)  # expired, handed out again as attempt 2
    store.settle(bury=[(a1, "late", 1)], now=T0 + 2.1)
    assert store.dead_letters() == []
    assert leased_ids(store, now=T0 + 2.2) == []  # attempt 2 still holds it
    assert [(i.id, i.attempt) for i in store.lease(1, LEASE_MS, now=T0 + 3.1)] == [(a1, 3)]


def test_extending_an_event_that_is_no_longer_leased_does_not_lease_it(
    store: QueueStore,
) -> None:
    (a1,) = put(store, [ev(0)])
    store.lease(1, LEASE_MS, now=T0)
    store.settle(retry=[(a1, 0, "boom", 1)], now=T0)
    store.extend([a1], 60_000, now=T0)  # a heartbeat that crossed the settle
    assert [(i.id, i.attempt) for i in store.lease(1, LEASE_MS, now=T0)] == [(a1, 2)]


def test_a_lease_of_no_items_takes_nothing(store: QueueStore) -> None:
    (a1,) = put(store, [ev(0)])
    assert store.lease(0, LEASE_MS, now=T0) == []
    assert [(i.id, i.attempt) for i in store.lease(1, LEASE_MS, now=T0)] == [(a1, 1)]


def test_lease_rejects_a_non_positive_lease_time(store: QueueStore) -> None:
    with pytest.raises(InvalidInput):
        store.lease(1, 0, now=T0)


def test_lease_rejects_a_non_positive_bound_on_keys(store: QueueStore) -> None:
    put(store, [ev(0)])
    with pytest.raises(InvalidInput, match="max_keys"):
        store.lease(1, LEASE_MS, max_keys=0, now=T0)


# --- dead letters --------------------------------------------------------------------------


def test_bury_moves_to_dead_letters_with_error_and_attempts_and_frees_the_key(
    store: QueueStore,
) -> None:
    a1, a2 = put(store, [ev(0, key="a"), ev(1, key="a")])
    store.lease(1, LEASE_MS, now=T0)
    store.settle(retry=[(a1, 0, "first", 1)], now=T0)
    store.lease(1, LEASE_MS, now=T0 + 0.1)
    store.settle(bury=[(a1, "second", 2)], now=T0 + 0.2)
    (dead,) = store.dead_letters()
    assert dead == {
        "id": a1,
        "queue": "q",
        "event": "ev",
        "package": "pkg",
        "revision": 1,
        "key": "a",
        "attempts": 2,
        "error": "second",
        "payload": '{"n":0}',
        "received_at": T0,
        "died_at": T0 + 0.2,
    }
    assert leased_ids(store, now=T0 + 0.3) == [a2]


def test_replay_appends_at_the_end_keeping_id_and_attempts(store: QueueStore) -> None:
    a1, a2 = put(store, [ev(0, key="a"), ev(1, key="a")])
    store.lease(1, LEASE_MS, now=T0)
    store.settle(bury=[(a1, "boom", 1)], now=T0)
    assert store.replay(None) == 1
    assert store.dead_letters() == []
    assert leased_ids(store) == [a2]  # replayed behind what arrived meanwhile
    store.settle(ack=[a2])
    (again,) = store.lease(10, LEASE_MS, now=T0)
    assert (again.id, again.attempt) == (a1, 2)


def test_replay_of_several_dead_letters_keeps_their_order(store: QueueStore) -> None:
    ids = put(store, [ev(i, key="a") for i in range(3)])
    for id_ in ids:
        store.lease(1, LEASE_MS, now=T0)
        store.settle(bury=[(id_, "boom", 1)], now=T0)
    assert store.replay(list(reversed(ids[:2]))) == 2
    assert [d["id"] for d in store.dead_letters()] == [ids[2]]
    for id_ in ids[:2]:
        assert leased_ids(store) == [id_]
        store.settle(ack=[id_])


def test_drop_deletes_dead_letters_and_unknown_ids_are_not_found(store: QueueStore) -> None:
    ids = put(store, [ev(i, key=str(i)) for i in range(3)])
    store.lease(3, LEASE_MS, now=T0)
    store.settle(bury=[(id_, "boom", 1) for id_ in ids], now=T0)
    with pytest.raises(NotFound):
        store.drop([ids[0], "nope"])
    with pytest.raises(NotFound):
        store.replay(["nope"])
    assert len(store.dead_letters()) == 3  # a failed call changes nothing
    assert store.drop([ids[0]]) == 1
    assert store.drop(None) == 2
    assert store.dead_letters() == []


def test_a_replay_naming_an_unknown_id_replays_nothing(store: QueueStore) -> None:
    (a1,) = put(store, [ev(0)])
    store.lease(1, LEASE_MS, now=T0)
    store.settle(bury=[(a1, "boom", 1)], now=T0)
    with pytest.raises(NotFound):
        store.replay([a1, "nope"])
    assert [d["id"] for d in store.dead_letters()] == [a1]
    assert leased_ids(store) == []


def test_a_buried_event_keeps_the_key_of_what_it_chained_so_its_replay_chains_once(
    store: QueueStore,
) -> None:
    (source,) = put(store, [ev(0, queue="in")])
    store.lease(1, LEASE_MS, now=T0)
    chained = Put([ev(1, queue="out", key="x")], key=chained_key(source), ttl_s=600)
    (first,) = store.put_batches([chained], now=T0)
    store.settle(bury=[(source, "boom", 1)], now=T0)
    store.replay([source])
    (again,) = store.put_batches([chained], now=T0 + 1)  # the replayed run chains again
    assert again == first and store.stats(now=T0)["out"]["depth"] == 1


# --- limits --------------------------------------------------------------------------------


def test_queue_full_leaves_nothing_written(store: QueueStore) -> None:
    put(store, [ev(0, queue="small", limit=2)])
    with pytest.raises(QueueFull) as caught:
        put(store, [ev(1, queue="other"), *(ev(n, queue="small", limit=2) for n in (2, 3))])
    assert caught.value.details["queue"] == "small"
    assert caught.value.details["retry_after"] > 0
    stats = store.stats(now=T0)
    assert stats["small"]["depth"] == 1 and "other" not in stats


def test_limit_counts_in_flight_events_and_frees_on_ack(store: QueueStore) -> None:
    (first,) = put(store, [ev(0, limit=1)])
    store.lease(1, LEASE_MS, now=T0)
    with pytest.raises(QueueFull):
        put(store, [ev(1, limit=1)])
    store.settle(ack=[first])
    assert len(put(store, [ev(2, limit=1)])) == 1


def test_dead_letters_do_not_count_against_the_limit(store: QueueStore) -> None:
    (first,) = put(store, [ev(0, limit=1)])
    store.lease(1, LEASE_MS, now=T0)
    store.settle(bury=[(first, "boom", 1)], now=T0)
    assert len(put(store, [ev(1, limit=1)])) == 1


def test_a_replay_is_not_bound_by_the_limit(store: QueueStore) -> None:
    (first,) = put(store, [ev(0, limit=1)])
    store.lease(1, LEASE_MS, now=T0)
    store.settle(bury=[(first, "boom", 1)], now=T0)
    put(store, [ev(1, limit=1)])
    assert store.replay(None) == 1
    assert store.stats(now=T0)["q"]["depth"] == 2


def test_the_lowest_limit_among_a_batchs_events_of_one_queue_holds(store: QueueStore) -> None:
    with pytest.raises(QueueFull) as caught:
        put(store, [ev(0, limit=1), ev(1, limit=5)])
    assert caught.value.details["limit"] == 1
    assert store.stats(now=T0) == {}


def test_a_malformed_event_is_invalid_input(store: QueueStore) -> None:
    bad = NewEvent(
        queue="q",
        event="e",
        package="p",
        revision=1,
        key=None,
        payload="text",  # type: ignore[arg-type]
        received_at=T0,
    )
    with pytest.raises(InvalidInput):
        put(store, [bad])


# --- stats ---------------------------------------------------------------------------------


def test_stats_report_depth_in_flight_dead_and_oldest_age(store: QueueStore) -> None:
    ids = put(store, [ev(0, key="a"), ev(1, key="a"), ev(2, key="b"), ev(5, queue="q2")])
    store.lease(2, LEASE_MS, now=T0 + 10)  # a's head and b
    store.settle(bury=[(ids[2], "boom", 1)], now=T0 + 10)
    assert store.stats(now=T0 + 10) == {
        "q": {"depth": 1, "in_flight": 1, "dead": 1, "oldest_age_s": 10.0},
        "q2": {"depth": 1, "in_flight": 0, "dead": 0, "oldest_age_s": 5.0},
    }
    store.settle(ack=ids[:2] + ids[3:])
    assert store.stats(now=T0 + 20)["q2"] == {
        "depth": 0,
        "in_flight": 0,
        "dead": 0,
        "oldest_age_s": None,
    }


def test_stats_count_an_expired_lease_as_waiting(store: QueueStore) -> None:
    put(store, [ev(0)])
    store.lease(1, LEASE_MS, now=T0)
    assert store.stats(now=T0 + 5)["q"]["in_flight"] == 0
    assert store.stats(now=T0 + 5)["q"]["depth"] == 1


# --- durability ----------------------------------------------------------------------------


def test_reopening_after_close_keeps_every_event_and_state(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "queue.db"
    with QueueStore(path) as first:
        ids = put(first, [ev(i, key="a") for i in range(3)])
        first.lease(1, LEASE_MS, now=T0)
        first.settle(bury=[(ids[0], "boom", 1)], now=T0)
    with QueueStore(path) as reopened:
        assert leased_ids(reopened) == [ids[1]]
        assert [d["id"] for d in reopened.dead_letters()] == [ids[0]]
        assert reopened.stats(now=T0)["q"]["depth"] == 1


def test_a_second_store_on_an_unclosed_file_sees_every_commit(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "queue.db"
    abandoned = QueueStore(path)  # never closed, as after a crash of its process
    ids = put(abandoned, [ev(i, key=str(i)) for i in range(5)])
    with QueueStore(path) as recovered:
        assert leased_ids(recovered) == ids
    abandoned.close()


def test_a_copy_of_the_files_of_an_open_store_has_every_commit(tmp_path: pathlib.Path) -> None:
    live, image = tmp_path / "live", tmp_path / "image"
    image.mkdir()
    store = QueueStore(live / "queue.db")
    ids = put(store, [ev(i, key=str(i)) for i in range(5)])
    for f in live.iterdir():  # the db file plus its WAL, as a crash would leave them
        if not f.name.endswith("-shm"):
            shutil.copy(f, image / f.name)
    with QueueStore(image / "queue.db") as recovered:
        assert leased_ids(recovered) == ids
    store.close()


def test_a_closed_store_is_unavailable(tmp_path: pathlib.Path) -> None:
    store = QueueStore(tmp_path / "queue.db")
    store.close()
    with pytest.raises(Unavailable):
        store.lease(1, LEASE_MS, now=T0)
    with pytest.raises(Unavailable):
        store.stats(now=T0)
    store.close()  # closing again is harmless


@pytest.mark.fault
def test_events_survive_sigkill_of_the_writing_process(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "queue.db"
    child = textwrap.dedent(f"""
        import os, pathlib, signal
        from jobico.queue.store import NewEvent, QueueStore
        store = QueueStore(pathlib.Path({str(path)!r}))
        for n in range(20):
            [ids] = store.put_batches([[NewEvent(queue="q", event="e", package="p", revision=1,
                                                 key=str(n), payload=b"{{}}", received_at=0.0)]])
            print(ids[0], flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    source_root = str(pathlib.Path(jobico.__file__).parents[1])  # whether installed or not
    env = {**os.environ, "PYTHONPATH": source_root}
    run = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, env=env)
    assert run.returncode == -9, run.stderr
    acknowledged = run.stdout.split()
    with QueueStore(path) as recovered:
        assert leased_ids(recovered) == acknowledged and len(acknowledged) == 20


# --- group commit --------------------------------------------------------------------------


def test_concurrent_puts_share_transactions_and_each_gets_its_ids_in_order(
    store: QueueStore,
) -> None:
    async def scenario() -> list[list[str]]:
        committer = GroupCommitter(store)
        results = await asyncio.gather(
            *(committer.put([ev(2 * i, key=str(i)), ev(2 * i + 1, key=str(i))]) for i in range(64))
        )
        assert committer.commits < 64
        await committer.aclose()
        return results

    commits_before = store.commits
    results = asyncio.run(scenario())
    assert store.commits - commits_before < 64
    assert all(len(ids) == 2 and ids[0] < ids[1] for ids in results)
    everything = [id_ for ids in results for id_ in ids]
    assert everything == sorted(everything)  # callers' batches in arrival order
    leased = store.lease(1000, LEASE_MS, now=T0)
    assert [item.id for item in leased] == [ids[0] for ids in results]


def test_only_the_overflowing_caller_gets_queue_full(store: QueueStore) -> None:
    async def scenario() -> list[list[str] | BaseException]:
        committer = GroupCommitter(store)
        puts = [
            committer.put([ev(0, queue="wide", key="x")]),
            committer.put([ev(1, queue="tight", limit=1), ev(2, queue="tight", limit=1)]),
            committer.put([ev(3, queue="wide", key="y")]),
        ]
        results = await asyncio.gather(*puts, return_exceptions=True)
        await committer.aclose()
        return results

    ok1, full, ok2 = asyncio.run(scenario())
    assert isinstance(full, QueueFull) and full.details["queue"] == "tight"
    assert isinstance(ok1, list) and isinstance(ok2, list)
    assert leased_ids(store) == ok1 + ok2
    assert "tight" not in store.stats(now=T0)


def test_put_batches_commits_several_batches_in_one_transaction(store: QueueStore) -> None:
    before = store.commits
    results = store.put_batches([[ev(0, key="a")], [ev(1, key="b"), ev(2, key="c")], []])
    assert store.commits == before + 1
    assert [len(r) for r in results if isinstance(r, list)] == [1, 2, 0]


def test_group_committer_runs_other_store_calls_on_its_thread(store: QueueStore) -> None:
    async def scenario() -> list[str]:
        committer = GroupCommitter(store)
        ids = await committer.put([ev(0)])
        leased = await committer.call(store.lease, 10, LEASE_MS, now=T0)
        await committer.aclose()
        return ids + [item.id for item in leased]

    put_id, leased_id = asyncio.run(scenario())
    assert put_id == leased_id


# --- runs of one key -----------------------------------------------------------------------


def test_a_run_of_one_key_is_leased_together_in_order(store: QueueStore) -> None:
    ids = put(store, [ev(i) for i in range(5)])
    run = store.lease(10, LEASE_MS, per_key=3, now=T0)
    assert [item.id for item in run] == ids[:3]
    assert store.lease(10, LEASE_MS, per_key=3, now=T0) == []  # the key is in flight
    store.settle(ack=ids[:3])
    assert [item.id for item in store.lease(10, LEASE_MS, per_key=3, now=T0)] == ids[3:]


def test_max_keys_bounds_the_runs_of_a_lease_and_leaves_later_keys_for_the_next(
    store: QueueStore,
) -> None:
    ids = put(store, [ev(i, key=f"k{i % 5}") for i in range(10)])  # k0..k4, twice each
    first = store.lease(100, LEASE_MS, per_key=2, max_keys=3, now=T0)
    assert [item.id for item in first] == [ids[0], ids[5], ids[1], ids[6], ids[2], ids[7]]
    second = store.lease(100, LEASE_MS, per_key=2, max_keys=3, now=T0)
    assert [item.id for item in second] == [ids[3], ids[8], ids[4], ids[9]]


def test_runs_of_several_keys_share_max_items(store: QueueStore) -> None:
    a = put(store, [ev(i, "a") for i in range(4)])
    b = put(store, [ev(i, "b") for i in range(4)])
    run = [item.id for item in store.lease(6, LEASE_MS, per_key=4, now=T0)]
    assert run == a + b[:2]


def test_released_events_are_ready_again_without_counting_an_attempt(store: QueueStore) -> None:
    ids = put(store, [ev(i) for i in range(3)])
    store.lease(10, LEASE_MS, per_key=3, now=T0)
    store.settle(retry=[(ids[0], 500, "trap", 1)], release=ids[1:], now=T0)
    assert store.lease(10, LEASE_MS, per_key=3, now=T0 + 0.1) == []  # the head backs off
    again = store.lease(10, LEASE_MS, per_key=3, now=T0 + 1)
    assert [(item.id, item.attempt) for item in again] == [(ids[0], 2), (ids[1], 1), (ids[2], 1)]


def test_an_expired_run_is_redelivered_whole(store: QueueStore) -> None:
    ids = put(store, [ev(i) for i in range(3)])
    store.lease(10, LEASE_MS, per_key=3, now=T0)
    again = store.lease(10, LEASE_MS, per_key=3, now=T0 + 2)
    assert [(item.id, item.attempt) for item in again] == [(i, 2) for i in ids]
    assert store.stats(now=T0 + 2)["q"]["in_flight"] == 3


def test_settle_applies_a_batchs_verdicts_in_one_transaction(store: QueueStore) -> None:
    ok, failed, dead = put(store, [ev(0, "a"), ev(1, "b"), ev(2, "c")])
    later = put(store, [ev(3, "b")])[0]
    store.lease(10, LEASE_MS, per_key=2, now=T0)
    commits = store.commits
    store.settle([ok], [(failed, 1000, "trap", 1)], [(dead, "timeout", 1)], [later], now=T0)
    assert store.commits == commits + 1
    assert [d["id"] for d in store.dead_letters()] == [dead]
    assert store.lease(10, LEASE_MS, per_key=2, now=T0 + 0.5) == []  # b backs off; a is done
    assert [i.id for i in store.lease(10, LEASE_MS, per_key=2, now=T0 + 2)] == [failed, later]


def test_extend_keeps_a_lease_from_expiring(store: QueueStore) -> None:
    ids = put(store, [ev(0)])
    store.lease(10, LEASE_MS, now=T0)
    store.extend(ids, LEASE_MS, now=T0 + 0.9)
    assert store.lease(10, LEASE_MS, now=T0 + 1.5) == []
    assert [i.id for i in store.lease(10, LEASE_MS, now=T0 + 2)] == ids


# --- idempotent puts ----------------------------------------------------------------------


def test_a_put_with_a_key_seen_before_commits_nothing_and_answers_the_first_ids(
    store: QueueStore,
) -> None:
    first = store.put_batches([Put([ev(0), ev(1)], key="k", ttl_s=60)], now=T0)[0]
    again = store.put_batches([Put([ev(0), ev(1)], key="k", ttl_s=60)], now=T0 + 30)[0]
    assert again == first
    assert store.stats(now=T0)["q"]["depth"] == 2


def test_a_key_holds_until_the_end_of_its_time_to_live(store: QueueStore) -> None:
    first = store.put_batches([Put([ev(0)], key="k", ttl_s=60)], now=T0)[0]
    again = store.put_batches([Put([ev(0)], key="k", ttl_s=60)], now=T0 + 60)[0]
    assert again == first and store.stats(now=T0)["q"]["depth"] == 1


def test_a_resend_after_its_events_ran_answers_the_first_ids_and_commits_nothing(
    store: QueueStore,
) -> None:
    (first,) = store.put_batches([Put([ev(0)], key="k", ttl_s=60)], now=T0)
    assert isinstance(first, list)
    store.lease(1, LEASE_MS, now=T0)
    store.settle(ack=first, now=T0)
    (again,) = store.put_batches([Put([ev(0)], key="k", ttl_s=60)], now=T0 + 1)
    assert again == first and leased_ids(store) == []


def test_acking_an_event_frees_the_key_of_what_it_chained(store: QueueStore) -> None:
    (source,) = put(store, [ev(0, queue="in")])
    store.lease(1, LEASE_MS, now=T0)
    chained = Put([ev(1, queue="out", key="x")], key=chained_key(source), ttl_s=600)
    (first,) = store.put_batches([chained], now=T0)
    store.settle(retry=[(source, 0, "boom", 1)], now=T0)
    (while_retried,) = store.put_batches([chained], now=T0)  # the retry chains again: once
    store.lease(1, LEASE_MS, now=T0)
    store.settle(ack=[source], now=T0)
    (after_ack,) = store.put_batches([chained], now=T0)
    assert while_retried == first and after_ack != first


def test_a_key_repeated_within_one_transaction_commits_once(store: QueueStore) -> None:
    first, again = store.put_batches([Put([ev(0)], key="k"), Put([ev(0)], key="k")], now=T0)
    assert again == first and store.stats(now=T0)["q"]["depth"] == 1


def test_a_refused_put_leaves_its_key_free_for_a_resend(store: QueueStore) -> None:
    put(store, [ev(0, limit=1)])
    (full,) = store.put_batches([Put([ev(1, limit=1)], key="k")], now=T0)
    assert isinstance(full, QueueFull)
    store.settle(ack=leased_ids(store))
    (ids,) = store.put_batches([Put([ev(1, limit=1)], key="k")], now=T0)
    assert ids == leased_ids(store)


def test_a_key_past_its_time_to_live_commits_again(store: QueueStore) -> None:
    first = store.put_batches([Put([ev(0)], key="k", ttl_s=60)], now=T0)[0]
    later = store.put_batches([Put([ev(0)], key="k", ttl_s=60)], now=T0 + 61)[0]
    assert later != first and store.stats(now=T0)["q"]["depth"] == 2


def test_only_an_event_whose_lease_ran_out_is_marked_redelivered(store: QueueStore) -> None:
    first, second = put(store, [ev(0), ev(1, key="b")])
    assert not any(i.redelivered for i in store.lease(10, LEASE_MS, now=T0))
    store.settle(retry=[(second, 0, "trap", 1)], now=T0)
    again = {i.id: i.redelivered for i in store.lease(10, LEASE_MS, now=T0 + 2)}
    assert again == {first: True, second: False}


def test_a_released_event_is_not_marked_redelivered(store: QueueStore) -> None:
    ids = put(store, [ev(0), ev(1)])
    store.lease(10, LEASE_MS, per_key=2, now=T0)
    store.settle(ack=ids[:1], release=ids[1:], now=T0)
    again = store.lease(10, LEASE_MS, now=T0 + 0.1)
    assert [(i.id, i.attempt, i.redelivered) for i in again] == [(ids[1], 1, False)]


def test_a_release_of_an_event_not_leased_keeps_its_attempts(store: QueueStore) -> None:
    (a1,) = put(store, [ev(0)])
    store.lease(1, LEASE_MS, now=T0)
    store.settle(retry=[(a1, 0, "boom", 1)], now=T0)
    store.settle(release=[a1], now=T0)  # a late release: the retry ended its lease already
    assert [(i.id, i.attempt) for i in store.lease(1, LEASE_MS, now=T0)] == [(a1, 2)]


def test_an_extended_lease_that_then_runs_out_is_redelivered(store: QueueStore) -> None:
    (a1,) = put(store, [ev(0)])
    store.lease(1, LEASE_MS, now=T0)
    store.extend([a1], LEASE_MS, now=T0 + 0.9)
    assert leased_ids(store, now=T0 + 1.9) == []
    again = store.lease(1, LEASE_MS, now=T0 + 1.901)
    assert [(i.id, i.attempt, i.redelivered) for i in again] == [(a1, 2, True)]


def _bad(**field: object) -> NewEvent:
    return NewEvent(**{**ev(9).__dict__, **field})


@pytest.mark.parametrize(
    "put",
    [
        Put([_bad(key=["a", "list"])]),  # SQLite cannot bind it
        Put([_bad(limit="100")]),  # compared with a count
        Put([_bad(received_at=float("nan"))]),  # stored as NULL in a NOT NULL column
        Put([_bad(revision=2**64)]),  # past SQLite's integers
        Put([_bad(revision="1")]),
        Put([_bad(event=None)]),
        Put([_bad(package="\ud800")]),  # a lone surrogate does not encode
        Put([_bad(key="\udcff")]),
        Put([ev(1)], key=["not", "text"]),  # type: ignore[arg-type]
        Put([ev(1)], key="k", ttl_s="soon"),  # type: ignore[arg-type]
        Put([ev(1)], ttl_s=float("inf")),
        Put(5),  # type: ignore[arg-type]
        Put(["not an event"]),  # type: ignore[list-item]
    ],
)
def test_a_put_with_a_field_of_the_wrong_type_fails_alone_in_its_commit(
    store: QueueStore, put: Put
) -> None:
    before = store.commits
    good, bad, also_good = store.put_batches([[ev(0, key="a")], put, [ev(1, key="b")]])
    assert isinstance(bad, InvalidInput)
    assert isinstance(good, list) and isinstance(also_good, list)
    assert store.commits == before + 1
    assert leased_ids(store) == good + also_good
