"""WAT guest fixtures for the sandbox tests; `wasm(name)` compiles tests/guests/<name>.wat."""

from __future__ import annotations

import functools
from pathlib import Path

import wasmtime

HERE = Path(__file__).parent


@functools.cache
def wasm(name: str) -> bytes:
    return bytes(wasmtime.wat2wasm((HERE / f"{name}.wat").read_text()))
