"""The listener's routing table: (tenant, event id) -> where the event goes, from package revisions.

Also what a route does to an event before it is queued: its JSON Schema (compiled on first use
per digest, the least recently used evicted past a bound and compiled again when next used),
its ordering key (an RFC 6901 pointer) and its compact payload. Plain Python, no Ray.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jobico.errors import EventRejected, JobicoError, Unavailable
from jobico.jsonpointer import resolve
from jobico.lru import LRU
from jobico.model import Revision, compact
from jobico.queue.events import NewEvent
from jobico.schemas import Deadline, OverBudget, Validate, compile_schema, within_budget

log = logging.getLogger(__name__)

# "tenant/package" -> Revision.to_dict(), or None when the package was deleted
PackageItems = Mapping[str, dict[str, Any] | None]


@dataclass(frozen=True)
class Route:
    tenant: str
    event: str
    package: str
    revision: int
    queue: str  # supplier queue id
    limit: int  # the supplier queue's limit
    orderingkey: str | None  # JSON pointer into the event, or None: the whole queue is one key
    schema_digest: str | None  # sha256 of the event's JSON Schema, or None: anything goes
    auth: tuple[str, str] | None = None  # (kind, secret name) a poster must satisfy; None: open
    result: bool = False  # a job's result event, which its job queues

    @property
    def postable(self) -> bool:
        """Whether it may be posted from outside: a result event only with its own `auth:`,
        or anyone could forge a job's results."""
        return not self.result or self.auth is not None


class Routes:
    """(tenant, event id) -> Route, rebuilt from the packages topic; validators cached by digest,
    `max_schemas` of them (JOBICO_CACHE_SCHEMAS).

    `apply` runs on a subscriber thread while requests read: every route table is an immutable
    snapshot swapped in whole, so a reader sees either the old state or the new, never a mix.

    The route table itself is not evicted: it is what a schema is loaded again from (its
    digest), a few hundred bytes per event, and its source, the packages topic, is an actor
    call away, which a request must not wait on. Compiled schemas are the weight.
    """

    def __init__(
        self, load_schema: Callable[[str, str], bytes], *, max_schemas: int = 4096
    ) -> None:
        self._load_schema = load_schema  # (tenant, digest) -> schema bytes; on cache miss only
        self._lock = threading.Lock()  # serialises writers; readers never take it
        self._packages: dict[str, dict[str, Route]] = {}  # "tenant/package" -> event -> Route
        self._routes: dict[tuple[str, str], Route] = {}
        self._tenants: frozenset[str] = frozenset()
        self._validators: LRU[tuple[str, str], Validate] = LRU(max_schemas)

    def apply(self, items: PackageItems, *, reset: bool = False) -> None:
        """Replace all routes of each package in `items`; a None value deletes the package.

        With `reset`, `items` is the whole state (pubsub's reset answer), swapped in at once:
        reset() then apply() would let requests in between see no routes at all.
        """
        with self._lock:
            packages = {} if reset else dict(self._packages)
            for key, value in items.items():
                _update(packages, key, value)
            self._swap(packages)
        changed = [r for key in items for r in packages.get(key, {}).values()]
        # Only the changed packages' schemas, and no more than the cache holds: compiling more
        # would evict the ones just compiled.
        self._warm([r for r in changed if r.schema_digest is not None][: self._validators.bound])

    def reset(self) -> None:
        with self._lock:
            self._swap({})

    def get(self, tenant: str, event: str) -> Route | None:
        return self._routes.get((tenant, event))

    def tenant_known(self, tenant: str) -> bool:
        return tenant in self._tenants

    def cached_validator(self, route: Route) -> Validate | None:
        """The compiled validator if it is at hand (never loads); None on a miss or no schema."""
        if route.schema_digest is None:
            return None
        return self._validators.get((route.tenant, route.schema_digest))

    def validator(self, route: Route) -> Validate | None:
        """The route's compiled validator, loading and compiling its schema on a miss (blocks)."""
        if route.schema_digest is None:
            return None
        cached = self.cached_validator(route)
        if cached is not None:
            return cached
        compiled = _compile(route, self._load(route))
        self._validators.put((route.tenant, route.schema_digest), compiled)
        return compiled

    def _load(self, route: Route) -> bytes:
        assert route.schema_digest is not None
        try:
            return self._load_schema(route.tenant, route.schema_digest)
        except Exception as e:  # the repository is down or lost it: not the sender's fault
            raise Unavailable(
                f"the schema of event {route.event!r} cannot be loaded: {e}",
                tenant=route.tenant,
                event=route.event,
            ) from e

    def _swap(self, packages: dict[str, dict[str, Route]]) -> None:
        routes = {(r.tenant, r.event): r for table in packages.values() for r in table.values()}
        in_use = {(r.tenant, r.schema_digest) for r in routes.values()}
        # Schemas no live route names are dropped; a rollback to one just compiles it again.
        self._validators.retain(lambda key: key in in_use)
        self._packages, self._routes = packages, routes
        self._tenants = frozenset(r.tenant for r in routes.values())

    def _warm(self, routes: Iterable[Route]) -> None:
        """Compile new schemas here, on the subscriber's thread, so requests rarely wait for one."""
        for route in routes:
            try:
                self.validator(route)
            except Exception as e:  # the request that needs it will try again and report it
                log.warning("schema of %s/%s not compiled yet: %s", route.tenant, route.event, e)


