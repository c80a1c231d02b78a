"""Every actor checks the grant it is handed, whatever the client did: a grant signed with
another key, an expired one, or one for another tenant is refused at the actor itself."""

from __future__ import annotations

import time
from typing import Any

import pytest

from jobico.access import auth
from jobico.actors import cluster
from jobico.actors import queue as queue_actor
from jobico.client import Client
from jobico.config import Settings
from jobico.errors import Forbidden, JobicoError, Unauthenticated
from tests.conftest import EXAMPLE


@pytest.fixture
def admin(running: Settings, ray_address: str) -> Client:
    client = Client(running, address=ray_address)
    client.deploy(EXAMPLE / "package.yaml")
    return client


def calls(settings: Settings, grant: object) -> dict[str, Any]:
    """One client-facing method of each actor, all on tenant demogo (name -> Ray ObjectRef)."""
    control = cluster.actor(cluster.CONTROL, settings)
    repository = cluster.actor(cluster.REPOSITORY, settings)
    recorder = cluster.actor(cluster.RECORDER, settings)
    queue = queue_actor.handle(settings, "demogo")
    return {
        "control.revision": control.revision.remote(grant, "demogo", "go-demo-job"),
        "repository.put": repository.put.remote(grant, "demogo", "json", "x.json", b"{}"),
        "repository.list": repository.list.remote(grant, "demogo"),
        "recorder.records": recorder.records.remote(grant, tenant="demogo"),
        "queue.figures": queue.figures.remote(grant),
        "queue.drop": queue.drop.remote(grant, None),
    }


def refused(ref: Any, error: type[JobicoError]) -> bool:
    with pytest.raises(error):
        cluster.call(ref)
    return True


def test_forged_and_expired_grants_are_refused_by_every_actor(
    admin: Client, running: Settings
) -> None:
    real = admin._current_grant()
    forged = auth.sign(b"k" * 32, real.token_id, None, real.expires_at)
    expired = auth.Grant(real.token_id, None, int(time.time()) - 1, real.signature)
    grants: tuple[object, ...] = (forged, expired, "no grant")
    for grant in grants:
        for name, ref in calls(running, grant).items():
            assert refused(ref, Unauthenticated), name


def test_a_genuine_grant_for_another_tenant_is_forbidden_by_every_actor(
    admin: Client, running: Settings, ray_address: str
) -> None:
    issued = admin.create_tenant("globex")
    other = Client(running, address=ray_address, token=issued.token)
    for name, ref in calls(running, other._current_grant()).items():
        assert refused(ref, Forbidden), name
    assert admin.files("demogo")  # and the admin's own grant passes the same actors
