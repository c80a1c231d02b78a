"""Control's core with its seams faked: a command is written, its queue ensured, then it is
published; a crash between the write and the publish is healed when control starts again; each
call acts only for the tenants its grant reaches, and listener replicas hear of ingest changes
without being told a secret."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from jobico.access.auth import Grant
from jobico.config import Settings
from jobico.control.service import Control
from jobico.errors import Forbidden, NotFound, QuotaExceeded, Unavailable
from jobico.model import Revision
from jobico.repository import Repository
from tests.unit.test_control import package

PKG = "demogo/go-demo-job"


class Cluster:
    """Pub/sub and the queue actors as control sees them; `down` makes every publish fail, as
    when control dies between a registry write and its publish."""

    def __init__(self, items: Mapping[str, dict[str, Any] | None] | None = None) -> None:
        self.items: dict[str, dict[str, Any] | None] = dict(items or {})
        self.steps: list[str] = []
        self.down = False

    def ensure(self, tenant: str) -> None:
        self.steps.append(f"ensure {tenant}")

    def changes(self) -> Mapping[str, Mapping[str, Any] | None]:
        return dict(self.items)

    def publish(self, tenant: str, package: str, rev: Revision | None) -> None:
        if self.down:
            raise Unavailable("a Jobico actor died or is restarting")
        self.items[f"{tenant}/{package}"] = rev.to_dict() if rev else None
        self.steps.append(f"publish {tenant}/{package} {rev.number if rev else None}")

    def ingest_changed(self, tenant: str) -> None:
        self.steps.append(f"ingest {tenant}")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


def started(settings: Settings, repo: Repository, cluster: Cluster) -> Control:
    """Control as the actor starts it: stores opened, then the reconcile."""
    return Control(settings, files=repo, queues=cluster, published=cluster, notices=cluster)


@pytest.fixture
def control(settings: Settings, repo: Repository, cluster: Cluster) -> Iterator[Control]:
    yield started(settings, repo, cluster)


def admin(control: Control) -> Grant:
    issued = control.bootstrap_admin()
    assert issued is not None
    return control.grant(issued.token)


def tenant_grant(control: Control, by: Grant, tenant: str) -> Grant:
    return control.grant(control.create_tenant(by, tenant).token)


def test_a_deploy_is_written_then_its_tenants_queue_ensured_then_it_is_published(
    control: Control, cluster: Cluster
) -> None:
    rev = asyncio.run(control.deploy(admin(control), package()))
    assert cluster.steps == ["ensure demogo", f"publish {PKG} 1"]
    assert control.internal_revision("demogo", "go-demo-job") == rev
    assert cluster.items[PKG] == rev.to_dict()


def test_a_crash_between_a_deploys_write_and_its_publish_is_healed_at_the_next_start(
    settings: Settings, repo: Repository, control: Control, cluster: Cluster
) -> None:
    cluster.down = True
    with pytest.raises(Unavailable):
        asyncio.run(control.deploy(admin(control), package()))
    assert PKG not in cluster.items  # written, not published: subscribers are behind

    cluster.down = False
    started(settings, repo, cluster)
    assert cluster.items[PKG] == control.internal_revision("demogo", "go-demo-job").to_dict()


def test_a_crash_between_a_deletes_write_and_its_publish_is_healed_at_the_next_start(
    settings: Settings, repo: Repository, control: Control, cluster: Cluster
) -> None:
    grant = admin(control)
    asyncio.run(control.deploy(grant, package()))
    cluster.down = True
    with pytest.raises(Unavailable):
        control.delete(grant, "demogo", "go-demo-job")
    assert cluster.items[PKG] is not None  # subscribers still route its events

    cluster.down = False
    started(settings, repo, cluster)
    assert cluster.items[PKG] is None


def test_a_rollback_whose_publish_was_lost_is_published_at_the_next_start(
    settings: Settings, repo: Repository, control: Control, cluster: Cluster
) -> None:
    grant = admin(control)
    asyncio.run(control.deploy(grant, package()))
    asyncio.run(control.deploy(grant, package(), update=True))
    cluster.down = True
    with pytest.raises(Unavailable):
        control.rollback(grant, "demogo", "go-demo-job", to=1)

    cluster.down = False
    started(settings, repo, cluster)
    published = cluster.items[PKG]
    assert published is not None and published["number"] == 3


def test_every_tenant_deployed_to_has_its_queue_ensured_when_control_starts(
    settings: Settings, repo: Repository, control: Control, cluster: Cluster
) -> None:
    asyncio.run(control.deploy(admin(control), package()))
    restarted = Cluster(items=cluster.items)
    started(settings, repo, restarted)
    assert restarted.steps == ["ensure demogo"]  # and nothing published: pub/sub was current


def test_a_tenants_grant_cannot_deploy_for_another_tenant_and_nothing_is_written(
    control: Control, cluster: Cluster
) -> None:
    other = tenant_grant(control, admin(control), "other")
    with pytest.raises(Forbidden):
        asyncio.run(control.deploy(other, package()))
    with pytest.raises(NotFound):
        control.internal_revision("demogo", "go-demo-job")
    assert cluster.steps == ["ingest other"]  # the tenant's creation, and nothing since


def test_an_admin_sees_every_tenant_and_a_tenant_only_itself(control: Control) -> None:
    grant = admin(control)
    asyncio.run(control.deploy(grant, package()))
    registered = tenant_grant(control, grant, "fresh")  # registered, never deployed to
    assert control.tenants(grant) == ["demogo", "fresh"]
    assert control.tenants(grant, with_queues=True) == ["demogo"]
    assert control.tenants(registered) == ["fresh"]
    assert control.tenants(registered, with_queues=True) == []


def test_a_tenant_lists_its_own_packages_only(control: Control) -> None:
    grant = admin(control)
    asyncio.run(control.deploy(grant, package()))
    other = tenant_grant(control, grant, "other")
    assert [p["package"] for p in control.packages(grant)] == ["go-demo-job"]
    assert control.packages(other) == []
    with pytest.raises(Forbidden):
        control.revision(other, "demogo", "go-demo-job")


def test_a_deploy_beyond_the_tenants_package_quota_is_refused_and_not_published(
    control: Control, cluster: Cluster
) -> None:
    grant = admin(control)
    control.create_tenant(grant, "demogo")
    control.set_quotas(grant, "demogo", {"packages": 1})
    asyncio.run(control.deploy(grant, package()))
    second = package(id="second", jobs=[])
    with pytest.raises(QuotaExceeded):
        asyncio.run(control.deploy(grant, second))
    assert "demogo/second" not in cluster.items
