"""The `wasi` runtime kind: a WASI command run once per event, event on stdin, result on
stdout, exit status as the code, stderr lines as logs."""

from __future__ import annotations

import tempfile
from pathlib import Path

import wasmtime

from jobico.model import Limits
from jobico.wasm.engine import fuel_used, prepare_store, set_limits
from jobico.wasm.faults import GuestFault, classify
from jobico.wasm.host import HostState
from jobico.wasm.outcome import ERROR, INVALID_RESULT, OK, TRAP, Attempt, LogSink


def run_command(
    engine: wasmtime.Engine, module: wasmtime.Module, event: bytes, limits: Limits, sink: LogSink
) -> Attempt:
    # stdin can only be a file. stdout and stderr are the host's own fd_write (host.py), which
    # keeps them in memory up to their caps and stops a guest writing past one; wasmtime's
    # output callbacks (stdout_custom) would call Python from its own threads, which aborts the
    # process when it happens during interpreter shutdown.
    with tempfile.TemporaryDirectory(prefix="jobico-wasi-") as tmp:
        stdin = Path(tmp) / "stdin"
        stdin.write_bytes(event)
        host = HostState()
        host.capture(stdout_limit=limits.result_bytes)
        attempt = _run(engine, module, host, limits, sink, stdin)
    host.end_stderr()
    if attempt.code is not None:
        _read_result(attempt, bytes(host.stdout or b""))
    host.judge(attempt)
    return attempt


def _run(
    engine: wasmtime.Engine,
    module: wasmtime.Module,
    host: HostState,
    limits: Limits,
    sink: LogSink,
    stdin: Path,
) -> Attempt:
    store = wasmtime.Store(engine)
    attempt = Attempt()
    memory: wasmtime.Memory | None = None
    try:
        set_limits(store, limits.memory_bytes)
        config = wasmtime.WasiConfig()  # no preopened dirs, args or env
        config.stdin_file = stdin
        store.set_wasi(config)
        prepare_store(store, limits)
        host.begin(sink, limits.wall_ms)
        exports = host.linker(engine).instantiate(store, module).exports(store)
        found = exports.get("memory")
        memory = found if isinstance(found, wasmtime.Memory) else None
        start = exports.get("_start")
        if not isinstance(start, wasmtime.Func):
            raise GuestFault(TRAP, "WASI command does not export _start")
        attempt.code = _exit_code(store, start)
    except Exception as exc:  # every guest failure; nothing from wasmtime escapes
        size = memory.data_len(store) if memory is not None else 0
        attempt.status, attempt.error = classify(
            exc, memory_bytes=size, memory_limit=limits.memory_bytes
        )
    attempt.fuel_used = fuel_used(store, limits, host.fuel_left_if_stopped())
    # Linear memory never shrinks: its size at the end is the run's peak.
    attempt.memory_bytes = memory.data_len(store) if memory is not None else 0
    return attempt


def _exit_code(store: wasmtime.Store, start: wasmtime.Func) -> int:
    try:
        start(store)
    except wasmtime.ExitTrap as e:
        return int(e.code)
    return 0  # returning from _start is exit status 0


def _read_result(attempt: Attempt, raw: bytes) -> None:
    try:
        attempt.result = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        attempt.status, attempt.code = INVALID_RESULT, None
        attempt.error = f"result (stdout) is not valid UTF-8 (byte {e.start}: {e.reason})"
        return
    attempt.status = OK if attempt.code == 0 else ERROR
