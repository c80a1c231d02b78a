"""The Python client: every operation of the CLI, for programs, through the actors."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import httpx

from jobico import platform
from jobico.access import auth
from jobico.access.auth import Grant, Issued, Quotas, TokenInfo
from jobico.actors import cluster
from jobico.actors import queue as queue_actor
from jobico.config import Settings
from jobico.errors import HTTP_STATUS, InvalidInput, JobicoError, Unavailable
from jobico.model import FileInfo, Package, Revision, check_name, load_package_yaml

# A grant is renewed this long before it expires, so no call carries one about to lapse.
_RENEW_S = 30.0


class Client:
    """Connects to a running platform (the embedded one of JOBICO_HOME, or `address`).

    Every operation carries a grant bought with the token: `token`, else JOBICO_TOKEN, else
    `token_file`, else the admin token file under JOBICO_HOME (see `auth.find_token`).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        address: str | None = None,
        token: str | None = None,
        token_file: Path | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self._token, self._token_file = token, token_file
        self._grant: Grant | None = None
        platform.attach(self.settings, address)

    # --- files ---

    def upload(self, tenant: str, kind: str, name: str, data: bytes | Path) -> FileInfo:
        if isinstance(data, Path):
            data = _read(data)
        return self._call(cluster.REPOSITORY, "put", tenant, kind, name, data)  # type: ignore[no-any-return]

    def files(self, tenant: str) -> list[FileInfo]:
        return self._call(cluster.REPOSITORY, "list", tenant)  # type: ignore[no-any-return]

    def file_info(self, tenant: str, name: str) -> FileInfo | None:
        return self._call(cluster.REPOSITORY, "file_info", tenant, name)  # type: ignore[no-any-return]

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
        """The platform's status for an admin; a tenant sees its own packages and queues."""
        me = self.whoami()
        if me["tenant"] is None:
            return platform.status(self.settings)
        tenant = me["tenant"]
        packages = [p["package"] for p in self.packages(tenant)]
        return {
            "components": {"control": "ok"},
            "tenants": {tenant: packages},
            "queues": {tenant: self.queue_figures(tenant)} if packages else {},
            "executors": [],
        }

    def queue_figures(self, tenant: str) -> dict[str, dict[str, Any]]:
        """Depth, in flight, dead letters and oldest age of each of the tenant's queues."""
        return cluster.call(self._queue(tenant).figures.remote(self._current_grant()))  # type: ignore[no-any-return]

    # --- who acts: tokens, tenants, quotas, ingest secrets ---

    def whoami(self) -> dict[str, Any]:
        """The token's id and tenant (None: admin)."""
        return self._call(cluster.CONTROL, "whoami")  # type: ignore[no-any-return]

    def create_tenant(self, tenant: str) -> Issued:
        """Register a tenant and issue its first token (admin)."""
        return self._call(cluster.CONTROL, "create_tenant", tenant)  # type: ignore[no-any-return]

    def tenants(self) -> list[str]:
        return self._call(cluster.CONTROL, "tenants")  # type: ignore[no-any-return]

    def issue_token(self, tenant: str | None) -> Issued:
        """Another token for `tenant` (None: an admin token, admins only)."""
        return self._call(cluster.CONTROL, "issue", tenant)  # type: ignore[no-any-return]

    def tokens(self, tenant: str | None = None) -> list[TokenInfo]:
        return self._call(cluster.CONTROL, "tokens", tenant)  # type: ignore[no-any-return]

    def rotate_token(self, token_id: str) -> Issued:
        return self._call(cluster.CONTROL, "rotate", token_id)  # type: ignore[no-any-return]

    def revoke_token(self, token_id: str) -> TokenInfo:
        return self._call(cluster.CONTROL, "revoke", token_id)  # type: ignore[no-any-return]

    def quotas(self, tenant: str) -> Quotas:
        return self._call(cluster.CONTROL, "quotas", tenant)  # type: ignore[no-any-return]

    def set_quotas(self, tenant: str, **changes: int) -> Quotas:
        return self._call(cluster.CONTROL, "set_quotas", tenant, changes)  # type: ignore[no-any-return]

    def set_secret(
        self, tenant: str, name: str, value: str, *, keep: bool = False
    ) -> dict[str, Any]:
        """Set an ingest secret; with `keep`, its earlier values stay valid (rotation)."""
        return self._call(cluster.CONTROL, "set_secret", tenant, name, value, keep)  # type: ignore[no-any-return]

    def secrets(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's secret names, never their values."""
        return self._call(cluster.CONTROL, "secrets", tenant)  # type: ignore[no-any-return]

    def delete_secret(self, tenant: str, name: str) -> None:
        self._call(cluster.CONTROL, "delete_secret", tenant, name)

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
        return self._call(cluster.RECORDER, "records", **filters)  # type: ignore[no-any-return]

    # --- dead letters ---

    def dead_letters(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Events parked after their last failed attempt, with their last error."""
        tenants = [tenant] if tenant else self._call(cluster.CONTROL, "tenants", True)
        parked = []
        for t in tenants:
            letters = cluster.call(self._queue(t).dead_letters.remote(self._current_grant()))
            parked += [{"tenant": t, **letter} for letter in letters]
        return parked

    def replay(self, tenant: str, event_ids: list[str] | None) -> int:
        """Dead letters back into their queue (None: all of the tenant's); each runs again as a
        new attempt of the same event id. How many were replayed."""
        queue = self._queue(tenant)
        return cluster.call(queue.replay.remote(self._current_grant(), event_ids))  # type: ignore[no-any-return]

    def drop(self, tenant: str, event_ids: list[str] | None) -> int:
        """Delete dead letters for good (None: all of the tenant's). How many were dropped."""
        queue = self._queue(tenant)
        return cluster.call(queue.drop.remote(self._current_grant(), event_ids))  # type: ignore[no-any-return]

    def listener_url(self) -> str:
        control = cluster.actor(cluster.CONTROL, self.settings)
        info = cluster.call(control.info.remote())
        return str(info.get("listener_url") or f"http://{self.settings.host}:{self.settings.port}")

    # --- plumbing ---

    def _upload_local_files(self, spec: Package, folder: Path) -> None:
        for name, kind in spec.file_refs().items():
            local = folder / name
            if not local.is_file():
                continue  # deploy names the file if the repository lacks it too
            data = local.read_bytes()
            known = self.file_info(spec.tenant, name)
            if known is None or known.digest != hashlib.sha256(data).hexdigest():
                self.upload(spec.tenant, kind, name, data)

    def _queue(self, tenant: str) -> Any:
        """The tenant's queue actor, once control says this token may act for the tenant."""
        self._call(cluster.CONTROL, "authorize", check_name("tenant", tenant))
        return queue_actor.handle(self.settings, tenant)

    def _call(self, component: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """A client method of a component: the grant goes first."""
        handle = cluster.actor(component, self.settings)
        return cluster.call(getattr(handle, method).remote(self._current_grant(), *args, **kwargs))

    def _current_grant(self) -> Grant:
        if self._grant is None or self._grant.expires_at - _RENEW_S < time.time():
            token = self._token or auth.find_token(os.environ, self.settings.home, self._token_file)
            control = cluster.actor(cluster.CONTROL, self.settings)
            self._grant = cluster.call(control.grant.remote(token))
        return self._grant


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
