"""Ray shell of the file repository; every upload is published on the `files` topic."""

from __future__ import annotations

from typing import Any

import ray

from jobico.actors import cluster
from jobico.actors.pubsub import FILES
from jobico.config import Settings
from jobico.model import FileInfo
from jobico.repository import Repository


class RepositoryActor:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._repo = Repository(settings.home / "repository")

    def put(self, tenant: str, kind: str, name: str, data: bytes) -> FileInfo:
        info = self._repo.put(tenant, kind, name, data)
        pubsub = cluster.actor(cluster.PUBSUB, self._settings)
        cluster.call(pubsub.publish.remote(FILES, f"{tenant}/{name}", info.to_dict()))
        return info

    def info(self, tenant: str, name: str) -> FileInfo | None:
        return self._repo.info(tenant, name)

    def versions(self, tenant: str, name: str) -> list[FileInfo]:
        return self._repo.versions(tenant, name)

    def list(self, tenant: str) -> list[FileInfo]:
        return self._repo.list(tenant)

    def read(self, tenant: str, digest: str) -> bytes:
        return self._repo.read(tenant, digest)

    def ping(self) -> str:
        return "ok"


def start(settings: Settings) -> Any:
    opts = cluster.options(cluster.REPOSITORY, settings, max_concurrency=8)
    return ray.remote(RepositoryActor).options(**opts).remote(settings)
