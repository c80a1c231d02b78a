"""The listener's gate: who may post an event (credentials) and how fast (per-tenant rate).

Plain Python, no Ray. A replica keeps each tenant's ingest config (secret values, events per
second) in an immutable snapshot that a subscriber thread swaps in whole, so the request path
reads a dict and computes one HMAC; nothing there waits on another actor.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jobico.access import signatures
from jobico.errors import RateLimited, Unauthenticated
from jobico.serve.routes import Route

log = logging.getLogger(__name__)

Header = Callable[[str], str | None]


@dataclass(frozen=True)
class TenantConfig:
    secrets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    events_per_s: int = 0  # 0: the replica's default

    def __repr__(self) -> str:  # never the values, should one ever be logged
        return f"TenantConfig(secrets={sorted(self.secrets)}, events_per_s={self.events_per_s})"


class Bucket:
    """A token bucket of events: `rate` a second, up to one second's worth saved up. A request
    larger than that passes when the bucket is full and leaves it in debt, so a batch is never
    refused for its size alone, and the debt is paid before the next one passes."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate, self.level, self.at = rate, rate, now

    def full(self, now: float) -> bool:
        """Whether it has refilled by `now`: then it is exactly a new bucket of its rate."""
        return self.level + (now - self.at) * self.rate >= self.rate

    def take(self, n: int, now: float) -> float:
        """0 if `n` events may pass now (and takes them), else the seconds to wait."""
        self.level = min(self.rate, self.level + (now - self.at) * self.rate)
        self.at = now
        need = min(n, self.rate)
        if self.level >= need:
            self.level -= n
            return 0.0
        return (need - self.level) / self.rate


# How often the gate drops the buckets that have refilled (see Gate.take).
SWEEP_S = 1.0


class Gate:
    """A replica's ingest configs and rate buckets. The configs are every tenant's (control's
    follow sends them; a few bytes each, and a request must not wait for one). The buckets are
    bounded by time, not by count: a bucket is dropped once it has refilled, when a new one
    would be the same, so the gate holds one only for a tenant that posted within about a
    second (longer if it is paying off a batch). Evicting by count instead would let a tenant
    pushed out with its bucket spent come back to a full one and exceed its rate."""

    def __init__(
        self,
        *,
        default_rate: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._default_rate = default_rate  # events/s per replica where a tenant sets none; 0: none
        self._clock, self._wall = clock, wall
        self._configs: dict[str, TenantConfig] = {}
        self._buckets: dict[str, Bucket] = {}
        self._swept = clock()
        self._lock = threading.Lock()  # serialises writers; readers never take it

    def apply(self, tenant: str, config: Mapping[str, Any] | None, *, share: float = 1.0) -> None:
        """A tenant's ingest config as control sends it (None: forget it); `share` is this
        replica's part of the tenant's rate (1 / replicas)."""
        with self._lock:
            configs = dict(self._configs)
            if config is None:
                configs.pop(tenant, None)
            else:
                secrets = {k: tuple(v) for k, v in config.get("secrets", {}).items()}
                rate = int(config.get("events_per_s") or 0) * share
                configs[tenant] = TenantConfig(secrets, math.ceil(rate) if rate else 0)
            self._configs = configs
            # Only this tenant's bucket can be stale, and only its rate makes it so, which
            # `take` notices by itself: every other tenant keeps what it has spent.
            if config is None:
                self._buckets.pop(tenant, None)

    def admit(self, route: Route, header: Header, body: bytes) -> None:
        """Unauthenticated unless the request carries what the route's event requires."""
        if route.auth is None:
            return
        kind, name = route.auth
        config = self._configs.get(route.tenant)
        values = config.secrets.get(name) if config else None
        if not values:
            log.warning(
                "event %s/%s requires secret %r, which is not set; refusing its posts",
                route.tenant,
                route.event,
                name,
            )
            raise Unauthenticated("missing or bad credentials")
        signatures.check(kind, values, header, body, self._wall())

    def take(self, tenant: str, events: int) -> None:
        """RateLimited (with retry_after) when the tenant is over its events per second."""
        config = self._configs.get(tenant)
        rate = (config.events_per_s if config else 0) or self._default_rate
        if not rate:
            return
        now = self._clock()
        if now - self._swept >= SWEEP_S:
            self._sweep(now)
        bucket = self._buckets.get(tenant)
        if bucket is None or bucket.rate != rate:
            bucket = self._buckets[tenant] = Bucket(rate, now)
        wait = bucket.take(events, now)
        if wait:
            raise RateLimited(
                f"tenant {tenant!r} is over its rate of {rate:g} events a second",
                tenant=tenant,
                retry_after=wait,
            )

    @property
    def buckets(self) -> int:
        """Rate buckets held now: the tenants that posted within about a second."""
        return len(self._buckets)

    def _sweep(self, now: float) -> None:
        """Drop every bucket that has refilled (a new one would be the same); once a second
        at most, so a take costs O(1) on average."""
        self._swept = now
        # list() copies in one step under the GIL: apply() may pop from another thread.
        self._buckets = {t: b for t, b in list(self._buckets.items()) if not b.full(now)}
