"""The Python client: every operation of the CLI, for programs, through the actors."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx

from jobico import platform
from jobico.actors import cluster
from jobico.actors import queue as queue_actor
from jobico.config import Settings
from jobico.errors import HTTP_STATUS, InvalidInput, JobicoError, Unavailable
from jobico.model import FileInfo, Package, Revision, check_name, load_package_yaml


class Client:
    """Connects to a running platform (the embedded one of JOBICO_HOME, or `address`)."""

    def __init__(self, settings: Settings | None = None, *, address: str | None = None) -> None:
        self.settings = settings or Settings.from_env()
        platform.attach(self.settings, address)

    # --- files ---

    def upload(self, tenant: str, kind: str, name: str, data: bytes | Path) -> FileInfo:
        if isinstance(data, Path):
            data = _read(data)
        return self._call(cluster.REPOSITORY, "put", tenant, kind, name, data)  # type: ignore[no-any-return]

    def files(self, tenant: str) -> list[FileInfo]:
        return self._call(cluster.REPOSITORY, "list", tenant)  # type: ignore[no-any-return]

    # --- packages ---

    def deploy(self, package: Package | Path, *, update: bool = False) -> Revision:
        """Deploy a package; given a YAML path, first upload the files beside it that the
        repository lacks or holds with other contents."""
        if isinstance(package, Path):
            spec = load_package_yaml(_read(package).decode("utf-8", "replace"), source=str(package))
            self._upload_local_files(spec, package.parent)
            package = spec
        return self._call(cluster.CONTROL, "deploy", package, update)  # type: ignore[no-any-return]

    def packages(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return self._call(cluster.CONTROL, "packages", tenant)  # type: ignore[no-any-return]

    def show(self, tenant: str, package: str, revision: int | None = None) -> Revision:
        return self._call(cluster.CONTROL, "revision", tenant, package, revision)  # type: ignore[no-any-return]

    def rollback(self, tenant: str, package: str, to: int | None = None) -> Revision:
        return self._call(cluster.CONTROL, "rollback", tenant, package, to)  # type: ignore[no-any-return]

    def delete(self, tenant: str, package: str) -> None:
        self._call(cluster.CONTROL, "delete", tenant, package)

    def status(self) -> dict[str, Any]:
        return platform.status(self.settings)

    # --- events and executions ---

    def send(self, tenant: str, event: str, data: Any) -> list[str]:
        """POST events through the listener (a list is a batch); their ids."""
        url = f"{self.listener_url()}/events/{tenant}/{event}"
        body = {"data": data if isinstance(data, list) else [data]}
        try:
            answer = httpx.post(url, json=body, timeout=30)
        except httpx.HTTPError as e:
            raise Unavailable(f"cannot reach the listener at {url}: {e}") from None
        if answer.status_code != 202:
            raise _http_error(answer)
        return answer.json()["ids"]  # type: ignore[no-any-return]

    def executions(self, **filters: Any) -> list[dict[str, Any]]:
        """Execution records: tenant, package, event, status, event_id, since, last, final_only."""
        return self._call(cluster.RECORDER, "query", **filters)  # type: ignore[no-any-return]

    # --- dead letters ---

    def dead_letters(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Events parked after their last failed attempt, with their last error."""
        tenants = [tenant] if tenant else self._call(cluster.CONTROL, "tenants")
        parked = []
        for t in tenants:
            check_name("tenant", t)
            for letter in cluster.call(queue_actor.handle(self.settings, t).dead_letters.remote()):
                parked.append({"tenant": t, **letter})
        return parked

    def replay(self, tenant: str, event_ids: list[str] | None) -> int:
        """Dead letters back into their queue (None: all of the tenant's); each runs again as a
        new attempt of the same event id. How many were replayed."""
        queue = queue_actor.handle(self.settings, check_name("tenant", tenant))
        return cluster.call(queue.replay.remote(event_ids))  # type: ignore[no-any-return]

    def drop(self, tenant: str, event_ids: list[str] | None) -> int:
        """Delete dead letters for good (None: all of the tenant's). How many were dropped."""
        queue = queue_actor.handle(self.settings, check_name("tenant", tenant))
        return cluster.call(queue.drop.remote(event_ids))  # type: ignore[no-any-return]

    def listener_url(self) -> str:
        info = self._call(cluster.CONTROL, "info")
        return str(info.get("listener_url") or f"http://{self.settings.host}:{self.settings.port}")

    # --- plumbing ---

    def _upload_local_files(self, spec: Package, folder: Path) -> None:
        for name, kind in spec.file_refs().items():
            local = folder / name
            if not local.is_file():
                continue  # deploy names the file if the repository lacks it too
            data = local.read_bytes()
            known = self._call(cluster.REPOSITORY, "info", spec.tenant, name)
            if known is None or known.digest != hashlib.sha256(data).hexdigest():
                self.upload(spec.tenant, kind, name, data)

    def _call(self, component: str, method: str, *args: Any, **kwargs: Any) -> Any:
        handle = cluster.actor(component, self.settings)
        return cluster.call(getattr(handle, method).remote(*args, **kwargs))


def _http_error(answer: httpx.Response) -> JobicoError:
    """The listener's error answer as the error it stands for."""
    try:
        error = answer.json()["error"]
        message = error["message"]
    except (ValueError, KeyError, TypeError):
        message = answer.text[:200]
    for cls, status in HTTP_STATUS.items():
        if status == answer.status_code:
            return cls(message)
    return JobicoError(f"the listener answered {answer.status_code}: {message}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror}") from None
