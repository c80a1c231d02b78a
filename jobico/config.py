"""Settings: read once from JOBICO_* variables at the edge, then passed down explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        from jobico.errors import InvalidInput

        raise InvalidInput(f"{name} must be a whole number, got {raw!r}") from None


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything configurable about a Jobico installation, with its default."""

    home: Path = field(default_factory=lambda: Path(".jobico").resolve())
    namespace: str = "jobico"  # Ray namespace holding every named actor
    host: str = "127.0.0.1"  # where the listener binds
    port: int = 8000
    executors_min: int = 1
    executors_max: int = 2
    guest_threads: int = 4  # per executor: runs of different ordering keys side by side
    listener_replicas: int = 1
    lease_timeout_ms: int = 30_000  # an unacked lease is redelivered after this
    default_timeout_ms: int = 10_000  # guest wall-clock limit unless the runtime sets one
    default_memory_mb: int = 64
    max_body_kb: int = 1024  # larger requests get 413
    idempotency_ttl_s: int = 86_400  # an Idempotency-Key / webhook-id seen again is not re-queued
    dashboard: bool = True  # the embedded Ray starts its dashboard
    records: str = ""  # where execution records go: a path or a pyarrow.fs URI (s3://, gs://)

    @property
    def records_uri(self) -> str:
        return self.records or str(self.home / "records")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        d = cls()
        return cls(
            home=Path(env.get("JOBICO_HOME") or ".jobico").expanduser().resolve(),
            namespace=env.get("JOBICO_NAMESPACE") or d.namespace,
            host=env.get("JOBICO_HOST") or d.host,
            port=_int(env, "JOBICO_PORT", d.port),
            executors_min=_int(env, "JOBICO_EXECUTORS_MIN", d.executors_min),
            executors_max=_int(env, "JOBICO_EXECUTORS_MAX", d.executors_max),
            guest_threads=_int(env, "JOBICO_GUEST_THREADS", d.guest_threads),
            listener_replicas=_int(env, "JOBICO_LISTENER_REPLICAS", d.listener_replicas),
            lease_timeout_ms=_int(env, "JOBICO_LEASE_TIMEOUT_MS", d.lease_timeout_ms),
            default_timeout_ms=_int(env, "JOBICO_DEFAULT_TIMEOUT_MS", d.default_timeout_ms),
            default_memory_mb=_int(env, "JOBICO_DEFAULT_MEMORY_MB", d.default_memory_mb),
            max_body_kb=_int(env, "JOBICO_MAX_BODY_KB", d.max_body_kb),
            idempotency_ttl_s=_int(env, "JOBICO_IDEMPOTENCY_TTL_S", d.idempotency_ttl_s),
            dashboard=env.get("JOBICO_DASHBOARD", "1") not in ("0", "false", "no"),
            records=env.get("JOBICO_RECORDS", ""),
        )
