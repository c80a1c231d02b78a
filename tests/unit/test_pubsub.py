"""Versioned topics: a subscriber converges from any version it last saw, even after restarts."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobico.pubsub import Changes, LongPoll, Topics


@pytest.fixture
def topics(tmp_path: Path) -> Iterator[Topics]:
    t = Topics(tmp_path / "pubsub")
    yield t
    t.close()


def test_a_new_subscriber_gets_the_whole_state(topics: Topics) -> None:
    topics.publish("packages", "t/a", {"number": 1})
    topics.publish("packages", "t/b", {"number": 1})
    changes = topics.changes("packages", 0)
    assert changes.version == 2
    assert changes.items == {"t/a": {"number": 1}, "t/b": {"number": 1}}


def test_a_subscriber_that_was_away_gets_only_the_latest_value_of_what_changed(
    topics: Topics,
) -> None:
    topics.publish("packages", "t/a", {"number": 1})
    seen = topics.changes("packages", 0).version
    topics.publish("packages", "t/a", {"number": 2})
    topics.publish("packages", "t/a", {"number": 3})
    topics.publish("packages", "t/b", None)
    changes = topics.changes("packages", seen)
    assert changes.items == {"t/a": {"number": 3}, "t/b": None}
    assert not changes.reset


def test_versions_never_go_backwards_across_a_restart(tmp_path: Path) -> None:
    first = Topics(tmp_path / "p")
    first.publish("packages", "t/a", 1)
    first.close()
    second = Topics(tmp_path / "p")
    assert second.publish("packages", "t/a", 2) == 2
    second.close()


def test_a_subscriber_ahead_of_the_store_is_told_to_reset(topics: Topics) -> None:
    topics.publish("packages", "t/a", 1)
    changes = topics.changes("packages", 99)
    assert changes.reset and changes.items == {"t/a": 1}


def test_topics_are_independent(topics: Topics) -> None:
    topics.publish("packages", "t/a", 1)
    assert topics.changes("files", 0).items == {}


def test_long_poll_answers_when_news_arrives_and_at_once_when_it_is_there(topics: Topics) -> None:
    async def scenario() -> tuple[Changes, Changes, Changes]:
        poll = LongPoll(topics)
        waiting = asyncio.create_task(poll.listen("packages", 0, timeout_s=30))
        await asyncio.sleep(0)  # let the listener start waiting
        assert not waiting.done()
        await poll.publish("packages", "t/a", 1)
        first = await asyncio.wait_for(waiting, 5)
        immediate = await asyncio.wait_for(poll.listen("packages", 0, timeout_s=30), 5)
        timed_out = await poll.listen("packages", first.version, timeout_s=0.01)
        return first, immediate, timed_out

    first, immediate, timed_out = asyncio.run(scenario())
    assert first.items == {"t/a": 1}
    assert immediate.items == {"t/a": 1}
    assert timed_out.items == {} and timed_out.version == first.version
