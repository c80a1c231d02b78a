"""The one bounded cache of per-tenant state: at most `bound` entries, the least recently used
evicted first, each loaded on first use by its caller's `load`.

Plain Python, thread-safe (the listener's subscriber thread and request threads, an executor's
guest threads share one). Whatever is cached must be loadable again from its source: an
evicted entry is simply loaded again on its next use.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """`bound` entries at most; `on_evict(key, value)` for each one pushed out by the bound
    (not for one `pop`ped or dropped by `retain`: the caller does that itself)."""

    def __init__(self, bound: int, *, on_evict: Callable[[K, V], None] | None = None) -> None:
        if bound < 1:
            raise ValueError(f"an LRU bound must be at least 1, got {bound}")
        self.bound = bound
        self._on_evict = on_evict
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def keys(self) -> list[K]:
        """From the least recently used to the most."""
        with self._lock:
            return list(self._entries)

    def values(self) -> list[V]:
        with self._lock:
            return list(self._entries.values())

    def get(self, key: K) -> V | None:
        """The entry, now the most recently used; None on a miss (never loads)."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Store it as the most recently used, evicting the least recently used past the bound."""
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            evicted = [self._entries.popitem(last=False) for _ in range(len(self) - self.bound)]
        if self._on_evict is not None:  # outside the lock: it may close a connection
            for old_key, old_value in evicted:
                self._on_evict(old_key, old_value)

    def load(self, key: K, load: Callable[[], V]) -> V:
        """The entry, loading it with `load()` on a miss. `load` runs outside the lock (it may
        take a second, and other keys must not wait); two threads missing the same key at once
        may both load it, and the later one's value stays: loads of one key give equal values."""
        value = self.get(key)
        if value is None:
            value = load()
            self.put(key, value)
        return value

    def pop(self, key: K) -> V | None:
        with self._lock:
            return self._entries.pop(key, None)

    def retain(self, keep: Callable[[K], bool]) -> None:
        """Drop every entry whose key `keep` refuses, keeping the others' order."""
        with self._lock:
            for key in [k for k in self._entries if not keep(k)]:
                del self._entries[key]
