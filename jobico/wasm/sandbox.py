"""The Sandbox: runs one event through a tenant's module under limits and always answers with
an Outcome, keeping compiled modules and warm jobicolet instances between events."""

from __future__ import annotations

import pathlib
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable

import wasmtime

from jobico.config import CACHE_INSTANCES, CACHE_MODULES, GUEST_DEFAULTS
from jobico.model import Limits
from jobico.wasm.abi import Jobicolet
from jobico.wasm.engine import EpochTicker, fuel_used, new_engine, prepare_store
from jobico.wasm.faults import classify, describe
from jobico.wasm.modcache import CompileFailed, ModuleCache
from jobico.wasm.outcome import ERROR, OK, TIMEOUT, TRAP, Attempt, LogSink, Outcome
from jobico.wasm.wasi import run_command

NO_MAXIMA = Limits()
LOG_LINES = 1000  # per execution, whatever the bytes: each line costs a record entry
_Key = tuple[str, str, str]  # (owner, digest, mainfunc)


class Sandbox:
    """Runs guests; safe to call from several threads (each execution gets its own instance).

    One engine and one epoch ticker thread per Sandbox; `close()` stops the ticker.
    """

    def __init__(
        self,
        *,
        defaults: Limits = GUEST_DEFAULTS,
        maxima: Limits = NO_MAXIMA,
        log_lines: int = LOG_LINES,
        cache_dir: pathlib.Path | None = None,
        max_modules: int = CACHE_MODULES,
        max_instances: int = CACHE_INSTANCES,
    ) -> None:
        """`max_modules` compiled modules stay loaded, and `max_instances` warm instances
        across all runtimes (each holds its linear memory), the least recently used evicted:
        an evicted module is compiled again (or read from `cache_dir`), an evicted instance
        built again, on its next event."""
        self.defaults = defaults  # every limit set but fuel (None: no limit)
        self.maxima = maxima
        self.log_lines = log_lines
        self._engine = new_engine()
        self._modules = ModuleCache(self._engine, cache_dir, bound=max_modules)
        self._max_instances = max_instances
        self._idle: OrderedDict[_Key, list[Jobicolet]] = OrderedDict()
        self._idle_count = 0
        self._lock = threading.Lock()
        self._ticker = EpochTicker(self._engine)
        # A sandbox dropped without close() must not leave its ticker thread running forever.
        self._stop_ticker = weakref.finalize(self, self._ticker.stop)

    @property
    def cached(self) -> tuple[int, int]:
        """(compiled modules, warm instances) held now."""
        return len(self._modules), self._idle_count

    def close(self) -> None:
        self._stop_ticker()
        with self._lock:
            self._idle.clear()
            self._idle_count = 0

    def resolve(self, limits: Limits) -> Limits:
        """What a run of a runtime with `limits` goes by: its own where set, else the platform
        defaults; never above the platform maxima (deploy refuses more, but maxima may have been
        lowered since)."""
        return limits.over(self.defaults).within(self.maxima)

    def run(
        self,
        *,
        digest: str,
        load: Callable[[], bytes],
        kind: str,
        mainfunc: str,
        limits: Limits,
        event: bytes,
        owner: str = "",
    ) -> Outcome:
        """Run one event. Guest failures of every sort come back as an Outcome; only errors of
        the caller's own (`load()` failing, an unknown kind, a closed sandbox) are raised.

        Warm instances are reused only by the same `owner` (the platform passes the tenant,
        package, revision and runtime): two tenants uploading the same bytes share compiled
        code, never an instance's memory or globals."""
        if kind not in ("jobicolet", "wasi"):
            raise ValueError(f"unknown runtime kind {kind!r}: jobicolet or wasi expected")
        if not self._ticker.running:
            raise RuntimeError("sandbox is closed")  # without the ticker, timeouts never fire
        started_at, t0 = time.time(), time.perf_counter()
        limits = self.resolve(limits)  # from here on every limit is set, but maybe fuel
        sink = LogSink(max_lines=self.log_lines, max_bytes=limits.log_bytes)
        try:
            attempt = self._execute((owner, digest, mainfunc), load, kind, event, limits, sink)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            # Safety net for host-side setup steps: a wasmtime error holds native pointers and
            # must never travel further (it would crash a Ray actor while being pickled).
            attempt = Attempt(status=TRAP, error=f"sandbox setup failed: {describe(exc)}")
        if attempt.status == TIMEOUT:
            # An epoch interrupt leaves wasmtime's fuel counter as last saved, which in a tight
            # loop may be long ago (it read 25 after 300 ms): no figure beats a wrong one.
            attempt.fuel_used = None
        finished_at = time.time()
        return Outcome(
            status=attempt.status,
            code=attempt.code,
            result=attempt.result,
            logs=sink.lines(),
            error=attempt.error,
            started_at=started_at,
            finished_at=finished_at,
            duration_ms=(time.perf_counter() - t0) * 1000,
            fuel_used=attempt.fuel_used,
            memory_bytes=attempt.memory_bytes,
        )

    def _execute(
        self,
        key: _Key,
        load: Callable[[], bytes],
        kind: str,
        event: bytes,
        limits: Limits,
        sink: LogSink,
    ) -> Attempt:
        _, digest, mainfunc = key
        try:
            module = self._modules.get(digest, load)
        except CompileFailed as e:
            return Attempt(status=TRAP, error=e.message)
        if kind == "wasi":
            return run_command(self._engine, module, event, limits, sink)
        inst = self._take(key) or Jobicolet(self._engine, module, mainfunc, limits.memory_bytes)
        attempt = self._run_jobicolet(inst, event, limits, sink)
        if attempt.status in (OK, ERROR) and not inst.spoiled:
            self._give(key, inst)  # a failed instance is dropped here and rebuilt next time
        return attempt

    def _run_jobicolet(
        self, inst: Jobicolet, event: bytes, limits: Limits, sink: LogSink
    ) -> Attempt:
        attempt = Attempt()
        inst.set_memory_limit(limits.memory_bytes)
        prepare_store(inst.store, limits)
        inst.host.begin(sink, limits.wall_ms)
        try:
            if not inst.ready:
                inst.start()  # instantiation and init() count against this event's limits
            answer = inst.call(event, limits.result_bytes)
            attempt.code, attempt.result = answer.code, answer.result
            attempt.status = OK if attempt.code == 0 else ERROR
            if answer.free_failed is not None:
                sink.note(
                    "[jobico] free trapped after the answer was read; the answer stands and the "
                    f"instance is rebuilt for the next event: {answer.free_failed}"
                )
        except Exception as exc:  # every guest failure; nothing from wasmtime escapes
            attempt.status, attempt.error = classify(
                exc, memory_bytes=inst.memory_bytes(), memory_limit=limits.memory_bytes
            )
        inst.host.judge(attempt)
        attempt.fuel_used = fuel_used(inst.store, limits, inst.host.fuel_left_if_stopped())
        # Linear memory never shrinks: its size now is the peak of the instance's life.
        attempt.memory_bytes = inst.memory_bytes()
        return attempt

    def _take(self, key: _Key) -> Jobicolet | None:
        with self._lock:
            pool = self._idle.get(key)
            if not pool:
                return None
            self._idle_count -= 1
            inst = pool.pop()
            if not pool:
                del self._idle[key]
            return inst

    def _give(self, key: _Key, inst: Jobicolet) -> None:
        with self._lock:
            self._idle.setdefault(key, []).append(inst)
            self._idle.move_to_end(key)
            self._idle_count += 1
            while self._idle_count > self._max_instances:
                oldest, pool = next(iter(self._idle.items()))
                pool.pop(0)
                self._idle_count -= 1
                if not pool:
                    del self._idle[oldest]
