"""How many executors the backlog calls for: up fast, down slowly, within [minimum, maximum]."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Policy:
    minimum: int
    maximum: int
    backlog_per_executor: int = 100  # waiting events one executor is expected to absorb
    idle_s: float = 30.0  # below target this long before an executor is let go


@dataclass
class Scaler:
    policy: Policy
    _low_since: float | None = None

    def target(self, current: int, backlog: int, now: float) -> int:
        """The executor count to have now, given `backlog` waiting events."""
        p = self.policy
        wanted = max(p.minimum, min(p.maximum, -(-backlog // p.backlog_per_executor)))
        if wanted >= current:
            self._low_since = None
            return max(wanted, p.minimum)
        if self._low_since is None:
            self._low_since = now
        if now - self._low_since < p.idle_s:
            return current
        self._low_since = now  # one step down per idle period
        return current - 1
