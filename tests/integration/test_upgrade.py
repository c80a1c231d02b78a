"""Upgrades keep every event: a JOBICO_HOME written by the version before issue 19's queue
changes keeps working when this version starts on it.

The home is `tests/fixtures/home-v1.tar.gz`, made once by `tests/fixtures/make_home_v1.py`
with that version's code; `home-v1.json` names what it holds. It is unpacked and started with
`up` (the integration tier's: on the session's Ray, without the listener), once for the module.
"""

from __future__ import annotations

import json
import sqlite3
import tarfile
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from jobico import platform
from jobico.actors import cluster
from jobico.client import Client
from jobico.config import Settings
from tests.conftest import wait_for

FIXTURES = Path(__file__).parents[1] / "fixtures"
# The delayed retry was due 30-60 minutes after the fixture was made, long past by now: it is
# set due this long after `up` starts (which takes about 7 s here), so that the executors are
# running well before it is due and the test sees it wait for its time, then run.
DUE_IN_S = 15.0


@dataclass(frozen=True)
class Upgraded:
    settings: Settings
    held: dict[str, Any]  # home-v1.json: what the old home held
    due: float  # when the delayed retry is due
    admin: Client  # by the admin token the old `up` wrote under the home
    tenant: Client  # by the tenant's token issued by the old version

    @property
    def name(self) -> str:
        return str(self.held["tenant"])

    def records(self, event_id: str) -> list[dict[str, Any]]:
        return self.tenant.executions(tenant=self.name, event_id=event_id)


def unpack(into: Path) -> tuple[Path, dict[str, Any]]:
    with tarfile.open(FIXTURES / "home-v1.tar.gz") as tar:
        tar.extractall(into, filter="data")
    return into / "home", json.loads((FIXTURES / "home-v1.json").read_text())


def make_due(home: Path, held: dict[str, Any], due: float) -> None:
    """The delayed retry due at `due`, written in the old version's own queue file."""
    [event_id] = held["delayed"]
    with closing(sqlite3.connect(home / "queues" / f"{held['tenant']}.db")) as conn, conn:
        changed = conn.execute(
            "UPDATE events SET not_before = ? WHERE id = ? AND not_before > ?",
            (due, event_id, held["built_at"]),
        ).rowcount
    assert changed == 1, "the fixture's delayed retry is not waiting for its time"


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory, ray_address: str) -> Iterator[Upgraded]:
    home, held = unpack(tmp_path_factory.mktemp("upgrade"))
    due = time.time() + DUE_IN_S
    make_due(home, held, due)
    settings = Settings(home=home, namespace=f"jobico-{uuid.uuid4().hex[:8]}")
    platform.up(settings, ray_address, listener=False)
    try:
        admin = Client(settings, address=ray_address)
        tenant = Client(settings, address=ray_address, token=held["token"])
        yield Upgraded(settings, held, due, admin, tenant)
    finally:
        platform.down(settings, ray_address)


def test_every_waiting_and_in_flight_event_of_the_old_home_runs_with_one_final_record(
    upgraded: Upgraded,
) -> None:
    expected = upgraded.held["waiting"] + upgraded.held["in_flight"]

    def finals() -> dict[str, list[dict[str, Any]]] | None:
        every = {i: [r for r in upgraded.records(i) if r["final"]] for i in expected}
        return every if all(every.values()) else None

    every = wait_for(finals, timeout=60, what="the old home's waiting events to run")
    assert {i: [(r["status"], r["attempt"]) for r in rs] for i, rs in every.items()} == {
        **{i: [("ok", 1)] for i in upgraded.held["waiting"]},
        # leased once by the old version and never settled: its lease ran out
        **{i: [("ok", 2)] for i in upgraded.held["in_flight"]},
    }


def test_the_old_homes_delayed_retry_runs_once_due_and_not_before(upgraded: Upgraded) -> None:
    [event_id] = upgraded.held["delayed"]

    def second_attempt() -> dict[str, Any] | None:
        return next((r for r in upgraded.records(event_id) if r["attempt"] == 2), None)

    record = wait_for(second_attempt, timeout=60, what="the delayed retry to run")
    assert record["started_at"] >= upgraded.due
    assert (record["status"], record["final"]) == ("trap", True)  # its last allowed attempt


def test_the_old_homes_dead_letters_are_listed_and_replay(upgraded: Upgraded) -> None:
    [event_id] = upgraded.held["dead"]
    listed = {d["id"]: d for d in upgraded.tenant.dead_letters(upgraded.name)}
    assert (listed[event_id]["event"], listed[event_id]["attempts"]) == ("doomed", 1)
    assert upgraded.tenant.replay(upgraded.name, [event_id]) == 1
    wait_for(
        lambda: [r for r in upgraded.records(event_id) if r["attempt"] == 2],
        timeout=60,
        what="the replayed dead letter to run",
    )


def test_the_old_homes_records_token_and_secret_still_answer(upgraded: Upgraded) -> None:
    held = upgraded.held
    for event_id in held["ran"]:
        assert [(r["status"], r["final"]) for r in upgraded.records(event_id)] == [("ok", True)]
    first = [r for r in upgraded.records(held["delayed"][0]) if r["attempt"] == 1]
    assert [(r["status"], r["final"]) for r in first] == [("trap", False)]  # the old version's
    assert upgraded.tenant.whoami()["tenant"] == held["tenant"]
    assert upgraded.admin.whoami()["tenant"] is None
    secret = held["secret"]
    names = [s["name"] for s in upgraded.tenant.secrets(held["tenant"])]
    assert names == [secret["name"]]
    control = cluster.actor(cluster.CONTROL, upgraded.settings)
    ingest = cluster.call(control.ingest_config.remote(held["tenant"]))  # what a listener gets
    assert ingest["secrets"] == {secret["name"]: [secret["value"]]}
