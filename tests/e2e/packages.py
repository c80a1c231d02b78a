"""Builds packages for e2e tests: a fresh tenant each, a guest from tests/guests, a schema."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tests.conftest import wait_for
from tests.guests import wasm

if TYPE_CHECKING:  # for the annotations only: the module imports no more than it did
    import httpx

    from jobico.client import Client

PERSON = {
    "type": "object",
    "properties": {
        "firstName": {"type": "string"},
        "lastName": {"type": "string"},
        "age": {"type": "integer"},
    },
    "required": ["firstName", "lastName"],
}


def write_package(
    folder: Path,
    guest: str,
    *,
    schema: dict[str, Any] | None = None,
    limits: dict[str, int] | None = None,
    max_attempts: int = 1,
    tenant: str | None = None,
    chain: bool = True,
    limit: int | None = None,
    orderingkey: str | None = None,
) -> tuple[str, Path]:
    """A package with event `ev` run by `guest`, chaining to `ev_ok` / `ev_error` if `chain`."""
    tenant = tenant or f"t{uuid.uuid4().hex[:10]}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{guest}.wasm").write_bytes(wasm(guest))
    (folder / "schema.json").write_text(json.dumps(schema or PERSON))
    runtime: dict[str, Any] = {"id": "rt", "moduleref": f"{guest}.wasm"}
    if limits:
        runtime["limits"] = limits
    package: dict[str, Any] = {
        "name": f"{guest} test",
        "id": "pkg",
        "tenant": tenant,
        "queues": [{"id": "q"}, {"id": "q_ok"}, {"id": "q_error"}],
        "jobs": [{
            "event": {"id": "ev", "schema": {"id": "s", "schemaref": "schema.json"},
                      "supplierqueue": "q", "runtime": "rt"},
            "result": {"ok": {"id": "ev_ok", "supplierqueue": "q_ok", "runtime": "rt"},
                       "error": {"id": "ev_error", "supplierqueue": "q_error", "runtime": "rt"}},
            "retry": {"max_attempts": max_attempts, "backoff_ms": 10},
        }],
        "runtimes": [runtime],
    }  # fmt: skip
    if not chain:
        del package["jobs"][0]["result"]
    if limit is not None:
        package["queues"][0]["limit"] = limit
    if orderingkey is not None:
        package["jobs"][0]["event"]["orderingkey"] = orderingkey
    path = folder / "package.yaml"
    path.write_text(yaml.safe_dump(package, sort_keys=False))
    return tenant, path


def deploy(client: Client, http: httpx.Client, path: Path, *, update: bool = False) -> str:
    """Deploy and wait until the listener routes the package's event (changes reach listener
    replicas through pub/sub, a moment after the deploy returns). The tenant."""
    rev = client.deploy(path, update=update)
    wait_routed(http, rev.tenant)
    return rev.tenant


def wait_routed(http: httpx.Client, tenant: str, event: str = "ev") -> None:
    """Wait until the listener behind `http` (a client with a base URL) routes the event."""
    # An empty batch is refused with 400 by a listener that knows the event, 404 otherwise;
    # either way nothing is queued.
    url = f"/events/{tenant}/{event}"
    wait_for(lambda: http.post(url, json={"data": []}).status_code == 400, what=f"route {url}")
