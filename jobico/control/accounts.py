"""Who may act, as control serves it: each call's grant checked, then tokens, tenants, quotas and
ingest secrets, with listener replicas told when a tenant's ingest config changes.

The rules themselves are the access package's (`jobico.access.auth` for tokens, grants and
quotas, `jobico.access.vault` for secrets): this module checks the caller first and says what
changed after. Every method a client calls takes a grant; those without one (`grant_key`,
`quotas`, `ingest_config`, `bootstrap_admin`) serve the other actors and `jobico up` inside the
cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from jobico.access import auth
from jobico.access.auth import Authority, Grant, Issued, Quotas, TokenInfo
from jobico.access.vault import Vault
from jobico.config import Settings
from jobico.model import check_name


class Notices(Protocol):
    """Where listener replicas learn that a tenant's ingest config changed."""

    def ingest_changed(self, tenant: str) -> None:
        """Say that it changed, never what it is: the topic carries no secret (pub/sub keeps
        its topics on disk); replicas fetch the config from control."""


def quota_defaults(settings: Settings) -> Quotas:
    return Quotas(
        events_per_s=settings.quota_events_per_s,
        repository_bytes=settings.quota_repository_mb * 1024 * 1024,
        packages=settings.quota_packages,
    )


class Accounts:
    def __init__(
        self, settings: Settings, notices: Notices, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._authority = Authority(
            settings.home / "auth",
            defaults=quota_defaults(settings),
            grant_ttl_s=settings.grant_ttl_s,
            clock=clock,
        )
        self._vault = Vault(settings.home / "secrets", clock=clock)
        self._notices = notices
        self._clock = clock

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
        self._notices.ingest_changed(tenant)
        return issued

    def issue(self, grant: Grant, tenant: str | None) -> Issued:
        return self._authority.issue(self._verify(grant), tenant)

    def tokens(self, grant: Grant, tenant: str | None = None) -> list[TokenInfo]:
        return self._authority.tokens(self._verify(grant), tenant)

    def rotate(self, grant: Grant, token_id: str) -> Issued:
        return self._authority.rotate(self._verify(grant), token_id)

    def revoke(self, grant: Grant, token_id: str) -> TokenInfo:
        return self._authority.revoke(self._verify(grant), token_id)

    def quotas(self, grant: Grant, tenant: str) -> Quotas:
        return self._authority.quotas(self._check(grant, tenant))

    def set_quotas(self, grant: Grant, tenant: str, changes: dict[str, int]) -> Quotas:
        quotas = self._authority.set_quotas(self._verify(grant), tenant, changes)
        self._notices.ingest_changed(tenant)
        return quotas

    def internal_quotas(self, tenant: str) -> Quotas:
        """A tenant's quotas, for the repository's checks."""
        return self._authority.quotas(check_name("tenant", tenant))

    # --- ingest secrets ---

    def set_secret(
        self, grant: Grant, tenant: str, name: str, value: str, keep: bool = False
    ) -> dict[str, Any]:
        described = self._vault.set(self._check(grant, tenant), name, value, keep=keep)
        self._notices.ingest_changed(tenant)
        return described

    def secrets(self, grant: Grant, tenant: str) -> list[dict[str, Any]]:
        return self._vault.names(self._check(grant, tenant))

    def delete_secret(self, grant: Grant, tenant: str, name: str) -> None:
        self._vault.delete(self._check(grant, tenant), name)
        self._notices.ingest_changed(tenant)

    def ingest_config(self, tenant: str) -> dict[str, Any]:
        """What listener replicas need of a tenant: its secrets' values and its rate."""
        return {
            "secrets": self._vault.values(check_name("tenant", tenant)),
            "events_per_s": self._authority.quotas(tenant).events_per_s,
        }

    def _verify(self, grant: Grant) -> Grant:
        return auth.verify(self._authority.key, grant, self._clock())

    def _check(self, grant: Grant, tenant: str) -> str:
        return auth.require(self._verify(grant), check_name("tenant", tenant))
