"""Tenants' named ingest secrets (webhook signing secrets, ingest keys), owned by control.

Package YAML names a secret (`auth: {kind: github, secret: gh}`); its value is set apart with
`jobico secrets set` and only ever leaves here for the listener replicas. A name holds a few
values, newest first, so a sender's secret can be rotated without refusing its events meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobico.errors import InvalidInput, NotFound
from jobico.homedir import durable_cache
from jobico.model import check_name

MAX_VALUES = 3  # per name: the newest and the ones still in rotation
MAX_VALUE_BYTES = 4096

Values = dict[str, list[str]]  # secret name -> values, newest first


class Vault:
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        # The values are plain (HMAC needs them): the owner's only, and durable like tokens.
        self._db = durable_cache(path)
        self._clock = clock

    def set(self, tenant: str, name: str, value: str, *, keep: bool = False) -> dict[str, Any]:
        """Store `value` under `name`; with `keep`, earlier values stay valid too (rotation)."""
        check_name("tenant", tenant)
        check_name("secret", name)
        _check_value(value)
        with self._db.transact():
            old = self._db.get(("secret", tenant, name))
            kept = [v for v in old["values"] if v != value] if old and keep else []
            values = [value, *kept][:MAX_VALUES]
            entry = {"values": values, "updated_at": self._clock()}
            self._db.set(("secret", tenant, name), entry)
        return _describe(name, entry)

    def delete(self, tenant: str, name: str) -> None:
        check_name("tenant", tenant)
        if not self._db.delete(("secret", tenant, name)):
            raise NotFound(f"tenant {tenant!r} has no secret {name!r}")

    def names(self, tenant: str) -> list[dict[str, Any]]:
        """Names, how many values each holds and when they were set: never the values."""
        check_name("tenant", tenant)
        return [_describe(name, self._db[("secret", tenant, name)]) for name in self._of(tenant)]

    def values(self, tenant: str) -> Values:
        """Every secret of the tenant with its values: for the listener replicas only."""
        return {n: list(self._db[("secret", tenant, n)]["values"]) for n in self._of(tenant)}

    def tenants(self) -> list[str]:
        return sorted({k[1] for k in self._db.iterkeys() if k[0] == "secret"})

    def _of(self, tenant: str) -> list[str]:
        return sorted(k[2] for k in self._db.iterkeys() if k[0] == "secret" and k[1] == tenant)

    def close(self) -> None:
        self._db.close()


def _check_value(value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("a secret value must be non-empty text")
    if len(value.encode()) > MAX_VALUE_BYTES or any(c in value for c in "\r\n\0"):
        raise InvalidInput(f"a secret value is one line of at most {MAX_VALUE_BYTES} bytes")


def _describe(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "values": len(entry["values"]), "updated_at": entry["updated_at"]}
