"""Sandbox.run with jobicolets (docs/contract.md#guest-abi): every status, limits, instance
reuse and rebuild, module caches, and outcomes made of plain values only."""

from __future__ import annotations

import hashlib
import json
import pickle
import threading
from pathlib import Path

import pytest

from jobico.config import GUEST_DEFAULTS, Settings
from jobico.model import Limits
from jobico.wasm import LogLine, Sandbox
from tests.guests import GuestLimits, run, wasm

MiB = 1 << 20


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- answers -------------------------------------------------------------------------------------


def test_echo_answers_the_event_with_code_0_and_logs_it(sb: Sandbox) -> None:
    out = run(sb, "echo", b'{"name":"jobico"}')
    assert (out.status, out.code, out.result, out.error) == ("ok", 0, '{"name":"jobico"}', None)
    assert [(line.level, line.message) for line in out.logs] == [(6, '{"name":"jobico"}')]
    assert not out.failed
    assert out.started_at <= out.logs[0].time <= out.finished_at
    assert out.duration_ms > 0 and out.fuel_used and out.fuel_used > 0
    assert out.memory_bytes == 65536


def test_echo_handles_an_empty_and_a_large_event(sb: Sandbox) -> None:
    big = b'"' + b"x" * 300_000 + b'"'  # larger than the guest's initial memory: it grows
    assert run(sb, "echo", b"").result == ""
    out = run(sb, "echo", big, log_kb=512)  # the echo logs the event too
    assert (out.status, out.result) == ("ok", big.decode())
    assert out.memory_bytes > 300_000


def test_ver1_guest_is_freed_with_the_allocated_sizes(sb: Sandbox) -> None:
    # The ver 1 guest's free(ptr, size) traps unless size matches what malloc was asked for.
    for event in (b"{}", b'{"a":[1,2,3]}', b"{}"):
        out = run(sb, "echo_ver1", event)
        assert (out.status, out.result) == ("ok", event.decode()), out.error


def test_non_zero_code_is_the_guests_error_answer_not_a_failure(sb: Sandbox) -> None:
    out = run(sb, "code500")
    assert (out.status, out.code, out.result, out.error) == ("error", 500, "bad request", None)
    assert not out.failed
    assert [(line.level, line.message) for line in out.logs] == [(3, "something failed")]


def test_log_lines_keep_their_level_and_call_order(sb: Sandbox) -> None:
    out = run(sb, "levels")
    assert [(line.level, line.message) for line in out.logs] == [
        (level, f"level {level}") for level in range(7)
    ]
    times = [line.time for line in out.logs]
    assert times == sorted(times)
    assert out.result == ""


def test_stdout_of_a_jobicolet_is_not_its_result(sb: Sandbox) -> None:
    out = run(sb, "stdout_print")
    assert (out.status, out.result) == ("ok", "done")


# --- failures ------------------------------------------------------------------------------------


def test_a_trap_is_a_failure_with_the_trap_message(sb: Sandbox) -> None:
    out = run(sb, "trap")
    assert (out.status, out.code, out.result) == ("trap", None, None)
    assert out.failed
    assert out.error and "unreachable" in out.error


def test_an_endless_loop_times_out(sb: Sandbox) -> None:
    out = run(sb, "loop", timeout_ms=200)
    assert out.status == "timeout"
    assert out.error and "time limit" in out.error
    assert 150 < out.duration_ms < 2000


def test_the_default_timeout_applies_when_the_runtime_sets_none() -> None:
    sandbox = Sandbox(defaults=Limits(timeout_ms=100).over(GUEST_DEFAULTS))
    try:
        out = run(sandbox, "loop")
        assert out.status == "timeout" and out.duration_ms < 2000
    finally:
        sandbox.close()


