"""The Python client: every operation of the CLI, for programs, through the actors."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from jobico import platform
from jobico.actors import cluster
from jobico.config import Settings
from jobico.errors import InvalidInput
from jobico.model import FileInfo, Package, Revision, load_package_yaml


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

    def _call(self, component: str, method: str, *args: Any) -> Any:
        handle = cluster.actor(component, self.settings)
        return cluster.call(getattr(handle, method).remote(*args))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror}") from None
