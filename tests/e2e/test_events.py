"""Events through the real listener (HTTP on Serve) to real executors and Parquet records."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from jobico.client import Client
from tests.conftest import wait_for
from tests.e2e.packages import deploy, write_package
from tests.platform import Jobico

JOHN = {"firstName": "john", "lastName": "connor", "age": 50}


def records(client: Client, tenant: str, **filters: Any) -> list[dict[str, Any]]:
    return client.executions(tenant=tenant, **filters)


def final(client: Client, tenant: str, event_id: str) -> dict[str, Any] | None:
    found = [r for r in records(client, tenant, event_id=event_id) if r["final"]]
    return found[0] if found else None


def test_a_posted_event_runs_once_and_its_ok_event_is_enqueued(
    client: Client, http: httpx.Client, tmp_path: Path
) -> None:
    tenant, path = write_package(tmp_path, "echo")
    deploy(client, http, path)
    answer = http.post(f"/events/{tenant}/ev", json={"data": [JOHN]})
    assert answer.status_code == 202, answer.text
    [event_id] = answer.json()["ids"]
    record = wait_for(lambda: final(client, tenant, event_id), what="the record")
    assert (record["status"], record["code"], record["attempt"]) == ("ok", 0, 1)
    assert record["result"] == '{"age":50,"firstName":"john","lastName":"connor"}'
    assert [(log["level"], log["message"]) for log in record["logs"]] == [(6, record["result"])]
    assert (record["package"], record["revision"], record["queue"]) == ("pkg", 1, "q")
    assert record["received_at"] <= record["started_at"] <= record["finished_at"]
    chained = wait_for(lambda: records(client, tenant, event="ev_ok"), what="the ok event")
    assert json.loads(chained[0]["result"]) == {
        "code": 0,
        "event": JOHN,
        "result": record["result"],
    }


def test_a_guest_error_code_is_recorded_and_goes_to_the_error_event(
    client: Client, http: httpx.Client, tmp_path: Path
) -> None:
    tenant, path = write_package(tmp_path, "code500", max_attempts=3)
    deploy(client, http, path)
    [event_id] = http.post(f"/webhooks/{tenant}/ev", json=JOHN).json()["ids"]
    record = wait_for(lambda: final(client, tenant, event_id), what="the record")
    assert (record["status"], record["code"], record["result"]) == ("error", 500, "bad request")
    assert record["attempt"] == 1  # a guest's answer is never retried
    assert [log["level"] for log in record["logs"]] == [3]
    wait_for(lambda: records(client, tenant, event="ev_error"), what="the error event")


def test_a_batch_runs_in_order(client: Client, http: httpx.Client, tmp_path: Path) -> None:
    tenant, path = write_package(tmp_path, "echo")
    deploy(client, http, path)
    batch = [{**JOHN, "age": n} for n in range(5)]
    ids = http.post(f"/events/{tenant}/ev", json={"data": batch}).json()["ids"]
    assert len(ids) == 5

    def five() -> list[dict[str, Any]] | None:
        found = records(client, tenant, event="ev")
        return found if len(found) == 5 else None

    done = wait_for(five, what="five records")
    by_start = sorted(done, key=lambda r: r["started_at"])
    assert [r["event_id"] for r in by_start] == ids
    assert [json.loads(r["result"])["age"] for r in by_start] == list(range(5))


def test_bad_requests_are_refused_and_nothing_is_enqueued(
    client: Client, http: httpx.Client, tmp_path: Path
) -> None:
    tenant, path = write_package(tmp_path, "echo")
    deploy(client, http, path)
    invalid = http.post(f"/events/{tenant}/ev", json={"data": [JOHN, {"firstName": 1}]})
    assert invalid.status_code == 422
    assert invalid.json()["error"]["index"] == 1
    assert http.post(f"/events/{tenant}/ev", content=b"{nope").status_code == 400
    assert http.post(f"/events/{tenant}/ev", json={"data": []}).status_code == 400
    assert http.post(f"/events/{tenant}/ev", json={}).status_code == 400
    assert http.post(f"/events/{tenant}/nope", json={"data": [JOHN]}).status_code == 404
    assert http.post("/events/nobody/ev", json={"data": [JOHN]}).status_code == 404
    # A valid event afterwards is the only one that ever runs.
    [event_id] = http.post(f"/events/{tenant}/ev", json={"data": [JOHN]}).json()["ids"]
    wait_for(lambda: final(client, tenant, event_id), what="the valid event's record")
    assert [r["event_id"] for r in records(client, tenant, event="ev")] == [event_id]


def test_schema_changes_reach_the_listener_without_a_restart(
    client: Client, http: httpx.Client, tmp_path: Path
) -> None:
    tenant, path = write_package(tmp_path, "echo")
    deploy(client, http, path)
    old_shape, new_shape = {"data": [JOHN]}, {"data": [{"id": 7}]}
    url = f"/events/{tenant}/ev"
    wait_for(lambda: http.post(url, json=old_shape).status_code == 202, what="the first deploy")
    assert http.post(url, json=new_shape).status_code == 422

    (tmp_path / "schema.json").write_text(json.dumps({"type": "object", "required": ["id"]}))
    client.deploy(path, update=True)
    wait_for(lambda: http.post(url, json=new_shape).status_code == 202, what="the new schema")
    assert http.post(url, json=old_shape).status_code == 422

    client.rollback(tenant, "pkg")
    wait_for(lambda: http.post(url, json=old_shape).status_code == 202, what="the rollback")
    client.delete(tenant, "pkg")
    wait_for(lambda: http.post(url, json=old_shape).status_code == 404, what="the delete")


def test_a_trap_and_an_endless_loop_are_failures_and_the_next_event_succeeds(
    client: Client, http: httpx.Client, tmp_path: Path
) -> None:
    tenant, path = write_package(
        tmp_path, "choose", schema={"type": "object"}, limits={"timeout_ms": 300}
    )
    deploy(client, http, path)
    events = [{"trap": 1}, {"ok": 1}, {"loop": 1}, {"ok": 2}]
    ids = http.post(f"/events/{tenant}/ev", json={"data": events}).json()["ids"]
    outcomes = [wait_for(partial(final, client, tenant, i), what=f"record of {i}") for i in ids]
    assert [r["status"] for r in outcomes] == ["trap", "ok", "timeout", "ok"]
    assert "unreachable" in outcomes[0]["error"]
    assert outcomes[2]["duration_ms"] >= 300
    assert outcomes[3]["result"] == '{"ok":2}'


def test_failures_are_retried_then_parked_and_can_be_replayed_or_dropped(
    jobico: Jobico, client: Client, http: httpx.Client, tmp_path: Path
) -> None:
    tenant, path = write_package(tmp_path, "choose", schema={"type": "object"}, max_attempts=2)
    deploy(client, http, path)
    [event_id] = http.post(f"/events/{tenant}/ev", json={"data": [{"trap": 1}]}).json()["ids"]
    record = wait_for(lambda: final(client, tenant, event_id), what="the last attempt")
    assert (record["status"], record["attempt"]) == ("trap", 2)
    attempts = records(client, tenant, event_id=event_id)
    assert [(r["attempt"], r["final"]) for r in attempts] == [(1, False), (2, True)]

    def parked() -> list[dict[str, Any]]:
        out = jobico("deadletters", "--tenant", tenant, "--json").stdout
        return [json.loads(line) for line in out.splitlines()]

    [letter] = wait_for(parked, what="the dead letter")
    assert (letter["id"], letter["attempts"]) == (event_id, 2) and "unreachable" in letter["error"]
    assert "replayed 1 event" in jobico("replay", tenant, event_id).stdout
    wait_for(lambda: len(records(client, tenant, event_id=event_id)) == 3, what="the replay")
    wait_for(parked, what="the replayed event to be parked again")
    assert "dropped 1 event" in jobico("drop", tenant, "--all").stdout
    assert parked() == []
    unknown = jobico("replay", tenant, "nope", check=False)
    assert unknown.returncode == 3


def test_events_accepted_before_down_all_run_after_up(
    jobico: Jobico, client: Client, http: httpx.Client, tmp_path: Path
) -> None:
    tenant, path = write_package(
        tmp_path, "loop", schema={"type": "object"}, limits={"timeout_ms": 100}
    )
    deploy(client, http, path)
    ids = http.post(f"/events/{tenant}/ev", json={"data": [{"n": n} for n in range(60)]}).json()[
        "ids"
    ]
    jobico("down")
    jobico("up")
    from jobico.actors import cluster
    from jobico.client import Client

    cluster.disconnect()  # the old Ray is gone; attach to the new one
    fresh = Client(client.settings)
    done = wait_for(
        lambda: (
            {r["event_id"] for r in fresh.executions(tenant=tenant, final_only=True)} >= set(ids)
        ),
        timeout=120,
        what="every accepted event to run",
    )
    assert done
