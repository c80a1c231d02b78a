"""What the host offers a guest: `env.log`, WASI preview1 (no preopened dirs, args or env) with
a `poll_oneoff` that respects the time limit and an `fd_write` that keeps stdout and stderr in
memory under their caps, and bounds-checked guest memory access."""

from __future__ import annotations

import ctypes
import struct
import time

import wasmtime
from wasmtime import _ffi as ffi

from jobico.wasm.faults import GuestFault
from jobico.wasm.outcome import (
    ERROR,
    LEVEL_NONE,
    LOGS_TOO_LARGE,
    OK,
    RESULT_TOO_LARGE,
    TIMEOUT,
    TRAP,
    Attempt,
    LogSink,
)

_ERRNO_BADF, _ERRNO_FAULT, _ERRNO_INVAL, _ERRNO_IO = 8, 21, 28, 29
_SUBSCRIPTION = struct.Struct("<QB")  # userdata, tag; the tagged union starts at offset 16
_CLOCK = struct.Struct("<I4xQQH")  # clock id, timeout ns, precision, flags (bit 0: absolute)
_EVENT = struct.Struct("<QHB5xQH6x")  # userdata, errno, type, nbytes, flags: 32 bytes
_IOVEC = struct.Struct("<II")  # buf, len
_IOV_MAX = 1024  # as POSIX: a guest cannot keep the host looping over millions of iovecs
# Subscriptions per poll_oneoff call: wasi-libc's poll() asks for one per descriptor plus one
# clock. Unbounded, one call walked up to memory/48 of them in Python, past the deadline.
_POLL_MAX = 1024
U32 = 0xFFFFFFFF

Storelike = wasmtime.Store | wasmtime.Caller


def check_range(mem: wasmtime.Memory, store: Storelike, ptr: int, size: int) -> None:
    """A range outside linear memory is the guest's fault."""
    if ptr < 0 or size < 0 or ptr + size > mem.data_len(store):
        raise GuestFault(TRAP, f"guest pointer out of bounds: {size} bytes at {ptr}")


def read_bytes(mem: wasmtime.Memory, store: Storelike, ptr: int, size: int) -> bytes:
    """Copy `size` bytes at `ptr`."""
    check_range(mem, store, ptr, size)
    return ctypes.string_at(ctypes.addressof(mem.data_ptr(store).contents) + ptr, size)


def write_bytes(mem: wasmtime.Memory, store: Storelike, ptr: int, data: bytes) -> None:
    check_range(mem, store, ptr, len(data))
    ctypes.memmove(ctypes.addressof(mem.data_ptr(store).contents) + ptr, data, len(data))


