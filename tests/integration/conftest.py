"""One local Ray for the whole session; every test gets fresh actors in its own namespace."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobico import platform
from jobico.config import Settings


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ctx = ray.init(
        num_cpus=2,
        include_dashboard=False,
        namespace="jobico-tests",
        logging_level=logging.ERROR,
        log_to_driver=False,
    )
    # ray.init is annotated to return BaseContext; locally it is a RayContext, which has it.
    yield str(ctx.address_info["gcs_address"])  # type: ignore[attr-defined]
    ray.shutdown()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", namespace=f"jobico-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def running(settings: Settings, ray_address: str) -> Iterator[Settings]:
    """The platform's actors started on the session's Ray; stopped after the test."""
    platform.up(settings, ray_address, listener=False)  # HTTP is the e2e tier's
    yield settings
    platform.down(settings, ray_address)
