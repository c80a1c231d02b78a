"""Guests in child processes: the same outcomes as in-process, modules sent once, and a child
that dies or stops answering costs one event at most, never the caller."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobico.model import Limits
from jobico.wasm import Defaults
from jobico.wasm import processes as processes_module
from jobico.wasm.processes import GuestProcess, GuestProcesses, SandboxConfig
from jobico.wasm.sandbox import GuestCall
from tests.guests import wasm

CONFIG = SandboxConfig(defaults=Defaults(), maxima=Limits(), cache_dir=None)
CHOOSE = wasm("choose")
DIGEST = hashlib.sha256(CHOOSE).hexdigest()


def call(event: bytes, *, stop: bool = False, timeout_ms: int = 200) -> GuestCall:
    return GuestCall(
        digest=DIGEST, kind="jobicolet", mainfunc="event", limits=Limits(timeout_ms=timeout_ms),
        event=event, owner="t/pkg/1/rt", stop_on_failure=stop,
    )  # fmt: skip


class Loads:
    """A module loader that counts its calls."""

    def __init__(self, data: bytes = CHOOSE) -> None:
        self.data, self.count = data, 0

    def __call__(self, digest: str) -> bytes:
        assert digest == DIGEST
        self.count += 1
        return self.data


@pytest.fixture
def proc() -> Iterator[GuestProcess]:
    p = GuestProcess(CONFIG)
    yield p
    p.close()


def wait_until(condition, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_a_guest_process_answers_each_event_in_order_and_loads_a_module_once(proc):
    loads = Loads()
    first = proc.run_many([call(b'{"a":1}'), call(b'{"b":2}')], loads)
    second = proc.run_many([call(b'{"c":3}')], loads)
    assert [(o.status, o.result) for o in first + second] == [
        ("ok", '{"a":1}'),
        ("ok", '{"b":2}'),
        ("ok", '{"c":3}'),
    ]
    assert loads.count == 1  # the child keeps the compiled module


def test_a_new_process_takes_a_compiled_module_from_the_disk_cache(tmp_path: Path):
    config = SandboxConfig(defaults=Defaults(), maxima=Limits(), cache_dir=tmp_path)
    first, second, loads = GuestProcess(config), GuestProcess(config), Loads()
    try:
        assert first.run_many([call(b'{"a":1}')], loads)[0].status == "ok"
        assert second.run_many([call(b'{"a":1}')], loads)[0].status == "ok"
    finally:
        first.close()
        second.close()
    assert loads.count == 1


def test_a_slice_ends_after_its_time_or_at_a_failure_to_be_retried(proc):
    loads = Loads()
    ok, trap = b'{"ok":1}', b'{"trap":1}'
    assert len(proc.run_many([call(ok), call(ok), call(ok)], loads, slice_s=0.0)) == 1
    stopped = proc.run_many([call(ok), call(trap, stop=True), call(ok)], loads)
    assert [o.status for o in stopped] == ["ok", "trap"]
    went_on = proc.run_many([call(ok), call(trap), call(ok)], loads)
    assert [o.status for o in went_on] == ["ok", "trap", "ok"]


def test_an_unknown_runtime_kind_is_the_callers_error_raised_and_the_process_lives_on(proc):
    bad = GuestCall(digest=DIGEST, kind="elf", mainfunc="event", limits=Limits(), event=b"{}")
    with pytest.raises(RuntimeError, match="unknown runtime kind 'elf'"):
        proc.run_many([bad], Loads())
    assert proc.run_many([call(b'{"a":1}')], Loads())[0].status == "ok"


def test_a_process_that_stops_answering_is_killed_its_event_fails_and_the_next_runs(
    proc, monkeypatch
):
    monkeypatch.setattr(processes_module, "GRACE_S", 0.2)
    loads = Loads()
    proc.run_many([call(b'{"a":1}')], loads)  # started and serving
    wedged = proc.pid
    os.kill(wedged, signal.SIGSTOP)
    [outcome] = proc.run_many([call(b'{"a":1}', timeout_ms=100)], loads)
    assert outcome.status == "timeout" and "did not answer" in (outcome.error or "")
    assert proc.pid != wedged
    assert proc.run_many([call(b'{"b":2}')], loads)[0].result == '{"b":2}'


def test_when_a_process_stops_answering_a_request_of_many_only_its_first_event_runs_again(
    proc, monkeypatch
):
    """Which event wedged it is unknown: the first runs alone in a new process, and the rest
    come in later requests (the caller's next step)."""
    monkeypatch.setattr(processes_module, "GRACE_S", 0.2)
    proc.run_many([call(b'{"a":1}')], Loads())
    os.kill(proc.pid, signal.SIGSTOP)
    outcomes = proc.run_many([call(b'{"a":1}', timeout_ms=100), call(b'{"b":2}')], Loads())
    assert [(o.status, o.result) for o in outcomes] == [("ok", '{"a":1}')]


def test_a_process_that_died_between_requests_is_replaced_without_failing_an_event(proc):
    proc.run_many([call(b'{"a":1}')], Loads())
    dead = proc.pid
    os.kill(dead, signal.SIGKILL)
    wait_until(lambda: proc._proc.poll() is not None)
    [outcome] = proc.run_many([call(b'{"a":1}')], Loads())
    assert outcome.status == "ok" and proc.pid != dead


def test_a_guest_runs_in_a_process_at_the_priority_of_the_thread_that_hands_it_work():
    pool = GuestProcesses(CONFIG, start={19: 1})
    seen: dict[str, int] = {}

    def at_nice_19() -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        pool.run_many([call(b'{"a":1}')], Loads())
        [pid] = pool.pids()
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, pid)

    try:
        thread = threading.Thread(target=at_nice_19)
        thread.start()
        thread.join()
        assert seen == {"nice": 19}  # the one started at 19 was used, no other was started
    finally:
        pool.close()


def test_closed_guest_processes_exit_and_refuse_work():
    pool = GuestProcesses(CONFIG, start={0: 2})
    procs = list(pool._all)
    pool.close()
    assert [p._proc.wait(timeout=10) for p in procs] == [0, 0]
    with pytest.raises(RuntimeError, match="closed"):
        pool.run_many([call(b"{}")], Loads())


def test_a_guest_process_ends_when_the_process_that_started_it_dies(tmp_path: Path):
    script = (
        "import os, sys\n"
        "from jobico.model import Limits\n"
        "from jobico.wasm import Defaults\n"
        "from jobico.wasm.processes import GuestProcess, SandboxConfig\n"
        "p = GuestProcess(SandboxConfig(Defaults(), Limits(), None))\n"
        "print(p.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    child = int(out.stdout.strip())
    wait_until(lambda: not Path(f"/proc/{child}").exists() or _zombie(child))


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_guest_process_gets_none_of_the_executors_settings_or_tokens(monkeypatch):
    monkeypatch.setenv("JOBICO_TOKEN", "jbk_secret")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "secret")
    p = GuestProcess(CONFIG)
    try:
        environ = Path(f"/proc/{p.pid}/environ").read_bytes().split(b"\0")
    finally:
        p.close()
    names = {entry.split(b"=", 1)[0] for entry in environ if entry}
    assert b"PYTHONPATH" in names
    assert not {n for n in names if n.startswith((b"JOBICO_", b"RAY_"))}
