"""What an executor decides for a leased batch: run each event, record it, and settle it.

Plain Python over the sandbox: an executor's lane (`jobico.execution.lane`) leases, runs each
run of a batch (`Executor.start_run`), then applies the verdicts (chained events, records,
acks, retries, dead letters) in that order, so an event is acknowledged only once its record and
its follow-ups are stored.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jobico import jsonpointer
from jobico.errors import JobicoError, Unavailable
from jobico.model import Event, Job, Retry, Revision, compact
from jobico.queue.events import Leased, NewEvent, Put, chained_key
from jobico.wasm import Outcome, Sandbox
from jobico.wasm.outcome import ERROR, OK

RevisionLookup = Callable[[str, str, int], Revision]  # (tenant, package, number)
ModuleLoader = Callable[[str, str], bytes]  # (tenant, digest)

LOST = "lost"  # the event's package revision or event is gone: nothing can ever run it
UNAVAILABLE = "unavailable"  # its revision could not be looked up just now (control down)
# An unavailable control is retried like any failure, but the job's own retry policy is in the
# revision that could not be fetched: the default one, waiting longer, since control coming
# back (an actor restart, a long call ahead of ours) takes seconds rather than milliseconds.
UNAVAILABLE_RETRY = Retry(backoff_ms=2_000)
# How long a chained put's key is kept at most. It is deleted when its source event is acked,
# after which the source can no longer run again; this only bounds a key left behind.
CHAIN_KEY_TTL_S = 86_400.0


@dataclass
class Verdicts:
    """Everything a batch's execution asks of the queue and the recorder."""

    records: list[dict[str, Any]] = field(default_factory=list)
    ack: list[str] = field(default_factory=list)
    retry: list[tuple[str, int, str, int]] = field(default_factory=list)  # id, delay, error, try
    bury: list[tuple[str, str, int]] = field(default_factory=list)  # id, error, attempt
    release: list[str] = field(default_factory=list)
    chained: list[Put] = field(default_factory=list)  # keyed by their source event's id

    @classmethod
    def merge(cls, parts: list[Verdicts]) -> Verdicts:
        """One batch's verdicts from those of its runs."""
        whole = cls()
        for part in parts:
            for name in ("records", "ack", "retry", "bury", "release", "chained"):
                getattr(whole, name).extend(getattr(part, name))
        return whole


def runs(batch: list[Leased]) -> list[list[Leased]]:
    """A leased batch cut into its runs, one per ordering key, each in arrival order: runs of
    different keys may run side by side, the events of one run only one after another."""
    by_key: dict[tuple[str, str | None], list[Leased]] = {}
    for item in batch:
        by_key.setdefault((item.queue, item.key), []).append(item)
    return list(by_key.values())


class Run:
    """Events run in order, a time slice at a time, so a long run can give its thread to other
    tenants between slices (`jobico.execution.fairshare`). After a failure that will be retried, the
    rest of its key is released unrun, so nothing overtakes it."""

    def __init__(self, executor: Executor, tenant: str, items: list[Leased]) -> None:
        self._executor, self._tenant, self._items = executor, tenant, items
        self._next = 0
        self._blocked: set[tuple[str, str | None]] = set()  # keys whose event must retry first
        self.verdicts = Verdicts()

    @property
    def done(self) -> bool:
        return self._next >= len(self._items)

    def step(self, slice_s: float = math.inf) -> bool:
        """Run events until `slice_s` seconds are used (at least one event); True when done."""
        deadline = time.monotonic() + slice_s
        while not self.done:
            item = self._items[self._next]
            self._next += 1
            if (item.queue, item.key) in self._blocked:
                self.verdicts.release.append(item.id)
                continue
            if not self._executor._run_one(self._tenant, item, self.verdicts):
                self._blocked.add((item.queue, item.key))
            if time.monotonic() >= deadline:
                break
        return self.done


