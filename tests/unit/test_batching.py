"""Coalescing: concurrent callers share sends, and each hears only its own answer or error."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest

from jobico.batching import Coalescer
from jobico.errors import QueueFull

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def test_concurrent_submits_share_sends_and_get_their_own_answers() -> None:
    sent: list[list[int]] = []

    async def send(items: list[int]) -> list[int]:
        sent.append(items)
        await asyncio.sleep(0)  # another round of callers gathers meanwhile
        return [i * 10 for i in items]

    async def scenario() -> tuple[Coalescer[int, int], list[int]]:
        c = Coalescer(send)
        answers = await asyncio.gather(*(c.submit(i) for i in range(100)))
        return c, answers

    c, answers = run(scenario())
    assert answers == [i * 10 for i in range(100)]
    assert c.sends == len(sent) < 10
    assert [i for items in sent for i in items] == list(range(100))  # order kept


def test_an_items_error_reaches_only_its_caller() -> None:
    async def send(items: list[int]) -> list[int | BaseException]:
        return [QueueFull("full", queue="q") if i == 1 else i for i in items]

    async def scenario() -> list[int | BaseException]:
        c = Coalescer(send)
        return await asyncio.gather(*(c.submit(i) for i in range(3)), return_exceptions=True)

    first, second, third = run(scenario())
    assert (first, third) == (0, 2) and isinstance(second, QueueFull)


def test_submit_many_answers_each_item_in_order_with_its_own_error_in_one_send() -> None:
    sent: list[list[int]] = []

    async def send(items: list[int]) -> list[int | BaseException]:
        sent.append(items)
        return [QueueFull("full", queue="q") if i == 2 else i * 10 for i in items]

    async def scenario() -> list[int | BaseException]:
        c = Coalescer(send)
        return await c.submit_many(range(5))

    zero, ten, full, thirty, forty = run(scenario())
    assert (zero, ten, thirty, forty) == (0, 10, 30, 40) and isinstance(full, QueueFull)
    assert sent == [[0, 1, 2, 3, 4]]


def test_submit_many_shares_a_send_with_concurrent_submits() -> None:
    sent: list[list[int]] = []

    async def send(items: list[int]) -> list[int]:
        sent.append(items)
        return items

    async def scenario() -> list[object]:
        c = Coalescer(send)
        return list(await asyncio.gather(c.submit(0), c.submit_many([1, 2]), c.submit(3)))

    assert run(scenario()) == [0, [1, 2], 3]
    assert sent == [[0, 1, 2, 3]]


def test_a_failed_send_reaches_every_caller_of_it() -> None:
    async def send(items: list[int]) -> list[int]:
        raise ConnectionError("down")

    async def scenario() -> list[int | BaseException]:
        c = Coalescer(send)
        return await asyncio.gather(*(c.submit(i) for i in range(3)), return_exceptions=True)

    assert all(isinstance(r, ConnectionError) for r in run(scenario()))


def test_max_size_bounds_one_send() -> None:
    sizes: list[int] = []

    async def send(items: list[list[int]]) -> list[int]:
        sizes.append(sum(len(i) for i in items))
        await asyncio.sleep(0)
        return [len(i) for i in items]

    async def scenario() -> list[int]:
        c = Coalescer(send, size=len, max_size=10)
        return await asyncio.gather(*(c.submit([0] * 4) for _ in range(6)))

    assert run(scenario()) == [4] * 6
    assert max(sizes) <= 10


@pytest.mark.parametrize("n", [1])
def test_a_lone_submit_is_sent_at_once(n: int) -> None:
    async def send(items: list[int]) -> list[int]:
        return items

    async def scenario() -> int:
        return await Coalescer(send).submit(n)

    assert run(scenario()) == n


def test_a_submit_right_after_a_send_ends_is_still_sent() -> None:
    """The caller of a finished send resumes before the loop has forgotten the finished
    flusher; its next submit must start a new one, not wait behind the finished one."""

    async def send(items: list[int]) -> list[int]:
        return items

    async def scenario() -> tuple[int, int]:
        c = Coalescer(send)
        first = await c.submit(1)
        # Run submit up to its wait right here, in the resumed caller's own step (a new task
        # would start only after the loop has forgotten the flusher, hiding the race).
        second = c.submit(2)
        waiting = second.send(None)
        try:
            await asyncio.wait_for(waiting, timeout=1)
        finally:
            second.close()
        return first, waiting.result()

    assert run(scenario()) == (1, 2)


def test_at_most_max_in_flight_sends_are_under_way_at_once() -> None:
    in_flight, peak = 0, 0
    gate = asyncio.Event()

    async def send(items: list[int]) -> list[int]:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await gate.wait()  # every send stays under way until the gate opens
        in_flight -= 1
        return items

    async def turns_until(condition: Callable[[], bool]) -> None:
        for _ in range(100):
            if condition():
                return
            await asyncio.sleep(0)
        raise AssertionError("the condition never held")

    async def scenario() -> list[int]:
        c = Coalescer(send, max_in_flight=3)
        calls = []
        for i in range(6):  # one at a time: each of the first three starts its own send
            calls.append(asyncio.create_task(c.submit(i)))

            def started(n: int = i) -> bool:
                return in_flight == min(n + 1, 3)

            await turns_until(started)
        for _ in range(10):  # the later three wait, however long
            await asyncio.sleep(0)
        assert in_flight == 3
        gate.set()
        return await asyncio.gather(*calls)

    assert run(scenario()) == list(range(6))
    assert peak == 3


def test_a_send_that_fails_when_called_reaches_every_caller_of_it() -> None:
    def send(items: list[int]) -> Awaitable[list[int]]:
        raise ConnectionError("no cluster")

    async def scenario() -> tuple[int | BaseException, int | BaseException]:
        c = Coalescer(send)
        calls = asyncio.gather(c.submit(1), c.submit(2), return_exceptions=True)
        return await asyncio.wait_for(calls, timeout=5)  # unanswered callers would wait forever

    assert [type(e) for e in run(scenario())] == [ConnectionError, ConnectionError]
