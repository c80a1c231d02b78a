"""Settings: read once from JOBICO_* variables at the edge, then passed down explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from jobico.model import Limits


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        from jobico.errors import InvalidInput

        raise InvalidInput(f"{name} must be a whole number, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        from jobico.errors import InvalidInput

        raise InvalidInput(f"{name} must be a number, got {raw!r}") from None


def _fraction(env: Mapping[str, str], name: str, default: float) -> float:
    """A share, from 0 to 1: `85` meant as a percentage would otherwise never be reached."""
    value = _float(env, name, default)
    if not 0 <= value <= 1:
        from jobico.errors import InvalidInput

        raise InvalidInput(f"{name} must be a fraction from 0 to 1, got {value:g}")
    return value


def _port(env: Mapping[str, str], name: str) -> int | None:
    """A TCP port, or None when unset."""
    if not env.get(name):
        return None
    value = _int(env, name, 0)
    if not 1 <= value <= 65535:
        from jobico.errors import InvalidInput

        raise InvalidInput(f"{name} must be a port from 1 to 65535, got {value}")
    return value


_N = TypeVar("_N", int, float)


def _above_zero(name: str, value: _N) -> _N:
    """A bound that must leave room for something: 0 or less would refuse everything."""
    if not 0 < value < float("inf"):
        from jobico.errors import InvalidInput

        raise InvalidInput(f"{name} must be above 0, got {value:g}")
    return value


_YES, _NO = frozenset(("1", "true", "yes", "on")), frozenset(("0", "false", "no", "off"))


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """On or off; anything else is refused rather than read as one of them."""
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in _YES or raw in _NO:
        return raw in _YES
    from jobico.errors import InvalidInput

    raise InvalidInput(f"{name} must be 1 or 0 (true/false, yes/no, on/off), got {env[name]!r}")


def _optional_int(env: Mapping[str, str], name: str) -> int | None:
    return _int(env, name, 0) or None  # unset, empty or 0: none


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything configurable about a Jobico installation, with its default."""

    home: Path = field(default_factory=lambda: Path(".jobico").resolve())
    namespace: str = "jobico"  # Ray namespace holding every named actor
    host: str = "127.0.0.1"  # where the listener binds
    port: int = 8000
    executors_min: int = 1
    executors_max: int = 2
    backlog_per_executor: int = 100  # waiting events that call for one more executor
    executors_idle_s: float = 30.0  # below the backlog's call this long: one executor fewer
    # No executor is added to a node whose CPUs are this busy while its guests use this share of
    # them (jobico.execution.autoscale.Policy): more guest threads there only add contention.
    executors_busy_cpu: float = 0.85
    executors_guest_share: float = 0.25
    guest_threads: int = 4  # per executor: runs of different ordering keys side by side
    listener_replicas: int = 1
    # A listener replica sends puts to a queue actor on its own node over a Unix socket rather
    # than a Ray call (jobico.queue.localputs): about a fifth more single-event webhooks a second.
    local_puts: bool = True
    lease_timeout_ms: int = 30_000  # an unacked lease is redelivered after this
    # Guest limits: the default where a runtime sets none, and the most a runtime may ask for
    # (a deploy asking for more is refused). Fuel has no default and, unless set, no maximum.
    default_timeout_ms: int = 10_000  # wall clock per execution
    default_memory_mb: int = 64  # linear memory
    default_fuel: int | None = None
    default_result_kb: int = 1024
    default_log_kb: int = 256  # log message bytes per execution
    max_timeout_ms: int = 60_000
    max_memory_mb: int = 1024
    max_fuel: int | None = None
    max_result_kb: int = 16_384
    max_log_kb: int = 4096
    max_body_kb: int = 1024  # larger requests get 413
    # A deploy's check of one module (compiling it, running its start code to read ver()) is
    # refused past this wall-clock bound, and modules above this size are refused outright:
    # compiling cannot be interrupted, so the size bounds how long it runs on.
    deploy_check_s: float = 5.0
    max_module_mb: int = 64
    idempotency_ttl_s: int = 86_400  # an Idempotency-Key / webhook-id seen again is not re-queued
    dashboard: bool = True  # the embedded Ray starts its dashboard
    # Where the embedded Ray's dashboard answers. None: Ray's 8265, or the next free port when
    # that one is taken (two platforms on one machine); a port set here is that port or nothing.
    dashboard_port: int | None = None
    # How long a command or Client() waits to join Ray before it gives up (exit 6): a Ray whose
    # GCS died would otherwise keep `ray.init` retrying for minutes.
    connect_timeout_s: float = 15.0
    # Serve's access log: one line per request in the replica's log file. Off by default: at
    # thousands of webhooks a second it is a tenth of the listener's CPU and a flood of disk.
    access_log: bool = False
    records: str = ""  # where execution records go: a path or a pyarrow.fs URI (s3://, gs://)
    # Tenant quotas, each overridable per tenant by an admin (`jobico tenants quota`); 0: none.
    quota_events_per_s: int = 0  # events accepted per second, across the listener replicas
    quota_repository_mb: int = 1024  # stored file bytes, every version counted once
    quota_packages: int = 100  # live packages
    grant_ttl_s: int = 300  # how long a grant bought with a token lasts (a revocation's delay)
    # The stateful actors (control, repository, pubsub, queues, recorder, supervisor) need the
    # node holding `home`: they ask for a sliver of this Ray resource, which only that node
    # has. Ray gives every head node `node:__internal_head__`; on a cluster whose data lives
    # elsewhere, start that node with `--resources '{"jobico_state": 1}'` and name it here.
    state_resource: str = "node:__internal_head__"
    proxy_location: str = "EveryNode"  # Serve's HTTP proxies: EveryNode | HeadOnly
    ray_address: str = ""  # RAY_ADDRESS: the cluster to find Jobico on when it is not embedded

    @property
    def limit_maxima(self) -> Limits:
        """The most a runtime's `limits` may ask for; None: no maximum."""
        return Limits(
            timeout_ms=self.max_timeout_ms,
            memory_mb=self.max_memory_mb,
            fuel=self.max_fuel,
            result_kb=self.max_result_kb,
            log_kb=self.max_log_kb,
        )

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
            backlog_per_executor=_int(env, "JOBICO_BACKLOG_PER_EXECUTOR", d.backlog_per_executor),
            executors_idle_s=_float(env, "JOBICO_EXECUTORS_IDLE_S", d.executors_idle_s),
            executors_busy_cpu=_fraction(env, "JOBICO_EXECUTORS_BUSY_CPU", d.executors_busy_cpu),
            executors_guest_share=_fraction(
                env, "JOBICO_EXECUTORS_GUEST_SHARE", d.executors_guest_share
            ),
            guest_threads=_int(env, "JOBICO_GUEST_THREADS", d.guest_threads),
            listener_replicas=_int(env, "JOBICO_LISTENER_REPLICAS", d.listener_replicas),
            local_puts=_flag(env, "JOBICO_LOCAL_PUTS", d.local_puts),
            lease_timeout_ms=_int(env, "JOBICO_LEASE_TIMEOUT_MS", d.lease_timeout_ms),
            default_timeout_ms=_int(env, "JOBICO_DEFAULT_TIMEOUT_MS", d.default_timeout_ms),
            default_memory_mb=_int(env, "JOBICO_DEFAULT_MEMORY_MB", d.default_memory_mb),
            default_fuel=_optional_int(env, "JOBICO_DEFAULT_FUEL"),
            default_result_kb=_int(env, "JOBICO_DEFAULT_RESULT_KB", d.default_result_kb),
            default_log_kb=_int(env, "JOBICO_DEFAULT_LOG_KB", d.default_log_kb),
            max_timeout_ms=_int(env, "JOBICO_MAX_TIMEOUT_MS", d.max_timeout_ms),
            max_memory_mb=_int(env, "JOBICO_MAX_MEMORY_MB", d.max_memory_mb),
            max_fuel=_optional_int(env, "JOBICO_MAX_FUEL"),
            max_result_kb=_int(env, "JOBICO_MAX_RESULT_KB", d.max_result_kb),
            max_log_kb=_int(env, "JOBICO_MAX_LOG_KB", d.max_log_kb),
            max_body_kb=_int(env, "JOBICO_MAX_BODY_KB", d.max_body_kb),
            deploy_check_s=_above_zero(
                "JOBICO_DEPLOY_CHECK_S", _float(env, "JOBICO_DEPLOY_CHECK_S", d.deploy_check_s)
            ),
            max_module_mb=_above_zero(
                "JOBICO_MAX_MODULE_MB", _int(env, "JOBICO_MAX_MODULE_MB", d.max_module_mb)
            ),
            idempotency_ttl_s=_int(env, "JOBICO_IDEMPOTENCY_TTL_S", d.idempotency_ttl_s),
            dashboard=_flag(env, "JOBICO_DASHBOARD", d.dashboard),
            dashboard_port=_port(env, "JOBICO_DASHBOARD_PORT"),
            connect_timeout_s=_above_zero(
                "JOBICO_CONNECT_TIMEOUT_S",
                _float(env, "JOBICO_CONNECT_TIMEOUT_S", d.connect_timeout_s),
            ),
            access_log=_flag(env, "JOBICO_ACCESS_LOG", d.access_log),
            records=env.get("JOBICO_RECORDS", ""),
            quota_events_per_s=_int(env, "JOBICO_QUOTA_EVENTS_PER_S", d.quota_events_per_s),
            quota_repository_mb=_int(env, "JOBICO_QUOTA_REPOSITORY_MB", d.quota_repository_mb),
            quota_packages=_int(env, "JOBICO_QUOTA_PACKAGES", d.quota_packages),
            grant_ttl_s=_int(env, "JOBICO_GRANT_TTL_S", d.grant_ttl_s),
            state_resource=env.get("JOBICO_STATE_RESOURCE") or d.state_resource,
            proxy_location=env.get("JOBICO_PROXY_LOCATION") or d.proxy_location,
            ray_address=env.get("RAY_ADDRESS", ""),
        )