class Executor:
    def __init__(
        self, sandbox: Sandbox, revisions: RevisionLookup, modules: ModuleLoader, *, name: str
    ) -> None:
        self._sandbox, self._revisions, self._modules, self.name = sandbox, revisions, modules, name

    def start_run(self, tenant: str, items: list[Leased]) -> Run:
        return Run(self, tenant, items)

    def _run_one(self, tenant: str, item: Leased, out: Verdicts) -> bool:
        """Run one event; False when it failed and will be retried (its key must wait)."""
        try:
            rev = self._revisions(tenant, item.package, item.revision)
            job, event = _find(rev, item.event)
        except Unavailable as e:  # control did not answer: the revision may well exist
            return self._unavailable(tenant, item, e, out)
        except (JobicoError, KeyError) as e:  # its package revision is gone: nothing can run it
            why = f"cannot run: {getattr(e, 'message', None) or e!r}"
            out.records.append(self._record(tenant, item, _unrun(LOST, why), final=True))
            out.bury.append((item.id, why, item.attempt))
            return True
        outcome = self._execute(tenant, rev, event, item.payload)
        final = not outcome.failed or item.attempt >= job.retry.max_attempts
        out.records.append(self._record(tenant, item, outcome, final))
        if not outcome.failed:
            out.ack.append(item.id)
            out.chained += _chain(job, item, outcome)
        elif final:
            out.bury.append((item.id, outcome.error or outcome.status, item.attempt))
        else:
            delay = _backoff(job.retry.backoff_ms, item.attempt)
            out.retry.append((item.id, delay, outcome.error or outcome.status, item.attempt))
            return False
        return True

    def _unavailable(self, tenant: str, item: Leased, e: Unavailable, out: Verdicts) -> bool:
        why = f"cannot look up its package revision: {e.message}"
        final = item.attempt >= UNAVAILABLE_RETRY.max_attempts
        out.records.append(self._record(tenant, item, _unrun(UNAVAILABLE, why), final))
        if final:
            out.bury.append((item.id, why, item.attempt))
            return True
        delay = _backoff(UNAVAILABLE_RETRY.backoff_ms, item.attempt)
        out.retry.append((item.id, delay, why, item.attempt))
        return False

    def _execute(self, tenant: str, rev: Revision, event: Event, payload: bytes) -> Outcome:
        runtime = rev.spec.runtime(event.runtime)
        digest = rev.files[runtime.moduleref]
        return self._sandbox.run(
            digest=digest,
            load=lambda: self._modules(tenant, digest),
            kind=runtime.kind,
            mainfunc=runtime.mainfuncname,
            limits=runtime.limits,
            event=payload,
            owner=f"{tenant}/{rev.package}/{rev.number}/{runtime.id}",
        )

    def _record(self, tenant: str, item: Leased, o: Outcome, final: bool) -> dict[str, Any]:
        return {
            "tenant": tenant, "package": item.package, "revision": item.revision,
            "queue": item.queue, "event": item.event, "event_id": item.id,
            "attempt": item.attempt, "status": o.status, "code": o.code, "result": o.result,
            "logs": [line.to_dict() for line in o.logs], "error": o.error,
            "received_at": item.received_at, "started_at": o.started_at,
            "finished_at": o.finished_at, "duration_ms": o.duration_ms,
            "fuel_used": o.fuel_used, "memory_bytes": o.memory_bytes,
            "executor": self.name, "final": final,
        }  # fmt: skip


def settle_recorded(
    batch: list[Leased], finals: Mapping[str, tuple[str, str | None]]
) -> tuple[Verdicts, list[Leased]]:
    """Verdicts for the events of `batch` that have a final record (`finals`: event id to its
    status and error), and the events still to run.

    Such an event was redelivered: its executor died after recording it, before settling. It
    is not run again, and is settled as its record says: an answer (ok, error) acked, a final
    failure parked as a dead letter, as it would have been."""
    done, rest = Verdicts(), []
    for item in batch:
        if item.id not in finals:
            rest.append(item)
            continue
        status, error = finals[item.id]
        if status in (OK, ERROR):
            done.ack.append(item.id)
        else:
            done.bury.append((item.id, error or status, item.attempt))
    return done, rest


def _find(rev: Revision, event_id: str) -> tuple[Job, Event]:
    for job, event in rev.spec.all_events():
        if event.id == event_id:
            return job, event
    raise KeyError(f"revision {rev.number} of {rev.package!r} has no event {event_id!r}")


def _chain(job: Job, item: Leased, outcome: Outcome) -> list[Put]:
    """Code 0 goes on to the job's `ok` event, any other code to its `error` event. The put is
    keyed by the source event's id: if the source runs again (its executor died after the
    put), the queue answers the first put's id rather than enqueueing a second event."""
    if item.event != job.event.id:  # result events are ends: an ok or error handler's answer
        return []  # chained again would bounce between the two handlers without end
    target = job.result and (job.result.ok if outcome.code == 0 else job.result.error)
    if not target:
        return []
    body = {"event": json.loads(item.payload), "code": outcome.code, "result": outcome.result}
    key = None
    if target.orderingkey is not None:
        try:
            key = compact(jsonpointer.resolve(body, target.orderingkey))
        except KeyError:
            key = None  # the result does not carry the key: order it with the whole queue
    chained = NewEvent(
        queue=target.supplierqueue, event=target.id, package=item.package,
        revision=item.revision, key=key, received_at=time.time(),
        # Accepted once already: a full result queue must not make the batch run again.
        limit=sys.maxsize,
        payload=compact(body).encode(),
    )  # fmt: skip
    return [Put([chained], key=chained_key(item.id), ttl_s=CHAIN_KEY_TTL_S)]


def _backoff(base_ms: int, attempt: int) -> int:
    """Exponential backoff with jitter, so retries of many events do not arrive together."""
    return int(base_ms * 2 ** (attempt - 1) * random.uniform(0.5, 1.0))


def _unrun(status: str, why: str) -> Outcome:
    now = time.time()
    return Outcome(
        status=status,
        code=None,
        result=None,
        logs=(),
        error=why,
        started_at=now,
        finished_at=now,
        duration_ms=0.0,
        fuel_used=None,
        memory_bytes=0,
    )
