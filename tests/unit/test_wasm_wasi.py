"""Sandbox.run with kind "wasi" (docs/contract.md#the-wasi-kind): event on stdin, stdout is the
result, exit status the code, stderr lines the logs; same limits as jobicolets."""

from __future__ import annotations

from typing import Unpack

from jobico.wasm import Outcome, Sandbox
from tests.guests import GuestLimits
from tests.guests import run as run_guest


def run(sb: Sandbox, guest: str, event: bytes, **limits: Unpack[GuestLimits]) -> Outcome:
    return run_guest(sb, guest, event, kind="wasi", **limits)


def test_stdin_is_the_event_stdout_the_result_stderr_the_logs(sb: Sandbox) -> None:
    out = run(sb, "wasi_echo", b'{"hello":"wasi"}')
    assert (out.status, out.code, out.result, out.error) == ("ok", 0, '{"hello":"wasi"}', None)
    assert [(line.level, line.message) for line in out.logs] == [(6, "echo done")]
    assert out.fuel_used and out.memory_bytes == 65536


def test_a_non_zero_exit_status_is_the_guests_error_answer(sb: Sandbox) -> None:
    out = run(sb, "wasi_echo", b"!oops")
    assert (out.status, out.code, out.result) == ("error", 3, "!oops")
    assert not out.failed


def test_every_event_gets_a_new_instance(sb: Sandbox) -> None:
    # The echo reads stdin to its end: a reused instance or stdin would show earlier events.
    assert [run(sb, "wasi_echo", f"{i}".encode()).result for i in range(3)] == ["0", "1", "2"]


def test_stdout_beyond_the_result_limit_is_result_too_large(sb: Sandbox) -> None:
    out = run(sb, "wasi_echo", b"x" * 2000, result_kb=1)
    assert (out.status, out.code, out.result) == ("result_too_large", None, None)
    assert out.error and "result too large" in out.error


def test_a_short_sleep_completes(sb: Sandbox) -> None:
    out = run(sb, "wasi_sleep", b"short")
    assert (out.status, out.result) == ("ok", "slept")
    assert out.duration_ms >= 10


def test_a_sleep_past_the_deadline_times_out_at_the_deadline(sb: Sandbox) -> None:
    # wasmtime's own poll_oneoff would sleep the full 60 s, out of reach of epoch interruption.
    out = run(sb, "wasi_sleep", b"L", timeout_ms=200)
    assert out.status == "timeout"
    assert 150 < out.duration_ms < 2000


def test_a_module_without_start_is_a_failure(sb: Sandbox) -> None:
    out = run(sb, "echo", b"{}")
    assert out.status == "trap"
    assert out.error and "_start" in out.error


def test_the_next_event_after_a_failure_runs_normally(sb: Sandbox) -> None:
    assert run(sb, "wasi_echo", b"x" * 2000, result_kb=1).status == "result_too_large"
    assert run(sb, "wasi_echo", b"again").result == "again"
