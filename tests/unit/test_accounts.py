"""Who may act, as control serves it: every call checks its grant (signature, expiry, tenant)
before the access stores' rules, and listener replicas are told which tenant's ingest config
changed, never a secret, while the config itself reaches them through `ingest_config`."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobico.access.auth import Grant
from jobico.config import Settings
from jobico.control.accounts import Accounts
from jobico.errors import Forbidden, InvalidName, Unauthenticated
from tests.unit.test_auth import Clock


class Replicas:
    """Listener replicas: the tenants whose ingest config they were told changed."""

    def __init__(self) -> None:
        self.changed: list[str] = []

    def ingest_changed(self, tenant: str) -> None:
        self.changed.append(tenant)


@pytest.fixture
def replicas() -> Replicas:
    return Replicas()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(tmp_path: Path, replicas: Replicas, clock: Clock) -> Accounts:
    settings = Settings(home=tmp_path, quota_events_per_s=50, grant_ttl_s=60)
    return Accounts(settings, replicas, clock=clock)


@pytest.fixture
def admin(accounts: Accounts) -> Grant:
    issued = accounts.bootstrap_admin()
    assert issued is not None
    return accounts.grant(issued.token)


def test_creating_a_tenant_or_changing_its_quotas_or_secrets_tells_the_replicas_which(
    accounts: Accounts, admin: Grant, replicas: Replicas
) -> None:
    accounts.create_tenant(admin, "t1")
    accounts.set_quotas(admin, "t1", {"events_per_s": 5})
    accounts.set_secret(admin, "t1", "gh", "s3cret-value")
    accounts.delete_secret(admin, "t1", "gh")
    assert replicas.changed == ["t1", "t1", "t1", "t1"]


def test_the_replicas_fetch_a_tenants_secret_values_and_rate_from_ingest_config(
    accounts: Accounts, admin: Grant
) -> None:
    accounts.create_tenant(admin, "t1")
    accounts.set_secret(admin, "t1", "gh", "s3cret-value")
    assert accounts.ingest_config("t1") == {"secrets": {"gh": ["s3cret-value"]}, "events_per_s": 50}
    accounts.set_quotas(admin, "t1", {"events_per_s": 5})
    assert accounts.ingest_config("t1")["events_per_s"] == 5
    assert "s3cret-value" not in repr(accounts.secrets(admin, "t1"))


def test_a_tenants_grant_acts_for_its_own_tenant_only(accounts: Accounts, admin: Grant) -> None:
    accounts.create_tenant(admin, "other")
    t1 = accounts.grant(accounts.create_tenant(admin, "t1").token)
    assert accounts.authorize(t1, "t1") == "t1"
    for call in (
        lambda: accounts.authorize(t1, "other"),
        lambda: accounts.secrets(t1, "other"),
        lambda: accounts.quotas(t1, "other"),
        lambda: accounts.set_secret(t1, "other", "gh", "value"),
    ):
        with pytest.raises(Forbidden):
            call()


def test_a_grant_past_its_expiry_is_refused_by_every_call(
    accounts: Accounts, admin: Grant, clock: Clock
) -> None:
    assert accounts.whoami(admin)["tenant"] is None
    clock.now += 61
    with pytest.raises(Unauthenticated, match="expired"):
        accounts.whoami(admin)
    with pytest.raises(Unauthenticated, match="expired"):
        accounts.create_tenant(admin, "t1")


def test_a_tenant_name_that_could_escape_is_refused_before_any_store_is_read(
    accounts: Accounts, admin: Grant
) -> None:
    with pytest.raises(InvalidName):
        accounts.secrets(admin, "../t1")
    with pytest.raises(InvalidName):
        accounts.internal_quotas("../t1")
