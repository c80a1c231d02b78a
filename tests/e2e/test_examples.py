"""Every shipped example (examples/*/package.yaml) on the real platform: deployed as a user
deploys it (under a tenant of its own), an event posted over HTTP, its record read back field by
field; then the chained result event, whose record must match what `jobico run-local` answers."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobico.cli.runlocal import run_local
from jobico.model import compact
from tests.conftest import ROOT, wait_for
from tests.e2e.packages import wait_routed

JOHN = {"firstName": "john", "lastName": "connor", "age": 50}
JOHN_FAILING = {**JOHN, "fail": True}
DEBUG, INFO, WARN, ERROR, NONE = 0, 1, 2, 3, 6


@dataclass(frozen=True)
class Answer:
    """What an example's runtime answers an event with, as the record shows it."""

    event: dict[str, Any]
    status: str
    code: int
    result: str
    logs: list[tuple[int, str]]


@dataclass(frozen=True)
class Example:
    name: str  # its directory
    package: str  # the package id in its package.yaml
    event: str  # the job's event id
    queue: str  # its supplier queue
    answers: list[Answer] = field(default_factory=list)


def _size(event: dict[str, Any]) -> int:
    return len(compact(event).encode())


EXAMPLES = [
    Example(
        "greet",
        "go-demo-job",
        "evgo",
        "queue-default",
        [Answer(JOHN, "ok", 0, compact(JOHN), [(NONE, compact(JOHN))])],
    ),
    Example(
        "c-echo",
        "c-echo",
        "evc",
        "queue-echo",
        [
            Answer(JOHN, "ok", 0, compact(JOHN), [(NONE, compact(JOHN))]),
            Answer(
                JOHN_FAILING,
                "error",
                500,
                "asked to fail",
                [
                    (NONE, compact(JOHN_FAILING)),
                    (ERROR, 'c-echo: the event asks to fail ("fail": true); answering 500'),
                ],
            ),
        ],
    ),
    Example(
        "rust-greet",
        "rust-greet",
        "evrust",
        "queue-greet",
        [Answer(JOHN, "ok", 0, "Hello john connor", [(INFO, "rust-greet: greeting john connor")])],
    ),
    Example(
        "zig-echo",
        "zig-echo",
        "evzig",
        "queue-echo",
        [
            Answer(JOHN, "ok", 0, compact(JOHN), [(INFO, f"zig-echo: {_size(JOHN)} bytes")]),
            Answer(
                JOHN_FAILING,
                "error",
                500,
                "asked to fail",
                [
                    (INFO, f"zig-echo: {_size(JOHN_FAILING)} bytes"),
                    (ERROR, 'zig-echo: the event asks to fail ("fail": true); answering 500'),
                ],
            ),
        ],
    ),
    Example(
        "wasi-echo",
        "wasi-echo",
        "evwasi",
        "queue-echo",
        [
            Answer(JOHN, "ok", 0, compact(JOHN), [(NONE, f"wasi-echo: read {_size(JOHN)} bytes")]),
            Answer(
                JOHN_FAILING,
                "error",
                3,
                "asked to fail",
                [
                    (NONE, f"wasi-echo: read {_size(JOHN_FAILING)} bytes"),
                    (NONE, 'wasi-echo: the event asks to fail ("fail": true); exit status 3'),
                ],
            ),
        ],
    ),
]


def test_every_example_directory_has_a_case_here() -> None:
    shipped = {p.parent.name for p in (ROOT / "examples").glob("*/package.yaml")}
    assert shipped == {example.name for example in EXAMPLES}


def deploy_example(client: Any, http: Any, example: Example, folder: Path) -> str:
    """Deploy a copy of the example under a tenant of its own, so that no other test's
    deploy of the same example collides with it; wait until the listener routes its event."""
    shutil.copytree(ROOT / "examples" / example.name, folder)
    path = folder / "package.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["tenant"] = f"{spec['tenant']}-{uuid.uuid4().hex[:8]}"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    rev = client.deploy(path)
    wait_routed(http, rev.tenant, example.event)
    return str(rev.tenant)


def final_records(client: Any, tenant: str, **filters: str) -> list[dict[str, Any]]:
    return [r for r in client.executions(tenant=tenant, **filters) if r["final"]]


def the_record(client: Any, tenant: str, event_id: str) -> dict[str, Any]:
    found = wait_for(
        lambda: final_records(client, tenant, event_id=event_id), timeout=60, what=event_id
    )
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_the_example_answers_a_posted_event_and_its_chained_result_event(
    client: Any, http: Any, tmp_path: Path, example: Example
) -> None:
    tenant = deploy_example(client, http, example, tmp_path / example.name)
    events = [answer.event for answer in example.answers]
    posted = http.post(f"/events/{tenant}/{example.event}", json={"data": events})
    assert posted.status_code == 202, posted.text
    for answer, event_id in zip(example.answers, posted.json()["ids"], strict=True):
        record = the_record(client, tenant, event_id)
        where = {k: record[k] for k in ("tenant", "package", "revision", "queue", "event")}
        assert where == {
            "tenant": tenant,
            "package": example.package,
            "revision": 1,
            "queue": example.queue,
            "event": example.event,
        }
        assert (record["event_id"], record["attempt"]) == (event_id, 1)
        assert (record["status"], record["code"], record["error"]) == (
            answer.status,
            answer.code,
            None,
        )
        assert record["result"] == answer.result
        assert [(log["level"], log["message"]) for log in record["logs"]] == answer.logs
        assert record["received_at"] <= record["started_at"] <= record["finished_at"]
        assert record["fuel_used"] > 0 and record["memory_bytes"] > 0
        assert record["executor"]
        check_the_chained_event(client, tenant, example, answer, record)


def check_the_chained_event(
    client: Any, tenant: str, example: Example, answer: Answer, record: dict[str, Any]
) -> None:
    """The result event (`<event>_ok` or `_error`) ran on its own queue and answered what
    `jobico run-local` answers for the same payload."""
    suffix = "ok" if answer.status == "ok" else "error"
    chained = f"{example.event}_{suffix}"
    records = wait_for(
        lambda: final_records(client, tenant, event=chained), timeout=60, what=chained
    )
    # Both answers of an example chain to different events; one of each is expected.
    [found] = records
    assert (found["queue"], found["attempt"]) == (f"{example.queue}_{suffix}", 1)
    payload = {"code": answer.code, "event": answer.event, "result": record["result"]}
    rt = yaml.safe_load((ROOT / "examples" / example.name / "package.yaml").read_text())
    runtime = rt["runtimes"][0]
    local = run_local(
        ROOT / "examples" / example.name / runtime["moduleref"],
        compact(payload).encode(),
        kind=runtime.get("kind", "jobicolet"),
        mainfunc=runtime.get("mainfuncname", "event"),
    )
    assert (found["status"], found["code"], found["result"]) == (
        local.status,
        local.code,
        local.result,
    )
    assert [(log["level"], log["message"]) for log in found["logs"]] == [
        (line.level, line.message) for line in local.logs
    ]
