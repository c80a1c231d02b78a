"""Hostile guests (issue 5): each attack ends as its own failure status with its figures, the
same runtime serves its next event normally, and no guest sees another tenant's memory."""

from __future__ import annotations

from typing import Unpack

import pytest

from jobico.errors import FileInvalid
from jobico.wasm import Outcome, Sandbox, check_module
from tests.guests import GuestLimits, run, wasm

MiB = 1 << 20
AFTER = b'{"after":1}'  # the hostile guest echoes any event not starting with an attack letter


def hostile(
    sb: Sandbox, event: bytes, owner: str = "tenant-a", **limits: Unpack[GuestLimits]
) -> Outcome:
    return run(sb, "hostile", event, owner=owner, **limits)


@pytest.mark.parametrize(
    ("attack", "limits", "status", "words"),
    [
        (b"l", {"timeout_ms": 200}, "timeout", "time limit exceeded"),
        (b"r", {}, "trap", "call stack exhausted"),
        (b"g", {"memory_mb": 4}, "out_of_memory", "memory limit of 4 MiB"),
        (b"h", {}, "result_too_large", "2097152 bytes, limit is 1048576"),
        (b"f", {}, "logs_too_large", "log limit exceeded"),
        (b"o", {}, "invalid_result", "outside guest memory"),
        (b"v", {}, "invalid_result", "outside guest memory"),
    ],
)
def test_an_attack_is_its_own_failure_and_the_runtime_serves_the_next_event(
    sb: Sandbox, attack: bytes, limits: GuestLimits, status: str, words: str
) -> None:
    assert hostile(sb, AFTER, **limits).status == "ok"  # a warm instance, then the attack
    out = hostile(sb, attack, **limits)
    assert (out.status, out.code, out.result) == (status, None, None)
    assert out.error and words in out.error
    assert out.failed
    after = hostile(sb, AFTER, **limits)
    assert (after.status, after.result) == ("ok", AFTER.decode())


def test_an_endless_loop_is_stopped_at_its_deadline_without_a_fuel_figure(sb: Sandbox) -> None:
    out = hostile(sb, b"l", timeout_ms=200)
    assert 190 <= out.duration_ms < 2000
    assert out.fuel_used is None  # wasmtime's counter is stale after an interrupt: not reported


def test_deep_recursion_traps_on_the_wasm_stack_not_the_hosts(sb: Sandbox) -> None:
    out = hostile(sb, b"r")
    assert out.status == "trap"
    assert out.error and out.error.startswith("call stack exhausted")
    assert out.fuel_used and out.fuel_used > 0


def test_a_memory_grow_bomb_stops_at_the_limit_which_is_its_peak(sb: Sandbox) -> None:
    out = hostile(sb, b"g", memory_mb=4)
    assert (out.status, out.memory_bytes) == ("out_of_memory", 4 * MiB)


def test_a_huge_result_is_refused_and_the_grown_memory_is_the_peak(sb: Sandbox) -> None:
    out = hostile(sb, b"h")
    assert out.status == "result_too_large"
    assert out.memory_bytes == 33 * 65536  # one page grown by 32 to hold 2 MiB
    assert hostile(sb, b"h", result_kb=2048).status == "ok"  # allowed when the runtime says so


def test_a_log_flood_is_stopped_at_the_cap_keeping_the_lines_up_to_it(sb: Sandbox) -> None:
    out = hostile(sb, b"f", fuel=10**9)
    assert out.status == "logs_too_large"
    kept = [line for line in out.logs if not line.message.startswith("[jobico]")]
    assert len(kept) == 256 and all(len(line.message) == 1024 for line in kept)  # 256 KiB
    assert "more log line(s) dropped" in out.logs[-1].message
    # Stopped at once, not at its deadline, and charged the fuel it burnt, not the budget.
    assert out.duration_ms < 2000
    assert out.fuel_used is not None and 0 < out.fuel_used < 10**6


def test_a_log_flood_breaches_a_smaller_runtime_cap(sb: Sandbox) -> None:
    out = hostile(sb, b"f", log_kb=2)
    assert out.status == "logs_too_large"
    assert out.error and "2048 bytes" in out.error
    assert sum(len(line.message) for line in out.logs[:2]) == 2048


def test_table_growth_is_refused_beyond_a_million_elements(sb: Sandbox) -> None:
    # Table elements live outside linear memory, so the memory limit does not cover them.
    out = hostile(sb, b"t")
    assert (out.status, out.result) == ("ok", "refused")


