"""Guests in processes of their own: a Sandbox in a child process per guest thread.

Why not threads in the executor: wasmtime lets go of the GIL while wasm runs, but a guest thread
takes it back between its many calls into wasmtime, and on a node whose cores are full the
thread holding it may not be running at all (guests run at nice 19). The executor's event loop
shares that GIL: beside a CPU-bound flood it woke up to 131 ms late while using 8 % of a core,
and every tenant's leases, records and acks waited with it. In a child process a guest holds
only its own GIL, its CPU priority is a plain process priority, and a guest that crashes or
wedges wasmtime takes down a child that is started again, never the executor.

A request carries a slice of a run's events (`GuestCall`s) and comes back with the Outcomes of
a prefix of them, so a pipe round trip is paid per slice, not per event. Module bytes stay in
the parent's hands: a child that has a digest neither in memory nor in the on-disk cache of
compiled modules asks for it, and the parent loads it (from the repository) and sends it once.

Plain Python, no Ray: `GuestProcesses` stands where a `Sandbox` would (`run_many`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from jobico.model import Limits
from jobico.wasm.outcome import TIMEOUT, TRAP, Defaults, Outcome
from jobico.wasm.sandbox import GuestCall, ModuleLoader, Sandbox, budget

log = logging.getLogger(__name__)

# Beyond the sum of its events' timeouts, how long a child may take to answer before it is
# taken for wedged and killed: the guest's own timeout (epoch interruption) fires long before.
GRACE_S = 5.0
READY = b"ready"  # a child's first message: its Sandbox is built


@dataclass(frozen=True)
class SandboxConfig:
    """What a child builds its Sandbox from (pickled to it at start)."""

    defaults: Defaults
    maxima: Limits
    cache_dir: Path | None


class _Died(Exception):
    """The child ended, or was killed for not answering, while it held a request."""

    def __init__(self, status: str, error: str) -> None:
        super().__init__(error)
        self.status, self.error = status, error


class GuestProcess:
    """One child process running a Sandbox; one request at a time (the caller's thread)."""

    def __init__(self, config: SandboxConfig, nice: int | None = None) -> None:
        self._config, self._nice = config, nice
        self._greeting = threading.Lock()
        self._start()

    def _start(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self._proc = subprocess.Popen(  # our own module, no shell
            [
                sys.executable,
                "-m",
                "jobico.guestproc",
                "-" if self._nice is None else str(self._nice),
                str(to_child_r),
                str(from_child_w),
            ],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            env=_child_env(),
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._to = Connection(to_child_w, readable=False)
        self._from = Connection(from_child_r, writable=False)
        self._to.send_bytes(pickle.dumps(self._config))
        self._ready = False

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Return once the child has built its Sandbox (started, it imports wasmtime first)."""
        with self._greeting:  # the executor's start-up and a first request may both ask
            if self._ready:
                return
            try:
                if not self._from.poll(timeout_s) or self._from.recv_bytes() != READY:
                    raise OSError("no greeting")
            except (EOFError, OSError) as e:
                code = self._proc.poll()
                state = "still starting" if code is None else _ended(code)
                raise RuntimeError(f"guest process {self.pid} did not start ({state})") from e
            self._ready = True

    @property
    def pid(self) -> int:
        return self._proc.pid

    def run_many(
        self, calls: Sequence[GuestCall], load: ModuleLoader, slice_s: float = math.inf
    ) -> list[Outcome]:
        """As `Sandbox.run_many`. A child that dies or wedges on the way is started again; the
        event it was running is a failure (status `trap`, or `timeout` when it stopped
        answering), and every other event of the request runs as if nothing happened."""
        if not calls:
            return []
        if self._proc.poll() is not None:  # ended since the last request: no event's doing
            self._restart()
        try:
            return self._request(calls, load, slice_s)
        except _Died as died:
            self._restart()
            if len(calls) > 1:
                # Which event it was is unknown: the first alone, in the new child, tells.
                return self.run_many(calls[:1], load, slice_s)
            log.warning("guest process for %s: %s", calls[0].owner, died.error)
            return [_failure(died.status, died.error)]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._to.close()  # the child reads EOF and exits
        try:
            self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        with contextlib.suppress(OSError):
            self._from.close()

    def _request(
        self, calls: Sequence[GuestCall], load: ModuleLoader, slice_s: float
    ) -> list[Outcome]:
        modules: dict[str, bytes] = {}
        while True:
            outcomes, need = self._exchange(calls, slice_s, modules)
            if need is None or outcomes:
                return outcomes  # a missing module is asked for again by the next request
            modules = {need: load(need)}  # the first event needs it: send it, then go on

    def _exchange(
        self, calls: Sequence[GuestCall], slice_s: float, modules: dict[str, bytes]
    ) -> tuple[list[Outcome], str | None]:
        self.wait_ready()
        limits = self._config.defaults, self._config.maxima
        wait_s = GRACE_S + sum(budget(c.limits, *limits).timeout_ms for c in calls) / 1000
        try:
            self._to.send_bytes(pickle.dumps((list(calls), slice_s, modules), protocol=5))
            if not self._from.poll(wait_s):
                self._proc.kill()
                raise _Died(TIMEOUT, f"the guest's process did not answer in {wait_s:.0f} s")
            reply = pickle.loads(self._from.recv_bytes())
        except (EOFError, OSError) as e:
            code = self._proc.wait()
            raise _Died(TRAP, f"the guest's process ended ({_ended(code)})") from e
        if reply[0] == "error":  # the platform's own error, raised in the child: raise it here
            raise RuntimeError(f"guest process: {reply[1]}")
        _, outcomes, need = reply
        return outcomes, need

    def _restart(self) -> None:
        with contextlib.suppress(OSError):
            self._proc.kill()
        self.close()
        self._start()


class GuestProcesses:
    """Guest processes kept warm, by CPU priority: `run_many` runs on an idle one at the
    calling thread's nice level (`jobico.fairshare` sets it per guest thread), so a guest runs
    at the priority of the thread that hands it work."""

    def __init__(self, config: SandboxConfig, *, start: dict[int, int] | None = None) -> None:
        """`start`: processes to start now, by nice level (more start when needed)."""
        self._config = config
        self._idle: dict[int, list[GuestProcess]] = {}
        self._all: list[GuestProcess] = []
        self._lock = threading.Lock()
        self._closed = False
        for nice, count in (start or {}).items():
            for _ in range(count):
                self._give(nice, self._spawn(nice))

    def run_many(
        self, calls: Sequence[GuestCall], load: ModuleLoader, slice_s: float = math.inf
    ) -> list[Outcome]:
        nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        proc = self._take(nice)
        try:
            return proc.run_many(calls, load, slice_s)
        finally:
            self._give(nice, proc)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Return once every process started so far can take work at once."""
        with self._lock:
            procs = list(self._all)
        for proc in procs:
            proc.wait_ready(timeout_s)

    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self._all]

    def close(self) -> None:
        """Stop every process; those running a request stop once it is answered."""
        with self._lock:
            self._closed = True
            idle = [p for procs in self._idle.values() for p in procs]
            self._idle.clear()
        for proc in idle:
            proc.close()

    def _spawn(self, nice: int) -> GuestProcess:
        proc = GuestProcess(self._config, nice)
        with self._lock:
            self._all.append(proc)
        return proc

    def _take(self, nice: int) -> GuestProcess:
        with self._lock:
            if self._closed:
                raise RuntimeError("the guest processes are closed")
            idle = self._idle.get(nice)
            if idle:
                return idle.pop()
        return self._spawn(nice)

    def _give(self, nice: int, proc: GuestProcess) -> None:
        with self._lock:
            if not self._closed:
                self._idle.setdefault(nice, []).append(proc)
                return
        proc.close()


def _failure(status: str, error: str) -> Outcome:
    now = time.time()
    return Outcome(
        status=status,
        code=None,
        result=None,
        logs=(),
        error=error,
        started_at=now,
        finished_at=now,
        duration_ms=0.0,
        fuel_used=None,
        memory_bytes=0,
    )


def _ended(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}"


# What a guest process inherits of the executor's environment: what Python needs to start,
# never the tokens and addresses (RAY_*, JOBICO_*) a platform process may hold.
_INHERITED = ("PATH", "LD_LIBRARY_PATH", "LANG", "LC_ALL")


def _child_env() -> dict[str, str]:
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    # Importable from the project's tree or an installed package alike.
    root = str(Path(__file__).resolve().parents[2])
    rest = os.environ.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{root}{os.pathsep}{rest}" if rest else root
    return env


# --- the child ---


class _NeedModule(Exception):
    def __init__(self, digest: str) -> None:
        super().__init__(digest)
        self.digest = digest


def _serve(inbox: Connection, outbox: Connection) -> None:
    config = pickle.loads(inbox.recv_bytes())
    sandbox = Sandbox(defaults=config.defaults, maxima=config.maxima, cache_dir=config.cache_dir)
    outbox.send_bytes(READY)
    while True:
        try:
            calls, slice_s, modules = pickle.loads(inbox.recv_bytes())
        except EOFError:  # the executor closed its end, or died
            return

        def load(digest: str, modules: dict[str, bytes] = modules) -> bytes:
            if digest in modules:
                return modules[digest]
            raise _NeedModule(digest)

        outcomes: list[Outcome] = []
        try:
            for outcome in sandbox.run_each(calls, load, slice_s):
                outcomes.append(outcome)
        except _NeedModule as need:
            reply: tuple[object, ...] = ("done", outcomes, need.digest)
        except Exception as e:  # the parent raises it; this process lives on
            reply = ("error", f"{type(e).__name__}: {e}")
        else:
            reply = ("done", outcomes, None)
        outbox.send_bytes(pickle.dumps(reply, protocol=5))


def serve(read_fd: int, write_fd: int) -> None:
    """The child's life: answer requests until the executor closes its end (`jobico.guestproc`
    starts it)."""
    inbox = Connection(read_fd, writable=False)
    outbox = Connection(write_fd, readable=False)
    try:
        _serve(inbox, outbox)
    except (BrokenPipeError, EOFError):
        pass  # the executor went away mid-answer: nothing to answer to
