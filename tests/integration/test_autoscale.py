"""Executors scale with the backlog: from the minimum to the maximum while events wait, back to
the minimum once the queues are idle; `jobico status` shows it as it happens."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from jobico import platform
from jobico.actors import queue as queue_actor
from jobico.cli import render
from jobico.client import Client
from jobico.config import Settings
from jobico.execution.autoscale import node_cpus
from jobico.queue.events import NewEvent
from tests.conftest import wait_for
from tests.e2e.packages import write_package

EVENTS, KEYS = 3000, 30


@pytest.fixture
def scaling(settings: Settings, ray_address: str) -> Iterator[Settings]:
    """A platform that scales between 1 and 3 executors, one per 10 waiting events, and lets
    one go after a second below that."""
    quick = settings.with_(
        executors_min=1, executors_max=3, backlog_per_executor=10, executors_idle_s=1.0
    )
    platform.up(quick, ray_address, listener=False)
    yield quick
    platform.down(quick, ray_address)


def keyed_events(count: int, *, keys: int) -> list[NewEvent]:
    """`count` events of the test packages' queue, spread over `keys` ordering keys."""
    return [
        NewEvent(queue="q", event="ev", package="pkg", revision=1, key=f"k{n % keys}",
                 payload=json.dumps({"k": f"k{n % keys}"}).encode(), received_at=time.time())
        for n in range(count)
    ]  # fmt: skip


def running(settings: Settings) -> int:
    return int(platform.status(settings)["scaling"]["running"])


def test_executors_scale_up_to_the_maximum_under_backlog_and_down_when_idle(
    scaling: Settings, ray_address: str, tmp_path: Path
) -> None:
    tenant, path = write_package(
        tmp_path, "sleeper", schema={"type": "object"}, chain=False, orderingkey="/k"
    )
    Client(scaling, address=ray_address).deploy(path)
    assert running(scaling) == 1
    events = keyed_events(EVENTS, keys=KEYS)
    queue = queue_actor.handle(scaling, tenant)
    started = time.monotonic()
    ray.get(queue.put.remote(events))

    wait_for(lambda: running(scaling) == 3, timeout=30, what="three executors")
    up_s = time.monotonic() - started
    report = platform.status(scaling)
    assert report["scaling"]["maximum"] == 3 and report["components"]["executors"] == "ok"
    assert len(report["executors"]) == 3

    def drained() -> bool:
        q = platform.status(scaling)["queues"].get(tenant, {}).get("q", {})
        return bool(q.get("depth") == 0 and q.get("in_flight") == 0)

    wait_for(drained, timeout=60, what="the backlog to drain")
    idle = time.monotonic()
    wait_for(lambda: running(scaling) == 1, timeout=30, what="back to one executor")
    print(f"\nscale-up to 3: {up_s:.1f} s; back to 1 after idle: {time.monotonic() - idle:.1f} s")


def test_a_backlog_of_guests_that_compute_gets_no_executor_where_their_cpus_are_busy(
    settings: Settings, ray_address: str, tmp_path: Path
) -> None:
    # Thresholds this machine reaches with one executor's guest threads spinning, however
    # many cores it has: another executor here would add threads, not CPU. The guests' share
    # is set low: at nice 19 they get only what the rest of the machine leaves them.
    cpus = node_cpus()  # as the executors count them
    spinning = min(settings.guest_threads, cpus) / cpus
    held = settings.with_(
        executors_min=1, executors_max=2, backlog_per_executor=10,
        executors_busy_cpu=0.5 * spinning, executors_guest_share=0.05,
    )  # fmt: skip
    platform.up(held, ray_address, listener=False)
    try:
        tenant, path = write_package(
            tmp_path, "spin", schema={"type": "object"}, chain=False, orderingkey="/k"
        )
        Client(held, address=ray_address).deploy(path)
        events = keyed_events(3000, keys=3000)
        ray.get(queue_actor.handle(held, tenant).put.remote(events))

        def scaling() -> dict[str, Any]:
            report: dict[str, Any] = platform.status(held)["scaling"]
            return report

        wait_for(lambda: scaling()["held"], timeout=30, what="the scale-up held back")
        # Held tick after tick while the backlog lasts, never started meanwhile.
        for _ in range(3):
            backlog = scaling()["backlog"]

            def ticked(before: object = backlog) -> bool:
                return bool(scaling()["backlog"] != before)

            wait_for(ticked, timeout=10, what="a tick")
            report = scaling()
            assert report["held"] and report["running"] == 1, report
        assert "no more: guests keep the node's CPUs busy" in render.render_status(
            platform.status(held)
        )
    finally:
        platform.down(held, ray_address)
