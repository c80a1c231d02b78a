"""Who may act: tokens (stored hashed), the grants they buy, tenants and their quotas.

A token is `jbk_<id>_<secret>`: the id names it in listings, the secret is 32 random bytes and
only its sha256 is kept. Control trades a token for a *grant*, an HMAC-signed, short-lived
statement "token <id> acts for <tenant> (or for all, admin) until <time>" that every other
actor checks with the shared grant key, without a store or a round trip of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jobico.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from jobico.homedir import durable_cache
from jobico.model import check_name

PREFIX = "jbk_"
ADMIN_TOKEN_FILE = "admin.token"  # under JOBICO_HOME, mode 0600
_NOT_A_TOKEN = "missing or malformed token"
_REFUSED = "token not recognised, revoked or expired"


@dataclass(frozen=True, kw_only=True)
class TokenInfo:
    """What is known of a token once issued: never its secret."""

    id: str
    tenant: str | None  # None: an admin token, acting for every tenant
    created_at: float
    revoked_at: float | None = None

    @property
    def role(self) -> str:
        return "admin" if self.tenant is None else "tenant"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "role": self.role,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True)
class Issued:
    """A new token: the one moment its secret is seen; `repr` keeps it out of logs."""

    info: TokenInfo
    token: str

    def __repr__(self) -> str:
        return f"Issued({self.info!r}, token=<hidden>)"


@dataclass(frozen=True)
class Grant:
    """A signed, short-lived right to act for `tenant` (None: every tenant)."""

    token_id: str
    tenant: str | None
    expires_at: int
    signature: str

    def payload(self) -> bytes:
        return f"{self.token_id}\n{self.tenant or ''}\n{self.expires_at}".encode()


@dataclass(frozen=True, kw_only=True)
class Quotas:
    """Per-tenant ceilings; 0 means none."""

    events_per_s: int = 0
    repository_bytes: int = 0
    packages: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "events_per_s": self.events_per_s,
            "repository_bytes": self.repository_bytes,
            "packages": self.packages,
        }


QUOTA_NAMES = ("events_per_s", "repository_bytes", "packages")


# --- tokens and grants, no store -----------------------------------------------------------------


def new_token() -> tuple[str, str]:
    """(id, token) for a fresh token."""
    token_id = secrets.token_hex(6)
    return token_id, f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"


def token_id_of(token: str) -> str:
    """The id part of a token, or Unauthenticated (never echoing what was sent)."""
    if not isinstance(token, str) or not token.startswith(PREFIX):
        raise Unauthenticated(_NOT_A_TOKEN)
    token_id, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or len(token_id) != 12 or not secret:
        raise Unauthenticated(_NOT_A_TOKEN)
    return token_id


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign(key: bytes, token_id: str, tenant: str | None, expires_at: int) -> Grant:
    unsigned = Grant(token_id, tenant, expires_at, "")
    return replace(unsigned, signature=_mac(key, unsigned))


def verify(key: bytes, grant: object, now: float) -> Grant:
    """The grant if `key` signed it and it has not expired, else Unauthenticated."""
    if not isinstance(grant, Grant):
        raise Unauthenticated("this operation needs a token")
    if not hmac.compare_digest(_mac(key, grant), grant.signature):
        raise Unauthenticated("grant signature does not match")
    if grant.expires_at < now:
        raise Unauthenticated("grant expired; ask for a new one")
    return grant


def _mac(key: bytes, grant: Grant) -> str:
    return hmac.new(key, grant.payload(), hashlib.sha256).hexdigest()


def scope(grant: Grant, tenant: str | None) -> str | None:
    """The tenant a query may cover: an admin's choice (None: all); a tenant token's own."""
    if grant.tenant is None:
        return tenant
    if tenant is None:
        return grant.tenant
    return require(grant, tenant)


def require(grant: Grant, tenant: str) -> str:
    """`tenant`, if the grant may act for it; else Forbidden."""
    if grant.tenant is not None and grant.tenant != tenant:
        raise Forbidden(
            f"this token acts for tenant {grant.tenant!r} only", token_tenant=grant.tenant
        )
    return tenant


def require_admin(grant: Grant) -> None:
    if grant.tenant is not None:
        raise Forbidden("only an admin token may do this", token_tenant=grant.tenant)


# --- the store, owned by the control actor -------------------------------------------------------


class Authority:
    """Tokens, tenants and quota overrides in diskcache; the grant key beside them."""

    def __init__(
        self,
        path: Path,
        *,
        defaults: Quotas = Quotas(),
        grant_ttl_s: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Token hashes and the grant key: the owner's only, and a revoke answered is on disk.
        self._db = durable_cache(path)
        self._defaults, self._ttl, self._clock = defaults, grant_ttl_s, clock
        self.key: bytes = self._db.get("grant_key") or self._new_key()

    def _new_key(self) -> bytes:
        self._db.add("grant_key", secrets.token_bytes(32))  # add: a concurrent opener's wins
        return bytes(self._db["grant_key"])

    # --- tokens ---

    def bootstrap_admin(self) -> Issued | None:
        """The first admin token, when no live admin token exists; else None."""
        if any(t.tenant is None and t.revoked_at is None for t in self._tokens()):
            return None
        return self._issue(None)

    def grant(self, token: str) -> Grant:
        info = self.authenticate(token)
        expires = int(self._clock()) + self._ttl
        return sign(self.key, info.id, info.tenant, expires)

    def authenticate(self, token: str) -> TokenInfo:
        token_id = token_id_of(token)
        entry = self._db.get(("token", token_id))
        # Compare even when the id is unknown, so timing does not tell ids apart.
        stored = entry["digest"] if entry else "0" * 64
        if not hmac.compare_digest(stored, digest(token)) or entry is None:
            raise Unauthenticated(_REFUSED)
        info = _info(entry)
        if info.revoked_at is not None:
            raise Unauthenticated(_REFUSED)
        return info

    def issue(self, grant: Grant, tenant: str | None) -> Issued:
        """A new token for `tenant` (None: admin; admins only) or for the grant's own tenant."""
        self._live(grant)
        if tenant is None:
            require_admin(grant)
        else:
            require(grant, check_name("tenant", tenant))
            self._known_tenant(tenant)
        return self._issue(tenant)

    def tokens(self, grant: Grant, tenant: str | None = None) -> list[TokenInfo]:
        wanted = scope(grant, tenant)
        return [t for t in self._tokens() if wanted is None or t.tenant == wanted]

    def rotate(self, grant: Grant, token_id: str) -> Issued:
        """A new token for the same tenant; the old one is revoked at once."""
        old = self.revoke(grant, token_id)
        return self._issue(old.tenant)

    def revoke(self, grant: Grant, token_id: str) -> TokenInfo:
        self._live(grant)
        entry = self._db.get(("token", token_id)) if isinstance(token_id, str) else None
        info = _info(entry) if entry else None
        if info is None or (grant.tenant is not None and info.tenant != grant.tenant):
            raise NotFound(f"no token {token_id!r}")  # a foreign token is not even named
        if info.revoked_at is None:
            info = replace(info, revoked_at=self._clock())
            self._db.set(("token", token_id), {**entry, "revoked_at": info.revoked_at})
        return info

    def _live(self, grant: Grant) -> None:
        """Unauthenticated unless the grant's token is still live. A revoked token's grant stays
        good elsewhere until it expires; were it to mint or rotate tokens, the new ones would
        outlive it and the revocation would never take."""
        entry = self._db.get(("token", grant.token_id))
        if entry is None or entry.get("revoked_at") is not None:
            raise Unauthenticated(_REFUSED)

    def _issue(self, tenant: str | None) -> Issued:
        token_id, token = new_token()
        info = TokenInfo(id=token_id, tenant=tenant, created_at=self._clock())
        self._db.set(("token", token_id), {**info.to_dict(), "digest": digest(token)})
        return Issued(info, token)

    def _tokens(self) -> list[TokenInfo]:
        entries = [self._db[k] for k in self._db.iterkeys() if k[0] == "token"]
        return sorted((_info(e) for e in entries), key=lambda t: (t.created_at, t.id))

    # --- tenants and quotas ---

    def create_tenant(self, grant: Grant, tenant: str) -> Issued:
        """Register a tenant and issue its first token (admins only)."""
        require_admin(grant)
        self._live(grant)
        check_name("tenant", tenant)
        if not self._db.add(("tenant", tenant), {"created_at": self._clock(), "quotas": {}}):
            raise InvalidInput(f"tenant {tenant!r} exists; issue it another token instead")
        return self._issue(tenant)

    def tenants(self) -> list[str]:
        return sorted(k[1] for k in self._db.iterkeys() if k[0] == "tenant")

    def quotas(self, tenant: str) -> Quotas:
        """The tenant's quotas: its overrides over the platform's defaults."""
        entry = self._db.get(("tenant", tenant)) or {}
        return replace(self._defaults, **entry.get("quotas", {}))

    def set_quotas(self, grant: Grant, tenant: str, changes: Mapping[str, int]) -> Quotas:
        """Override some of a tenant's quotas (admins only); 0 lifts a ceiling."""
        require_admin(grant)
        check_name("tenant", tenant)
        for name, value in changes.items():
            if name not in QUOTA_NAMES or isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput(f"{name}: not a quota, or not a whole number")
            if value < 0:
                raise InvalidInput(f"{name}: must not be negative, got {value}")
        with self._db.transact():
            entry = self._db.get(("tenant", tenant)) or {"created_at": self._clock(), "quotas": {}}
            entry = {**entry, "quotas": {**entry["quotas"], **changes}}
            self._db.set(("tenant", tenant), entry)
        return self.quotas(tenant)

    def _known_tenant(self, tenant: str) -> None:
        if ("tenant", tenant) not in self._db:
            raise NotFound(f"no tenant {tenant!r}; create it with `jobico tenants create`")

    def close(self) -> None:
        self._db.close()


def _info(entry: Mapping[str, Any]) -> TokenInfo:
    return TokenInfo(
        id=entry["id"],
        tenant=entry["tenant"],
        created_at=entry["created_at"],
        revoked_at=entry.get("revoked_at"),
    )


# --- where a client finds its token --------------------------------------------------------------


def find_token(env: Mapping[str, str], home: Path, token_file: Path | None = None) -> str:
    """JOBICO_TOKEN, else the token file given, else the admin token file under JOBICO_HOME
    when it is readable. Never a command-line argument: those show in `ps` and shell history."""
    if env.get("JOBICO_TOKEN"):
        return env["JOBICO_TOKEN"].strip()
    path = token_file or home / ADMIN_TOKEN_FILE
    try:
        return path.read_text().strip()
    except OSError:
        where = f"{token_file}" if token_file else f"JOBICO_TOKEN nor {path}"
        raise Unauthenticated(
            f"no token: cannot read {where}; set JOBICO_TOKEN or pass --token-file"
        ) from None


def write_token_file(path: Path, token: str) -> None:
    """Write a token readable by its owner only (created 0600, never briefly wider)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.replace(tmp, path)
