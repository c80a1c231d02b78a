"""The sandbox's cost per event, and an executor's first event from the on-disk module cache.

(a) The same echo module (examples/greet/greet.wasm) runs N events through `Sandbox.run` and
    through a bare wasmtime-py loop doing only the guest ABI (malloc, write, event, read, free;
    env.log copying the message out) on a default engine, in the same process, interleaved in
    rounds so both see the same machine state. Target (issue 5): sandbox <= 1.5x bare.
(b) A new process builds a Sandbox over the cache directory a first Sandbox filled and serves
    one event; the time from constructing the Sandbox to the Outcome is printed (the module
    must come from disk: loading its bytes fails). Target: <= 50 ms.
Run: .venv/bin/python benchmarks/sandbox.py [--events 5000]
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import wasmtime

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from jobico.model import Limits  # noqa: E402
from jobico.wasm import Sandbox  # noqa: E402

MODULE = (ROOT / "examples" / "greet" / "greet.wasm").read_bytes()
DIGEST = hashlib.sha256(MODULE).hexdigest()
EVENT = json.dumps({"age": 50, "firstName": "john", "lastName": "connor"}).encode()


class Bare:
    """The least a host can do to run the guest ABI with wasmtime-py."""

    def __init__(self) -> None:
        engine = wasmtime.Engine()
        self.store = wasmtime.Store(engine)
        self.logs: list[bytes] = []
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        i32 = wasmtime.ValType.i32()
        log_type = wasmtime.FuncType([i32, i32, i32], [])
        linker.define_func("env", "log", log_type, self._log, access_caller=True)
        self.store.set_wasi(wasmtime.WasiConfig())
        module = wasmtime.Module(engine, MODULE)
        exports = linker.instantiate(self.store, module).exports(self.store)
        self.memory = exports["memory"]
        self.malloc, self.free, self.event = exports["malloc"], exports["free"], exports["event"]
        exports["init"](self.store)

    def _log(self, caller: wasmtime.Caller, level: int, ptr: int, size: int) -> None:
        self.logs.append(self._read(caller, ptr, size))

    def _base(self, store: wasmtime.Store | wasmtime.Caller) -> int:
        return ctypes.addressof(self.memory.data_ptr(store).contents)

    def _read(self, store: wasmtime.Store | wasmtime.Caller, ptr: int, size: int) -> bytes:
        return ctypes.string_at(self._base(store) + ptr, size)

    def run(self, event: bytes) -> tuple[int, str]:
        self.logs.clear()
        store = self.store
        ptr = self.malloc(store, len(event)) & 0xFFFFFFFF
        ctypes.memmove(self._base(store) + ptr, event, len(event))
        ret = self.malloc(store, 16) & 0xFFFFFFFF
        self.event(store, ret, ptr, len(event))
        code, enc = struct.unpack("<QQ", self._read(store, ret, 16))
        result = self._read(store, enc >> 32, enc & 0xFFFFFFFF).decode()
        if enc >> 32:
            self.free(store, enc >> 32)
        self.free(store, ret)
        self.free(store, ptr)
        return code, result


def sandboxed(sb: Sandbox) -> tuple[int, str]:
    out = sb.run(
        digest=DIGEST,
        load=lambda: MODULE,
        kind="jobicolet",
        mainfunc="event",
        limits=Limits(),
        event=EVENT,
        owner="bench",
    )
    assert out.status == "ok", out.error
    return out.code or 0, out.result or ""


def per_event_us(run: object, events: int) -> float:
    started = time.perf_counter()
    for _ in range(events):
        run()  # type: ignore[operator]
    return (time.perf_counter() - started) / events * 1e6


def overhead(events: int, rounds: int = 5) -> tuple[float, float]:
    """Median µs per event over `rounds` interleaved rounds: (sandbox, bare)."""
    sb, bare = Sandbox(), Bare()
    try:
        assert sandboxed(sb) == bare.run(EVENT) == (0, EVENT.decode())  # same answer, warm
        sandbox_us, bare_us = [], []
        for _ in range(rounds):
            sandbox_us.append(per_event_us(lambda: sandboxed(sb), events))
            bare_us.append(per_event_us(lambda: bare.run(EVENT), events))
        return statistics.median(sandbox_us), statistics.median(bare_us)
    finally:
        sb.close()


def first_event(cache: Path) -> float:
    """In this process: ms from a new Sandbox over `cache` to its first Outcome."""

    def must_not_load() -> bytes:
        raise AssertionError("not served from the on-disk cache")

    started = time.perf_counter()
    sb = Sandbox(cache_dir=cache)
    out = sb.run(
        digest=DIGEST,
        load=must_not_load,
        kind="jobicolet",
        mainfunc="event",
        limits=Limits(),
        event=EVENT,
        owner="bench",
    )
    elapsed = (time.perf_counter() - started) * 1000
    assert out.status == "ok", out.error
    sb.close()
    return elapsed


def fresh_process_first_event(cache: Path) -> float:
    child = [sys.executable, __file__, "--first-event", str(cache)]
    return float(subprocess.run(child, capture_output=True, text=True, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--first-event", type=Path, help=argparse.SUPPRESS)  # the child's part
    args = parser.parse_args()
    if args.first_event:
        print(f"{first_event(args.first_event):.2f}")
        return
    sandbox_us, bare_us = overhead(args.events)
    print(f"(a) per event: sandbox {sandbox_us:.1f} µs, bare wasmtime-py {bare_us:.1f} µs, "
          f"ratio {sandbox_us / bare_us:.2f}x (target <= 1.5x)")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        filler = Sandbox(cache_dir=cache)
        sandboxed(filler)  # compiles and writes the .cwasm
        filler.close()
        times = [fresh_process_first_event(cache) for _ in range(5)]
    print(f"(b) fresh process, first event from the disk cache: median "
          f"{statistics.median(times):.1f} ms, max {max(times):.1f} ms of "
          f"{len(times)} processes (target <= 50 ms)")  # fmt: skip


if __name__ == "__main__":
    main()
