"""Ray shell of the file repository; every upload is published on the `files` topic.

Clients' methods take a grant first; `info` and `read` serve control, the listener and the
executors inside the cluster.
"""

from __future__ import annotations

from typing import Any

import ray

from jobico.access.auth import Grant
from jobico.actors import cluster
from jobico.actors.grants import Verifier
from jobico.actors.pubsub import FILES
from jobico.config import Settings
from jobico.model import FileInfo
from jobico.repository import Repository


class RepositoryActor:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._repo = Repository(settings.home / "repository")
        self._grants = Verifier(settings)

    def put(self, grant: Grant, tenant: str, kind: str, name: str, data: bytes) -> FileInfo:
        self._grants.check(grant, tenant)
        control = cluster.actor(cluster.CONTROL, self._settings)
        quota = cluster.call(control.internal_quotas.remote(tenant)).repository_bytes
        info = self._repo.put(tenant, kind, name, data, max_bytes=quota)
        pubsub = cluster.actor(cluster.PUBSUB, self._settings)
        cluster.call(pubsub.publish.remote(FILES, f"{tenant}/{name}", info.to_dict()))
        return info

    def file_info(self, grant: Grant, tenant: str, name: str) -> FileInfo | None:
        return self._repo.info(self._grants.check(grant, tenant), name)

    def info(self, tenant: str, name: str) -> FileInfo | None:
        return self._repo.info(tenant, name)

    def versions(self, tenant: str, name: str) -> list[FileInfo]:
        return self._repo.versions(tenant, name)

    def read(self, tenant: str, digest: str) -> bytes:
        return self._repo.read(tenant, digest)

    # After the methods annotated with `list`: below it, `list` names this method.
    def list(self, grant: Grant, tenant: str) -> list[FileInfo]:
        return self._repo.list(self._grants.check(grant, tenant))

    def ping(self) -> str:
        return "ok"


def start(settings: Settings) -> Any:
    opts = cluster.options(cluster.REPOSITORY, settings, max_concurrency=8)
    return ray.remote(RepositoryActor).options(**opts).remote(settings)
