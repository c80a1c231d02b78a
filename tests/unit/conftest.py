"""Unit-tier fixtures: plain objects, no Ray."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobico.wasm import Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """A sandbox with the platform defaults, closed after the test."""
    sandbox = Sandbox()
    yield sandbox
    sandbox.close()
