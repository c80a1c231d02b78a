"""What one execution produced (Outcome, LogLine) and the capped log collector guests write into
(LogSink)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

OK = "ok"
ERROR = "error"
TRAP = "trap"
TIMEOUT = "timeout"
OUT_OF_FUEL = "out_of_fuel"
OUT_OF_MEMORY = "out_of_memory"
INVALID_RESULT = "invalid_result"
RESULT_TOO_LARGE = "result_too_large"
LOGS_TOO_LARGE = "logs_too_large"
STATUSES = (
    OK,
    ERROR,
    TRAP,
    TIMEOUT,
    OUT_OF_FUEL,
    OUT_OF_MEMORY,
    INVALID_RESULT,
    RESULT_TOO_LARGE,
    LOGS_TOO_LARGE,
)

LEVEL_WARN = 2
LEVEL_NONE = 6  # docs/contract.md#logging: "6 no level"; a WASI command's stderr lines get it


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

    The line that crosses the byte cap is kept, truncated; further lines are dropped and counted,
    and `lines()` then ends with one note saying how many. Crossing a cap sets `overflowed`: the
    sandbox makes that execution a `logs_too_large` failure, keeping the lines up to the cap.
    """

    max_lines: int
    max_bytes: int
    _lines: list[LogLine] = field(default_factory=list)
    _bytes: int = 0
    _dropped: int = 0
    _truncated: bool = False
    _notes: list[LogLine] = field(default_factory=list)

    @property
    def overflowed(self) -> bool:
        return self._dropped > 0 or self._truncated

    def mark_overflow(self) -> None:
        """The source had more than was given to `add` (a stream read only up to the cap)."""
        self._truncated = True

    def breach(self) -> str:
        """The failure's explanation, once `overflowed`."""
        return (
            f"log limit exceeded: {self.max_lines} lines / {self.max_bytes} bytes per execution; "
            f"{len(self._lines)} line(s) kept, {self._dropped} dropped"
        )

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
            self._truncated = True
        self._lines.append(LogLine(level, text, time.time()))
        self._bytes += min(wanted, room)

    def add_lines(self, level: int, data: bytes) -> None:
        """A stream's bytes (a WASI command's stderr), one log line per newline."""
        for line in data.splitlines():
            self.add(level, line)

    def note(self, message: str) -> None:
        """A platform line ("[jobico] ..." at warn level): outside the guest's caps, as the
        record must say what the platform did whatever the guest logged."""
        self._notes.append(LogLine(LEVEL_WARN, message, time.time()))

    def lines(self) -> tuple[LogLine, ...]:
        if not self._dropped:
            return (*self._lines, *self._notes)
        note = (
            f"[jobico] {self._dropped} more log line(s) dropped: limit is "
            f"{self.max_lines} lines / {self.max_bytes} bytes per execution"
        )
        return (*self._lines, *self._notes, LogLine(LEVEL_WARN, note, time.time()))