def test_a_run_goes_by_its_runtime_limits_over_the_defaults_within_the_maxima() -> None:
    s = Settings.from_env({"JOBICO_DEFAULT_FUEL": "5000", "JOBICO_MAX_MEMORY_MB": "128"})
    sandbox = Sandbox(defaults=s.guest_defaults, maxima=s.guest_maxima)
    try:
        assert sandbox.resolve(Limits()) == s.guest_defaults
        explicit = Limits(timeout_ms=20_000, memory_mb=100, fuel=7, result_kb=2048, log_kb=512)
        assert sandbox.resolve(explicit) == explicit
        # Above a maximum (accepted before it was lowered): the maximum.
        assert sandbox.resolve(Limits(memory_mb=4096, timeout_ms=10**6)) == Limits(
            timeout_ms=60_000, memory_mb=128, fuel=5000, result_kb=1024, log_kb=256
        )
    finally:
        sandbox.close()


def test_the_platform_fuel_default_and_maximum_from_the_settings_hold_a_run() -> None:
    s = Settings.from_env({"JOBICO_DEFAULT_FUEL": "100000", "JOBICO_MAX_FUEL": "200000"})
    sandbox = Sandbox(defaults=s.guest_defaults, maxima=s.guest_maxima)
    try:
        by_default = run(sandbox, "loop")
        asked_more = run(sandbox, "loop", fuel=10**9)
    finally:
        sandbox.close()
    assert (by_default.status, by_default.fuel_used) == ("out_of_fuel", 100_000)
    assert (asked_more.status, asked_more.fuel_used) == ("out_of_fuel", 200_000)


def test_a_runtime_limit_above_the_platform_maximum_is_held_to_the_maximum() -> None:
    # Deploy refuses such limits; a revision accepted before a maximum was lowered still runs.
    sandbox = Sandbox(maxima=Limits(timeout_ms=100, memory_mb=2))
    try:
        slow = run(sandbox, "loop", timeout_ms=60_000)
        assert slow.status == "timeout" and slow.duration_ms < 2000
        big = run(sandbox, "grow_bomb", memory_mb=512)
        assert (big.status, big.memory_bytes) == ("out_of_memory", 2 * MiB)
    finally:
        sandbox.close()


def test_the_fuel_limit_stops_an_endless_loop(sb: Sandbox) -> None:
    out = run(sb, "loop", fuel=50_000)
    assert out.status == "out_of_fuel"
    assert out.fuel_used == 50_000
    assert out.error and "fuel" in out.error


def test_a_memory_grow_bomb_runs_out_of_memory_at_the_limit(sb: Sandbox) -> None:
    out = run(sb, "grow_bomb", memory_mb=2)
    assert out.status == "out_of_memory"
    assert out.memory_bytes == 2 * MiB
    assert out.error and "2 MiB" in out.error


@pytest.mark.parametrize(
    ("event", "limits", "words"),
    [
        (b"o", {}, "outside guest memory"),
        (b"u", {}, "not valid UTF-8"),
        (b"n", {}, "null pointer"),
    ],
)
def test_a_malformed_result_is_invalid_result(
    sb: Sandbox, event: bytes, limits: GuestLimits, words: str
) -> None:
    out = run(sb, "bad_result", event, **limits)
    assert (out.status, out.code, out.result) == ("invalid_result", None, None)
    assert out.error and words in out.error


def test_a_result_over_the_size_limit_is_result_too_large(sb: Sandbox) -> None:
    out = run(sb, "bad_result", b"b", result_kb=1)
    assert (out.status, out.code, out.result) == ("result_too_large", None, None)
    assert out.error == "result too large: 2048 bytes, limit is 1024"


def test_a_result_within_the_size_limit_is_accepted(sb: Sandbox) -> None:
    out = run(sb, "bad_result", b"b", result_kb=2)
    assert (out.status, len(out.result or "")) == ("ok", 2048)


def test_an_import_the_host_does_not_provide_fails_without_raising(sb: Sandbox) -> None:
    out = run(sb, "import_other")
    assert out.status == "trap"
    assert out.error and "other" in out.error


def test_a_missing_main_function_is_a_failure_naming_it(sb: Sandbox) -> None:
    out = run(sb, "echo", b"{}", mainfunc="handle")
    assert out.status == "trap"
    assert out.error and "'handle'" in out.error


