"""The data-plane actors on a real Ray: queues, executors under the supervisor, the recorder."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import ray

from jobico import platform
from jobico.actors import cluster
from jobico.actors import queue as queue_actor
from jobico.actors.supervisor import executor_name
from jobico.client import Client
from jobico.config import Settings
from jobico.model import compact
from jobico.queue.events import NewEvent
from jobico.queue.localputs import socket_path
from jobico.serve.listener import ActorBackend
from tests.conftest import EXAMPLE, wait_for

JOHN = {"age": 50, "firstName": "john", "lastName": "connor"}


def event(n: int = 0, *, name: str = "evgo", queue: str = "queue-default") -> NewEvent:
    return NewEvent(
        queue=queue,
        event=name,
        package="go-demo-job",
        revision=1,
        key=None,
        payload=compact({**JOHN, "age": n}).encode(),
        received_at=time.time(),
    )


def stored(**changes: object) -> dict[str, object]:
    """An execution record as an executor hands it to the recorder."""
    record = {
        "tenant": "solo", "package": "p", "revision": 1, "queue": "q", "event": "e",
        "event_id": "01TEST", "attempt": 1, "status": "ok", "code": 0, "result": "{}",
        "logs": [], "error": None, "received_at": 1.0, "started_at": 2.0, "finished_at": 3.0,
        "duration_ms": 1000.0, "fuel_used": None, "memory_bytes": None, "executor": "x",
        "final": True,
    }  # fmt: skip
    return {**record, **changes}


@pytest.fixture
def client(running: Settings, ray_address: str) -> Client:
    c = Client(running, address=ray_address)
    c.deploy(EXAMPLE / "package.yaml")
    return c


def final_records(client: Client, **filters: Any) -> list[dict[str, Any]]:
    return client.executions(tenant="demogo", final_only=True, **filters)


def test_events_put_into_a_queue_run_and_chain_their_ok_event(
    client: Client, running: Settings
) -> None:
    queue = queue_actor.handle(running, "demogo")
    [event_id] = ray.get(queue.put.remote([event(50)]))
    [record] = wait_for(lambda: final_records(client, event_id=event_id), what="the record")
    assert (record["status"], record["result"]) == ("ok", compact(JOHN))
    assert record["executor"].endswith(executor_name(0))
    wait_for(lambda: final_records(client, event="evgo_ok"), what="the chained ok event")


def unhurried_queue(settings: Settings, tenant: str) -> Any:
    """A queue actor whose waiting leases look again only every minute on their own: a lease
    answered within seconds was woken. (A Ray actor handle: untyped.)"""
    return ray.remote(queue_actor.QueueActor).remote(settings, tenant, recheck_s=60.0)


def test_a_waiting_lease_is_woken_by_a_put(running: Settings) -> None:
    queue = unhurried_queue(running, "demogo-lease")
    waiting = queue.lease.remote(10, 30_000, 1, 30.0)
    ray.get(queue.put.remote([event()]))
    [leased] = ray.get(waiting, timeout=10)
    assert leased.attempt == 1


def test_a_waiting_lease_is_woken_when_settling_frees_the_key(running: Settings) -> None:
    # An unkeyed queue is one key: its next event is ready only once the last one is settled.
    queue = unhurried_queue(running, "demogo-settle")
    first, second = ray.get(queue.put.remote([event(1), event(2)]))
    [leased] = ray.get(queue.lease.remote(10, 30_000, 1))
    assert leased.id == first
    waiting = queue.lease.remote(10, 30_000, 1, 30.0)
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(waiting, timeout=0.5)  # the key is busy: nothing to lease yet
    ray.get(queue.settle.remote([first], [], [], []))
    [after] = ray.get(waiting, timeout=10)
    assert after.id == second


def test_concurrent_puts_all_commit_with_distinct_ids_in_arrival_order(
    running: Settings,
) -> None:
    queue = queue_actor.handle(running, "demogo-many")
    ids = [i for batch in ray.get([queue.put.remote([event(n)]) for n in range(50)]) for i in batch]
    assert len(set(ids)) == 50
    leased = ray.get(queue.lease.remote(100, 30_000, 100))
    assert sorted(item.id for item in leased) == [item.id for item in leased] == sorted(ids)


def test_the_listener_puts_over_the_local_socket_and_again_after_the_queue_restarts(
    running: Settings,
) -> None:
    backend = ActorBackend(running)
    queue = queue_actor.handle(running, "demogo-local")

    async def put(n: int) -> list[str]:
        return await backend.enqueue("demogo-local", [event(n)], None)

    async def scenario() -> list[str]:
        first = await put(1)
        assert backend.sends_locally("demogo-local")
        ray.kill(queue, no_restart=False)  # its socket closes; Ray starts it again
        second = await put(2)
        assert backend.sends_locally("demogo-local")  # connected to the restarted actor
        return first + second

    def lease() -> list[str] | None:
        try:
            return [item.id for item in ray.get(queue.lease.remote(10, 30_000, 10))]
        except ray.exceptions.ActorUnavailableError:  # this handle's first call since the restart
            return None

    ids = asyncio.run(scenario())
    assert wait_for(lease, what="the restarted queue to answer") == ids
    # `down` removes registered tenants' sockets; this queue is nobody's
    socket_path(running.home, running.namespace, "demogo-local").unlink()


def test_the_recorder_answers_an_add_only_once_the_records_are_on_disk(
    running: Settings,
) -> None:
    recorder = cluster.actor(cluster.RECORDER, running)
    ray.get([recorder.add.remote([stored(attempt=n)]) for n in (1, 2)])
    files = list(Path(running.records_uri).glob("tenant=solo/date=*/*.parquet"))
    assert files, "add returned before anything was written"
    rows = ray.get(recorder.internal_records.remote(tenant="solo"))
    assert [r["attempt"] for r in rows] == [1, 2]


def test_the_recorder_merges_a_tenants_small_files_after_its_writes(
    running: Settings,
) -> None:
    recorder = cluster.actor(cluster.RECORDER, running)
    partition = Path(running.records_uri) / "tenant=many"
    adds = 70  # one file each, past the recorder's 64 small files a partition
    for n in range(adds):  # one at a time: concurrent adds would share a file
        ray.get(recorder.add.remote([stored(tenant="many", event_id=f"01MANY{n:03}")]))

    def merged() -> bool:
        return any(p.name.startswith("compact-") for p in partition.rglob("*.parquet"))

    wait_for(merged, what="the tenant's small files merged")
    assert len(list(partition.rglob("*.parquet"))) < adds
    assert len(ray.get(recorder.internal_records.remote(tenant="many"))) == adds


def test_a_killed_executor_comes_back_and_runs_new_events(
    client: Client, running: Settings
) -> None:
    ray.kill(cluster.actor(executor_name(0), running), no_restart=False)
    queue = queue_actor.handle(running, "demogo")
    [event_id] = ray.get(queue.put.remote([event(7)]))
    wait_for(
        lambda: final_records(client, event_id=event_id),
        timeout=60,
        what="the restarted executor to run the event",
    )


def test_status_reports_queues_and_executors(client: Client, running: Settings) -> None:
    queue = queue_actor.handle(running, "demogo")
    ray.get(queue.put.remote([event(1)]))
    report = wait_for(
        lambda: (r := platform.status(running))["queues"].get("demogo") and r,
        what="the supervisor to see the queue",
    )
    assert report["components"]["control"] == "ok"
    assert set(report["queues"]["demogo"]["queue-default"]) >= {
        "depth",
        "in_flight",
        "dead",
        "oldest_age_s",
    }
    assert [e["name"] for e in report["executors"]] == [executor_name(0)]


def test_draining_stops_executors_without_losing_leased_events(
    client: Client, running: Settings
) -> None:
    supervisor = cluster.actor(cluster.SUPERVISOR, running)
    queue = queue_actor.handle(running, "demogo")
    ids = [i for batch in ray.get([queue.put.remote([event(n)]) for n in range(20)]) for i in batch]
    ray.get(supervisor.stop.remote())
    ray.get(supervisor.start.remote())
    wait_for(
        lambda: {r["event_id"] for r in final_records(client, event="evgo")} >= set(ids),
        timeout=60,
        what="every event to run once an executor is back",
    )
