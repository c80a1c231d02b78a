"""Settings: read once from JOBICO_* variables at the edge, then passed down explicitly.

Each field of `Settings` names its variable and parser once, in its metadata (`_env`); `from_env`
reads them all by that table, and `Settings.variables()` lists it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from jobico.errors import InvalidInput
from jobico.model import LIMIT_NAMES, Limits

T = TypeVar("T")
_N = TypeVar("_N", int, float)
Parse = Callable[[str, str], T]  # (variable, its text, never blank) -> value, or InvalidInput


def _text(name: str, raw: str) -> str:
    return raw


def _path(name: str, raw: str) -> Path:
    return Path(raw).expanduser().resolve()


def _whole(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, got {raw!r}") from None


def _whole_or_none(name: str, raw: str) -> int | None:
    return _whole(name, raw) or None  # 0: none


def _number(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a number, got {raw!r}") from None


def _fraction(name: str, raw: str) -> float:
    """A share, from 0 to 1: `85` meant as a percentage would otherwise never be reached."""
    value = _number(name, raw)
    if not 0 <= value <= 1:
        raise InvalidInput(f"{name} must be a fraction from 0 to 1, got {value:g}")
    return value


def _port(name: str, raw: str) -> int:
    value = _whole(name, raw)
    if not 1 <= value <= 65535:
        raise InvalidInput(f"{name} must be a port from 1 to 65535, got {value}")
    return value


def _above_zero(parse: Parse[_N]) -> Parse[_N]:
    """A bound that must leave room for something: 0 or less would refuse everything."""

    def checked(name: str, raw: str) -> _N:
        value = parse(name, raw)
        if not 0 < value < float("inf"):
            raise InvalidInput(f"{name} must be above 0, got {value:g}")
        return value

    return checked


_YES, _NO = frozenset(("1", "true", "yes", "on")), frozenset(("0", "false", "no", "off"))


def _flag(name: str, raw: str) -> bool:
    """On or off; anything else is refused rather than read as one of them."""
    word = raw.strip().lower()
    if word in _YES or word in _NO:
        return word in _YES
    raise InvalidInput(f"{name} must be 1 or 0 (true/false, yes/no, on/off), got {raw!r}")


class _Source(Protocol):
    """Where one field of Settings comes from."""

    def read(self, env: Mapping[str, str], default: Any) -> Any: ...

    def variables(self) -> dict[str, str]:
        """Each variable read, and the part of the field it sets ("" for all of it)."""
        ...


@dataclass(frozen=True)
class _Var(Generic[T]):
    """One variable; unset, empty or blank: the field's default."""

    name: str
    parse: Parse[T]

    def read(self, env: Mapping[str, str], default: T) -> T:
        raw = env.get(self.name)
        return default if raw is None or not raw.strip() else self.parse(self.name, raw)

    def variables(self) -> dict[str, str]:
        return {self.name: ""}


@dataclass(frozen=True)
class _LimitVars:
    """A Limits field, a variable per limit: the prefix, then the limit's name in capitals."""

    prefix: str  # JOBICO_DEFAULT_ + TIMEOUT_MS

    def var(self, limit: str) -> _Var[int | None]:
        # Fuel alone may be none (no limit), so its variables also read 0 as none.
        return _Var(self.prefix + limit.upper(), _whole_or_none if limit == "fuel" else _whole)

    def read(self, env: Mapping[str, str], default: Limits) -> Limits:
        return Limits(**{n: self.var(n).read(env, getattr(default, n)) for n in LIMIT_NAMES})

    def variables(self) -> dict[str, str]:
        return {self.var(n).name: f".{n}" for n in LIMIT_NAMES}


def _env(name: str, default: T, parse: Parse[T]) -> T:
    """A field read from variable `name` by `parse`."""
    return field(default=default, metadata={"env": _Var(name, parse)})


def _source(f: Field[Any]) -> _Source:
    source: _Source = f.metadata["env"]
    return source


