"""Joining a Ray cluster within a bounded time, without Ray: a probe of the GCS port, a call
given up on when it has not returned in time, and the NotRunning each failure becomes.

`ray.init` to a GCS that is gone retries for minutes, and Ray's calls cannot be cancelled:
`jobico.actors.cluster.connect` hands its `ray.init` to `join`, which probes first (a refused
connection answers at once) and gives `ray.init` the rest of the time on a thread of its own.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from jobico.errors import NotRunning

T = TypeVar("T")


def join(address: str | None, timeout_s: float, init: Callable[[], object]) -> None:
    """`init()` (a `ray.init` to `address`) within `timeout_s`, or NotRunning naming the
    address and what went wrong."""
    why = probe(address, timeout_s)
    if why:
        raise NotRunning(f"Ray at {address} does not answer ({why})")
    try:
        within(timeout_s, init)
    except TimeoutError:
        raise NotRunning(
            f"Ray at {address} did not let this process join within {timeout_s:g} s "
            "(JOBICO_CONNECT_TIMEOUT_S)"
        ) from None
    except (ConnectionError, RuntimeError) as e:
        raise NotRunning(f"cannot reach Ray at {address}: {e}") from None


def probe(address: str | None, timeout: float) -> str | None:
    """Why nothing answers at a Ray address's GCS port, or None when something does (or the
    address is not HOST:PORT, e.g. `auto`, left to `ray.init`). Costs one TCP handshake."""
    host, sep, port = (address or "").rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=min(timeout, 5.0)):
            return None
    except OSError as e:
        return e.strerror or type(e).__name__


def within(timeout: float, fn: Callable[[], T]) -> T:
    """fn() on a thread of its own, or TimeoutError when it has not returned in `timeout` s
    (the thread is left to finish: Ray's calls cannot be cancelled). What fn raises is
    raised here."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as e:  # handed to the caller's thread
            outcome.append((False, e))

    # Ray warns that it sets no SIGTERM handler off the main thread; a driver needs none.
    logging.getLogger("ray._private.worker").addFilter(_no_sigterm_warning)
    worker = threading.Thread(target=run, name="jobico-within", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise TimeoutError(f"no answer within {timeout:g} s")
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def _no_sigterm_warning(record: logging.LogRecord) -> bool:
    return "SIGTERM handler is not set" not in record.getMessage()