class HostState:
    """Per-store state the host functions write into; reset at the start of each execution."""

    def __init__(self) -> None:
        self.sink = LogSink(max_lines=0, max_bytes=0)
        self.deadline = 0.0  # time.monotonic() at which the time limit runs out
        self.stopped: tuple[str, str] | None = None  # (status, error) when the host stopped it
        self.fuel_left = 0  # what the guest had left when the host stopped it
        self.stdout: bytearray | None = None  # a WASI command's result; None: discarded
        self.stdout_limit = 0
        self._stderr_tail = b""  # a WASI command's stderr line still being written

    def capture(self, stdout_limit: int) -> None:
        """For a WASI command: stdout is its result (up to the limit), stderr lines its logs."""
        self.stdout, self.stdout_limit = bytearray(), stdout_limit

    def end_stderr(self) -> None:
        """The last stderr line, if the command did not end it with a newline."""
        if self._stderr_tail:
            self.sink.add(LEVEL_NONE, self._stderr_tail.removesuffix(b"\r"))
            self._stderr_tail = b""

    def begin(self, sink: LogSink, timeout_ms: int) -> None:
        self.sink = sink
        self.deadline = time.monotonic() + timeout_ms / 1000
        self.stopped = None

    def stop(self, caller: wasmtime.Caller, status: str, error: str) -> None:
        """End the guest at its next loop or call (its fuel runs out); the runner reports
        `status` instead. Raising from a host function would do it too, but the exception travels
        through wasmtime-py's one process-wide slot, which another thread may empty first.
        The Caller has no public fuel methods, hence wasmtime's own bindings."""
        context = caller._context()
        if self.stopped is None:
            self.stopped = (status, error)
            left = ctypes.c_uint64(0)
            ffi.wasmtime_context_get_fuel(context, ctypes.byref(left))
            self.fuel_left = left.value
        ffi.wasmtime_context_set_fuel(context, 0)

    def judge(self, attempt: Attempt) -> None:
        """A limit the host enforced outranks what the guest did after it (the trap of being
        stopped); a log cap crossed without being stopped (WASI stderr) fails a run that ended
        well. Either way the logs kept up to the cap stay in the record."""
        if self.stopped is not None:
            attempt.status, attempt.error = self.stopped
        elif self.sink.overflowed and attempt.status in (OK, ERROR):
            attempt.status, attempt.error = LOGS_TOO_LARGE, self.sink.breach()
        else:
            return
        attempt.code = attempt.result = None

    def fuel_left_if_stopped(self) -> int | None:
        return self.fuel_left if self.stopped is not None else None

    def linker(self, engine: wasmtime.Engine) -> wasmtime.Linker:
        # Types are made per linker: wasmtime binds a FuncType to the first engine that uses it,
        # and using it with another engine aborts the whole process (a Rust panic).
        i32 = wasmtime.ValType.i32()
        log_type = wasmtime.FuncType([i32, i32, i32], [])
        poll_type = wasmtime.FuncType([i32, i32, i32, i32], [i32])
        write_type = wasmtime.FuncType([i32, i32, i32, i32], [i32])
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        linker.allow_shadowing = True  # replace WASI's poll_oneoff, which sleeps past deadlines
        linker.define_func("wasi_snapshot_preview1", "poll_oneoff", poll_type, self._poll, True)
        # WASI's own fd_write would stream a flood to files or pipes without bound.
        linker.define_func("wasi_snapshot_preview1", "fd_write", write_type, self._write, True)
        linker.define_func("env", "log", log_type, self._log, True)
        return linker

    # Host functions avoid raising: wasmtime-py hands a Python exception to whichever thread next
    # leaves wasm (a process-wide slot), so errors become guest-visible answers instead. The one
    # exception is the deadline in _wait.

    def _log(self, caller: wasmtime.Caller, level: int, ptr: int, size: int) -> None:
        try:
            mem = caller.get("memory")
            if not isinstance(mem, wasmtime.Memory):
                raise GuestFault(TRAP, "no exported memory")
            ptr, wanted = ptr & 0xFFFFFFFF, size & 0xFFFFFFFF  # i32 arrive signed
            # Check the whole range is real, but copy only what the sink can keep.
            check_range(mem, caller, ptr, wanted)
            raw = read_bytes(mem, caller, ptr, min(wanted, self.sink.room()))
            self.sink.add(level, raw, wanted=wanted)
        except GuestFault as e:
            self.sink.add(level, f"[jobico] unreadable log message: {e.message}".encode())
        except Exception as e:  # pragma: no cover - defensive, see the note above
            self.sink.add(level, f"[jobico] log failed: {type(e).__name__}".encode())
        if self.sink.overflowed:  # a flood: stop it now rather than at the time limit
            self.stop(caller, LOGS_TOO_LARGE, self.sink.breach())

    def _write(self, caller: wasmtime.Caller, fd: int, iovs: int, count: int, out: int) -> int:
        try:
            mem = caller.get("memory")
            if not isinstance(mem, wasmtime.Memory):
                return _ERRNO_FAULT
            if fd not in (1, 2):
                return _ERRNO_BADF  # nothing else is open for writing: no files, no sockets
            if not 0 <= count <= _IOV_MAX:
                return _ERRNO_INVAL
            total = 0
            for buf, size in _IOVEC.iter_unpack(read_bytes(mem, caller, iovs & U32, 8 * count)):
                check_range(mem, caller, buf, size)
                total += size
                if fd == 1:
                    self._to_stdout(caller, mem, buf, size)
                else:
                    self._to_stderr(caller, mem, buf, size)
            write_bytes(mem, caller, out & U32, struct.pack("<I", total))
            return 0
        except GuestFault:
            return _ERRNO_FAULT
        except Exception:  # pragma: no cover - defensive, see the note above
            return _ERRNO_IO

    def _to_stdout(
        self, caller: wasmtime.Caller, mem: wasmtime.Memory, buf: int, size: int
    ) -> None:
        if self.stdout is None or self.stopped:
            return  # a jobicolet's stdout is not its result
        room = self.stdout_limit + 1 - len(self.stdout)  # one byte more tells it is too much
        self.stdout += read_bytes(mem, caller, buf, min(size, room))
        if len(self.stdout) > self.stdout_limit:
            limit = self.stdout_limit
            why = f"result too large: more than {limit} bytes on stdout, limit is {limit}"
            self.stop(caller, RESULT_TOO_LARGE, why)

    def _to_stderr(
        self, caller: wasmtime.Caller, mem: wasmtime.Memory, buf: int, size: int
    ) -> None:
        if self.stdout is None or self.stopped:
            return  # a jobicolet logs through env.log; its stderr is discarded
        # Read no more than the sink could keep (newlines are not counted in its byte cap).
        keep = self.sink.max_bytes + self.sink.max_lines + 1
        *lines, self._stderr_tail = (
            self._stderr_tail + read_bytes(mem, caller, buf, min(size, keep))
        ).split(b"\n")
        for line in lines:
            self.sink.add(LEVEL_NONE, line.removesuffix(b"\r"))
        if size > keep or len(self._stderr_tail) > self.sink.max_bytes:
            self.end_stderr()
            self.sink.mark_overflow()
        if self.sink.overflowed:
            self.stop(caller, LOGS_TOO_LARGE, self.sink.breach())

    def _poll(self, caller: wasmtime.Caller, in_ptr: int, out_ptr: int, n: int, nout: int) -> int:
        try:
            mem = caller.get("memory")
            if not isinstance(mem, wasmtime.Memory):
                return _ERRNO_FAULT
            if not 0 < n <= _POLL_MAX:
                return _ERRNO_INVAL
            events = self._wait(read_bytes(mem, caller, in_ptr & 0xFFFFFFFF, 48 * n), n)
            if events is None:
                return _ERRNO_INVAL
            write_bytes(mem, caller, out_ptr & 0xFFFFFFFF, b"".join(events))
            write_bytes(mem, caller, nout & 0xFFFFFFFF, struct.pack("<I", len(events)))
            return 0
        except GuestFault as e:
            if e.status == TIMEOUT:
                raise  # the one deliberate trap, see _wait
            return _ERRNO_FAULT
        except Exception:  # pragma: no cover - defensive
            return _ERRNO_IO

    def _wait(self, subs: bytes, n: int) -> list[bytes] | None:
        """Like WASI's poll_oneoff, but never sleeping past the execution's deadline.

        wasmtime's own poll_oneoff sleeps in host code, where epoch interruption cannot reach, so
        a guest could sleep for hours. A sleep that would outlast the deadline ends at it with a
        timeout trap. (The trap travels as a Python exception through wasmtime-py's one global
        slot; two threads trapping at the same instant could swap messages, both still fail.)
        """
        if time.monotonic() >= self.deadline:  # a guest calling in a loop stops here too
            raise GuestFault(TIMEOUT, "time limit exceeded (poll_oneoff)")
        clocks: list[tuple[int, int]] = []  # (userdata, ns from now)
        ready: list[bytes] = []
        for i in range(n):
            userdata, tag = _SUBSCRIPTION.unpack_from(subs, 48 * i)
            if tag == 0:
                clock_id, timeout, _, flags = _CLOCK.unpack_from(subs, 48 * i + 16)
                if flags & 1:  # absolute: only the realtime clock has an origin we share
                    timeout = timeout - time.time_ns() if clock_id == 0 else 0
                clocks.append((userdata, max(0, timeout)))
            elif tag in (1, 2):  # fd_read / fd_write: stdin is a file, outputs never block
                (fd,) = struct.unpack_from("<I", subs, 48 * i + 16)
                errno = 0 if fd in (0, 1, 2) else _ERRNO_BADF
                ready.append(_EVENT.pack(userdata, errno, tag, 0, 0))
            else:
                return None
        waited = 0
        if not ready and clocks:
            waited = min(ns for _, ns in clocks)
            left = self.deadline - time.monotonic()
            if waited / 1e9 > left:
                time.sleep(max(0.0, left))
                raise GuestFault(TIMEOUT, "time limit exceeded while sleeping (poll_oneoff)")
            time.sleep(waited / 1e9)
        fired = [_EVENT.pack(u, 0, 0, 0, 0) for u, ns in clocks if ns <= waited]
        return ready + fired
