"""The domain: Jobico packages (as their YAML reads), revisions, files; loading with exact errors.

A package file is loaded into frozen dataclasses by one generic walker that knows the dataclass
fields: unknown keys, missing keys and wrong types are refused with the path of the field
(`jobs[0].event.supplierqueue`). Cross references (queues, runtimes, unique ids) are checked after.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from jobico.errors import InvalidName, PackageInvalid

# fullmatch, not `$`: `$` also matches before a trailing newline, and "acme\n" would pass.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def compact(value: object) -> str:
    """The one JSON spelling of an event: sorted keys, no spaces, UTF-8 kept as is. Guests get
    events so (as Jobico's Go listener sent them), and ordering keys are compared so."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def check_name(kind: str, name: object) -> str:
    """A tenant, package or file name that cannot escape its directory or key space."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise InvalidName(
            f"invalid {kind} name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without '..'",
            kind=kind,
            name=str(name),
        )
    return name


# --- package model -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Guest limits, in the units of a runtime's `limits`: the one shape for all of them.

    A runtime's own leave None where the platform default applies; the platform's defaults and
    maxima are two more (jobico.config.Settings.guest_defaults / guest_maxima; a maximum of None
    is none); a run goes by the runtime's `over` the defaults, `within` the maxima, where only
    fuel may still be None (no limit). The engine reads those as ints (`wall_ms`, `*_bytes`).
    """

    timeout_ms: int | None = None  # wall clock per execution
    memory_mb: int | None = None  # linear memory
    fuel: int | None = None
    result_kb: int | None = None
    log_kb: int | None = None  # log message bytes per execution

    def over(self, defaults: Limits) -> Limits:
        """Each limit set here, else the one of `defaults`."""
        return Limits(**{n: _either(getattr(self, n), getattr(defaults, n)) for n in LIMIT_NAMES})

    def within(self, maxima: Limits) -> Limits:
        """Each limit no higher than its maximum; an unset one is its maximum (an operator's
        maximum holds every run, also where no default sets that limit), or stays unset."""
        return Limits(**{n: _at_most(getattr(self, n), getattr(maxima, n)) for n in LIMIT_NAMES})

    @property
    def wall_ms(self) -> int:
        return self._given("timeout_ms")

    @property
    def memory_bytes(self) -> int:
        return self._given("memory_mb") << 20

    @property
    def result_bytes(self) -> int:
        return self._given("result_kb") << 10

    @property
    def log_bytes(self) -> int:
        return self._given("log_kb") << 10

    def _given(self, name: str) -> int:
        value: int | None = getattr(self, name)
        if value is None:
            raise ValueError(f"limit {name} is unset: run under limits over the defaults")
        return value


def _either(value: int | None, default: int | None) -> int | None:
    return default if value is None else value


def _at_most(value: int | None, top: int | None) -> int | None:
    if top is None:
        return value
    return top if value is None else min(value, top)


LIMIT_NAMES = tuple(f.name for f in dataclasses.fields(Limits))


@dataclass(frozen=True, kw_only=True)
class Retry:
    """How failures (never a guest's own non-zero code) are retried."""

    max_attempts: int = 3
    backoff_ms: int = 200


@dataclass(frozen=True, kw_only=True)
class Schema:
    id: str
    name: str = ""
    schemaref: str


@dataclass(frozen=True, kw_only=True)
class Queue:
    id: str
    name: str = ""
    limit: int = 100_000


AuthKind = Literal["bearer", "standard-webhooks", "github", "stripe"]


@dataclass(frozen=True, kw_only=True)
class EventAuth:
    """What a poster must prove: an ingest key or a webhook signature (jobico.access.signatures),
    checked with the tenant's secret of that name (`jobico secrets set`), never written here."""

    kind: AuthKind
    secret: str


@dataclass(frozen=True, kw_only=True)
class Event:
    id: str
    name: str = ""
    datatype: int = 0  # 0 = JSON, the only type Jobico defines
    schema: Schema | None = None
    supplierqueue: str
    runtime: str
    orderingkey: str | None = None  # JSON pointer into the event; None = the whole queue
    auth: EventAuth | None = None  # None: anyone who can reach the listener may post


@dataclass(frozen=True, kw_only=True)
class Result:
    ok: Event | None = None
    error: Event | None = None


@dataclass(frozen=True, kw_only=True)
class Job:
    event: Event
    result: Result | None = None
    retry: Retry = field(default_factory=Retry)

    def events(self) -> list[Event]:
        """The job's own event and the chained result events, each runnable on its own."""
        chained = [self.result.ok, self.result.error] if self.result else []
        return [self.event, *(e for e in chained if e is not None)]


RuntimeKind = Literal["jobicolet", "wasi"]


@dataclass(frozen=True, kw_only=True)
class Runtime:
    id: str
    name: str = ""
    moduleref: str
    mainfuncname: str = "event"
    type: int = 0  # 0 = wasm, the only type Jobico defines
    kind: RuntimeKind = "jobicolet"
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True, kw_only=True)
class Package:
    name: str = ""
    id: str
    tenant: str
    queues: list[Queue]
    jobs: list[Job]
    runtimes: list[Runtime] = field(default_factory=list)

    def all_events(self) -> list[tuple[Job, Event]]:
        return [(job, ev) for job in self.jobs for ev in job.events()]

    def file_refs(self) -> dict[str, str]:
        """Every repository file the package names, with its kind ('wasm' or 'json')."""
        refs = {rt.moduleref: "wasm" for rt in self.runtimes}
        for _, ev in self.all_events():
            if ev.schema is not None:
                refs[ev.schema.schemaref] = "json"
        return refs

    def runtime(self, runtime_id: str) -> Runtime:
        return next(rt for rt in self.runtimes if rt.id == runtime_id)

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = _to_plain(self)
        return plain


