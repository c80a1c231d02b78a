"""A real platform for the e2e and fault tiers: started and driven with the `jobico` command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the annotations only: `running` imports the client once the platform is up
    from jobico.client import Client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Jobico:
    """Runs the `jobico` CLI in a subprocess against one JOBICO_HOME, as a user would."""

    env: dict[str, str]
    home: Path

    def __call__(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "jobico.cli", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"jobico {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc


def acting_as(jobico: Jobico, token: str) -> Jobico:
    """The same platform's command, acting with `token` (from JOBICO_TOKEN, as a tenant would)."""
    return Jobico({**jobico.env, "JOBICO_TOKEN": token}, jobico.home)


@contextmanager
def running(home: Path) -> Iterator[tuple[Jobico, Client]]:
    """A platform started with `jobico up` under `home`, and the Python client attached to it
    (for the benchmarks); the client lets go and the platform stops at the end."""
    jobico = Jobico(platform_env(home), home)
    jobico("up")
    try:
        from jobico.actors import cluster
        from jobico.client import Client
        from jobico.config import Settings

        try:
            yield jobico, Client(Settings.from_env(jobico.env))
        finally:  # before the platform goes: a driver left behind waits for it
            cluster.disconnect()
    finally:
        jobico("down", check=False)


def platform_env(home: Path) -> dict[str, str]:
    """The environment of a test platform: its own home and port, no dashboard."""
    env = {
        **os.environ,
        "JOBICO_HOME": str(home),
        "JOBICO_DASHBOARD": "0",
        "JOBICO_PORT": str(free_port()),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_ADDRESS", None)
    return env