def test_wasi_offers_no_files_env_args_or_sockets(sb: Sandbox) -> None:
    out = hostile(sb, b"w")
    assert out.status == "ok", out.error
    figures = [ord(c) - ord("0") for c in out.result or ""]
    badf = 8
    assert figures == [
        badf,  # path_open relative to fd 3: no preopened directory
        badf,  # fd_prestat_get(3): nothing preopened
        0, 0, 0,  # environ_sizes_get: no variables, no bytes
        0, 0, 0,  # args_sizes_get: no arguments, no bytes
        badf,  # sock_accept(3)
        badf,  # sock_recv(3)
    ]  # fmt: skip


def test_a_trap_in_init_fails_every_event_each_on_a_fresh_instance(sb: Sandbox) -> None:
    outs = [run(sb, "init_trap") for _ in range(2)]
    assert [out.status for out in outs] == ["trap", "trap"]
    assert all(out.error and "unreachable" in out.error for out in outs)
    assert run(sb, "echo").status == "ok"  # the sandbox itself is unharmed


def test_missing_exports_fail_at_run_and_are_refused_at_deploy(sb: Sandbox) -> None:
    out = run(sb, "missing_malloc")
    assert out.status == "trap"
    assert out.error == "module does not export a function 'malloc'"
    with pytest.raises(FileInvalid, match="lacks required export"):
        check_module(wasm("missing_malloc"))


@pytest.mark.parametrize(
    ("guest", "message"),
    [
        ("import_other", "imports 'env.other'; only env.log and the functions of WASI"),
        ("import_memory", "imports 'env.memory'; only env.log and the functions of WASI"),
        ("import_fake_wasi", "imports 'wasi_snapshot_preview1.open_any_file'; only env.log and"),
        (
            "import_wrong_type",
            "import 'wasi_snapshot_preview1.fd_write' has type (i64) -> (i64), "
            "expected (i32, i32, i32, i32) -> (i32)",
        ),
    ],
)
def test_imports_beyond_env_log_and_wasi_preview1_are_refused_at_deploy(
    guest: str, message: str
) -> None:
    with pytest.raises(FileInvalid) as refused:
        check_module(wasm(guest))
    assert refused.value.message.startswith(message)


def test_a_tenant_never_reads_what_another_tenant_left_in_memory(sb: Sandbox) -> None:
    secret = b"s-secret-of-tenant-a"
    assert hostile(sb, secret, owner="tenant-a").result == secret.decode()
    # The probe works: tenant A's warm instance still holds the secret...
    assert (hostile(sb, b"p", owner="tenant-a").result or "").startswith(secret.decode())
    # ...tenant B, with the very same module, gets an instance of its own.
    assert hostile(sb, b"p", owner="tenant-b").result == "\0" * 32
    # And a failure hands tenant A a fresh instance too: the secret is gone with the old one.
    assert hostile(sb, b"r", owner="tenant-a").status == "trap"
    assert hostile(sb, b"p", owner="tenant-a").result == "\0" * 32


# --- WASI commands ---------------------------------------------------------------------------


def flood(sb: Sandbox, event: bytes, **limits: Unpack[GuestLimits]) -> Outcome:
    return run(sb, "wasi_flood", event, kind="wasi", **limits)


def test_a_wasi_stderr_flood_is_stopped_at_the_log_cap(sb: Sandbox) -> None:
    out = flood(sb, b"e", log_kb=4, timeout_ms=5000)
    assert (out.status, out.code, out.result) == ("logs_too_large", None, None)
    assert out.duration_ms < 2000  # stopped at the cap, not at the deadline
    assert sum(len(line.message.split(" [truncated")[0]) for line in out.logs) == 4096
    assert (flood(sb, b"fine").status, flood(sb, b"fine").result) == ("ok", "fine")


def test_a_wasi_stdout_flood_is_stopped_at_the_result_limit(sb: Sandbox) -> None:
    out = flood(sb, b"o", result_kb=8, timeout_ms=5000)
    assert (out.status, out.result) == ("result_too_large", None)
    assert out.error == "result too large: more than 8192 bytes on stdout, limit is 8192"
    assert out.duration_ms < 2000
    assert flood(sb, b"fine", result_kb=8).status == "ok"


def test_a_wasi_commands_peak_memory_is_its_memory_at_exit(sb: Sandbox) -> None:
    assert flood(sb, b"fine").memory_bytes == 65536
    assert flood(sb, b"g").memory_bytes == 16 * 65536
