"""Hostile guests on a real platform (issue 5): one tenant's attacks each end as their own
failure with their figures in the record, its runtimes serve their next events, and a
well-behaved tenant's events all succeed meanwhile."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from jobico.client import Client
from jobico.errors import FileInvalid, PackageInvalid
from tests.conftest import wait_for
from tests.e2e.packages import deploy, wait_routed, write_package
from tests.guests import wasm
from tests.platform import Jobico

MiB = 1 << 20
PAGE = 65536
AFTER = {"after": 1}  # echoed by the hostile guest: the runtime still works
# (event, expected status) in the order they run, one at a time on the attack queue
ATTACKS = [
    ({"loop": 1}, "timeout"),
    ({"recurse": 1}, "trap"),
    ({"grow": 1}, "out_of_memory"),
    ({"huge": 1}, "result_too_large"),
    ({"flood": 1}, "logs_too_large"),
    ({"outside": 1}, "invalid_result"),
    ({"vast": 1}, "invalid_result"),
]


def hostile_package(folder: Path, tenant: str, **extra_limits: int) -> Path:
    """Two runtimes of one tenant: the hostile jobicolet and a WASI command flooding stdout or
    stderr; no retries, so each attack leaves exactly one record."""
    folder.mkdir(parents=True, exist_ok=True)
    for guest in ("hostile", "wasi_flood"):
        (folder / f"{guest}.wasm").write_bytes(wasm(guest))
    limits = {"timeout_ms": 300, "memory_mb": 8, **extra_limits}
    # The floods end on their output limits, not on time: 1024 writes of 1 KiB can take more
    # than 300 ms on a loaded 2-core machine, which once recorded the stdout flood as timeout.
    flood_limits = {**limits, "timeout_ms": max(limits["timeout_ms"], 10_000)}

    def job(event: str, runtime: str) -> dict[str, Any]:
        return {
            "event": {"id": event, "supplierqueue": event, "runtime": runtime},
            "retry": {"max_attempts": 1, "backoff_ms": 10},
        }

    package = {
        "id": "attacks",
        "tenant": tenant,
        "queues": [{"id": "attack"}, {"id": "wasiflood"}],
        "jobs": [job("attack", "hostile"), job("wasiflood", "flood")],
        "runtimes": [
            {"id": "hostile", "moduleref": "hostile.wasm", "limits": limits},
            {"id": "flood", "moduleref": "wasi_flood.wasm", "kind": "wasi", "limits": flood_limits},
        ],
    }
    path = folder / "package.yaml"
    path.write_text(yaml.safe_dump(package, sort_keys=False))
    return path


def finals(client: Any, tenant: str, ids: list[str]) -> list[dict[str, Any]] | None:
    found = {r["event_id"]: r for r in client.executions(tenant=tenant, final_only=True)}
    return [found[i] for i in ids] if all(i in found for i in ids) else None


def post(http: Any, tenant: str, event: str, data: list[Any]) -> list[str]:
    answer = http.post(f"/events/{tenant}/{event}", json={"data": data})
    assert answer.status_code == 202, answer.text
    return list(answer.json()["ids"])


def test_hostile_guests_fail_alone_while_a_neighbour_runs_normally(
    jobico: Jobico, client: Client, http: httpx.Client, tmp_path: Path
) -> None:
    hostile = f"evil{uuid.uuid4().hex[:8]}"
    deploy_path = hostile_package(tmp_path / "evil", hostile)
    rev = client.deploy(deploy_path)
    wait_routed(http, hostile, "attack")
    good, good_path = write_package(tmp_path / "good", "echo", chain=False)
    deploy(client, http, good_path)
    assert rev.tenant == hostile

    attack_events = [event for attack, _ in ATTACKS for event in (attack, AFTER)]
    attack_ids = post(http, hostile, "attack", attack_events)
    flood_ids = post(http, hostile, "wasiflood", [{"err": 1}, {}, {"out": 1}, {}])
    person = {"firstName": "ann", "lastName": "lee"}
    good_ids = [i for n in range(10) for i in post(http, good, "ev", [{**person, "age": n}] * 3)]

    attacks = wait_for(lambda: finals(client, hostile, attack_ids), timeout=60, what="attacks")
    floods = wait_for(lambda: finals(client, hostile, flood_ids), timeout=60, what="floods")
    goods = wait_for(lambda: finals(client, good, good_ids), timeout=60, what="good records")

    expected = [status for _, status in ATTACKS for status in (status, "ok")]
    assert [r["status"] for r in attacks] == expected, [r["error"] for r in attacks]
    after = attacks[1::2]
    assert all(r["result"] == json.dumps(AFTER, separators=(",", ":")) for r in after)
    assert all(r["memory_bytes"] == PAGE and r["fuel_used"] > 0 for r in after)
    by_status = {r["status"]: r for r in attacks[0::2]}
    assert by_status["timeout"]["fuel_used"] is None and by_status["timeout"]["duration_ms"] >= 300
    assert "call stack exhausted" in by_status["trap"]["error"]
    assert by_status["out_of_memory"]["memory_bytes"] == 8 * MiB
    assert by_status["result_too_large"]["memory_bytes"] == 33 * PAGE
    flood = by_status["logs_too_large"]
    assert len(flood["logs"]) == 257 and flood["fuel_used"] > 0  # 256 KiB of lines, a note

    assert [r["status"] for r in floods] == ["logs_too_large", "ok", "result_too_large", "ok"]
    assert [r["result"] for r in floods[1::2]] == ["fine", "fine"]

    assert [r["status"] for r in goods] == ["ok"] * 30
    assert all(r["attempt"] == 1 for r in goods)

    # The figures reach `jobico executions --json` as they are in the records.
    lines = jobico("executions", "--tenant", hostile, "--status", "out_of_memory", "--json").stdout
    [shown] = [json.loads(line) for line in lines.splitlines()]
    assert (shown["memory_bytes"], shown["status"]) == (8 * MiB, "out_of_memory")
    assert shown["fuel_used"] == by_status["out_of_memory"]["fuel_used"] > 0


def test_limits_above_the_maximum_and_foreign_imports_are_refused_at_deploy(
    client: Client, tmp_path: Path
) -> None:
    tenant = f"evil{uuid.uuid4().hex[:8]}"
    greedy = hostile_package(tmp_path / "greedy", tenant, timeout_ms=3_600_000)
    with pytest.raises(PackageInvalid) as refused:
        client.deploy(greedy)
    assert refused.value.message == (
        "runtimes[0].limits.timeout_ms: 3600000 is above this platform's maximum of 60000"
    )

    _, foreign = write_package(tmp_path / "foreign", "import_memory", tenant=tenant)
    with pytest.raises(FileInvalid) as refused_file:
        client.deploy(foreign)
    assert refused_file.value.message.startswith("import_memory.wasm: imports 'env.memory'")