def _update(packages: dict[str, dict[str, Route]], key: str, value: dict[str, Any] | None) -> None:
    if value is None:
        packages.pop(key, None)
        return
    try:
        packages[key] = routes_of(Revision.from_dict(value))
    except (JobicoError, KeyError, TypeError) as e:
        # Control validated it at deploy; one unreadable item must not stop every other update.
        log.error("package %s: revision not usable, keeping its previous routes: %s", key, e)


def routes_of(rev: Revision) -> dict[str, Route]:
    """Every event of the revision, chained result events included (see Route.postable)."""
    limits = {q.id: q.limit for q in rev.spec.queues}
    return {
        ev.id: Route(
            tenant=rev.tenant,
            event=ev.id,
            package=rev.package,
            revision=rev.number,
            queue=ev.supplierqueue,
            limit=limits[ev.supplierqueue],
            orderingkey=ev.orderingkey,
            schema_digest=rev.digest(ev.schema.schemaref) if ev.schema else None,
            auth=(ev.auth.kind, ev.auth.secret) if ev.auth else None,
            result=ev is not job.event,
        )
        for job, ev in rev.spec.all_events()
    }


def _compile(route: Route, data: bytes) -> Validate:
    return compile_schema(
        data,
        name=f"schema {route.schema_digest} of event {route.event!r}",
        tenant=route.tenant,
        event=route.event,
    )


def checked_events(
    route: Route,
    check: Validate | None,
    elements: list[object],
    *,
    batch: bool,
    received_at: float,
    seconds: float,
    on_loop: bool,
) -> list[NewEvent]:
    """The events of one request, new_event of each element, all within `seconds`
    (docs/security.md).

    On the event loop (`on_loop`) OverBudget once they pass, so that the caller can start again
    off the loop; off it, EventRejected (422) naming the element the time ran out on, and the
    checks sleep half of every millisecond, leaving the GIL to the loop's thread."""
    events: list[NewEvent] = []
    try:
        with Deadline(time.monotonic() + seconds, share_gil=not on_loop):
            for i, element in enumerate(elements):
                events.append(
                    new_event(route, check, element, index=i, batch=batch, received_at=received_at)
                )
                within_budget()  # between elements too: a batch's events cost without a schema
    except OverBudget:
        if on_loop:
            raise
        where = f"data[{len(events)}]" if batch else "event"
        reason = f"not checked: its schema check took longer than the limit of {seconds:g} s"
        raise EventRejected(
            f"{where}: {reason}", index=len(events), path="", reason=reason
        ) from None
    return events


def new_event(
    route: Route,
    check: Validate | None,
    element: object,
    *,
    index: int,
    batch: bool,
    received_at: float,
) -> NewEvent:
    """The event to enqueue for one posted element; EventRejected if its route refuses it, with
    the most telling problem first and up to `schemas.MAX_PROBLEMS` in `problems`."""
    where = f"data[{index}]" if batch else "event"
    problems = check(element) if check is not None else []
    if problems:
        path, reason = problems[0].path, problems[0].reason
        at = f" at {path}" if path else ""
        raise EventRejected(
            f"{where}{at}: {reason}",
            index=index,
            path=path,
            reason=reason,
            problems=[{"path": p.path, "reason": p.reason} for p in problems],
        )
    return NewEvent(
        queue=route.queue,
        event=route.event,
        package=route.package,
        revision=route.revision,
        key=_ordering_key(route, element, index, where),
        payload=compact(element).encode(),
        received_at=received_at,
        limit=route.limit,
    )


def _ordering_key(route: Route, element: object, index: int, where: str) -> str | None:
    if route.orderingkey is None:
        return None
    try:
        return compact(resolve(element, route.orderingkey))
    except KeyError:
        reason = f"ordering key {route.orderingkey} names nothing in the event"
        raise EventRejected(
            f"{where}: {reason}", index=index, path=route.orderingkey, reason=reason
        ) from None
