"""Turning whatever stopped a guest (wasmtime traps and errors, broken ABI answers) into a
failure status and a plain-string explanation; no wasmtime object survives past here."""

from __future__ import annotations

import wasmtime

from jobico.wasm.outcome import OUT_OF_FUEL, OUT_OF_MEMORY, TIMEOUT, TRAP

PAGE = 65536
MAX_ERROR_CHARS = 4000


class GuestFault(Exception):
    """A guest broke the contract in a way the host noticed (bad pointer, bad result, ...)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def classify(exc: BaseException, *, memory_bytes: int, memory_limit: int) -> tuple[str, str]:
    """(status, error) for an exception raised while running guest code.

    wasmtime does not tell a Python host that memory.grow was refused, so a trap with linear
    memory already too close to the limit to grow one more page is read as out_of_memory: the
    guest's allocator found no memory and gave up (TinyGo and Rust both trap there).
    """
    if isinstance(exc, GuestFault):
        return exc.status, exc.message
    if isinstance(exc, wasmtime.ExitTrap):
        return TRAP, f"guest exited (WASI proc_exit) with code {exc.code} instead of returning"
    text = describe(exc)
    if isinstance(exc, wasmtime.Trap):
        code = exc.trap_code
        if code == wasmtime.TrapCode.INTERRUPT:
            return TIMEOUT, "time limit exceeded (interrupted): " + text
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return OUT_OF_FUEL, "fuel limit exceeded: " + text
    if isinstance(exc, (wasmtime.Trap, wasmtime.WasmtimeError)):
        if "exceeds memory limits" in text:  # instantiation: initial memory above the limit
            return OUT_OF_MEMORY, text
        if memory_bytes and memory_bytes + PAGE > memory_limit:
            mib = memory_limit / (1 << 20)
            return OUT_OF_MEMORY, f"memory limit of {mib:g} MiB reached, then: {text}"
        return TRAP, text
    # Not from wasmtime: a host-side error while serving the guest; still the guest's record.
    return TRAP, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


def describe(exc: BaseException) -> str:
    """The cause first, then wasmtime's backtrace, as one plain string."""
    try:
        text = str(exc)
    except Exception:  # an error whose native message cannot be read any more
        text = type(exc).__name__
    head, sep, cause = text.partition("Caused by:")
    if sep:
        cause = cause.strip().removeprefix("wasm trap: ")
        text = f"{cause}\n{head.strip()}" if head.strip() else cause
    return text.strip()[:MAX_ERROR_CHARS]
