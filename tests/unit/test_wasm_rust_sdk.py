"""Guests built with the original Rust SDK (wee_alloc): a free that traps after the answer was
read, and a malloc that hands out one address twice, as the original host tolerates them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobico.cli.runlocal import exit_status, render, run_local
from jobico.wasm import Sandbox
from tests.guests import run, wasm

LEVEL_WARN = 2


def platform_lines(out: object) -> list[str]:
    return [
        line.message
        for line in out.logs  # type: ignore[attr-defined]
        if line.level == LEVEL_WARN and line.message.startswith("[jobico]")
    ]


def test_a_free_that_traps_after_the_answer_leaves_the_answer_and_a_platform_line(
    sb: Sandbox,
) -> None:
    out = run(sb, "free_traps", b'{"a":1}')
    assert (out.status, out.code, out.result, out.error) == ("ok", 0, "1", None)
    assert not out.failed
    assert out.logs[0].message == "answered, freeing"  # the guest's own line stays first
    (note,) = platform_lines(out)
    assert "free" in note and "after the answer" in note and "unreachable" in note


def test_an_error_answer_stands_too_when_free_traps_after_it(sb: Sandbox) -> None:
    out = run(sb, "free_traps", b"err")
    assert (out.status, out.code, out.result) == ("error", 3, "1")
    assert len(platform_lines(out)) == 1


def test_the_instance_whose_free_trapped_is_rebuilt_for_the_next_event(sb: Sandbox) -> None:
    # The guest answers how many events its instance has served: always 1 on a fresh one.
    results = [run(sb, "free_traps", b'{"n":%d}' % i).result for i in range(3)]
    assert results == ["1", "1", "1"]


@pytest.mark.parametrize(("event", "where"), [(b"trap", "event"), (b"{", "malloc")])
def test_a_trap_before_the_answer_is_read_stays_a_trap(
    sb: Sandbox, event: bytes, where: str
) -> None:
    # 't' traps in event; a one-byte event makes this guest's malloc trap.
    out = run(sb, "free_traps", event)
    assert (out.status, out.code, out.result) == ("trap", None, None), where
    assert out.error and "unreachable" in out.error
    assert platform_lines(out) == []


def test_one_address_handed_out_twice_still_gets_the_input_and_gives_the_answer(
    sb: Sandbox,
) -> None:
    # The result slot is the input buffer: the input was written before the slot was asked
    # for, and the guest read it before writing its answer there.
    for event in (b'{"name":"jobico"}', b'{"a":[1,2,3]}', b"{}"):
        out = run(sb, "same_address", event)
        assert (out.status, out.code, out.result) == ("ok", 0, event.decode()), out.error
        assert len(platform_lines(out)) == 1  # the double free of that address


def test_run_local_shows_the_answer_and_the_platform_line(tmp_path: Path) -> None:
    module = tmp_path / "free_traps.wasm"
    module.write_bytes(wasm("free_traps"))
    out = run_local(module, json.dumps({"a": 1}).encode())
    assert exit_status(out) == 0
    text = render(out)
    assert "status:  ok" in text and "result:  1" in text
    assert "[2 warn] [jobico]" in text
