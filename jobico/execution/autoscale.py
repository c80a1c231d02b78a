"""How many executors the backlog calls for: up fast, down slowly, within [minimum, maximum],
and never up onto a node whose CPUs its guests already keep busy.

`Scaler.decide` is the supervisor's decision at each tick, from the tenants' queue figures and
the executors it runs (`Executors`: how many, their figures, where the next would go); the
supervisor actor starts or drains executors to the count it returns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from jobico.config import Settings

# Each tenant's queues' figures (`QueueStore.stats`), by tenant then queue.
Figures = Mapping[str, Mapping[str, Mapping[str, Any]]]


@dataclass(frozen=True, kw_only=True)
class Policy:
    minimum: int
    maximum: int
    backlog_per_executor: int = 100  # waiting events one executor is expected to absorb
    idle_s: float = 30.0  # below target this long before an executor is let go
    # A node counts as full of guests when its CPUs are this busy and guests use at least
    # `guest_share` of them. Another executor there adds guest threads but no CPU, and CPUs
    # saturated even by low-priority work slow every platform process (docs/performance.md):
    # beside a flood of CPU-bound guests on 2 cores, a quiet tenant's p99 was 23-73 ms when
    # the backlog added a second executor, 20-29 ms with this rule. Guests that wait (I/O,
    # sleeps) use little CPU, so a backlog of them still gets more executors and threads.
    busy_cpu: float = 0.85
    guest_share: float = 0.25

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        return cls(
            minimum=settings.executors_min,
            maximum=settings.executors_max,
            backlog_per_executor=settings.backlog_per_executor,
            idle_s=settings.executors_idle_s,
            busy_cpu=settings.executors_busy_cpu,
            guest_share=settings.executors_guest_share,
        )


class Executors(Protocol):
    """The executors a supervisor runs, numbered from 0, as its scaling decision sees them."""

    def count(self) -> int: ...

    async def stats(self) -> Mapping[str, Mapping[str, Any] | BaseException]:
        """Each running executor's `stats()` by name, or the error that came instead."""

    def node_of(self, index: int) -> str:
        """The node the index-th executor goes to."""


@dataclass(frozen=True)
class Scaling:
    """One tick's decision: the backlog seen, the executor count to have, and whether a node
    full of guests is why no executor is added (`jobico status` shows it)."""

    backlog: int
    target: int
    held: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def backlog(figures: Figures) -> int:
    """The events waiting in every tenant's queues."""
    return sum(q["depth"] for queues in figures.values() for q in queues.values())


@dataclass
class Scaler:
    policy: Policy
    _low_since: float | None = None
    _called_for_more: bool = False  # at the last decision: the backlog called for more

    async def decide(self, figures: Figures, executors: Executors, now: float) -> Scaling:
        """The executor count to have now, given the queues' figures."""
        waiting = backlog(figures)
        room, held = await self._room(waiting, executors)
        return Scaling(waiting, self.target(executors.count(), waiting, now, room=room), held)

    async def _room(self, backlog: int, executors: Executors) -> tuple[bool, bool]:
        """Whether the node the next executor would go to can use one (`full_nodes`), and
        whether that is why none is added. Executors measure their last second; a backlog
        that has just appeared waits one decision while they take it up, or a burst put at
        once would be judged by the quiet second before it. Their figures are asked for only
        when the backlog calls for more."""
        running, called_for_more = executors.count(), self._called_for_more
        self._called_for_more = self.wanted(backlog) > running
        if not self._called_for_more:
            return True, False
        if not called_for_more:
            return False, False
        stats = (await executors.stats()).values()
        full = self.full_nodes(s for s in stats if isinstance(s, Mapping))
        if full and executors.node_of(running) in full:  # where placing one puts it
            return False, True
        return True, False

    def target(self, current: int, backlog: int, now: float, *, room: bool = True) -> int:
        """The executor count to have now, given `backlog` waiting events; `room`: whether the
        node the next executor would go to can use one (see `full_nodes`)."""
        p = self.policy
        wanted = self.wanted(backlog)
        if wanted >= current:
            self._low_since = None
            return max(wanted if room else current, p.minimum)
        if self._low_since is None:
            self._low_since = now
        if now - self._low_since < p.idle_s:
            return current
        self._low_since = now  # one step down per idle period
        return current - 1

    def wanted(self, backlog: int) -> int:
        """The executor count `backlog` waiting events call for, within the bounds."""
        p = self.policy
        return max(p.minimum, min(p.maximum, -(-backlog // p.backlog_per_executor)))

    def full_nodes(self, executors: Iterable[Mapping[str, Any]]) -> set[str]:
        """Nodes whose CPUs are busy and whose guests use a good part of them, from executors'
        `stats()` (`node`, `cpus`, and over their last second `node_busy`, `guest_cpus`)."""
        guests: dict[str, float] = {}
        busy: dict[str, bool] = {}
        cpus: dict[str, int] = {}
        for e in executors:
            if e.get("node_busy") is None:  # no figures yet (its first second), or not Linux
                continue
            node = e["node"]
            guests[node] = guests.get(node, 0.0) + e["guest_cpus"]
            busy[node] = busy.get(node, False) or e["node_busy"] >= self.policy.busy_cpu
            cpus[node] = e["cpus"]
        share = self.policy.guest_share
        return {node for node in guests if busy[node] and guests[node] >= share * cpus[node]}


def _proc_stat() -> str | None:
    try:
        with open("/proc/stat") as f:
            return f.readline()
    except OSError:
        return None


@dataclass
class CpuMeter:
    """How busy this node's CPUs were since the last reading (Linux /proc/stat; None elsewhere
    and on the first reading)."""

    read: Callable[[], str | None] = _proc_stat
    _last: tuple[int, int] | None = None

    def busy(self) -> float | None:
        text = self.read()
        if text is None:
            return None
        # cpu user nice system idle iowait irq softirq steal ...: idle and iowait are idle.
        ticks = [int(v) for v in text.split("\n", 1)[0].split()[1:9]]
        total, idle = sum(ticks), ticks[3] + ticks[4]
        last, self._last = self._last, (total, idle)
        if last is None or total <= last[0]:
            return None
        return 1.0 - (idle - last[1]) / (total - last[0])


def node_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
