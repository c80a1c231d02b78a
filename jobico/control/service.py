"""What the control actor answers: the registry's commands for holders of a grant, each one
published once written, its queries for the other actors, and (from `Accounts`) who may act.

A deploy, rollback or delete is written to the registry, then published on the `packages` topic;
a crash between the two is healed by the reconcile when control starts again
(`jobico.control.reconcile`). Methods without a grant (`revision`, `packages`, `tenants`, `info`)
serve the other actors and `jobico up/down/status` inside the cluster, not clients.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jobico.access import auth
from jobico.access.auth import Grant
from jobico.config import Settings
from jobico.control import reconcile
from jobico.control.accounts import Accounts, Notices
from jobico.control.reconcile import Published, Queues
from jobico.control.registry import FileSource, Registry
from jobico.errors import JobicoError
from jobico.model import Package, Revision


class Control(Accounts):
    def __init__(
        self,
        settings: Settings,
        *,
        files: FileSource,
        queues: Queues,
        published: Published,
        notices: Notices,
    ) -> None:
        """Open the registry and the access stores under JOBICO_HOME, then reconcile (waiting
        for pub/sub and the queues if they restart along with control)."""
        from jobico.wasm.checks import ModuleChecks  # wasmtime loads only where it is used

        super().__init__(settings, notices)
        self._files, self._queues, self._published = files, queues, published
        self._checks = ModuleChecks(
            timeout_s=settings.deploy_check_s, max_bytes=settings.max_module_mb << 20
        )
        # The registry's own check of a module only reads the verdict the deploy reached before
        # it (never waits): the actor answers one call at a time on its event loop.
        self._registry = Registry(
            settings.home / "control",
            files,
            check=self._checks.known,
            maxima=settings.guest_maxima,
        )
        self._info: dict[str, Any] = {}
        reconcile.at_start(self._reconcile)

    # --- packages ---

    async def deploy(self, grant: Grant, package: Package, update: bool = False) -> Revision:
        tenant = self._check(grant, package.tenant)
        # Its modules are checked on other threads first, each within JOBICO_DEPLOY_CHECK_S,
        # while the actor goes on answering every tenant's calls (docs/security.md). The only
        # await: from here on the deploy runs as one step, like every other call.
        await asyncio.to_thread(self._check_modules, package)
        quota = self._authority.quotas(tenant).packages
        rev = self._registry.deploy(package, update=update, max_packages=quota)
        # The queue first: a listener that learns of the package puts its events there, and a
        # queue actor created by a short-lived caller may never start (see `Queues.ensure`).
        self._queues.ensure(rev.tenant)
        self._published.publish(rev.tenant, rev.package, rev)
        return rev

    def _check_modules(self, package: Package) -> None:
        """Reach a verdict on each module the package runs; the registry reports a refusal
        in its own order (a conflict or a missing file first), so none is raised here."""
        for rt in package.runtimes:
            try:
                info = self._files.info(package.tenant, rt.moduleref)
                if info is not None and info.kind == "wasm":
                    data = self._files.read(package.tenant, info.digest)
                    self._checks(data, rt.kind, rt.mainfuncname)
            except JobicoError:
                pass  # refused, or the repository is away: the registry's step says so

    def rollback(self, grant: Grant, tenant: str, package: str, to: int | None = None) -> Revision:
        rev = self._registry.rollback(self._check(grant, tenant), package, to)
        self._published.publish(tenant, package, rev)
        return rev

    def delete(self, grant: Grant, tenant: str, package: str) -> None:
        self._registry.delete(self._check(grant, tenant), package)
        self._published.publish(tenant, package, None)

    def revision(
        self, grant: Grant, tenant: str, package: str, number: int | None = None
    ) -> Revision:
        return self._registry.revision(self._check(grant, tenant), package, number)

    def packages(self, grant: Grant, tenant: str | None = None) -> list[dict[str, Any]]:
        return self._registry.packages(auth.scope(self._verify(grant), tenant))

    # The same things for the other actors and `jobico up/down/status` inside the cluster,
    # without a grant: the `internal_` names (docs/operating.md#the-actors-methods).

    def internal_revision(self, tenant: str, package: str, number: int | None = None) -> Revision:
        return self._registry.revision(tenant, package, number)

    def internal_packages(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return self._registry.packages(tenant)

    def internal_tenants(self) -> list[str]:
        """Every tenant ever deployed to (each has a queue actor)."""
        return self._registry.tenants()

    def tenants(self, grant: Grant, with_queues: bool = False) -> list[str]:
        """The tenants a grant sees: all (registered or deployed to) for an admin, else its
        own; `with_queues`: only those ever deployed to, which have a queue actor."""
        own = self._verify(grant).tenant
        deployed = self._registry.tenants()
        seen = [own] if own is not None else {*deployed, *self._authority.tenants()}
        return sorted(t for t in seen if not with_queues or t in deployed)

    def set_info(self, info: dict[str, Any]) -> None:
        """Where the platform's endpoints are (listener, dashboard), as `jobico up` saw them."""
        self._info = dict(info)

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    def ping(self) -> str:
        return "ok"

    def _reconcile(self) -> None:
        reconcile.reconcile(self._registry, self._queues, self._published)
