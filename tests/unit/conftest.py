"""Unit-tier fixtures: plain objects, no Ray."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jobico.control.registry import Registry
from jobico.repository import Repository
from jobico.wasm import Sandbox
from tests.conftest import EXAMPLE

SCHEMA = (EXAMPLE / "greet-schema.json").read_bytes()
MODULE = (EXAMPLE / "greet.wasm").read_bytes()


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """A sandbox with the platform defaults, closed after the test."""
    sandbox = Sandbox()
    yield sandbox
    sandbox.close()


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    """A repository holding the greet example's schema and module for tenant demogo."""
    r = Repository(tmp_path / "repo")
    r.put("demogo", "json", "greet-schema.json", SCHEMA)
    r.put("demogo", "wasm", "greet.wasm", MODULE)
    yield r
    r.close()


@pytest.fixture
def registry(tmp_path: Path, repo: Repository) -> Iterator[Registry]:
    reg = Registry(tmp_path / "control", repo)
    yield reg
    reg.close()