# --- loading -----------------------------------------------------------------------------------


def load_package_yaml(text: str, *, source: str = "package") -> Package:
    # Imported here: every process reads this module's names and limits (through jobico.config),
    # a queue actor's among them, and only loading a package reads YAML
    # (docs/performance.md#a-queue-actors-memory).
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PackageInvalid(f"{source}: not valid YAML: {e}", path="") from None
    return load_package(data)


def load_package(data: object) -> Package:
    package: Package = _build(Package, data, "")
    _check_package(package)
    return package


def _build(cls: type, data: object, path: str) -> Any:
    if not isinstance(data, dict):
        raise _invalid(path, f"must be a mapping, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise _invalid(_join(path, str(key)), "unknown key")
    values = {}
    for name, f in fields.items():
        sub = _join(path, name)
        if name in data:
            values[name] = _convert(hints[name], data[name], sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _invalid(sub, "missing required key")
    return cls(**values)


def _convert(hint: Any, value: object, path: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else _convert(options[0], value, path)
    if origin is list:
        if not isinstance(value, list):
            raise _invalid(path, f"must be a list, got {_kind(value)}")
        (item,) = typing.get_args(hint)
        return [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is Literal:
        if value not in typing.get_args(hint):
            allowed = ", ".join(map(str, typing.get_args(hint)))
            raise _invalid(path, f"must be one of {allowed}, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path)  # type: ignore[arg-type]
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid(path, f"must be a whole number, got {_kind(value)}")
        return value
    if hint is str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _invalid(path, f"must be a string, got {_kind(value)}")
        return str(value)  # YAML reads `id: 1` as a number; ids are strings
    raise AssertionError(f"no conversion for {hint}")  # pragma: no cover


def _check_package(p: Package) -> None:
    check_name_at("tenant", "tenant", p.tenant)
    check_name_at("id", "package", p.id)
    _unique([(f"queues[{i}].id", q.id) for i, q in enumerate(p.queues)], "queue")
    _unique([(f"runtimes[{i}].id", rt.id) for i, rt in enumerate(p.runtimes)], "runtime")
    _unique(list(_event_paths(p)), "event")
    queue_ids = {q.id for q in p.queues}
    runtime_ids = {rt.id for rt in p.runtimes}
    for i, job in enumerate(p.jobs):
        _check_job(f"jobs[{i}]", job, queue_ids, runtime_ids)
    for i, rt in enumerate(p.runtimes):
        _check_runtime(f"runtimes[{i}]", rt)
    for i, q in enumerate(p.queues):
        _positive(f"queues[{i}].limit", q.limit)


def _check_job(path: str, job: Job, queues: set[str], runtimes: set[str]) -> None:
    places = [("event", job.event)]
    if job.result:
        places += [
            (f"result.{k}", ev)
            for k, ev in (("ok", job.result.ok), ("error", job.result.error))
            if ev
        ]
    for where, ev in places:
        at = f"{path}.{where}"
        if ev.supplierqueue not in queues:
            raise _invalid(
                f"{at}.supplierqueue", f"queue {ev.supplierqueue!r} is not declared in queues"
            )
        if ev.runtime not in runtimes:
            raise _invalid(f"{at}.runtime", f"runtime {ev.runtime!r} is not declared in runtimes")
        if ev.datatype != 0:
            raise _invalid(f"{at}.datatype", f"only 0 (JSON) is supported, got {ev.datatype}")
        if ev.orderingkey is not None and not (
            ev.orderingkey == "" or ev.orderingkey.startswith("/")
        ):
            raise _invalid(f"{at}.orderingkey", "must be a JSON pointer such as /customer/id")
        check_name_at(f"{at}.id", "event", ev.id)
        if ev.schema is not None:
            check_name_at(f"{at}.schema.schemaref", "file", ev.schema.schemaref)
        if ev.auth is not None:
            _check_secret_name(f"{at}.auth.secret", ev.auth.secret)
    _positive(f"{path}.retry.max_attempts", job.retry.max_attempts)
    if job.retry.backoff_ms < 0:
        raise _invalid(f"{path}.retry.backoff_ms", "must not be negative")


def _check_runtime(path: str, rt: Runtime) -> None:
    if rt.type != 0:
        raise _invalid(f"{path}.type", f"only 0 (wasm) is supported, got {rt.type}")
    check_name_at(f"{path}.moduleref", "file", rt.moduleref)
    for name in LIMIT_NAMES:
        value = getattr(rt.limits, name)
        if value is not None:
            _positive(f"{path}.limits.{name}", value)


# What secrets themselves look like: a package naming one of these wrote a value, not a name.
_SECRET_LOOKS = ("whsec_", "jbk_", "sk_", "ghp_")


def _check_secret_name(path: str, name: str) -> None:
    if name.startswith(_SECRET_LOOKS) or len(name) > 64:
        raise _invalid(path, "name a secret set with `jobico secrets set`; never write its value")
    check_name_at(path, "secret", name)


def check_name_at(path: str, kind: str, value: str) -> None:
    try:
        check_name(kind, value)
    except InvalidName as e:
        raise _invalid(path, e.message) from None


def _event_paths(p: Package) -> typing.Iterator[tuple[str, str]]:
    for i, job in enumerate(p.jobs):
        yield f"jobs[{i}].event.id", job.event.id
        for k in ("ok", "error"):
            ev = getattr(job.result, k, None)
            if ev is not None:
                yield f"jobs[{i}].result.{k}.id", ev.id


def _unique(paths_ids: list[tuple[str, str]], what: str) -> None:
    seen: set[str] = set()
    for path, ident in paths_ids:
        if ident in seen:
            raise _invalid(path, f"duplicate {what} id {ident!r}")
        seen.add(ident)


def _positive(path: str, value: int) -> None:
    if value < 1:
        raise _invalid(path, f"must be at least 1, got {value}")


def _invalid(path: str, why: str) -> PackageInvalid:
    where = path or "package"
    return PackageInvalid(f"{where}: {why}", path=path)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_default(f: dataclasses.Field[Any], value: object) -> bool:
    if f.default is not dataclasses.MISSING:
        return bool(value == f.default)
    if f.default_factory is not dataclasses.MISSING:
        return bool(value == f.default_factory())
    return False


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def _to_plain(obj: Any) -> Any:
    """Plain data as a package file would say it: fields left at their default are omitted."""
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if not _is_default(f, value):
                out[f.name] = _to_plain(value)
        return out
    if isinstance(obj, list):
        return [_to_plain(v) for v in obj]
    return obj


# --- revisions and files -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Revision:
    """One immutable deployment of a package: the spec plus the file digests it pins."""

    tenant: str
    package: str
    number: int
    spec: Package
    files: dict[str, str]  # repository name -> sha256 digest, pinned at deploy
    created_at: float
    note: str = ""  # e.g. "rollback to 1"

    def digest(self, name: str) -> str:
        return self.files[name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "package": self.package,
            "number": self.number,
            "spec": self.spec.to_dict(),
            "files": dict(self.files),
            "created_at": self.created_at,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Revision:
        return cls(
            tenant=d["tenant"],
            package=d["package"],
            number=d["number"],
            spec=load_package(d["spec"]),
            files=dict(d["files"]),
            created_at=d["created_at"],
            note=d.get("note", ""),
        )


@dataclass(frozen=True, kw_only=True)
class FileInfo:
    """One version of a repository file."""

    tenant: str
    name: str
    kind: str
    digest: str
    size: int
    version: int
    uploaded_at: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
