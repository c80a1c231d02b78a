"""The one bounded cache (jobico.lru): at most its bound, the least recently used evicted
first, an evicted entry loaded again on its next use with the same result."""

from __future__ import annotations

import pytest

from jobico.lru import LRU


class Source:
    """Where entries load from: each key's value is its square, and every load is counted."""

    def __init__(self) -> None:
        self.loads: list[int] = []

    def loader(self, key: int) -> tuple[int, int]:
        self.loads.append(key)
        return (key, key * key)


def test_an_lru_holds_at_most_its_bound() -> None:
    cache: LRU[int, int] = LRU(3)
    for n in range(10):
        cache.put(n, n)
        assert len(cache) <= 3
    assert cache.keys() == [7, 8, 9]


def test_the_least_recently_used_entry_is_evicted_first_and_a_read_counts_as_a_use() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now "b" is the least recently used
    cache.put("c", 3)
    assert "b" not in cache and cache.keys() == ["a", "c"]


def test_an_entry_loads_on_first_use_only_and_again_with_the_same_value_once_evicted() -> None:
    source = Source()
    cache: LRU[int, tuple[int, int]] = LRU(2)
    first = cache.load(4, lambda: source.loader(4))
    assert cache.load(4, lambda: source.loader(4)) is first and source.loads == [4]
    cache.load(5, lambda: source.loader(5))
    cache.load(6, lambda: source.loader(6))  # evicts 4
    assert 4 not in cache
    assert cache.load(4, lambda: source.loader(4)) == first == (4, 16)
    assert source.loads == [4, 5, 6, 4]


def test_only_entries_pushed_out_by_the_bound_are_handed_to_on_evict() -> None:
    evicted: list[tuple[str, int]] = []
    cache: LRU[str, int] = LRU(1, on_evict=lambda k, v: evicted.append((k, v)))
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.pop("b") == 2
    cache.put("c", 3)
    cache.retain(lambda key: False)
    assert evicted == [("a", 1)] and len(cache) == 0


def test_retain_drops_the_refused_keys_and_keeps_the_others_in_their_order() -> None:
    cache: LRU[int, int] = LRU(5)
    for n in range(5):
        cache.put(n, n)
    cache.retain(lambda key: key % 2 == 0)
    assert cache.keys() == [0, 2, 4]


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LRU[int, int](0)
