"""How the CLI shows records: `jobico executions` lines, and guest log levels rendered the same
way there as in `jobico run-local`."""

from __future__ import annotations

from typing import Any

from jobico.cli.render import render_record
from jobico.cli.runlocal import render
from jobico.wasm.outcome import LogLine, Outcome

LOGS = [(1, "hello"), (6, "from stderr"), (9, "a level without a name")]


def record(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "tenant": "acme",
        "event": "order",
        "event_id": "01M8M3EZCGGE30WH6SDB04FKVT",
        "attempt": 1,
        "status": "ok",
        "code": 0,
        "result": "done",
        "error": None,
        "finished_at": 1795980012.668,
        "duration_ms": 2.25,
        "logs": [{"level": lv, "message": m, "time": 1795980012.6} for lv, m in LOGS],
    }
    return base | fields


def outcome() -> Outcome:
    return Outcome(
        status="ok",
        code=0,
        result="done",
        logs=tuple(LogLine(lv, m, 1795980012.6) for lv, m in LOGS),
        error=None,
        started_at=1795980012.6,
        finished_at=1795980012.668,
        duration_ms=2.25,
        fuel_used=10,
        memory_bytes=65536,
    )


def test_a_record_is_one_line_then_its_logs_indented_with_level_number_and_name() -> None:
    assert render_record(record()).splitlines() == [
        "2026-11-29 19:20:12.668 acme/order 01M8M3EZCGGE30WH6SDB04FKVT #1 ok code=0 2.2ms"
        " result=done",
        "    [1 info] hello",
        "    [6 none] from stderr",
        "    [9] a level without a name",
    ]


def test_a_failure_shows_its_error_and_no_code() -> None:
    line = render_record(record(status="trap", code=None, result=None, error="unreachable"))
    assert line.splitlines()[0].endswith("#1 trap 2.2ms error=unreachable")


def test_executions_and_run_local_render_log_levels_alike() -> None:
    executions = [line.strip() for line in render_record(record()).splitlines()[1:]]
    run_local = [line.strip() for line in render(outcome()).splitlines() if line.startswith("  [")]
    assert (
        executions
        == run_local
        == ["[1 info] hello", "[6 none] from stderr", "[9] a level without a name"]
    )
