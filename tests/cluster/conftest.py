"""The cluster tier: Jobico on a two-node Ray cluster of its own (never the session Ray of
tests/integration), started with `jobico up --address` as on real machines."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.cluster.raycluster import RayCluster, two_nodes
from tests.platform import Jobico, free_port


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayCluster]:
    cluster = two_nodes()
    try:
        cluster.start()
        yield cluster
    finally:  # even when a node failed to start
        cluster.stop()


@pytest.fixture(scope="module")
def jobico(ray_cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jobico]:
    home = tmp_path_factory.mktemp("jobico-home")
    env = {
        **ray_cluster.env,
        "RAY_ADDRESS": ray_cluster.address,
        "JOBICO_HOME": str(home),
        "JOBICO_PORT": str(free_port()),
        # Both nodes share this machine's addresses: one HTTP proxy, on the head.
        "JOBICO_PROXY_LOCATION": "HeadOnly",
        "JOBICO_EXECUTORS_MIN": "2",
        "JOBICO_EXECUTORS_MAX": "2",
    }
    cli = Jobico(env, home)
    cli("up")
    yield cli
    cli("down", check=False)


@pytest.fixture(scope="module")
def http(jobico: Jobico) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{jobico.env['JOBICO_PORT']}", timeout=60) as c:
        yield c
