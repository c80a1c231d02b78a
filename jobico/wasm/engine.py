"""The wasmtime Engine configuration every sandbox shares, its cache fingerprint, and the epoch
ticker thread that turns wall-clock time into guest interruptions."""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
import platform
import threading

import wasmtime

from jobico.model import Limits

TICK_MS = 10  # epoch granularity: a timeout fires within one tick of its deadline
UNLIMITED_FUEL = 2**64 - 1  # fuel is always metered (to report fuel_used); this means "no limit"
# wasmtime bounds no table by default, and each element is host memory outside the memory
# limit: a guest could table.grow its way to gigabytes. Compilers' tables hold a few thousand.
MAX_TABLE_ELEMENTS = 1_000_000
# wasmtime's store limits hold per memory and per table: one memory per instance (its
# `memory` export, so the record's memory figure is all of it), one instance per store, and
# tables bounded in number as well as size. Compilers emit one table; two leaves room for one
# of references (externref). Deploy refuses modules defining more (inspect.py).
MAX_MEMORIES = 1
MAX_TABLES = 2

# Everything here changes compiled code, so it is part of the on-disk cache key.
ENGINE_SETTINGS: dict[str, object] = {
    "epoch_interruption": True,
    "consume_fuel": True,
    "cranelift_opt_level": "speed",
}


def new_engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    for name, value in ENGINE_SETTINGS.items():  # one list, so the cache key cannot drift
        setattr(config, name, value)
    return wasmtime.Engine(config)


def fingerprint() -> str:
    """Identifies code compiled by `new_engine()` on this machine; serialized modules from any
    other wasmtime version or setting must not be loaded (Module.deserialize trusts its input)."""
    parts = [
        importlib.metadata.version("wasmtime"),
        platform.machine(),
        platform.system(),
        *(f"{k}={v}" for k, v in sorted(ENGINE_SETTINGS.items())),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def deadline_ticks(timeout_ms: int) -> int:
    # +1: the next tick may come right away, so one tick is worth anywhere from 0 to TICK_MS.
    return math.ceil(timeout_ms / TICK_MS) + 1


def fuel_given(limits: Limits) -> int:
    return limits.fuel if limits.fuel is not None else UNLIMITED_FUEL


def set_limits(store: wasmtime.Store, memory_bytes: int) -> None:
    store.set_limits(
        memory_size=memory_bytes,
        table_elements=MAX_TABLE_ELEMENTS,
        instances=1,
        tables=MAX_TABLES,
        memories=MAX_MEMORIES,
    )


def prepare_store(store: wasmtime.Store, limits: Limits) -> None:
    """Arm the limits for one execution; called before any guest code of that execution runs."""
    store.set_fuel(fuel_given(limits))
    store.set_epoch_deadline(deadline_ticks(limits.wall_ms))


def fuel_used(store: wasmtime.Store, limits: Limits, left: int | None = None) -> int | None:
    """Fuel burnt by the execution; `left` is what remained when the host stopped the guest (by
    taking away its fuel), so a stopped guest is not charged the whole budget."""
    try:
        return fuel_given(limits) - (store.get_fuel() if left is None else left)
    except wasmtime.WasmtimeError:
        return None


class EpochTicker:
    """A daemon thread advancing the engine's epoch every TICK_MS until stopped."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jobico-wasm-epoch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(TICK_MS / 1000):
            self._engine.increment_epoch()

    @property
    def running(self) -> bool:
        return not self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()


_shared: wasmtime.Engine | None = None
_shared_lock = threading.Lock()


_shared_ticker: EpochTicker | None = None


def shared_engine() -> wasmtime.Engine:
    """The process-wide engine for deploy-time checks, with its own epoch ticker: the guest code
    a check runs (a start function, `ver()`) is bounded by wall clock as well as fuel, since
    WASI host calls cost almost no fuel (docs/security.md)."""
    global _shared, _shared_ticker
    with _shared_lock:
        if _shared is None:
            _shared = new_engine()
            _shared_ticker = EpochTicker(_shared)  # a daemon thread, for the process's life
        return _shared
