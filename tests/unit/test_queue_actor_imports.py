"""A tenant's queue actor is one process per active tenant, so whatever its module imports is paid
once per tenant (docs/performance.md#a-queue-actors-memory). It loads the queue, its grant checks
and Ray: never the listener's web stack, the executors' guest runtime or control's libraries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# Libraries and Jobico subsystems a queue never uses (and what loads each elsewhere).
NOT_FOR_A_QUEUE = (
    "pyarrow",  # Ray Serve's and Ray Data's
    "wasmtime",  # the executors' guests
    "fastapi",  # the listener
    "starlette",
    "uvicorn",
    "httpx",  # the client's and the listener's
    "pydantic",
    "re2",  # compiled schemas (control, listener)
    "jsonschema_rs",
    "diskcache",  # the stores of tokens, secrets, the registry and the repository
    "jobico.actors.control",
    "jobico.actors.executor",
    "jobico.actors.supervisor",
    "jobico.client",
    "jobico.control",
    "jobico.execution",
    "jobico.records",
    "jobico.repository",
    "jobico.schemas",
    "jobico.serve",
    "jobico.wasm",
)
# Ray itself imports these, so they are checked on the queue's plain core, without Ray.
LOADED_BY_RAY_TOO = ("yaml", "jsonschema")


def loaded_by(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running `statement`."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def among(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The names (packages included) of which some module was loaded."""
    return [n for n in names if any(m == n or m.startswith(f"{n}.") for m in modules)]


def test_the_queue_actors_module_loads_nothing_a_queue_does_not_use() -> None:
    modules = loaded_by("import jobico.actors.queue")
    assert "jobico.queue.service" in modules  # the check ran in a process that has the queue
    assert among(modules, NOT_FOR_A_QUEUE) == []


def test_the_queues_plain_core_loads_no_yaml_or_schema_library() -> None:
    core = (
        "jobico.queue.service",
        "jobico.queue.groupcommit",
        "jobico.queue.localputs",
        "jobico.access.auth",
        "jobico.config",
    )
    modules = loaded_by(f"import {', '.join(core)}")
    assert among(modules, ("ray",)) == []
    assert among(modules, NOT_FOR_A_QUEUE + LOADED_BY_RAY_TOO) == []


@pytest.mark.parametrize("library", ["diskcache", "yaml"])
def test_the_import_check_sees_a_library_loaded_on_the_way(library: str) -> None:
    modules = loaded_by(f"import jobico.config, {library}")
    assert library in among(modules, NOT_FOR_A_QUEUE + LOADED_BY_RAY_TOO)
