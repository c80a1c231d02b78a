"""Jobico's metrics: every name, meaning and label in one place, recorded through Ray's metrics
API so they appear in the Ray dashboard and on each node's Prometheus endpoint.

It lives with the actors because it imports Ray; the actors and the listener call these
functions, each a line at the point where the figure is known. Ray
exports a metric `jobico_x` as `ray_jobico_x` (counters with `_total` appended by Prometheus
clients that expect it); the operating guide lists them and cluster/grafana/jobico.json
charts them.
"""

from __future__ import annotations

import collections
import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ray.util import metrics as ray_metrics

# Seconds, from a fast guest to a slow retry chain.
_LATENCY_BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
_LATENCY_BOUNDS += [30.0, 60.0, 300.0]
# A refusal for an unknown tenant or event is counted without its names: anyone can POST to
# any URL, and each name would otherwise become a time series of its own.
UNKNOWN = "(unknown)"


@dataclass(frozen=True)
class _Metrics:
    received: Any
    refused: Any
    queue_depth: Any
    queue_in_flight: Any
    queue_oldest_age: Any
    dead_letters: Any
    executions: Any
    execution_seconds: Any
    post_to_record_seconds: Any
    executors: Any
    executors_target: Any


# (name, description, labels) of each metric, for docs and the Grafana dashboard's test.
COUNTERS = {
    "jobico_events_received": ("Events accepted (202) by the listener", ("tenant", "event")),
    "jobico_events_refused": (
        "Requests refused by the listener, by the error code of the answer",
        ("tenant", "event", "reason"),
    ),
    "jobico_executions": ("Execution attempts recorded, by status", ("tenant", "status")),
}
GAUGES = {
    "jobico_queue_depth": ("Events waiting in a queue", ("tenant", "queue")),
    "jobico_queue_in_flight": ("Events leased to executors", ("tenant", "queue")),
    "jobico_queue_oldest_age_seconds": ("Age of a queue's oldest event", ("tenant", "queue")),
    "jobico_dead_letters": ("Events parked as dead letters", ("tenant", "queue")),
    "jobico_executors": ("Executors running", ()),
    "jobico_executors_target": ("Executors the backlog calls for", ()),
}
HISTOGRAMS = {
    "jobico_execution_seconds": ("Wall-clock time of one execution", ("tenant", "status")),
    "jobico_post_to_record_seconds": (
        "From the listener accepting an event to its execution record being stored",
        ("tenant",),
    ),
}


@functools.cache
def _metrics() -> _Metrics:
    """Created once per process, on first use (Ray registers them with its local agent)."""

    def counter(name: str) -> Any:
        description, labels = COUNTERS[name]
        return ray_metrics.Counter(name, description=description, tag_keys=labels)

    def gauge(name: str) -> Any:
        description, labels = GAUGES[name]
        return ray_metrics.Gauge(name, description=description, tag_keys=labels)

    def histogram(name: str) -> Any:
        description, labels = HISTOGRAMS[name]
        return ray_metrics.Histogram(
            name, description=description, boundaries=_LATENCY_BOUNDS, tag_keys=labels
        )

    return _Metrics(
        received=counter("jobico_events_received"),
        refused=counter("jobico_events_refused"),
        queue_depth=gauge("jobico_queue_depth"),
        queue_in_flight=gauge("jobico_queue_in_flight"),
        queue_oldest_age=gauge("jobico_queue_oldest_age_seconds"),
        dead_letters=gauge("jobico_dead_letters"),
        executions=counter("jobico_executions"),
        execution_seconds=histogram("jobico_execution_seconds"),
        post_to_record_seconds=histogram("jobico_post_to_record_seconds"),
        executors=gauge("jobico_executors"),
        executors_target=gauge("jobico_executors_target"),
    )


def ingest(tenant: str, event: str, accepted: int, refused: str | None) -> None:
    """One POST's outcome: `accepted` events queued, or refused with the answer's error code."""
    m = _metrics()
    if refused is None:
        m.received.inc(accepted, tags={"tenant": tenant, "event": event})
        return
    if refused == "not_found":
        tenant = event = UNKNOWN
    m.refused.inc(1, tags={"tenant": tenant, "event": event, "reason": refused})


def queues(figures: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> None:
    """Every tenant's queue figures (QueueStore.stats per tenant)."""
    m = _metrics()
    for tenant, by_queue in figures.items():
        for queue, q in by_queue.items():
            tags = {"tenant": tenant, "queue": queue}
            m.queue_depth.set(q["depth"], tags=tags)
            m.queue_in_flight.set(q["in_flight"], tags=tags)
            m.queue_oldest_age.set(q["oldest_age_s"] or 0.0, tags=tags)
            m.dead_letters.set(q["dead"], tags=tags)


def recorded(records: Sequence[Mapping[str, Any]], now: float | None = None) -> None:
    """Execution records just stored: counts, run times, and the wait since each event's POST."""
    m = _metrics()
    now = time.time() if now is None else now
    counts = collections.Counter((r["tenant"], r["status"]) for r in records)
    for (tenant, status), n in counts.items():
        m.executions.inc(n, tags={"tenant": tenant, "status": status})
    for r in records:
        status = {"tenant": r["tenant"], "status": r["status"]}
        m.execution_seconds.observe(r["duration_ms"] / 1000, tags=status)
        waited = max(now - r["received_at"], 0.0)
        m.post_to_record_seconds.observe(waited, tags={"tenant": r["tenant"]})


def executors(running: int, target: int) -> None:
    m = _metrics()
    m.executors.set(running)
    m.executors_target.set(target)