# Guest limits: the default where a runtime sets none, and the most a runtime may ask for (a
# deploy asking for more is refused). Fuel has no default and, unless set, no maximum.
GUEST_DEFAULTS = Limits(timeout_ms=10_000, memory_mb=64, fuel=None, result_kb=1024, log_kb=256)
GUEST_MAXIMA = Limits(timeout_ms=60_000, memory_mb=1024, fuel=None, result_kb=16_384, log_kb=4096)
# Per executor, for a Sandbox made without settings too (a deploy's check, run-local): compiled
# modules are megabytes of machine code each, a warm instance holds its linear memory (64 MB at
# most by default, far less for most guests), so 256 of each stay within a few GB on a 24 GB node.
CACHE_MODULES = 256
CACHE_INSTANCES = 256


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything configurable about a Jobico installation, with its variable and default."""

    home: Path = field(
        default_factory=lambda: Path(".jobico").resolve(),
        metadata={"env": _Var("JOBICO_HOME", _path)},
    )
    namespace: str = _env("JOBICO_NAMESPACE", "jobico", _text)  # Ray namespace of named actors
    host: str = _env("JOBICO_HOST", "127.0.0.1", _text)  # where the listener binds
    port: int = _env("JOBICO_PORT", 8000, _whole)
    executors_min: int = _env("JOBICO_EXECUTORS_MIN", 1, _whole)
    executors_max: int = _env("JOBICO_EXECUTORS_MAX", 2, _whole)
    # Waiting events that call for one more executor.
    backlog_per_executor: int = _env("JOBICO_BACKLOG_PER_EXECUTOR", 100, _whole)
    # Below the backlog's call this long: one executor fewer.
    executors_idle_s: float = _env("JOBICO_EXECUTORS_IDLE_S", 30.0, _number)
    # No executor is added to a node whose CPUs are this busy while its guests use this share of
    # them (jobico.execution.autoscale.Policy): more guest threads there only add contention.
    executors_busy_cpu: float = _env("JOBICO_EXECUTORS_BUSY_CPU", 0.85, _fraction)
    executors_guest_share: float = _env("JOBICO_EXECUTORS_GUEST_SHARE", 0.25, _fraction)
    # Per executor: runs of different ordering keys side by side.
    guest_threads: int = _env("JOBICO_GUEST_THREADS", 4, _whole)
    listener_replicas: int = _env("JOBICO_LISTENER_REPLICAS", 1, _whole)
    # A listener replica sends puts to a queue actor on its own node over a Unix socket rather
    # than a Ray call (jobico.queue.localputs): about a fifth more single-event webhooks a second.
    local_puts: bool = _env("JOBICO_LOCAL_PUTS", True, _flag)
    # An unacked lease is redelivered after this.
    lease_timeout_ms: int = _env("JOBICO_LEASE_TIMEOUT_MS", 30_000, _whole)
    # One variable per limit: JOBICO_DEFAULT_TIMEOUT_MS ... JOBICO_MAX_LOG_KB (see GUEST_DEFAULTS).
    guest_defaults: Limits = field(
        default=GUEST_DEFAULTS, metadata={"env": _LimitVars("JOBICO_DEFAULT_")}
    )
    guest_maxima: Limits = field(default=GUEST_MAXIMA, metadata={"env": _LimitVars("JOBICO_MAX_")})
    max_body_kb: int = _env("JOBICO_MAX_BODY_KB", 1024, _whole)  # larger requests get 413
    # A deploy's check of one module (compiling it, running its start code to read ver()) is
    # refused past this wall-clock bound, and modules above this size are refused outright:
    # compiling cannot be interrupted, so the size bounds how long it runs on.
    deploy_check_s: float = _env("JOBICO_DEPLOY_CHECK_S", 5.0, _above_zero(_number))
    max_module_mb: int = _env("JOBICO_MAX_MODULE_MB", 64, _above_zero(_whole))
    # An Idempotency-Key / webhook-id seen again within this is not re-queued.
    idempotency_ttl_s: int = _env("JOBICO_IDEMPOTENCY_TTL_S", 86_400, _whole)
    dashboard: bool = _env("JOBICO_DASHBOARD", True, _flag)  # the embedded Ray starts its dashboard
    # Where the embedded Ray's dashboard answers. None: Ray's 8265, or the next free port when
    # that one is taken (two platforms on one machine); a port set here is that port or nothing.
    dashboard_port: int | None = _env("JOBICO_DASHBOARD_PORT", None, _port)
    # How long a command or Client() waits to join Ray before it gives up (exit 6): a Ray whose
    # GCS died would otherwise keep `ray.init` retrying for minutes.
    connect_timeout_s: float = _env("JOBICO_CONNECT_TIMEOUT_S", 15.0, _above_zero(_number))
    # Serve's access log: one line per request in the replica's log file. Off by default: at
    # thousands of webhooks a second it is a tenth of the listener's CPU and a flood of disk.
    access_log: bool = _env("JOBICO_ACCESS_LOG", False, _flag)
    # Where execution records go: a path or a pyarrow.fs URI (s3://, gs://); "": under home.
    records: str = _env("JOBICO_RECORDS", "", _text)
    # Tenant quotas, each overridable per tenant by an admin (`jobico tenants quota`); 0: none.
    # Events accepted per second, across the listener replicas.
    quota_events_per_s: int = _env("JOBICO_QUOTA_EVENTS_PER_S", 0, _whole)
    # Stored file bytes, every version counted once.
    quota_repository_mb: int = _env("JOBICO_QUOTA_REPOSITORY_MB", 1024, _whole)
    quota_packages: int = _env("JOBICO_QUOTA_PACKAGES", 100, _whole)  # live packages
    # Per-tenant caches, each least-recently-used past its bound and loaded again on next use
    # (docs/operating.md#capacity). Per listener replica: compiled JSON Schemas (tens of KB
    # each), and tenants' queues at hand (a Ray handle, a coalescer, maybe a local socket's fd).
    cache_schemas: int = _env("JOBICO_CACHE_SCHEMAS", 4096, _above_zero(_whole))
    cache_queues: int = _env("JOBICO_CACHE_QUEUES", 1024, _above_zero(_whole))
    # Per executor: package revisions (a few KB each), compiled modules, warm instances.
    cache_revisions: int = _env("JOBICO_CACHE_REVISIONS", 4096, _above_zero(_whole))
    cache_modules: int = _env("JOBICO_CACHE_MODULES", CACHE_MODULES, _above_zero(_whole))
    cache_instances: int = _env("JOBICO_CACHE_INSTANCES", CACHE_INSTANCES, _above_zero(_whole))
    # How long a grant bought with a token lasts (a revocation's delay).
    grant_ttl_s: int = _env("JOBICO_GRANT_TTL_S", 300, _whole)
    # The stateful actors (control, repository, pubsub, queues, recorder, supervisor) need the
    # node holding `home`: they ask for a sliver of this Ray resource, which only that node
    # has. Ray gives every head node `node:__internal_head__`; on a cluster whose data lives
    # elsewhere, start that node with `--resources '{"jobico_state": 1}'` and name it here.
    state_resource: str = _env("JOBICO_STATE_RESOURCE", "node:__internal_head__", _text)
    # Serve's HTTP proxies: EveryNode | HeadOnly.
    proxy_location: str = _env("JOBICO_PROXY_LOCATION", "EveryNode", _text)
    # The cluster to find Jobico on when it is not embedded.
    ray_address: str = _env("RAY_ADDRESS", "", _text)

    @property
    def records_uri(self) -> str:
        return self.records or str(self.home / "records")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Each field from its variable; unset, empty or blank: the field's default."""
        env = os.environ if env is None else env
        d = cls()
        return cls(**{f.name: _source(f).read(env, getattr(d, f.name)) for f in fields(cls)})

    @classmethod
    def variables(cls) -> dict[str, str]:
        """The table: each variable read, and the field it sets (`guest_maxima.fuel`)."""
        return {
            name: f.name + part
            for f in fields(cls)
            for name, part in _source(f).variables().items()
        }
