"""Ray shell of the control registry and of who may act: deploys, rollbacks and deletes are
published to pub/sub; tokens, tenants, quotas and ingest secrets live here too.

Every method a client calls takes a grant first (`jobico.access.auth`); the methods without one
(`revision`, `packages`, `tenants`, `quotas`, `ingest_config`, `grant_key`, `info`) serve the
other actors and `jobico up/down` inside the cluster.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import ray

from jobico.access import auth
from jobico.access.auth import Authority, Grant, Issued, Quotas, TokenInfo
from jobico.access.vault import Vault
from jobico.actors import cluster
from jobico.actors import queue as queue_actor
from jobico.actors.pubsub import INGEST, PACKAGES, Subscriber
from jobico.config import Settings
from jobico.control import Registry
from jobico.errors import JobicoError
from jobico.model import FileInfo, Package, Revision, check_name
from jobico.pubsub import Changes

log = logging.getLogger(__name__)


class _RepositoryFiles:
    """The registry's view of the repository actor."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def info(self, tenant: str, name: str) -> FileInfo | None:
        repo = cluster.actor(cluster.REPOSITORY, self._settings)
        return cluster.call(repo.info.remote(tenant, name))  # type: ignore[no-any-return]

    def read(self, tenant: str, digest: str) -> bytes:
        repo = cluster.actor(cluster.REPOSITORY, self._settings)
        return cluster.call(repo.read.remote(tenant, digest))  # type: ignore[no-any-return]


