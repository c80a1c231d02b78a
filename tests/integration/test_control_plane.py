"""The control plane on a real Ray: the client drives the actors; changes reach subscribers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import ray

from jobico.actors import cluster
from jobico.actors.pubsub import FILES, PACKAGES, Subscriber
from jobico.client import Client
from jobico.config import Settings
from jobico.errors import Conflict, FileInvalid, NotFound, Unavailable
from jobico.pubsub import Changes
from tests.conftest import EXAMPLE, wait_for

T = TypeVar("T")


@pytest.fixture
def client(running: Settings, ray_address: str) -> Client:
    return Client(running, address=ray_address)


def test_deploy_show_update_and_rollback_through_the_client(client: Client) -> None:
    first = client.deploy(EXAMPLE / "package.yaml")
    assert first.number == 1 and set(first.files) == {"greet.wasm", "greet-schema.json"}
    assert client.show("demogo", "go-demo-job") == first
    client.upload("demogo", "json", "greet-schema.json", b'{"type": "object"}')
    second = client.deploy(EXAMPLE / "package.yaml", update=True)
    assert second.number == 2
    # deploy re-uploads the local file, which differs from what was uploaded by hand
    assert second.files == first.files
    client.upload("demogo", "json", "greet-schema.json", b'{"type": "object"}')
    third = client.deploy(client.show("demogo", "go-demo-job").spec, update=True)
    assert third.files["greet-schema.json"] != first.files["greet-schema.json"]
    back = client.rollback("demogo", "go-demo-job", to=1)
    assert back.files == first.files and back.number == 4


def test_errors_raised_in_actors_reach_the_client_as_jobico_errors(client: Client) -> None:
    client.deploy(EXAMPLE / "package.yaml")
    with pytest.raises(Conflict, match="--update"):
        client.deploy(EXAMPLE / "package.yaml")
    with pytest.raises(NotFound):
        client.show("demogo", "nope")
    with pytest.raises(FileInvalid, match="not valid JSON"):
        client.upload("demogo", "json", "x.json", b"{")


def test_deploy_uploads_only_files_the_repository_lacks_or_holds_differently(
    client: Client,
) -> None:
    client.deploy(EXAMPLE / "package.yaml")
    names = {f.name: f.version for f in client.files("demogo")}
    assert names == {"greet.wasm": 1, "greet-schema.json": 1}
    client.delete("demogo", "go-demo-job")
    client.deploy(EXAMPLE / "package.yaml")
    assert {f.name: f.version for f in client.files("demogo")} == names


def test_state_survives_a_restart_of_every_actor(client: Client, running: Settings) -> None:
    rev = client.deploy(EXAMPLE / "package.yaml")
    for name in (cluster.CONTROL, cluster.REPOSITORY, cluster.PUBSUB):
        ray.kill(cluster.actor(name, running), no_restart=False)

    def once_back(
        ask: Callable[[], T],
    ) -> Callable[
        [], T | None
    ]:  # each actor answers once it has restarted; until then, Unavailable
        def answer() -> T | None:
            try:
                return ask()
            except Unavailable:
                return None

        return answer

    assert wait_for(once_back(lambda: client.show("demogo", "go-demo-job")), what="control") == rev
    files = wait_for(once_back(lambda: client.files("demogo")), what="the repository")
    assert {f.name for f in files} == {"greet.wasm", "greet-schema.json"}


def test_a_subscriber_that_was_away_catches_up_with_the_latest_state(
    client: Client, running: Settings
) -> None:
    seen: list[dict[str, Any]] = []
    sub = Subscriber(running, PACKAGES, lambda c: seen.append(c.items))
    sub.sync()
    assert seen == []  # nothing deployed yet
    client.deploy(EXAMPLE / "package.yaml")  # while the subscriber is away...
    client.rollback("demogo", "go-demo-job", to=1)
    sub.sync()  # ...it comes back and gets only the latest value
    assert seen[-1]["demogo/go-demo-job"]["number"] == 2
    client.delete("demogo", "go-demo-job")
    sub.sync()
    assert seen[-1] == {"demogo/go-demo-job": None}


def test_a_running_subscriber_follows_deploys_and_uploads_as_they_happen(
    client: Client, running: Settings
) -> None:
    latest: dict[str, object] = {}
    changed = threading.Event()

    def apply(changes: Changes) -> None:
        latest.update(changes.items)
        changed.set()

    packages = Subscriber(running, PACKAGES, apply, poll_s=5).start()
    files = Subscriber(running, FILES, apply, poll_s=5).start()
    try:
        client.deploy(EXAMPLE / "package.yaml")
        wait_for(lambda: "demogo/go-demo-job" in latest, what="the deploy to be published")
        wait_for(lambda: "demogo/greet.wasm" in latest, what="the upload to be published")
        client.delete("demogo", "go-demo-job")
        wait_for(lambda: latest["demogo/go-demo-job"] is None, what="the delete to be published")
    finally:
        packages.stop()
        files.stop()
