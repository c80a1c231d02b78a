"""Guests on a real platform (issue 17): Rust SDK guests whose free traps after the answer, and
a hostile deploy whose start code never ends, refused at its bound while control answers other
tenants' calls."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobico.client import Client
from jobico.errors import FileInvalid
from tests.conftest import wait_for
from tests.e2e.packages import deploy, write_package

PERSON = {"firstName": "ann", "lastName": "lee"}
DEPLOY_CHECK_S = 5.0  # the platform's default JOBICO_DEPLOY_CHECK_S


def finals(client: Any, tenant: str, ids: list[str]) -> list[dict[str, Any]] | None:
    found = {r["event_id"]: r for r in client.executions(tenant=tenant, final_only=True)}
    return [found[i] for i in ids] if all(i in found for i in ids) else None


def platform_lines(record: dict[str, Any]) -> list[str]:
    return [
        line["message"]
        for line in record["logs"]
        if line["level"] == 2 and line["message"].startswith("[jobico]")
    ]


@pytest.mark.parametrize(
    ("guest", "answer"),
    [
        ("free_traps", lambda event: "1"),  # events its instance served: rebuilt each time
        ("same_address", lambda event: json.dumps(event, separators=(",", ":"), sort_keys=True)),
    ],
)
def test_a_rust_sdk_guest_whose_free_traps_after_the_answer_runs_ok(
    client: Client, http: httpx.Client, tmp_path: Path, guest: str, answer: Callable[[object], str]
) -> None:
    tenant, path = write_package(tmp_path / guest, guest, chain=False, max_attempts=3)
    deploy(client, http, path)
    events = [{**PERSON, "age": n} for n in range(3)]
    reply = http.post(f"/events/{tenant}/ev", json={"data": events})
    assert reply.status_code == 202, reply.text
    ids = reply.json()["ids"]

    records = wait_for(lambda: finals(client, tenant, ids), timeout=60, what="final records")
    assert [(r["status"], r["code"]) for r in records] == [("ok", 0)] * 3, records
    assert [r["result"] for r in records] == [answer(e) for e in events]
    assert all(len(platform_lines(r)) == 1 for r in records)
    assert "free trapped after the answer" in platform_lines(records[0])[0]
    # Not a failure, so never retried: one attempt each.
    every = client.executions(tenant=tenant)
    assert sorted(r["event_id"] for r in every) == sorted(ids)
    assert all(r["attempt"] == 1 for r in every)


def test_a_deploy_whose_start_code_never_ends_is_refused_while_control_answers_others(
    client: Client, http: httpx.Client, tmp_path: Path
) -> None:
    other, other_path = write_package(tmp_path / "other", "echo", chain=False)
    deploy(client, http, other_path)
    _, hostile_path = write_package(
        tmp_path / "hostile", "start_random", chain=False, tenant=f"evil{uuid.uuid4().hex[:8]}"
    )
    client.packages(other)  # warm: the first call may pay for a connection

    outcome: dict[str, Any] = {}

    def hostile_deploy() -> None:
        t0 = time.monotonic()
        try:
            client.deploy(hostile_path)
        except FileInvalid as e:
            outcome["refused"] = e.message
        outcome["took"] = time.monotonic() - t0

    thread = threading.Thread(target=hostile_deploy)
    thread.start()
    waits = []
    while thread.is_alive():
        t0 = time.monotonic()
        listed = client.packages(other)
        waits.append(time.monotonic() - t0)
        assert [p["package"] for p in listed] == ["pkg"]
    thread.join()

    assert "start code" in outcome.get("refused", ""), outcome
    assert outcome["refused"].startswith("start_random.wasm: ")
    assert DEPLOY_CHECK_S - 1 < outcome["took"] < DEPLOY_CHECK_S + 4, outcome
    assert len(waits) > 3 and max(waits) < 2.0, waits
