"""The plain-value types of the sandbox: Outcome, and the capped LogSink."""

from __future__ import annotations

import json

from jobico.wasm import STATUSES, Outcome
from jobico.wasm.outcome import LogLine, LogSink


def outcome(status: str) -> Outcome:
    return Outcome(
        status=status,
        code=None,
        result=None,
        logs=(LogLine(1, "hi", 1.5),),
        error=None,
        started_at=1.0,
        finished_at=2.0,
        duration_ms=1000.0,
        fuel_used=None,
        memory_bytes=0,
    )


def test_only_statuses_other_than_ok_and_error_are_failures() -> None:
    assert [s for s in STATUSES if outcome(s).failed] == [
        "trap",
        "timeout",
        "out_of_fuel",
        "out_of_memory",
        "invalid_result",
        "result_too_large",
        "logs_too_large",
    ]


def test_to_dict_is_json_ready() -> None:
    d = json.loads(json.dumps(outcome("ok").to_dict()))
    assert d["logs"] == [{"level": 1, "message": "hi", "time": 1.5}]
    assert set(d) == {
        "status",
        "code",
        "result",
        "logs",
        "error",
        "started_at",
        "finished_at",
        "duration_ms",
        "fuel_used",
        "memory_bytes",
    }


def test_sink_keeps_lines_until_the_line_cap_then_counts_the_rest() -> None:
    sink = LogSink(max_lines=2, max_bytes=1000)
    for i in range(5):
        sink.add(1, f"line {i}".encode())
    lines = sink.lines()
    assert [line.message for line in lines[:2]] == ["line 0", "line 1"]
    assert "3 more log line(s) dropped" in lines[2].message and lines[2].level == 2


def test_sink_truncates_the_line_crossing_the_byte_cap() -> None:
    sink = LogSink(max_lines=100, max_bytes=8)
    sink.add(0, b"12345")
    sink.add(0, b"67890")
    sink.add(0, b"x")
    messages = [line.message for line in sink.lines()]
    assert messages[:2] == ["12345", "678 [truncated: 5 bytes]"]
    assert "1 more log line(s) dropped" in messages[2]


def test_sink_overflows_when_a_cap_is_crossed_not_when_reached() -> None:
    sink = LogSink(max_lines=2, max_bytes=10)
    sink.add(0, b"12345")
    sink.add(0, b"67890")
    assert not sink.overflowed  # exactly at both caps
    sink.add(0, b"x")
    assert sink.overflowed
    assert "2 lines / 10 bytes" in sink.breach() and "1 dropped" in sink.breach()


def test_sink_overflows_when_told_its_stream_was_cut() -> None:
    sink = LogSink(max_lines=10, max_bytes=1000)
    sink.add_lines(6, b"head of a longer stream")
    assert not sink.overflowed
    sink.mark_overflow()
    assert sink.overflowed


def test_sink_replaces_invalid_utf8_and_splits_streams_into_lines() -> None:
    sink = LogSink(max_lines=10, max_bytes=1000)
    sink.add(6, b"bad \xff byte")
    sink.add_lines(6, b"one\ntwo\r\nthree")
    assert [line.message for line in sink.lines()] == ["bad \ufffd byte", "one", "two", "three"]