def test_a_module_that_does_not_compile_is_a_failure(sb: Sandbox) -> None:
    out = sb.run(
        digest="garbage",
        load=lambda: b"\0asm not really",
        kind="jobicolet",
        mainfunc="event",
        limits=Limits(),
        event=b"{}",
    )
    assert out.status == "trap"
    assert out.error and "cannot be compiled" in out.error


# --- instances: init once, rebuilt after every failure -------------------------------------------


def test_init_runs_once_per_instance_across_events(sb: Sandbox) -> None:
    # "<init calls><events seen>" from the same instance
    assert [run(sb, "init_count").result for _ in range(3)] == ["11", "12", "13"]


@pytest.mark.parametrize(
    ("mode", "limits", "status"),
    [
        (b"t", {}, "trap"),
        (b"l", {"timeout_ms": 200}, "timeout"),
        (b"l", {"fuel": 100_000}, "out_of_fuel"),
        (b"g", {"memory_mb": 2}, "out_of_memory"),
        (b"o", {}, "invalid_result"),
    ],
)
def test_after_a_failure_the_next_event_runs_on_a_fresh_instance(
    sb: Sandbox, mode: bytes, limits: GuestLimits, status: str
) -> None:
    assert [run(sb, "init_count").result for _ in range(2)] == ["11", "12"]
    failed = run(sb, "init_count", mode, **limits)
    assert failed.status == status, failed.error
    after = run(sb, "init_count")
    # A new instance: init ran once in it and this is the first event it sees.
    assert (after.status, after.result) == ("ok", "11")
    assert after.memory_bytes == 65536  # not the grown memory of the discarded instance


def test_an_error_answer_keeps_the_instance(sb: Sandbox) -> None:
    assert run(sb, "init_count").result == "11"
    answer = run(sb, "init_count", b"e")
    assert (answer.status, answer.code, answer.result) == ("error", 7, "12")
    assert run(sb, "init_count").result == "13"


# --- module caches -------------------------------------------------------------------------------


def test_a_module_is_loaded_and_compiled_once_per_digest(sb: Sandbox) -> None:
    data = wasm("echo")
    calls: list[int] = []

    def load() -> bytes:
        calls.append(1)
        return data

    for i in range(3):
        out = sb.run(
            digest=digest(data),
            load=load,
            kind="jobicolet",
            mainfunc="event",
            limits=Limits(),
            event=str(i).encode(),
        )
        assert out.result == str(i)
    run(sb, "trap")  # another digest
    assert len(calls) == 1


def test_the_disk_cache_serves_a_new_sandbox_without_loading(tmp_path: Path) -> None:
    data = wasm("echo")
    first = Sandbox(cache_dir=tmp_path)
    try:
        assert run(first, "echo").status == "ok"
    finally:
        first.close()
    assert len(list(tmp_path.glob(f"{digest(data)}-*.cwasm"))) == 1
    assert not list(tmp_path.glob("*.tmp"))

    def must_not_load() -> bytes:
        raise AssertionError("loaded despite the disk cache")

    second = Sandbox(cache_dir=tmp_path)
    try:
        out = second.run(
            digest=digest(data),
            load=must_not_load,
            kind="jobicolet",
            mainfunc="event",
            limits=Limits(),
            event=b"{}",
        )
        assert (out.status, out.result) == ("ok", "{}")
    finally:
        second.close()


def test_a_damaged_disk_cache_file_is_compiled_again(tmp_path: Path) -> None:
    first = Sandbox(cache_dir=tmp_path)
    run(first, "echo")
    first.close()
    (cached,) = tmp_path.glob("*.cwasm")
    cached.write_bytes(b"not a compiled module")
    second = Sandbox(cache_dir=tmp_path)
    try:
        assert run(second, "echo").status == "ok"
    finally:
        second.close()
    assert cached.read_bytes() != b"not a compiled module"


# --- logs, values, lifecycle ---------------------------------------------------------------------


def test_log_lines_past_the_line_cap_fail_the_run_keeping_the_lines_up_to_it() -> None:
    sandbox = Sandbox(log_lines=3)
    try:
        out = run(sandbox, "levels")
    finally:
        sandbox.close()
    assert (out.status, out.code, out.result) == ("logs_too_large", None, None)
    assert out.error and "3 lines" in out.error
    assert [line.message for line in out.logs[:3]] == ["level 0", "level 1", "level 2"]
    assert len(out.logs) == 4 and "more log line(s) dropped" in out.logs[3].message


