"""A two-node Ray cluster on this one machine, for the cluster tier: a head on 127.0.0.2 and a
worker on 127.0.0.3, each started with `ray start` and token authentication, as on real machines.

Nothing else on the machine is touched: each `ray start` runs in its own session, so its daemons
and their workers share one process group that `stop` kills, and `ray stop` (which would stop
every Ray of this user) is never called.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.platform import free_port

RAY = str(Path(sys.executable).parent / "ray")
HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"


@dataclass
class RayCluster:
    temp_dir: Path
    env: dict[str, str]
    address: str = ""
    groups: list[int] = field(default_factory=list)

    def start(self) -> None:
        port = free_port()
        self.address = f"{HEAD_IP}:{port}"
        self._ray_start(HEAD_IP, "--head", f"--port={port}", f"--temp-dir={self.temp_dir}",
                        f"--ray-client-server-port={free_port()}", "--include-dashboard=false",
                        f"--dashboard-port={free_port()}")  # fmt: skip
        self._ray_start(WORKER_IP, f"--address={self.address}")

    def _ray_start(self, ip: str, *args: str) -> None:
        # Fixed ports default to the same numbers on every node: each node takes free ones.
        ports = [f"--{name}={free_port()}" for name in _PORTS]
        proc = subprocess.Popen(
            [RAY, "start", f"--node-ip-address={ip}", "--num-cpus=1", *ports, *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.groups.append(proc.pid)  # its session's process group holds every daemon it starts
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise AssertionError(f"ray start on {ip} failed:\n{out}")

    def nodes(self) -> list[dict[str, Any]]:
        """ray.nodes() of the cluster, from a separate driver (this process stays Ray-free)."""
        script = (
            f"import json, ray; ray.init(address={self.address!r}, logging_level='ERROR'); "
            "print(json.dumps([n for n in ray.nodes() if n['Alive']]))"
        )
        out = subprocess.run(
            [sys.executable, "-c", script],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]

    def stop(self) -> None:
        for group in self.groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)


_PORTS = (
    "node-manager-port",
    "object-manager-port",
    "metrics-export-port",
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
)


def cluster_env() -> dict[str, str]:
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_worker_niceness": "0",  # as cluster/*.yaml start Ray: actors above the guests
        # Metrics reach each node's Prometheus endpoint every second, not every ten.
        "RAY_metrics_report_interval_ms": "1000",
    }
    env.pop("RAY_ADDRESS", None)
    return env


def two_nodes() -> RayCluster:
    # Short: Ray's unix sockets live under the temp dir, and their paths have a length limit.
    return RayCluster(Path(tempfile.mkdtemp(prefix="jx", dir="/tmp")), cluster_env())
