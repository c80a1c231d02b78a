"""One real platform for the e2e session, started and stopped with the `jobico` command itself."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.platform import Jobico, platform_env

if TYPE_CHECKING:  # for the annotations only: the fixtures import these when they run
    import httpx

    from jobico.client import Client


@pytest.fixture(scope="session")
def jobico(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jobico]:
    home = tmp_path_factory.mktemp("jobico-home")
    cli = Jobico(platform_env(home), home)
    cli("up")
    yield cli
    cli("down", check=False)


@pytest.fixture(scope="session")
def client(jobico: Jobico) -> Iterator[Client]:
    """The Python client in this process, attached to the session's platform."""
    from jobico.actors import cluster
    from jobico.client import Client
    from jobico.config import Settings

    yield Client(Settings.from_env(jobico.env))
    cluster.disconnect()


@pytest.fixture(scope="session")
def http(jobico: Jobico) -> Iterator[httpx.Client]:
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{jobico.env['JOBICO_PORT']}", timeout=60) as c:
        yield c


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A copy of the example package's folder that a test may edit."""
    example = Path(__file__).parents[2] / "examples" / "greet"
    shutil.copytree(example, tmp_path / "greet")
    return tmp_path / "greet"
