"""Shared by every tier: example paths and a condition waiter (never a bare sleep)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "greet"

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None], *, timeout: float = 30.0, what: str = "condition"
) -> T:
    """Poll `condition` until it returns something truthy (so never None: the type says so);
    fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
