"""The one way Jobico retries a call that failed for a passing reason.

A call is made, and made again after each pause of a schedule while it fails with one of the
given errors; the attempt after the last pause is the final one, and its error reaches the
caller. Only idempotent calls are retried (a put by its key, a settle by id and attempt, a
reconcile by comparing numbers), so a call whose answer was lost may safely be made twice.

`before_retry` runs between a failure and its pause: it is where a caller forgets a handle to
an actor that died, so that the next attempt looks up the restarted one. `sleep` is a seam for
the unit tests, which run a schedule without waiting it out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

Pauses = Sequence[float]
Errors = type[BaseException] | tuple[type[BaseException], ...]


def retry(
    call: Callable[[], T],
    pauses: Pauses,
    on: Errors,
    before_retry: Callable[[BaseException, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, again after each of `pauses` while it raises one of `on`."""
    for pause in pauses:
        try:
            return call()
        except on as e:
            if before_retry is not None:
                before_retry(e, pause)
            sleep(pause)
    return call()


async def aretry(
    call: Callable[[], Awaitable[T]],
    pauses: Pauses,
    on: Errors,
    before_retry: Callable[[BaseException, float], Awaitable[None] | None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """`await call()`, again after each of `pauses` while it raises one of `on`.
    `before_retry` may be a plain function or a coroutine function."""
    for pause in pauses:
        try:
            return await call()
        except on as e:
            if before_retry is not None:
                pending = before_retry(e, pause)
                if pending is not None:
                    await pending
            await sleep(pause)
    return await call()
