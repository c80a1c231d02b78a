"""Delivery promises through HTTP: idempotent senders, backpressure per tenant, order per key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from jobico.client import Client
from tests.conftest import wait_for
from tests.e2e.packages import deploy, write_package


def final_ids(client: Client, tenant: str) -> list[str]:
    return [r["event_id"] for r in client.executions(tenant=tenant, final_only=True)]


def test_a_repeated_idempotency_key_answers_the_first_ids_and_queues_nothing(
    client: Client, http: httpx.Client, tmp_path: Path
) -> None:
    tenant, path = write_package(tmp_path, "echo", schema={"type": "object"}, chain=False)
    deploy(client, http, path)
    url = f"/webhooks/{tenant}/ev"
    first = http.post(url, json={"n": 1}, headers={"Idempotency-Key": "order-7"}).json()["ids"]
    again = http.post(url, json={"n": 1}, headers={"Idempotency-Key": "order-7"}).json()["ids"]
    signed = http.post(url, json={"n": 2}, headers={"webhook-id": "msg_1"}).json()["ids"]
    resent = http.post(url, json={"n": 2}, headers={"webhook-id": "msg_1"}).json()["ids"]
    other = http.post(url, json={"n": 3}).json()["ids"]
    assert again == first and resent == signed and len({*first, *signed, *other}) == 3
    wait_for(lambda: len(final_ids(client, tenant)) == 3, what="three executions")
    assert sorted(final_ids(client, tenant)) == sorted([*first, *signed, *other])


def test_a_full_queue_answers_429_with_retry_after_and_other_tenants_go_on(
    client: Client, http: httpx.Client, tmp_path: Path
) -> None:
    slow, path = write_package(
        tmp_path / "slow",
        "loop",
        schema={"type": "object"},
        chain=False,
        limit=3,
        limits={"timeout_ms": 3000},
    )
    deploy(client, http, path)
    other, other_path = write_package(
        tmp_path / "other", "echo", schema={"type": "object"}, chain=False
    )
    deploy(client, http, other_path)
    assert http.post(f"/events/{slow}/ev", json={"data": [{"n": 1}] * 3}).status_code == 202
    full = http.post(f"/events/{slow}/ev", json={"data": [{"n": 4}]})
    assert full.status_code == 429 and int(full.headers["Retry-After"]) >= 1
    assert full.json()["error"]["code"] == "queue_full"
    [event_id] = http.post(f"/events/{other}/ev", json={"data": [{"n": 1}]}).json()["ids"]
    wait_for(lambda: event_id in final_ids(client, other), what="the other tenant's event")


def test_events_of_one_ordering_key_run_in_arrival_order(
    client: Client, http: httpx.Client, tmp_path: Path
) -> None:
    tenant, path = write_package(
        tmp_path, "echo", schema={"type": "object"}, chain=False, orderingkey="/k"
    )
    deploy(client, http, path)
    events = [{"k": "ab"[n % 2], "n": n} for n in range(40)]
    for start in range(0, 40, 8):  # several requests, so runs of one key interleave
        assert (
            http.post(f"/events/{tenant}/ev", json={"data": events[start : start + 8]}).status_code
            == 202
        )

    def forty() -> list[dict[str, Any]] | None:
        found = client.executions(tenant=tenant, final_only=True)
        return found if len(found) == 40 else None

    records = wait_for(forty, what="forty executions")
    for key in "ab":
        mine = sorted(
            (r for r in records if json.loads(r["result"])["k"] == key),
            key=lambda r: r["started_at"],
        )
        assert [json.loads(r["result"])["n"] for r in mine] == list(range("ab".index(key), 40, 2))
