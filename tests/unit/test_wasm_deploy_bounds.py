"""Bounds on what a deploy-time module check may cost (wall clock for guest start code and for
compiling, a module's size) and their settings; the memory limit counting every memory of an
instance; poll_oneoff bounded in subscriptions and by the deadline."""

from __future__ import annotations

import threading
import time

import pytest
import wasmtime

from jobico.config import Settings
from jobico.errors import FileInvalid, InvalidInput, Unavailable
from jobico.wasm import Sandbox, check_module
from jobico.wasm.checks import GRACE_S, ModuleChecks
from tests.conftest import wait_for
from tests.guests import HERE, run, wasm


def big_jobicolet(functions: int) -> bytes:
    """The echo guest plus `functions` functions of dense arithmetic: slow to compile."""
    body = "(local.set 0 (i32.add (local.get 0) (i32.mul (local.get 0) (i32.const 7))))" * 200
    funcs = "".join(f"(func (param i32) (result i32) {body} local.get 0)" for _ in range(functions))
    echo = (HERE / "echo.wat").read_text().rstrip().removesuffix(")")
    return bytes(wasmtime.wat2wasm(f"{echo} {funcs})"))


# --- guest code at deploy ------------------------------------------------------------------------


def test_start_code_looping_on_wasi_calls_is_refused_at_the_wall_clock_bound() -> None:
    # Each random_get over 64 MiB costs a few units of fuel: fuel alone let it run for hours.
    t0 = time.monotonic()
    with pytest.raises(FileInvalid, match=r"start code .* still running after 1 s") as refused:
        check_module(wasm("start_random"), timeout_s=1.0)
    assert time.monotonic() - t0 < 1.0 + GRACE_S
    assert refused.value.__context__ is None or not isinstance(
        refused.value.__context__, wasmtime.WasmtimeError
    )


def test_a_module_whose_start_code_is_quick_still_passes_with_its_ver() -> None:
    assert check_module(wasm("echo_ver1"), timeout_s=1.0).ver == 1


def test_the_checker_refuses_hostile_start_code_within_the_bound_and_remembers() -> None:
    checks = ModuleChecks(timeout_s=1.0)
    try:
        t0 = time.monotonic()
        with pytest.raises(FileInvalid, match="start code"):
            checks(wasm("start_random"), "jobicolet", "event")
        assert time.monotonic() - t0 < 1.0 + GRACE_S + 0.5
        t1 = time.monotonic()
        with pytest.raises(FileInvalid, match="start code"):  # the registry's step: no wait
            checks.known(wasm("start_random"), "jobicolet", "event")
        assert time.monotonic() - t1 < 0.1
    finally:
        checks.close()


def test_a_check_does_not_hold_the_callers_other_work() -> None:
    # What the control actor relies on: while one thread waits on a hostile check, another
    # thread's check of a good module is answered at once (wasmtime runs without the GIL).
    checks = ModuleChecks(timeout_s=2.0)
    try:
        refused: list[str] = []

        def deploy_hostile() -> None:
            try:
                checks(wasm("start_random"), "jobicolet", "event")
            except FileInvalid as e:
                refused.append(e.message)

        hostile = threading.Thread(target=deploy_hostile)
        hostile.start()
        wait_for(lambda: checks.running() == 1, what="the hostile check to start")
        t0 = time.monotonic()
        checks(wasm("echo"), "jobicolet", "event")
        assert time.monotonic() - t0 < 1.0
        hostile.join()
        assert refused and "start code" in refused[0]
    finally:
        checks.close()


def test_known_starts_a_check_it_has_no_verdict_for_and_asks_to_come_back() -> None:
    checks = ModuleChecks(timeout_s=2.0)
    try:
        with pytest.raises(Unavailable, match="still being checked"):
            checks.known(wasm("echo"), "jobicolet", "event")
        checks(wasm("echo"), "jobicolet", "event")  # the check it started: passed
        checks.known(wasm("echo"), "jobicolet", "event")
    finally:
        checks.close()


# --- compiling -----------------------------------------------------------------------------------


def test_a_module_over_the_size_limit_is_refused_before_compiling() -> None:
    data = wasm("echo")
    with pytest.raises(
        FileInvalid, match=r"module is 0.0 MiB; this platform accepts modules of up to "
    ):
        check_module(data, max_bytes=100)
    checks = ModuleChecks(max_bytes=100)
    try:
        with pytest.raises(FileInvalid, match="accepts modules of up to"):
            checks(data, "jobicolet", "event")
    finally:
        checks.close()


def test_a_module_that_compiles_past_the_bound_is_refused_at_it() -> None:
    data = big_jobicolet(2000)  # about 4 MB of code: a second or more to compile here
    checks = ModuleChecks(timeout_s=0.05, grace_s=0.1)
    try:
        t0 = time.monotonic()
        with pytest.raises(FileInvalid, match=r"checking the module took .* more than the 0.05 s"):
            checks(data, "jobicolet", "event")
        assert time.monotonic() - t0 < 0.5
        # Compiling cannot be interrupted; it ends in the background, and the refusal stands.
        wait_for(lambda: checks.running() == 0, what="the compilation to end")
        with pytest.raises(FileInvalid, match=r"more than the 0\.05 s"):
            checks.known(data, "jobicolet", "event")
    finally:
        checks.close()


# --- every memory counts -------------------------------------------------------------------------


def test_a_module_with_more_than_one_memory_is_refused_at_deploy() -> None:
    with pytest.raises(FileInvalid, match="defines 8 memories; a guest has one memory"):
        check_module(wasm("many_memories"))


def test_extra_memories_never_run_beyond_the_memory_limit(sb: Sandbox) -> None:
    # Seven extra memories of 9 pages each under a 16-page limit: 4 MiB under memory_mb: 1.
    out = run(sb, "many_memories", b"9", memory_mb=1)
    assert out.failed and out.result is None
    assert out.error and "memory count" in out.error


# --- poll_oneoff ---------------------------------------------------------------------------------


def test_poll_oneoff_with_a_flood_of_ready_subscriptions_stops_at_the_deadline(sb: Sandbox) -> None:
    out = run(sb, "poll_flood", timeout_ms=400)
    assert out.status == "timeout", out.error
    # Unbounded, one call alone took seconds and a gigabyte. The margin is 4x the timeout: a
    # machine loaded by parallel Ray tests once took 800 ms to notice the deadline.
    assert out.duration_ms < 1600


# --- settings ------------------------------------------------------------------------------------


def test_the_deploy_check_bounds_are_settings_with_defaults() -> None:
    assert (Settings().deploy_check_s, Settings().max_module_mb) == (5.0, 64)
    env = {"JOBICO_DEPLOY_CHECK_S": "2.5", "JOBICO_MAX_MODULE_MB": "16"}
    settings = Settings.from_env(env)
    assert (settings.deploy_check_s, settings.max_module_mb) == (2.5, 16)


@pytest.mark.parametrize(
    ("name", "raw", "why"),
    [
        ("JOBICO_DEPLOY_CHECK_S", "0", "must be above 0"),
        ("JOBICO_DEPLOY_CHECK_S", "inf", "must be above 0"),
        ("JOBICO_DEPLOY_CHECK_S", "soon", "must be a number"),
        ("JOBICO_MAX_MODULE_MB", "-1", "must be above 0"),
        ("JOBICO_MAX_MODULE_MB", "1.5", "must be a whole number"),
    ],
)
def test_deploy_check_bounds_that_would_refuse_everything_are_refused(
    name: str, raw: str, why: str
) -> None:
    with pytest.raises(InvalidInput, match=f"{name} {why}"):
        Settings.from_env({name: raw})
