"""Tenant quotas in the plain cores (packages in the registry, bytes in the repository) and the
vault of ingest secrets: names listed, values kept apart, rotation."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobico.access.vault import MAX_VALUES, Vault
from jobico.control.registry import Registry
from jobico.errors import InvalidInput, InvalidName, NotFound, QuotaExceeded
from jobico.model import Package
from jobico.repository import Repository
from tests.unit.conftest import MODULE, SCHEMA
from tests.unit.test_control import package


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    v = Vault(tmp_path / "secrets", clock=lambda: 5.0)
    yield v
    v.close()


def renamed(n: int) -> Package:
    """The example package under another id, its events renamed so they do not clash."""
    spec = package(id=f"pkg-{n}").to_dict()
    for job in spec["jobs"]:
        job["event"]["id"] += f"-{n}"
        for key in ("ok", "error"):
            job["result"][key]["id"] += f"-{n}"
    return package(**spec)


def test_a_new_package_beyond_the_tenants_quota_is_refused(registry: Registry) -> None:
    registry.deploy(renamed(1), max_packages=2)
    registry.deploy(renamed(2), max_packages=2)
    with pytest.raises(QuotaExceeded, match="2 packages"):
        registry.deploy(renamed(3), max_packages=2)
    registry.deploy(renamed(2), update=True, max_packages=2)  # a new revision is no new package
    registry.delete("demogo", "pkg-1")
    registry.deploy(renamed(3), max_packages=2)


def test_uploads_beyond_the_tenants_bytes_are_refused_and_nothing_is_stored(
    repo: Repository,
) -> None:
    used = repo.usage("demogo")
    assert used == len(SCHEMA) + len(MODULE)
    with pytest.raises(QuotaExceeded, match="quota"):
        repo.put("demogo", "json", "big.json", b"[" + b"1," * 50 + b"1]", max_bytes=used + 10)
    assert repo.info("demogo", "big.json") is None and repo.usage("demogo") == used


def test_content_already_stored_costs_no_quota(repo: Repository) -> None:
    used = repo.usage("demogo")
    info = repo.put("demogo", "json", "copy.json", SCHEMA, max_bytes=used)
    assert info.size == len(SCHEMA) and repo.usage("demogo") == used


def test_quotas_are_per_tenant(repo: Repository) -> None:
    repo.put("other", "json", "x.json", b"{}", max_bytes=2)
    assert repo.usage("other") == 2


# --- the vault -----------------------------------------------------------------------------------


def test_secret_names_are_listed_never_their_values(vault: Vault) -> None:
    vault.set("acme", "gh", "value-one")
    listed = vault.names("acme")
    assert listed == [{"name": "gh", "values": 1, "updated_at": 5.0}]
    assert "value-one" not in repr(listed)
    assert vault.values("acme") == {"gh": ["value-one"]}
    assert vault.names("globex") == [] and vault.values("globex") == {}


def test_setting_a_secret_again_replaces_it_unless_kept_for_rotation(vault: Vault) -> None:
    vault.set("acme", "gh", "v1")
    vault.set("acme", "gh", "v2", keep=True)
    assert vault.values("acme")["gh"] == ["v2", "v1"]
    for n in range(3, 3 + MAX_VALUES):
        vault.set("acme", "gh", f"v{n}", keep=True)
    assert len(vault.values("acme")["gh"]) == MAX_VALUES
    vault.set("acme", "gh", "only")
    assert vault.values("acme")["gh"] == ["only"]


@pytest.mark.parametrize("value", ["", "   ", "two\nlines", "x" * 5000, None])
def test_unusable_secret_values_are_refused_without_echoing_them(
    vault: Vault, value: str | None
) -> None:
    with pytest.raises(InvalidInput) as caught:
        vault.set("acme", "gh", value)  # type: ignore[arg-type]  # None on purpose: refused at run time
    assert value is None or not value.strip() or value not in caught.value.message


def test_secret_and_tenant_names_cannot_escape(vault: Vault) -> None:
    for tenant, name in (("../x", "gh"), ("acme", "../gh"), ("acme", "")):
        with pytest.raises(InvalidName):
            vault.set(tenant, name, "v")


def test_deleting_a_missing_secret_is_not_found(vault: Vault) -> None:
    with pytest.raises(NotFound):
        vault.delete("acme", "gh")


def test_the_vault_is_readable_by_its_owner_only(tmp_path: Path, vault: Vault) -> None:
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
