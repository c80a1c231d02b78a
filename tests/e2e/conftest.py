"""One real platform for the e2e session, started and stopped with the `jobico` command itself."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Jobico:
    """Runs the `jobico` CLI in a subprocess against one JOBICO_HOME, as a user would."""

    env: dict[str, str]
    home: Path

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "jobico.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"jobico {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc


@pytest.fixture(scope="session")
def jobico(tmp_path_factory):
    home = tmp_path_factory.mktemp("jobico-home")
    env = {
        **os.environ,
        "JOBICO_HOME": str(home),
        "JOBICO_DASHBOARD": "0",
        "JOBICO_PORT": str(free_port()),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_ADDRESS", None)
    cli = Jobico(env, home)
    cli("up")
    yield cli
    cli("down", check=False)


@pytest.fixture(scope="session")
def client(jobico):
    """The Python client in this process, attached to the session's platform."""
    from jobico.actors import cluster
    from jobico.client import Client
    from jobico.config import Settings

    yield Client(Settings.from_env(jobico.env))
    cluster.disconnect()


@pytest.fixture(scope="session")
def http(jobico):
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{jobico.env['JOBICO_PORT']}", timeout=60) as c:
        yield c


@pytest.fixture
def workdir(tmp_path):
    """A copy of the example package's folder that a test may edit."""
    example = Path(__file__).parents[2] / "examples" / "greet"
    shutil.copytree(example, tmp_path / "greet")
    return tmp_path / "greet"
