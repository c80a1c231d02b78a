"""What an executor decides for a leased batch: records, acks, retries, dead letters, chaining."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from jobico.errors import NotFound, Unavailable
from jobico.execution.executor import Executor, Verdicts, runs, settle_recorded
from jobico.model import Revision, compact, load_package
from jobico.queue.events import Leased
from jobico.queue.store import QueueStore
from jobico.wasm import Sandbox
from tests.guests import wasm


def revision(guest: str, *, max_attempts: int = 3, number: int = 1) -> Revision:
    spec = load_package({
        "id": "pkg", "tenant": "t",
        "queues": [{"id": "q"}, {"id": "q_ok"}, {"id": "q_error"}],
        "jobs": [{
            "event": {"id": "ev", "supplierqueue": "q", "runtime": "rt"},
            "result": {"ok": {"id": "ev_ok", "supplierqueue": "q_ok", "runtime": "rt"},
                       "error": {"id": "ev_error", "supplierqueue": "q_error", "runtime": "rt"}},
            "retry": {"max_attempts": max_attempts, "backoff_ms": 100},
        }],
        "runtimes": [{"id": "rt", "moduleref": f"{guest}.wasm", "limits": {"timeout_ms": 200}}],
    })  # fmt: skip
    digest = hashlib.sha256(wasm(guest)).hexdigest()
    return Revision(
        tenant="t",
        package="pkg",
        number=number,
        spec=spec,
        files={f"{guest}.wasm": digest},
        created_at=time.time(),
    )


def leased(
    n: int, payload: object, *, event: str = "ev", attempt: int = 1, key: str | None = None
) -> Leased:
    return Leased(
        id=f"id{n}",
        seq=n,
        queue="q",
        event=event,
        package="pkg",
        revision=1,
        key=key,
        payload=compact(payload).encode(),
        received_at=time.time(),
        attempt=attempt,
    )


def executor(sandbox: Sandbox, rev: Revision) -> Executor:
    guest = next(iter(rev.files)).removesuffix(".wasm")

    def revisions(tenant: str, package: str, number: int) -> Revision:
        if number != rev.number:
            raise NotFound(f"no revision {number}")
        return rev

    return Executor(sandbox, revisions, lambda tenant, digest: wasm(guest), name="n/executor:0")


def run_all(ex: Executor, tenant: str, batch: list[Leased]) -> Verdicts:
    """Run a batch (or one of its `runs`) in order, in one step, as the executor's lane does
    a slice at a time."""
    run = ex.start_run(tenant, batch)
    run.step()
    return run.verdicts


def test_a_successful_event_is_recorded_acked_and_chained_to_its_ok_event(sb: Sandbox) -> None:
    verdicts = run_all(executor(sb, revision("choose")), "t", [leased(1, {"a": 1})])
    [record] = verdicts.records
    assert (record["status"], record["code"], record["final"]) == ("ok", 0, True)
    assert record["executor"] == "n/executor:0" and record["result"] == '{"a":1}'
    assert verdicts.ack == ["id1"] and not verdicts.retry and not verdicts.bury
    [put] = verdicts.chained
    [chained] = put.events
    assert (chained.event, chained.queue) == ("ev_ok", "q_ok")
    assert json.loads(chained.payload) == {"code": 0, "event": {"a": 1}, "result": '{"a":1}'}


def test_a_guest_error_code_is_an_answer_chained_to_the_error_event_never_retried(
    sb: Sandbox,
) -> None:
    verdicts = run_all(executor(sb, revision("code500")), "t", [leased(1, {})])
    assert verdicts.records[0]["status"] == "error" and verdicts.records[0]["final"]
    assert verdicts.ack == ["id1"] and not verdicts.retry
    assert [c.event for put in verdicts.chained for c in put.events] == ["ev_error"]


def test_result_events_do_not_chain_again(sb: Sandbox) -> None:
    verdicts = run_all(executor(sb, revision("code500")), "t", [leased(1, {}, event="ev_error")])
    assert verdicts.ack == ["id1"] and verdicts.chained == []


def test_a_failure_is_retried_with_backoff_and_later_events_of_its_key_wait(sb: Sandbox) -> None:
    batch = [leased(1, {"trap": 1}), leased(2, {"ok": 1}), leased(3, {"ok": 1}, key="other")]
    verdicts = run_all(executor(sb, revision("choose")), "t", batch)
    [(event_id, delay, error, attempt)] = verdicts.retry
    assert (event_id, attempt) == ("id1", 1) and 50 <= delay <= 100 and "unreachable" in error
    assert verdicts.release == ["id2"]  # same key: it must not overtake the failed one
    assert verdicts.ack == ["id3"]  # another key runs on
    assert [r["final"] for r in verdicts.records] == [False, True]


def test_the_last_attempt_of_a_failure_is_final_and_parked(sb: Sandbox) -> None:
    rev = revision("choose", max_attempts=2)
    verdicts = run_all(executor(sb, rev), "t", [leased(1, {"loop": 1}, attempt=2)])
    [record] = verdicts.records
    assert (record["status"], record["final"], record["attempt"]) == ("timeout", True, 2)
    assert [b[0] for b in verdicts.bury] == ["id1"] and not verdicts.retry


def test_an_event_whose_revision_is_gone_is_recorded_lost_and_parked(sb: Sandbox) -> None:
    item = leased(1, {})
    item = Leased(**{**item.__dict__, "revision": 9})
    verdicts = run_all(executor(sb, revision("choose")), "t", [item])
    assert (
        verdicts.records[0]["status"] == "lost" and "no revision 9" in verdicts.records[0]["error"]
    )
    assert [b[0] for b in verdicts.bury] == ["id1"]


def test_control_unavailable_is_a_failure_retried_not_a_revision_gone(sb: Sandbox) -> None:
    def unreachable(tenant: str, package: str, number: int) -> Revision:
        raise Unavailable("a Jobico actor died or is restarting")

    ex = Executor(sb, unreachable, lambda tenant, digest: b"", name="n/executor:0")
    first = run_all(ex, "t", [leased(1, {}), leased(2, {})])
    [record] = first.records  # id2 has the same key: it waits behind id1
    assert (record["status"], record["final"]) == ("unavailable", False)
    [(event_id, delay, error, attempt)] = first.retry
    assert (event_id, attempt) == ("id1", 1) and 1000 <= delay <= 2000
    assert "restarting" in error and not first.bury and first.release == ["id2"]
    last = run_all(ex, "t", [leased(1, {}, attempt=3)])
    assert last.records[0]["final"] and [b[0] for b in last.bury] == ["id1"]


def test_a_redelivered_event_recorded_final_is_settled_as_recorded_not_run_again() -> None:
    batch = [leased(n, {}) for n in range(1, 5)]
    finals = {"id1": ("ok", None), "id2": ("error", None), "id3": ("trap", "unreachable")}
    done, rest = settle_recorded(batch, finals)
    assert done.ack == ["id1", "id2"]  # answers: acked
    assert done.bury == [("id3", "unreachable", 1)]  # a final failure: a dead letter, as it was
    assert [item.id for item in rest] == ["id4"] and not done.records


def test_a_chained_event_is_put_once_when_its_source_runs_again(
    sb: Sandbox, tmp_path: Path
) -> None:
    ex, item = executor(sb, revision("choose")), leased(1, {"a": 1})
    first, again = run_all(ex, "t", [item]), run_all(ex, "t", [item])  # died before the ack
    with QueueStore(tmp_path / "q.db") as store:
        [ids], [same] = store.put_batches(first.chained), store.put_batches(again.chained)
        assert ids == same
        assert store.stats()["q_ok"]["depth"] == 1
        store.settle(ack=["id1"])  # the source is done: it cannot run again, so its key goes
        [other] = store.put_batches(first.chained)
        assert other != ids


def test_a_batch_is_cut_into_one_run_per_key_each_in_arrival_order() -> None:
    batch = [leased(1, {}, key="a"), leased(2, {}, key="b"), leased(3, {}, key="a")]
    assert [[i.id for i in run] for run in runs(batch)] == [["id1", "id3"], ["id2"]]


def test_verdicts_of_runs_merge_into_the_batchs(sb: Sandbox) -> None:
    ex = executor(sb, revision("choose"))
    parts = [
        run_all(ex, "t", run)
        for run in runs([leased(1, {"a": 1}, key="x"), leased(2, {"trap": 1}, key="y")])
    ]
    whole = Verdicts.merge(parts)
    assert whole.ack == ["id1"] and [r[0] for r in whole.retry] == ["id2"]
    assert len(whole.records) == 2


def test_a_run_stepped_a_slice_at_a_time_decides_as_the_whole_batch_does(sb: Sandbox) -> None:
    """A zero slice runs one event per step; the verdicts are those of one uninterrupted run,
    and a retried failure still releases the rest of its key."""
    ex = executor(sb, revision("choose"))
    ok = {"ok": 1}
    batch = [leased(1, ok), leased(2, {"trap": 1}), leased(3, ok), leased(4, ok, key="k")]
    whole = run_all(ex, "t", batch)
    run, steps = ex.start_run("t", batch), 1
    while not run.step(0.0):
        steps += 1
    assert steps == 3  # id1; id2; id3 released unrun and id4 in the same step
    assert (
        (run.verdicts.ack, run.verdicts.release)
        == (whole.ack, whole.release)
        == (
            ["id1", "id4"],
            ["id3"],
        )
    )
    assert [r["status"] for r in run.verdicts.records] == ["ok", "trap", "ok"]