class ControlActor:
    def __init__(self, settings: Settings) -> None:
        from jobico.wasm.checks import ModuleChecks  # wasmtime loads only where it is used

        self._settings = settings
        self._files = _RepositoryFiles(settings)
        self._checks = ModuleChecks(
            timeout_s=settings.deploy_check_s, max_bytes=settings.max_module_mb << 20
        )
        # The registry's own check of a module only reads the verdict the deploy reached before
        # it (never waits): this actor answers one call at a time on its event loop.
        self._registry = Registry(
            settings.home / "control",
            self._files,
            check=self._checks.known,
            maxima=settings.guest_maxima,
        )
        self._authority = Authority(
            settings.home / "auth",
            defaults=quota_defaults(settings),
            grant_ttl_s=settings.grant_ttl_s,
        )
        self._vault = Vault(settings.home / "secrets")
        self._info: dict[str, Any] = {}
        self._reconcile_at_start()

    # --- packages ---

    async def deploy(self, grant: Grant, package: Package, update: bool = False) -> Revision:
        tenant = self._check(grant, package.tenant)
        # Its modules are checked on other threads first, each within JOBICO_DEPLOY_CHECK_S,
        # while this actor goes on answering every tenant's calls (docs/security.md). The only
        # await: from here on the deploy runs as one step, like every other call.
        await asyncio.to_thread(self._check_modules, package)
        quota = self._authority.quotas(tenant).packages
        rev = self._registry.deploy(package, update=update, max_packages=quota)
        self._ensure_queue(rev.tenant)
        self._publish(rev.tenant, rev.package, rev)
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
        self._publish(tenant, package, rev)
        return rev

    def delete(self, grant: Grant, tenant: str, package: str) -> None:
        self._registry.delete(self._check(grant, tenant), package)
        self._publish(tenant, package, None)

    def show(self, grant: Grant, tenant: str, package: str, number: int | None = None) -> Revision:
        return self._registry.revision(self._check(grant, tenant), package, number)

    def list_packages(self, grant: Grant, tenant: str | None = None) -> list[dict[str, Any]]:
        return self._registry.packages(auth.scope(self._verify(grant), tenant))

    # For the other actors and `jobico up/down/status` inside the cluster, not for clients.

    def revision(self, tenant: str, package: str, number: int | None = None) -> Revision:
        return self._registry.revision(tenant, package, number)

    def packages(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return self._registry.packages(tenant)

    def tenants(self) -> list[str]:
        """Every tenant ever deployed to (each has a queue actor)."""
        return self._registry.tenants()

    def visible_tenants(self, grant: Grant, with_queues: bool = False) -> list[str]:
        """The tenants a grant sees: all (registered or deployed to) for an admin, else its
        own; `with_queues`: only those ever deployed to, which have a queue actor."""
        own = self._verify(grant).tenant
        deployed = self._registry.tenants()
        seen = [own] if own is not None else {*deployed, *self._authority.tenants()}
        return sorted(t for t in seen if not with_queues or t in deployed)

    # --- tokens, tenants and quotas ---

    def grant(self, token: str) -> Grant:
        return self._authority.grant(token)

    def grant_key(self) -> bytes:
        """The key grants are signed with: for actors checking grants, inside the cluster."""
        return self._authority.key

    def authorize(self, grant: Grant, tenant: str) -> str:
        """`tenant` if the grant may act for it: asked before a client touches a queue actor,
        which would otherwise be created for a tenant the grant cannot reach."""
        return self._check(grant, tenant)

    def whoami(self, grant: Grant) -> dict[str, Any]:
        me = self._verify(grant)
        return {"token": me.token_id, "tenant": me.tenant, "expires_at": me.expires_at}

    def bootstrap_admin(self) -> Issued | None:
        """The first admin token (for `jobico up` to write under JOBICO_HOME), once."""
        return self._authority.bootstrap_admin()

    def create_tenant(self, grant: Grant, tenant: str) -> Issued:
        issued = self._authority.create_tenant(self._verify(grant), tenant)
        self._publish_ingest(tenant)
        return issued

    def issue(self, grant: Grant, tenant: str | None) -> Issued:
        return self._authority.issue(self._verify(grant), tenant)

    def tokens(self, grant: Grant, tenant: str | None = None) -> list[TokenInfo]:
        return self._authority.tokens(self._verify(grant), tenant)

    def rotate(self, grant: Grant, token_id: str) -> Issued:
        return self._authority.rotate(self._verify(grant), token_id)

    def revoke(self, grant: Grant, token_id: str) -> TokenInfo:
        return self._authority.revoke(self._verify(grant), token_id)

    def tenant_quotas(self, grant: Grant, tenant: str) -> Quotas:
        return self._authority.quotas(self._check(grant, tenant))

    def set_quotas(self, grant: Grant, tenant: str, changes: dict[str, int]) -> Quotas:
        quotas = self._authority.set_quotas(self._verify(grant), tenant, changes)
        self._publish_ingest(tenant)
        return quotas

    def quotas(self, tenant: str) -> Quotas:
        """A tenant's quotas, for the repository's checks."""
        return self._authority.quotas(check_name("tenant", tenant))

    # --- ingest secrets ---

    def set_secret(
        self, grant: Grant, tenant: str, name: str, value: str, keep: bool = False
    ) -> dict[str, Any]:
        described = self._vault.set(self._check(grant, tenant), name, value, keep=keep)
        self._publish_ingest(tenant)
        return described

    def secrets(self, grant: Grant, tenant: str) -> list[dict[str, Any]]:
        return self._vault.names(self._check(grant, tenant))

    def delete_secret(self, grant: Grant, tenant: str, name: str) -> None:
        self._vault.delete(self._check(grant, tenant), name)
        self._publish_ingest(tenant)

    def ingest_config(self, tenant: str) -> dict[str, Any]:
        """What listener replicas need of a tenant: its secrets' values and its rate."""
        return {
            "secrets": self._vault.values(check_name("tenant", tenant)),
            "events_per_s": self._authority.quotas(tenant).events_per_s,
        }

    def set_info(self, info: dict[str, Any]) -> None:
        """Where the platform's endpoints are (listener, dashboard), as `jobico up` saw them."""
        self._info = dict(info)

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    def ping(self) -> str:
        return "ok"

    def _verify(self, grant: Grant) -> Grant:
        return auth.verify(self._authority.key, grant, time.time())

    def _check(self, grant: Grant, tenant: str) -> str:
        return auth.require(self._verify(grant), check_name("tenant", tenant))

    def _publish_ingest(self, tenant: str) -> None:
        """Tell listener replicas to fetch the tenant's ingest config again: the topic carries
        no secret (pubsub keeps its topics on disk), only that something changed."""
        pubsub = cluster.actor(cluster.PUBSUB, self._settings)
        cluster.call(pubsub.publish.remote(INGEST, tenant, {"changed_at": time.time()}))

    def _publish(self, tenant: str, package: str, rev: Revision | None) -> None:
        pubsub = cluster.actor(cluster.PUBSUB, self._settings)
        value = rev.to_dict() if rev else None
        cluster.call(pubsub.publish.remote(PACKAGES, f"{tenant}/{package}", value))

    def _reconcile_at_start(self) -> None:
        """Reconcile, waiting for pubsub and the queues if they restart along with this actor:
        an exception here would fail the actor's creation, which Ray does not retry."""
        for delay in (0.2, 0.5, 1.0, 2.0, 4.0, 8.0):
            try:
                self._reconcile()
                return
            except JobicoError as e:
                log.warning("reconcile at start failed (%s); again in %s s", e, delay)
                time.sleep(delay)
        log.error("control started without reconciling; the next deploy publishes its package")

    def _ensure_queue(self, tenant: str) -> None:
        """Create the tenant's queue actor here, owned by a long-lived actor, and wait until it
        answers: an actor whose creator dies before it starts is never started at all."""
        cluster.call(queue_actor.handle(self._settings, tenant).ping.remote())

    def _reconcile(self) -> None:
        """A crash between a registry write and its publish must not leave subscribers behind,
        and every tenant's queue must be there after a restart of the platform."""
        for tenant in self._registry.tenants():
            self._ensure_queue(tenant)
        pubsub = cluster.actor(cluster.PUBSUB, self._settings)
        published = cluster.call(pubsub.changes.remote(PACKAGES, 0)).items
        live = {f"{r.tenant}/{r.package}": r for r in self._registry.current()}
        for key, rev in live.items():
            if (published.get(key) or {}).get("number") != rev.number:
                self._publish(rev.tenant, rev.package, rev)
        for key, value in published.items():
            if value is not None and key not in live:
                tenant, package = key.split("/", 1)
                self._publish(tenant, package, None)


def ensure_admin_token(settings: Settings) -> bool:
    """Write the first admin token to JOBICO_HOME/admin.token (0600), as `jobico up` does;
    False when an admin token exists already (its file stays, or was moved away on purpose)."""
    control = cluster.actor(cluster.CONTROL, settings)
    issued = cluster.call(control.bootstrap_admin.remote())
    if issued is None:
        return False
    auth.write_token_file(settings.home / auth.ADMIN_TOKEN_FILE, issued.token)
    return True


def quota_defaults(settings: Settings) -> Quotas:
    return Quotas(
        events_per_s=settings.quota_events_per_s,
        repository_bytes=settings.quota_repository_mb * 1024 * 1024,
        packages=settings.quota_packages,
    )


def follow_ingest(
    settings: Settings, apply: Callable[[str, dict[str, Any] | None], None]
) -> Subscriber:
    """For listener replicas: `apply(tenant, config)` with each tenant's ingest config, first
    all of them, then as they change; fetched from control here, off the request path."""

    def on_change(changes: Changes) -> None:
        control = cluster.actor(cluster.CONTROL, settings)
        for tenant in changes.items:
            try:
                apply(tenant, cluster.call(control.ingest_config.remote(tenant)))
            except JobicoError as e:  # the next change or restart brings it; events wait on 401
                log.error("ingest config of tenant %s not loaded: %s", tenant, e.message)

    return Subscriber(settings, INGEST, on_change).start()


def start(settings: Settings) -> Any:
    opts = cluster.options(cluster.CONTROL, settings)
    return ray.remote(ControlActor).options(**opts).remote(settings)
