"""WAT guest fixtures for the sandbox tests; `wasm(name)` compiles tests/guests/<name>.wat."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import TypedDict, Unpack

import wasmtime

from jobico.model import Limits
from jobico.wasm import Outcome, Sandbox

HERE = Path(__file__).parent


class GuestLimits(TypedDict, total=False):
    """The limits a test may set on a fixture guest: keyword arguments of `Limits` (mypy
    checks that they stay so)."""

    timeout_ms: int
    memory_mb: int
    fuel: int
    result_kb: int
    log_kb: int


@functools.cache
def wasm(name: str) -> bytes:
    return bytes(wasmtime.wat2wasm((HERE / f"{name}.wat").read_text()))


def run(
    sb: Sandbox,
    guest: str,
    event: bytes = b'{"a":1}',
    *,
    kind: str = "jobicolet",
    mainfunc: str = "event",
    owner: str = "",
    **limits: Unpack[GuestLimits],
) -> Outcome:
    """Run fixture `guest` once in `sb` (keyed by its sha256, as the platform keys modules)."""
    data = wasm(guest)
    return sb.run(
        digest=hashlib.sha256(data).hexdigest(),
        load=lambda: data,
        kind=kind,
        mainfunc=mainfunc,  # WASI commands ignore it
        limits=Limits(**limits),
        event=event,
        owner=owner,
    )
