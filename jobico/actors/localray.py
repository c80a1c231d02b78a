"""The daemon of the embedded Ray (`python -m jobico.actors.localray HOME DASHBOARD PORT`):
it starts a local Ray with `ray.init`, records it in `HOME/run/ray.json`, and stays until
SIGTERM, when `ray.shutdown` stops exactly the Ray processes it started: never another Ray on
the same machine. `jobico.localnode` launches it, judges what it recorded and reaps what is
left of a Ray that died; this shell holds only the calls to Ray.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import ray

from jobico import localnode


def _environment() -> None:
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
    os.environ.setdefault("RAY_SERVE_HAPROXY_STATS_PORT", str(localnode.quiet_port()))
    os.environ.setdefault("RAY_SERVE_HAPROXY_METRICS_PORT", str(localnode.quiet_port()))


def _daemon(home: Path, dashboard: bool, dashboard_port: int | None) -> None:
    _environment()
    ctx = ray.init(
        include_dashboard=dashboard,
        dashboard_host="127.0.0.1",
        dashboard_port=dashboard_port,
        _node_ip_address="127.0.0.1",
        namespace="jobico",
    )
    address = ctx.address_info["gcs_address"]  # type: ignore[attr-defined]
    url = f"http://{ctx.dashboard_url}" if ctx.dashboard_url else None
    localnode.write_state(home, localnode.daemon_state(address, url))
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    while not stopped.wait(1.0):  # a timed wait lets the signal handler run
        pass
    ray.shutdown()


if __name__ == "__main__":
    _daemon(Path(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3]) or None)