@pytest.mark.parametrize(
    ("guest", "event", "limits"),
    [("trap", b"{}", {}), ("loop", b"{}", {"fuel": 1000}), ("bad_result", b"o", {})],
)
def test_outcomes_hold_only_plain_values(
    sb: Sandbox, guest: str, event: bytes, limits: GuestLimits
) -> None:
    out = run(sb, guest, event, **limits)
    assert out.failed and isinstance(out.error, str)
    assert pickle.loads(pickle.dumps(out)) == out
    plain = json.loads(json.dumps(out.to_dict()))
    assert plain["status"] == out.status and plain["error"] == out.error


def test_to_dict_lists_logs_as_plain_mappings(sb: Sandbox) -> None:
    d = run(sb, "code500").to_dict()
    assert d["logs"] == [{"level": 3, "message": "something failed", "time": d["logs"][0]["time"]}]
    assert isinstance(run(sb, "code500").logs[0], LogLine)


def test_runs_from_several_threads_each_get_their_own_instance(sb: Sandbox) -> None:
    results: list[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(30):
            out = run(sb, "echo", f"{n}-{i}".encode())
            with lock:
                results.append(out.result if out.result == f"{n}-{i}" else str(out.error))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted(f"{n}-{i}" for n in range(4) for i in range(30))


def test_an_unknown_kind_is_refused(sb: Sandbox) -> None:
    with pytest.raises(ValueError, match="unknown runtime kind"):
        sb.run(
            digest="x",
            load=lambda: b"",
            kind="docker",
            mainfunc="event",
            limits=Limits(),
            event=b"{}",
        )


def test_a_closed_sandbox_refuses_to_run() -> None:
    sandbox = Sandbox()
    sandbox.close()
    with pytest.raises(RuntimeError, match="closed"):
        run(sandbox, "echo")


def test_tenants_with_the_same_module_never_share_an_instance(sb: Sandbox) -> None:
    def count(owner: str) -> str | None:
        return run(sb, "init_count", b"c", owner=owner).result

    assert count("tenant-a") == "11"
    assert count("tenant-a") == "12"  # the warm instance of tenant-a: its second event
    assert count("tenant-b") == "11"  # same bytes, another owner: a fresh instance


# --- bounded caches: modules and warm instances, the least recently used evicted --------------


def test_warm_instances_are_bounded_and_an_evicted_one_is_rebuilt_on_next_use() -> None:
    sandbox = Sandbox(max_instances=2)

    def count(owner: str) -> str | None:
        return run(sandbox, "init_count", b"c", owner=owner).result

    try:
        assert [count(o) for o in ("a", "b", "a", "c")] == ["11", "11", "12", "11"]
        assert sandbox.cached == (1, 2)  # c's instance pushed out b's, the least recently used
        assert count("a") == "13"  # still warm
        assert count("b") == "11"  # rebuilt: init ran again, its first event, as at first
        assert sandbox.cached == (1, 2)
    finally:
        sandbox.close()


def test_compiled_modules_are_bounded_and_an_evicted_one_is_compiled_again_the_same() -> None:
    sandbox = Sandbox(max_modules=1)
    loads: list[str] = []

    def echo(guest: str) -> tuple[str, str | None]:
        data = wasm(guest)
        out = sandbox.run(
            digest=digest(data),
            load=lambda: loads.append(guest) or data,  # type: ignore[func-returns-value]
            kind="jobicolet",
            mainfunc="event",
            limits=Limits(),
            event=b'{"a":1}',
        )
        return out.status, out.result

    try:
        first = echo("echo")
        assert echo("echo_ver1") == ("ok", '{"a":1}')
        assert sandbox.cached[0] == 1
        assert echo("echo") == first == ("ok", '{"a":1}')
        assert loads == ["echo", "echo_ver1", "echo"]
    finally:
        sandbox.close()
