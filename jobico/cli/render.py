"""How the CLI reads times from people and shows records to them."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from jobico.errors import InvalidInput

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# The guest ABI's log levels (docs/contract.md#logging). A guest may pass any number; those
# without a name are shown as the bare number they were stored as.
LEVELS = {0: "debug", 1: "info", 2: "warn", 3: "error", 4: "fatal", 5: "panic", 6: "none"}


def parse_since(text: str, *, now: float | None = None) -> float:
    """A duration back from now (`90s`, `10m`, `2h`, `1d`) or an ISO 8601 time, as unix seconds."""
    now = time.time() if now is None else now
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if match:
        return now - float(match[1]) * _UNITS[match[2]]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"--since takes a duration such as 10m or 2h, or an ISO time; got {text!r}"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def log_line(level: int, message: str, *, indent: str) -> str:
    """One guest log line as `jobico executions` and `jobico run-local` both show it."""
    name = LEVELS.get(level)
    return f"{indent}[{level} {name}] {message}" if name else f"{indent}[{level}] {message}"


def render_record(r: dict[str, Any]) -> str:
    """One line per execution attempt; logs follow indented."""
    when = datetime.fromtimestamp(r["finished_at"], UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    code = "" if r["code"] is None else f" code={r['code']}"
    answer = f" result={r['result']}" if r["result"] is not None else f" error={r['error']}"
    head = (
        f"{when} {r['tenant']}/{r['event']} {r['event_id']} #{r['attempt']} {r['status']}{code}"
        f" {r['duration_ms']:.1f}ms{answer}"
    )
    logs = [log_line(line["level"], line["message"], indent="    ") for line in r["logs"]]
    return "\n".join([head, *logs])


def render_status(report: dict[str, Any]) -> str:
    lines = [f"{name:<12} {state}" for name, state in report["components"].items()]
    for tenant, packages in report["tenants"].items():
        lines.append(f"tenant {tenant}: {', '.join(packages) or '(no packages)'}")
        for queue, q in sorted(report["queues"].get(tenant, {}).items()):
            age = "-" if q["oldest_age_s"] is None else f"{q['oldest_age_s']:.1f}s"
            lines.append(
                f"  queue {queue:<24} waiting {q['depth']:>7}  in flight "
                f"{q['in_flight']:>5}  dead {q['dead']:>5}  oldest {age}"
            )
    scaling = report.get("scaling")
    if scaling:
        lines.append(
            f"executors: {scaling['running']} running, the backlog of {scaling['backlog']} calls"
            f" for {scaling['target']} (min {scaling['minimum']}, max {scaling['maximum']})"
            + (", no more: guests keep the node's CPUs busy" if scaling.get("held") else "")
        )
    for e in report["executors"]:
        detail = e.get("error") or (
            f"{e['executed']} executed, tenants {', '.join(e['tenants'])}"
            + (f", nice {e['nice']} (guests may starve the platform)" if e.get("nice") else "")
        )
        lines.append(f"{e['name']:<12} {detail}")
    return "\n".join(lines)
