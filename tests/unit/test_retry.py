"""The one retry helper: a passing failure is retried after each pause, the last attempt's
error reaches the caller, and any other error is not retried at all."""

from __future__ import annotations

import asyncio

import pytest

from jobico.errors import Forbidden, Unavailable
from jobico.retry import aretry, retry


class Flaky:
    """Fails with `error` the first `failures` times it is called, then answers "done"."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures, self.calls = failures, 0
        self.error = error or Unavailable("queue actor restarting")

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


def test_a_call_that_recovers_within_the_schedule_answers_after_the_pauses_it_needed() -> None:
    flaky = Flaky(2)
    slept: list[float] = []
    seen: list[float] = []
    answer = retry(flaky, (0.1, 0.2, 0.4), Unavailable, lambda e, p: seen.append(p), slept.append)
    assert (answer, flaky.calls, slept, seen) == ("done", 3, [0.1, 0.2], [0.1, 0.2])


def test_after_the_last_pause_the_final_attempts_error_reaches_the_caller() -> None:
    flaky = Flaky(10)
    slept: list[float] = []
    with pytest.raises(Unavailable):
        retry(flaky, (0.1, 0.2), Unavailable, sleep=slept.append)
    assert (flaky.calls, slept) == (3, [0.1, 0.2])


def test_an_error_that_is_not_passing_is_raised_at_once() -> None:
    flaky = Flaky(1, Forbidden("token revoked"))
    slept: list[float] = []
    with pytest.raises(Forbidden):
        retry(flaky, (0.1, 0.2), Unavailable, sleep=slept.append)
    assert (flaky.calls, slept) == (1, [])


def test_an_empty_schedule_makes_one_attempt() -> None:
    with pytest.raises(Unavailable):
        retry(Flaky(1), (), Unavailable)


def test_the_async_form_awaits_a_coroutine_before_retry_and_its_pauses() -> None:
    flaky, slept, forgotten = Flaky(2), [], []

    async def call() -> str:
        return flaky()

    async def forget(error: BaseException, pause: float) -> None:
        forgotten.append(type(error).__name__)

    async def sleep(pause: float) -> None:
        slept.append(pause)

    answer = asyncio.run(aretry(call, (0.5, 1.0, 2.0), Unavailable, forget, sleep))
    assert (answer, slept, forgotten) == ("done", [0.5, 1.0], ["Unavailable", "Unavailable"])


def test_the_async_form_takes_a_plain_before_retry_and_raises_the_last_error() -> None:
    flaky, seen = Flaky(5), []

    async def call() -> str:
        return flaky()

    async def sleep(pause: float) -> None:
        return None

    with pytest.raises(Unavailable):
        asyncio.run(aretry(call, (0.1,), Unavailable, lambda e, p: seen.append(p), sleep))
    assert (flaky.calls, seen) == (2, [0.1])
