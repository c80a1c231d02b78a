"""The registry: tenants, packages and their revisions; the rules of deploy and rollback.

Every deploy, update or rollback writes a new immutable revision that pins the digests of the
files the package references, so going back restores exactly the old code and schemas. A
package's record says which revision is current; delete hides the package but keeps history,
so revision numbers are never reused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from jobico.errors import Conflict, FileInvalid, NotFound, PackageInvalid, QuotaExceeded
from jobico.homedir import durable_cache
from jobico.model import LIMIT_NAMES, FileInfo, Limits, Package, Revision, check_name
from jobico.schemas import SchemaUnusable, read_schema


class FileSource(Protocol):
    """What deploy needs of the repository."""

    def info(self, tenant: str, name: str) -> FileInfo | None: ...
    def read(self, tenant: str, digest: str) -> bytes: ...


# check_module(data, kind, mainfunc) raises FileInvalid when a module cannot serve a runtime.
ModuleCheck = Callable[[bytes, str, str], None]


def _check_module(data: bytes, kind: str, mainfunc: str) -> None:
    from jobico.wasm import check_module  # wasmtime loads only where modules are checked

    check_module(data, kind=kind, mainfunc=mainfunc)


class Registry:
    def __init__(
        self,
        path: Path,
        files: FileSource,
        *,
        check: ModuleCheck = _check_module,
        maxima: Limits | None = None,
    ) -> None:
        self._db = durable_cache(path)  # fsync'd, never evicted: the platform's registry
        self._files = files
        self._check = check
        self._maxima = maxima or Limits()  # None in a field: no maximum

    # --- commands ---

    def deploy(self, package: Package, *, update: bool = False, max_packages: int = 0) -> Revision:
        """A new revision of `package`; a new package only while the tenant has fewer than
        `max_packages` (0: no limit)."""
        state = self._db.get(("pkg", package.tenant, package.id))
        if state and not state["deleted"] and not update:
            raise Conflict(
                f"package {package.id!r} of tenant {package.tenant!r} exists (revision "
                f"{state['current']}); deploy with --update to make revision {state['latest'] + 1}",
                tenant=package.tenant,
                package=package.id,
            )
        if update and (not state or state["deleted"]):
            raise NotFound(
                f"package {package.id!r} of tenant {package.tenant!r} does not exist; "
                "deploy it without --update first"
            )
        if not state or state["deleted"]:
            self._check_quota(package.tenant, max_packages)
        self._check_event_ids(package)
        self._check_limits(package)
        files = self._resolve(package)
        return self._append(package, files, state, note="")

    def rollback(self, tenant: str, package: str, to: int | None = None) -> Revision:
        state = self._live_state(tenant, package)
        target = state["current"] - 1 if to is None else to
        if target < 1 or target > state["latest"]:
            raise NotFound(
                f"package {package!r} has no revision {target} (revisions 1 to {state['latest']})"
            )
        old = self.revision(tenant, package, target)
        return self._append(old.spec, old.files, state, note=f"rollback to {target}")

    def delete(self, tenant: str, package: str) -> None:
        state = self._live_state(tenant, package)
        self._db.set(("pkg", tenant, package), {**state, "deleted": True})

    # --- queries ---

    def revision(self, tenant: str, package: str, number: int | None = None) -> Revision:
        if number is None:
            number = self._live_state(tenant, package)["current"]
        data = self._db.get(("rev", tenant, package, number))
        if data is None:
            raise NotFound(f"package {package!r} of tenant {tenant!r} has no revision {number}")
        return Revision.from_dict(data)

    def tenants(self) -> list[str]:
        return sorted({k[1] for k in self._db.iterkeys() if k[0] == "pkg"})

    def packages(self, tenant: str | None = None) -> list[dict[str, Any]]:
        keys = sorted(k for k in self._db.iterkeys() if k[0] == "pkg" and tenant in (None, k[1]))
        out = []
        for _, t, p in keys:
            state = self._db[("pkg", t, p)]
            if not state["deleted"]:
                rev = self.revision(t, p, state["current"])
                out.append(_summary(rev, state["latest"]))
        return out

    def current(self) -> list[Revision]:
        """Every live package's current revision: the whole state subscribers start from."""
        return [self.revision(s["tenant"], s["package"]) for s in self.packages()]

    def close(self) -> None:
        self._db.close()

    # --- rules ---

    def _live_state(self, tenant: str, package: str) -> dict[str, Any]:
        check_name("tenant", tenant)
        state = self._db.get(("pkg", tenant, package))
        if not state or state["deleted"]:
            raise NotFound(
                f"tenant {tenant!r} has no package {package!r}", tenant=tenant, package=package
            )
        return dict(state)

    def _append(
        self, spec: Package, files: dict[str, str], state: dict[str, Any] | None, *, note: str
    ) -> Revision:
        number = (state["latest"] if state else 0) + 1
        rev = Revision(
            tenant=spec.tenant,
            package=spec.id,
            number=number,
            spec=spec,
            files=files,
            created_at=time.time(),
            note=note,
        )
        with self._db.transact():
            self._db.set(("rev", spec.tenant, spec.id, number), rev.to_dict())
            self._db.set(
                ("pkg", spec.tenant, spec.id),
                {
                    "tenant": spec.tenant,
                    "package": spec.id,
                    "current": number,
                    "latest": number,
                    "deleted": False,
                },
            )
        return rev

    def _check_quota(self, tenant: str, max_packages: int) -> None:
        if max_packages and self._live_count(tenant) >= max_packages:
            raise QuotaExceeded(
                f"tenant {tenant!r} has {max_packages} packages, its quota; delete one first",
                tenant=tenant,
                quota="packages",
                limit=max_packages,
            )

    def _live_count(self, tenant: str) -> int:
        keys = [k for k in self._db.iterkeys() if k[0] == "pkg" and k[1] == tenant]
        return sum(1 for k in keys if not self._db[k]["deleted"])

    def _check_event_ids(self, package: Package) -> None:
        """Event ids are the listener's URL path, so they are unique across a tenant's packages."""
        mine = {ev.id for _, ev in package.all_events()}
        for other in self.packages(package.tenant):
            if other["package"] != package.id:
                clash = mine & set(other["events"])
                if clash:
                    raise Conflict(
                        f"event {sorted(clash)[0]!r} is already defined by package "
                        f"{other['package']!r} of tenant {package.tenant!r}"
                    )

    def _check_limits(self, package: Package) -> None:
        """Runtime limits within the platform's maxima (a rollback keeps what was accepted)."""
        for i, rt in enumerate(package.runtimes):
            for name in LIMIT_NAMES:
                value, ceiling = getattr(rt.limits, name), getattr(self._maxima, name)
                if value is not None and ceiling is not None and value > ceiling:
                    path = f"runtimes[{i}].limits.{name}"
                    raise PackageInvalid(
                        f"{path}: {value} is above this platform's maximum of {ceiling}",
                        path=path,
                    )

    def _resolve(self, package: Package) -> dict[str, str]:
        files = {}
        for name, kind in package.file_refs().items():
            info = self._files.info(package.tenant, name)
            if info is None:
                raise FileInvalid(
                    f"{name}: not in the repository of tenant {package.tenant!r}; "
                    "upload it or keep it beside the package file",
                    file=name,
                )
            if info.kind != kind:
                raise FileInvalid(
                    f"{name}: is a {info.kind} file, the package uses it as {kind}", file=name
                )
            self._check_file(package, name, kind, self._files.read(package.tenant, info.digest))
            files[name] = info.digest
        return files

    def _check_file(self, package: Package, name: str, kind: str, data: bytes) -> None:
        try:
            if kind == "json":
                _check_schema(data)
            for rt in package.runtimes:
                if rt.moduleref == name:
                    self._check(data, rt.kind, rt.mainfuncname)
        except FileInvalid as e:
            raise FileInvalid(f"{name}: {e.message}", file=name) from None


def _check_schema(data: bytes) -> None:
    try:
        read_schema(data)
    except SchemaUnusable as e:
        raise FileInvalid(e.message) from None


def _summary(rev: Revision, latest: int) -> dict[str, Any]:
    return {
        "tenant": rev.tenant,
        "package": rev.package,
        "name": rev.spec.name,
        "revision": rev.number,
        "latest": latest,
        "deployed_at": rev.created_at,
        "events": [ev.id for _, ev in rev.spec.all_events()],
    }
