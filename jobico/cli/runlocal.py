"""`jobico run-local`: one event through one module on this machine, without a cluster. The
module passes the deploy check first, then runs in the Sandbox the executors use. No Ray here."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import IO

from jobico import strictjson
from jobico.cli.render import log_line
from jobico.config import GUEST_DEFAULTS
from jobico.errors import FileInvalid, InvalidInput
from jobico.model import Limits, compact
from jobico.wasm import Outcome, Sandbox, check_module

KINDS = ("jobicolet", "wasi")

# What `jobico run-local` exits with once the module ran. Problems found before it runs (a bad
# module, event or option) exit as every command's errors do (errors.EXIT_CODE: 2 bad input).
EXIT_OK = 0  # the guest answered code 0
EXIT_ANSWERED_ERROR = 1  # the guest answered a non-zero code: its error answer
EXIT_FAILED = 7  # the execution failed: trap, timeout, out of fuel or memory, too large, ...


def exit_status(outcome: Outcome) -> int:
    if outcome.failed:
        return EXIT_FAILED
    return EXIT_OK if outcome.code == 0 else EXIT_ANSWERED_ERROR


def read_event(arg: str, stdin: IO[bytes]) -> bytes:
    """EVENT_JSON as the guest gets it (compact JSON, sorted keys, as the listener re-serializes
    events): `arg` is the JSON text itself, `@path` for a file's contents, `-` for stdin."""
    if arg == "-":
        return parse_event(stdin.read(), "the event on stdin")
    if arg.startswith("@"):
        path = Path(arg[1:])
        try:
            return parse_event(path.read_bytes(), str(path))
        except OSError as e:
            raise InvalidInput(f"cannot read the event from {path}: {e.strerror}") from None
    return parse_event(arg.encode(), "EVENT_JSON")


def parse_event(raw: bytes, source: str) -> bytes:
    return compact(strictjson.loads(raw, source)).encode()


def run_local(
    module: Path,
    event: bytes,
    *,
    kind: str = "jobicolet",
    mainfunc: str = "event",
    limits: Limits | None = None,
    defaults: Limits = GUEST_DEFAULTS,
) -> Outcome:
    """Check `module` as a deploy would (FileInvalid naming it if it cannot serve a `kind`
    runtime), then run `event` through it once in a fresh Sandbox."""
    try:
        data = module.read_bytes()
    except OSError as e:
        raise InvalidInput(f"cannot read {module}: {e.strerror}") from None
    try:
        check_module(data, kind=kind, mainfunc=mainfunc)
    except FileInvalid as e:
        raise FileInvalid(f"{module.name}: {e.message}", file=module.name) from None
    sandbox = Sandbox(defaults=defaults)
    try:
        return sandbox.run(
            digest=hashlib.sha256(data).hexdigest(),
            load=lambda: data,
            kind=kind,
            mainfunc=mainfunc,
            limits=limits or Limits(),
            event=event,
        )
    finally:
        sandbox.close()


def render(outcome: Outcome) -> str:
    """The outcome for people: one field a line, log lines indented under `logs`. Linear memory
    never shrinks, so its size when the run ended is its peak."""
    fuel = "not metered" if outcome.fuel_used is None else f"{outcome.fuel_used:,} units"
    memory = f"{outcome.memory_bytes / (1 << 20):.2f} MiB peak ({outcome.memory_bytes:,} bytes)"
    logs = [log_line(line.level, line.message, indent="  ") for line in outcome.logs]
    lines = [
        f"status:  {outcome.status}",
        f"code:    {'-' if outcome.code is None else outcome.code}",
        f"result:  {'-' if outcome.result is None else _indented(outcome.result)}",
        f"error:   {'-' if outcome.error is None else _indented(outcome.error)}",
        f"logs:    {len(outcome.logs)} line{'s' * (len(outcome.logs) != 1)}",
        *logs,
        f"fuel:    {fuel}",
        f"memory:  {memory}",
        f"time:    {outcome.duration_ms:.1f} ms",
    ]
    return "\n".join(lines)


def _indented(text: str) -> str:
    """A multi-line value (a WASI command's stdout, a trap's backtrace) stays in its column."""
    return text.replace("\n", "\n         ")
