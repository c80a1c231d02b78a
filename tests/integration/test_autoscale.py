"""Executors scale with the backlog: from the minimum to the maximum while events wait, back to
the minimum once the queues are idle; `jobico status` shows it as it happens."""

from __future__ import annotations

import json
import time

import pytest
import ray

from jobico import platform
from jobico.actors import queue as queue_actor
from jobico.client import Client
from jobico.queue import NewEvent
from tests.conftest import wait_for
from tests.e2e.packages import write_package

EVENTS, KEYS = 3000, 30


@pytest.fixture
def scaling(settings, ray_address):
    """A platform that scales between 1 and 3 executors, one per 10 waiting events, and lets
    one go after a second below that."""
    quick = settings.with_(
        executors_min=1, executors_max=3, backlog_per_executor=10, executors_idle_s=1.0
    )
    platform.up(quick, ray_address, listener=False)
    yield quick
    platform.down(quick, ray_address)


def running(settings) -> int:
    return int(platform.status(settings)["scaling"]["running"])


def test_executors_scale_up_to_the_maximum_under_backlog_and_down_when_idle(
    scaling, ray_address, tmp_path
):
    tenant, path = write_package(
        tmp_path, "sleeper", schema={"type": "object"}, chain=False, orderingkey="/k"
    )
    Client(scaling, address=ray_address).deploy(path)
    assert running(scaling) == 1
    events = [
        NewEvent(queue="q", event="ev", package="pkg", revision=1, key=f"k{n % KEYS}",
                 payload=json.dumps({"k": f"k{n % KEYS}"}).encode(), received_at=time.time())
        for n in range(EVENTS)
    ]  # fmt: skip
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
        return q.get("depth") == 0 and q.get("in_flight") == 0

    wait_for(drained, timeout=60, what="the backlog to drain")
    idle = time.monotonic()
    wait_for(lambda: running(scaling) == 1, timeout=30, what="back to one executor")
    print(f"\nscale-up to 3: {up_s:.1f} s; back to 1 after idle: {time.monotonic() - idle:.1f} s")
