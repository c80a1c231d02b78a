"""Guest threads shared between tenants: tenants take turns, however deep one's backlog, and a
tenant with nothing running gets a thread at once."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from functools import partial

import pytest

from jobico.execution.fairshare import FairPool
from tests.conftest import wait_for


def hold(started: threading.Event, gate: threading.Event) -> Callable[[], bool]:
    """A job that says it has started, then holds its thread until `gate` opens (5 s at most)."""

    def job() -> bool:
        started.set()
        return gate.wait(5)

    return job


def test_without_surge_a_tenant_behind_a_flood_waits_only_for_the_job_already_running() -> None:
    pool = FairPool(1, surge=0)
    gate, started = threading.Event(), threading.Event()
    order: list[str] = []

    pool.submit("flood", hold(started, gate))
    started.wait(5)  # the only thread is busy: everything below queues
    flood = [pool.submit("flood", partial(order.append, f"flood{i}")) for i in range(20)]
    late = pool.submit("quiet", lambda: order.append("quiet"))
    gate.set()
    late.result(5)
    for f in flood:
        f.result(5)
    pool.close()
    assert order[:3] == ["flood0", "quiet", "flood1"]  # its turn comes next, not after 20


def test_tenants_with_backlogs_alternate_and_each_keeps_its_own_order() -> None:
    pool = FairPool(1, surge=0)
    gate, started = threading.Event(), threading.Event()
    order: list[tuple[str, int]] = []
    pool.submit("a", hold(started, gate))
    started.wait(5)
    jobs = [pool.submit(t, partial(order.append, (t, i))) for i in range(3) for t in "ab"]
    gate.set()
    for job in jobs:
        job.result(5)
    pool.close()
    assert order == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]


def test_a_tenant_with_nothing_running_gets_a_surge_thread_while_a_flood_holds_every_thread() -> (
    None
):
    pool = FairPool(1, surge=1)
    gate, started = threading.Event(), threading.Event()
    pool.submit("flood", hold(started, gate))
    started.wait(5)
    flood = [pool.submit("flood", lambda: None) for _ in range(5)]
    assert pool.submit("quiet", lambda: "ran").result(5) == "ran"  # the flood still holds
    assert not any(job.done() for job in flood)  # the flood did not take the surge thread
    gate.set()
    pool.close()


def test_a_burst_of_one_tenants_jobs_never_starts_surge_threads_for_itself() -> None:
    """Its later jobs come before the threads woken for its first ones have taken them. It
    looked quiet then (nothing running yet), and part of a flood ran on surge threads, at
    their higher priority."""
    for _ in range(20):
        pool = FairPool(4, surge=4)
        gate = threading.Event()
        burst = [pool.submit("flood", gate.wait) for _ in range(16)]
        assert sum(t.name == "guest_surge" for t in threading.enumerate()) == 0
        gate.set()
        for job in burst:
            job.result(5)
        pool.close()


def test_surge_threads_are_capped_and_end_when_they_find_no_work() -> None:
    pool = FairPool(1, surge=1)
    gates = [threading.Event(), threading.Event()]
    started = [threading.Event(), threading.Event()]
    for i, tenant in enumerate(("flood", "quiet")):
        pool.submit(tenant, hold(started[i], gates[i]))
        started[i].wait(5)
    third = pool.submit("third", lambda: "ran")  # the one surge thread is taken: it waits
    assert not third.done()
    gates[1].set()
    assert third.result(5) == "ran"

    def surge_threads() -> int:
        return sum(t.name == "guest_surge" for t in threading.enumerate())

    wait_for(lambda: surge_threads() == 0, timeout=5, what="the surge thread to end")
    gates[0].set()
    pool.close()


def test_a_free_thread_takes_the_tenant_with_the_fewest_jobs_running() -> None:
    pool = FairPool(2, surge=0)
    gates = {t: threading.Event() for t in "ab"}
    started = {t: threading.Event() for t in "ab"}
    for t in "ab":
        pool.submit(t, hold(started[t], gates[t]))
        started[t].wait(5)
    order: list[str] = []
    jobs = [pool.submit(t, partial(order.append, t)) for t in ("a", "a", "c")]
    gates["b"].set()  # frees a thread: "a" is first in turn but has one running, "c" none
    jobs[2].result(5)
    gates["a"].set()
    for job in jobs:
        job.result(5)
    pool.close()
    assert order[0] == "c"


def test_a_jobs_error_reaches_its_submitter_and_the_thread_lives_on() -> None:
    pool = FairPool(1)

    def boom() -> None:
        raise ValueError("guest host bug")

    with pytest.raises(ValueError, match="guest host bug"):
        pool.submit("t", boom).result(5)
    assert pool.submit("t", lambda: 42).result(5) == 42
    pool.close()


def test_jobs_run_side_by_side_on_several_threads() -> None:
    pool = FairPool(3)
    barrier = threading.Barrier(3, timeout=5)  # passes only if three jobs run at once
    jobs = [pool.submit(t, barrier.wait) for t in ("a", "a", "b")]
    assert sorted(job.result(5) for job in jobs) == [0, 1, 2]
    pool.close()


def test_the_pool_counts_the_cpu_its_jobs_use_and_not_their_waits() -> None:
    def compute(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    pool = FairPool(2)
    pool.submit("a", lambda: compute(0.05)).result(5)
    pool.submit("b", lambda: threading.Event().wait(0.2)).result(5)  # waits, no CPU
    pool.close()  # every job's time is counted once its thread is done
    assert 0.05 <= pool.cpu_s < 0.15


def test_a_closed_pool_finishes_what_was_submitted_and_refuses_more() -> None:
    pool = FairPool(2)
    jobs = [pool.submit("t", partial(int, i)) for i in range(10)]
    pool.close()
    assert [job.result(0) for job in jobs] == list(range(10))
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit("t", lambda: 0)
    assert pool.waiting() == {}


def test_threads_run_at_the_cpu_priority_asked_for() -> None:
    pool = FairPool(2, nice=19)
    niceness = {
        pool.submit("t", lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result(
            5
        )
        for _ in range(10)
    }
    pool.close()
    assert niceness == {19}


def test_a_surge_thread_runs_at_its_own_priority_above_the_floods() -> None:
    pool = FairPool(1, surge=1, nice=19, surge_nice=10)
    gate, started = threading.Event(), threading.Event()

    def own_niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def flood_job() -> int:
        hold(started, gate)()
        return own_niceness()

    flood = pool.submit("flood", flood_job)
    started.wait(5)
    assert pool.submit("quiet", own_niceness).result(5) == 10  # on the surge thread
    gate.set()
    assert flood.result(5) == 19
    pool.close()
