"""Tokens, grants, tenants and quotas (jobico.access.auth) with no Ray: a store in a temporary
folder."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobico.access import auth
from jobico.access.auth import Authority, Quotas
from jobico.errors import Forbidden, InvalidInput, NotFound, Unauthenticated


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def authority(tmp_path: Path, clock: Clock) -> Iterator[Authority]:
    a = Authority(tmp_path / "auth", defaults=Quotas(packages=5), grant_ttl_s=60, clock=clock)
    yield a
    a.close()


def first_admin(authority: Authority) -> auth.Issued:
    """The first admin token of a new store (made once: None afterwards)."""
    issued = authority.bootstrap_admin()
    assert issued is not None
    return issued


@pytest.fixture
def admin(authority: Authority) -> auth.Grant:
    issued = first_admin(authority)
    return authority.grant(issued.token)


def test_the_first_admin_token_is_made_once(authority: Authority) -> None:
    first = authority.bootstrap_admin()
    assert first is not None and first.token.startswith("jbk_") and first.info.tenant is None
    assert authority.bootstrap_admin() is None
    assert authority.authenticate(first.token).id == first.info.id


def test_tokens_are_stored_hashed_never_in_clear(tmp_path: Path, authority: Authority) -> None:
    issued = first_admin(authority)
    stored = b"".join(p.read_bytes() for p in (tmp_path / "auth").rglob("*") if p.is_file())
    secret = issued.token.split("_", 2)[2]  # jbk_<id>_<secret>; the secret may hold "_"
    assert secret.encode() not in stored
    assert "<hidden>" in repr(issued) and secret not in repr(issued)


def test_the_store_is_readable_by_its_owner_only(tmp_path: Path, authority: Authority) -> None:
    assert stat.S_IMODE((tmp_path / "auth").stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "token", ["", "nope", "jbk_", "jbk_short_x", "jbk_0123456789ab_", "Bearer jbk_x", 42]
)
def test_malformed_tokens_are_unauthenticated(
    authority: Authority, token: Any
) -> None:  # 42: callers may hand anything
    with pytest.raises(Unauthenticated):
        authority.grant(token)


def test_a_token_with_a_known_id_but_another_secret_is_refused(authority: Authority) -> None:
    issued = first_admin(authority)
    forged = issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B")
    with pytest.raises(Unauthenticated):
        authority.grant(forged)


def test_a_tenant_token_is_created_by_an_admin_and_acts_for_its_tenant_only(
    authority: Authority, admin: auth.Grant
) -> None:
    issued = authority.create_tenant(admin, "acme")
    grant = authority.grant(issued.token)
    assert grant.tenant == "acme"
    assert auth.require(grant, "acme") == "acme"
    with pytest.raises(Forbidden):
        auth.require(grant, "globex")
    with pytest.raises(Forbidden):
        authority.create_tenant(grant, "globex")


def test_a_tenant_is_created_once(authority: Authority, admin: auth.Grant) -> None:
    authority.create_tenant(admin, "acme")
    with pytest.raises(InvalidInput):
        authority.create_tenant(admin, "acme")


def test_scope_narrows_a_tenant_tokens_queries_to_its_tenant(
    authority: Authority, admin: auth.Grant
) -> None:
    tenant = authority.grant(authority.create_tenant(admin, "acme").token)
    assert auth.scope(tenant, None) == "acme"
    assert auth.scope(admin, None) is None and auth.scope(admin, "x") == "x"
    with pytest.raises(Forbidden):
        auth.scope(tenant, "globex")


def test_grants_verify_with_the_key_until_they_expire(
    authority: Authority, admin: auth.Grant, clock: Clock
) -> None:
    assert auth.verify(authority.key, admin, clock.now) == admin
    with pytest.raises(Unauthenticated, match="expired"):
        auth.verify(authority.key, admin, clock.now + 61)


def test_a_grant_altered_after_signing_is_refused(
    authority: Authority, admin: auth.Grant, clock: Clock
) -> None:
    acme = authority.grant(authority.create_tenant(admin, "acme").token)
    widened = auth.Grant(acme.token_id, "other", acme.expires_at, acme.signature)
    longer = auth.Grant(acme.token_id, acme.tenant, acme.expires_at + 10**6, acme.signature)
    for grant in (widened, longer, "not a grant", None):
        with pytest.raises(Unauthenticated):
            auth.verify(authority.key, grant, clock.now)


def test_a_grant_signed_with_another_key_is_refused(
    authority: Authority, admin: auth.Grant, clock: Clock
) -> None:
    other = auth.sign(b"k" * 32, admin.token_id, None, admin.expires_at)
    with pytest.raises(Unauthenticated):
        auth.verify(authority.key, other, clock.now)


def test_the_grant_key_survives_reopening_the_store(
    tmp_path: Path, authority: Authority, admin: auth.Grant, clock: Clock
) -> None:
    again = Authority(tmp_path / "auth", clock=clock)
    assert again.key == authority.key
    again.close()


def test_tokens_list_without_secrets_and_only_the_tenants_own(
    authority: Authority, admin: auth.Grant
) -> None:
    acme = authority.create_tenant(admin, "acme")
    authority.create_tenant(admin, "globex")
    as_acme = authority.grant(acme.token)
    assert [t.tenant for t in authority.tokens(as_acme)] == ["acme"]
    assert {t.tenant for t in authority.tokens(admin)} == {None, "acme", "globex"}
    listed = [t.to_dict() for t in authority.tokens(admin)]
    assert all("digest" not in t and "token" not in t for t in listed)


def test_rotate_revokes_the_old_token_and_issues_one_for_the_same_tenant(
    authority: Authority, admin: auth.Grant
) -> None:
    old = authority.create_tenant(admin, "acme")
    new = authority.rotate(authority.grant(old.token), old.info.id)
    assert new.info.tenant == "acme" and new.token != old.token
    with pytest.raises(Unauthenticated):
        authority.grant(old.token)
    assert authority.grant(new.token).tenant == "acme"


def test_a_revoked_token_buys_no_grant(authority: Authority, admin: auth.Grant) -> None:
    acme = authority.create_tenant(admin, "acme")
    info = authority.revoke(admin, acme.info.id)
    assert info.revoked_at is not None
    with pytest.raises(Unauthenticated):
        authority.grant(acme.token)


def test_a_revoked_tokens_grant_can_no_longer_create_rotate_or_revoke_tokens(
    authority: Authority, admin: auth.Grant
) -> None:
    # Its grant is good elsewhere until it expires; new tokens would outlive the revocation.
    acme = authority.create_tenant(admin, "acme")
    as_acme = authority.grant(acme.token)
    spare = authority.issue(as_acme, "acme")
    second_admin = authority.issue(admin, None)
    authority.revoke(admin, acme.info.id)
    authority.revoke(authority.grant(second_admin.token), admin.token_id)
    attempts: list[tuple[auth.Grant, Callable[[auth.Grant], object]]] = [
        (as_acme, lambda g: authority.issue(g, "acme")),
        (as_acme, lambda g: authority.rotate(g, spare.info.id)),
        (as_acme, lambda g: authority.revoke(g, spare.info.id)),
        (admin, lambda g: authority.issue(g, None)),
        (admin, lambda g: authority.create_tenant(g, "globex")),
    ]
    for grant, act in attempts:
        with pytest.raises(Unauthenticated):
            act(grant)
    assert authority.grant(spare.token).tenant == "acme"  # untouched
    assert "globex" not in authority.tenants()


def test_a_tenant_cannot_see_revoke_or_rotate_another_tenants_token(
    authority: Authority, admin: auth.Grant
) -> None:
    acme = authority.grant(authority.create_tenant(admin, "acme").token)
    globex = authority.create_tenant(admin, "globex")
    for act in (authority.revoke, authority.rotate):
        with pytest.raises(NotFound):
            act(acme, globex.info.id)
    assert authority.grant(globex.token).tenant == "globex"
    with pytest.raises(Forbidden):
        authority.issue(acme, "globex")
    with pytest.raises(Forbidden):
        authority.issue(acme, None)  # no admin tokens from a tenant


def test_quotas_are_the_defaults_until_an_admin_overrides_them(
    authority: Authority, admin: auth.Grant
) -> None:
    assert authority.quotas("acme") == Quotas(packages=5)
    changed = authority.set_quotas(admin, "acme", {"events_per_s": 100, "packages": 2})
    assert changed == Quotas(events_per_s=100, packages=2)
    assert authority.quotas("globex") == Quotas(packages=5)
    tenant = authority.grant(authority.create_tenant(admin, "globex").token)
    with pytest.raises(Forbidden):
        authority.set_quotas(tenant, "globex", {"packages": 1000})
    with pytest.raises(InvalidInput):
        authority.set_quotas(admin, "acme", {"secrets": 1})
    with pytest.raises(InvalidInput):
        authority.set_quotas(admin, "acme", {"packages": -1})


def test_find_token_prefers_the_environment_then_the_file_then_the_admin_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "admin.token").write_text("jbk_admin\n")
    (tmp_path / "mine").write_text("jbk_mine\n")
    assert auth.find_token({"JOBICO_TOKEN": "jbk_env"}, tmp_path, tmp_path / "mine") == "jbk_env"
    assert auth.find_token({}, tmp_path, tmp_path / "mine") == "jbk_mine"
    assert auth.find_token({}, tmp_path) == "jbk_admin"
    with pytest.raises(Unauthenticated, match="JOBICO_TOKEN"):
        auth.find_token({}, tmp_path / "elsewhere")


def test_the_token_file_is_written_for_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "admin.token"
    auth.write_token_file(path, "jbk_x")
    auth.write_token_file(path, "jbk_y")
    assert path.read_text() == "jbk_y\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_auth_errors_map_to_401_403_and_their_own_exit_codes() -> None:
    from jobico.errors import EXIT_CODE, HTTP_STATUS, QuotaExceeded, RateLimited, lookup

    assert [lookup(HTTP_STATUS, e("x")) for e in (Unauthenticated, Forbidden)] == [401, 403]
    assert [lookup(EXIT_CODE, e("x")) for e in (Unauthenticated, Forbidden)] == [8, 9]
    assert lookup(HTTP_STATUS, RateLimited("x")) == lookup(HTTP_STATUS, QuotaExceeded("x")) == 429
