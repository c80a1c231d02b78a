"""What one execution produced (Outcome, LogLine), the platform defaults (Defaults), and the
capped log collector guests write into (LogSink)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

OK = "ok"
ERROR = "error"
TRAP = "trap"
TIMEOUT = "timeout"
OUT_OF_FUEL = "out_of_fuel"
OUT_OF_MEMORY = "out_of_memory"
INVALID_RESULT = "invalid_result"
STATUSES = (OK, ERROR, TRAP, TIMEOUT, OUT_OF_FUEL, OUT_OF_MEMORY, INVALID_RESULT)

LEVEL_WARN = 2
LEVEL_NONE = 6  # DESIGN §4: "6 no level"; a WASI command's stderr lines get it


@dataclass(frozen=True)
class LogLine:
    level: int
    message: str
    time: float  # unix seconds

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "message": self.message, "time": self.time}


@dataclass(frozen=True)
class Outcome:
    """One execution attempt, in plain Python values only: it crosses Ray actor boundaries."""

    status: str
    code: int | None
    result: str | None
    logs: tuple[LogLine, ...]
    error: str | None
    started_at: float
    finished_at: float
    duration_ms: float
    fuel_used: int | None
    memory_bytes: int

    @property
    def failed(self) -> bool:
        """A failure of the execution; a guest's own non-zero code is an answer, not a failure."""
        return self.status not in (OK, ERROR)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "code": self.code,
            "result": self.result,
            "logs": [line.to_dict() for line in self.logs],
            "error": self.error,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_ms": self.duration_ms,
            "fuel_used": self.fuel_used,
            "memory_bytes": self.memory_bytes,
        }


@dataclass(frozen=True, kw_only=True)
class Defaults:
    """Limits used where a runtime's own `limits` leave a value unset."""

    timeout_ms: int = 10_000
    memory_mb: int = 64
    fuel: int | None = None
    result_kb: int = 1024
    log_lines: int = 1000
    log_bytes: int = 64 * 1024


@dataclass
class Attempt:
    """What a runner found; the sandbox adds times and logs to make the Outcome."""

    status: str = TRAP
    code: int | None = None
    result: str | None = None
    error: str | None = None
    fuel_used: int | None = None
    memory_bytes: int = 0


@dataclass
class LogSink:
    """Log lines of one execution, capped so a chatty guest cannot grow a record without bound.

    Past either cap further lines are dropped and counted; `lines()` then ends with one note
    saying how many were dropped. The line that crosses the byte cap is kept, truncated.
    """

    max_lines: int
    max_bytes: int
    _lines: list[LogLine] = field(default_factory=list)
    _bytes: int = 0
    _dropped: int = 0

    def room(self) -> int:
        """How many more message bytes are worth reading from the guest."""
        if len(self._lines) >= self.max_lines:
            return 0
        return max(0, self.max_bytes - self._bytes)

    def add(self, level: int, raw: bytes, *, wanted: int | None = None) -> None:
        """Keep `raw` as one line; `wanted` is the guest's full length when `raw` was cut short."""
        room = self.room()
        if room == 0:
            self._dropped += 1
            return
        wanted = len(raw) if wanted is None else wanted
        text = raw[:room].decode("utf-8", errors="replace")
        if wanted > room:
            text += f" [truncated: {wanted} bytes]"
        self._lines.append(LogLine(level, text, time.time()))
        self._bytes += min(wanted, room)

    def add_lines(self, level: int, data: bytes) -> None:
        """A stream's bytes (a WASI command's stderr), one log line per newline."""
        for line in data.splitlines():
            self.add(level, line)

    def lines(self) -> tuple[LogLine, ...]:
        if not self._dropped:
            return tuple(self._lines)
        note = (
            f"[jobico] {self._dropped} more log line(s) dropped: limit is "
            f"{self.max_lines} lines / {self.max_bytes} bytes per execution"
        )
        return (*self._lines, LogLine(LEVEL_WARN, note, time.time()))
