"""The disk cache of compiled modules: a .cwasm is loaded only if its MAC, under a key kept
beside the cache directory, is right; anything else is compiled again from the module."""

from __future__ import annotations

import hashlib
import logging
import stat
from pathlib import Path

import pytest
import wasmtime

from jobico.model import Limits
from jobico.wasm import Sandbox
from jobico.wasm.engine import new_engine
from tests.guests import wasm


def run_counting_loads(cache: Path, guest: str, loads: list[int]) -> tuple[str, str | None]:
    data = wasm(guest)
    sandbox = Sandbox(cache_dir=cache)
    try:
        out = sandbox.run(
            digest=hashlib.sha256(data).hexdigest(),
            load=lambda: loads.append(1) or data,  # type: ignore[func-returns-value]
            kind="jobicolet",
            mainfunc="event",
            limits=Limits(),
            event=b'{"a":1}',
        )
    finally:
        sandbox.close()
    return out.status, out.result


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    cache = tmp_path / "modules"
    loads: list[int] = []
    assert run_counting_loads(cache, "echo", loads) == ("ok", '{"a":1}')
    assert loads == [1]
    return cache


def test_a_cached_module_is_loaded_from_disk_without_compiling_again(cache: Path) -> None:
    loads: list[int] = []
    assert run_counting_loads(cache, "echo", loads) == ("ok", '{"a":1}')
    assert loads == []


def test_a_cwasm_swapped_for_other_native_code_is_not_loaded(
    cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Someone who can write the directory puts another module's compiled code there: valid
    # native code for this engine, which wasmtime would run without a question.
    (cached,) = cache.glob("*.cwasm")
    other = wasmtime.Module(new_engine(), wasm("code500")).serialize()
    cached.write_bytes(other)
    loads: list[int] = []
    with caplog.at_level(logging.WARNING, logger="jobico.wasm.modcache"):
        assert run_counting_loads(cache, "echo", loads) == ("ok", '{"a":1}')
    assert loads == [1]  # compiled again from the module's own bytes
    assert "integrity check" in caplog.text
    loads.clear()
    assert run_counting_loads(cache, "echo", loads) == ("ok", '{"a":1}')  # and rewritten
    assert loads == []


def test_a_cwasm_changed_under_its_mac_is_not_loaded(cache: Path) -> None:
    (cached,) = cache.glob("*.cwasm")
    raw = bytearray(cached.read_bytes())
    raw[-100] ^= 0xFF
    cached.write_bytes(bytes(raw))
    loads: list[int] = []
    assert run_counting_loads(cache, "echo", loads) == ("ok", '{"a":1}')
    assert loads == [1]


def test_the_cache_directory_is_private_and_its_key_lives_outside_it(cache: Path) -> None:
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    key = cache.with_name("modules.key")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32
    assert {p.suffix for p in cache.iterdir()} == {".cwasm"}


def test_a_cache_directory_open_to_others_is_narrowed(tmp_path: Path) -> None:
    cache = tmp_path / "modules"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    assert run_counting_loads(cache, "echo", []) == ("ok", '{"a":1}')
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
