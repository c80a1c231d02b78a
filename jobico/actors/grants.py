"""Grant checks inside any actor: the grant key is fetched from control once, then every check
is one HMAC, with no store and no round trip (jobico.access.auth says what a grant is)."""

from __future__ import annotations

import time
from typing import Any

from jobico.access import auth
from jobico.actors import cluster
from jobico.config import Settings


class Verifier:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._key: bytes | None = None

    def check(self, grant: Any, tenant: str) -> str:
        """`tenant`, if the grant is valid and may act for it (sync actors)."""
        return auth.require(self.verify(grant), tenant)

    def verify(self, grant: Any) -> auth.Grant:
        if self._key is None:
            control = cluster.actor(cluster.CONTROL, self._settings)
            self._key = cluster.call(control.grant_key.remote())
        return auth.verify(self._key, grant, time.time())  # type: ignore[arg-type]

    async def acheck(self, grant: Any, tenant: str) -> str:
        return auth.require(await self.averify(grant), tenant)

    async def averify(self, grant: Any) -> auth.Grant:
        """`verify` for async actors: the one fetch is awaited, never blocking the loop."""
        if self._key is None:
            control = cluster.actor(cluster.CONTROL, self._settings)
            self._key = await cluster.acall(control.grant_key.remote())
        return auth.verify(self._key, grant, time.time())  # type: ignore[arg-type]
