"""The file repository: per-tenant wasm modules and JSON files, content-addressed by sha256.

Blobs live at `<root>/blobs/<tenant>/<digest>`; a diskcache index maps (tenant, name) to the
list of versions uploaded under that name. A name points at its newest version; revisions pin
digests, so older contents stay readable for as long as the blob exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from jobico.errors import FileInvalid, InvalidInput, NotFound, QuotaExceeded
from jobico.homedir import durable_cache, private_dir
from jobico.model import FileInfo, check_name

KINDS = ("wasm", "json")

# A hook that refuses bytes that are not a usable file of a kind (raises FileInvalid).
Validator = Callable[[str, bytes], None]


def validate_basic(kind: str, data: bytes) -> None:
    """Cheap checks at upload; deploy checks what the package needs of the file."""
    if kind == "json":
        try:
            json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise FileInvalid(f"not valid JSON: {e}") from None
    elif not data.startswith(b"\0asm"):
        raise FileInvalid("not a WebAssembly module (no \\0asm header)")


class Repository:
    def __init__(self, root: Path, *, validate: Validator = validate_basic) -> None:
        self._blobs = root / "blobs"
        private_dir(self._blobs)
        self._index = durable_cache(root / "index")  # never evicted: it names every file
        self._validate = validate

    def put(
        self, tenant: str, kind: str, name: str, data: bytes, *, max_bytes: int = 0
    ) -> FileInfo:
        """Store a version of `name`; refused when the tenant's stored bytes would pass
        `max_bytes` (0: no limit)."""
        check_name("tenant", tenant)
        check_name("file", name)
        if kind not in KINDS:
            raise InvalidInput(f"file kind must be one of {', '.join(KINDS)}, got {kind!r}")
        try:
            self._validate(kind, data)
        except FileInvalid as e:
            raise FileInvalid(f"{name}: {e.message}", file=name) from None
        digest = hashlib.sha256(data).hexdigest()
        self._check_quota(tenant, digest, len(data), max_bytes)
        self._write_blob(tenant, digest, data)
        return self._add_version(tenant, kind, name, digest, len(data))

    def info(self, tenant: str, name: str) -> FileInfo | None:
        versions = self._index.get((tenant, name))
        return _info(tenant, name, versions[-1]) if versions else None

    def versions(self, tenant: str, name: str) -> list[FileInfo]:
        return [_info(tenant, name, v) for v in self._index.get((tenant, name), [])]

    def list(self, tenant: str) -> list[FileInfo]:
        names = sorted(n for t, n in self._index.iterkeys() if t == tenant)
        return [info for n in names if (info := self.info(tenant, n)) is not None]

    def read(self, tenant: str, digest: str) -> bytes:
        check_name("tenant", tenant)
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise InvalidInput(f"not a sha256 digest: {digest!r}")
        try:
            return (self._blobs / tenant / digest).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no file with digest {digest[:12]} for tenant {tenant!r}") from None

    def usage(self, tenant: str) -> int:
        """Bytes the tenant stores: each distinct content once, however many names share it."""
        folder = self._blobs / check_name("tenant", tenant)
        return sum(p.stat().st_size for p in folder.glob("[0-9a-f]*")) if folder.is_dir() else 0

    def close(self) -> None:
        self._index.close()

    def _check_quota(self, tenant: str, digest: str, size: int, max_bytes: int) -> None:
        if not max_bytes or (self._blobs / tenant / digest).exists():
            return
        used = self.usage(tenant)
        if used + size > max_bytes:
            raise QuotaExceeded(
                f"tenant {tenant!r} stores {used} bytes; {size} more would pass its quota of "
                f"{max_bytes} bytes",
                tenant=tenant,
                quota="repository_bytes",
                limit=max_bytes,
            )

    def _write_blob(self, tenant: str, digest: str, data: bytes) -> None:
        folder = self._blobs / tenant
        folder.mkdir(exist_ok=True)
        target = folder / digest
        if target.exists():
            return
        # Write then rename, so a reader (or a crash) never sees half a file under its digest.
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)

    def _add_version(self, tenant: str, kind: str, name: str, digest: str, size: int) -> FileInfo:
        with self._index.transact():
            versions = list(self._index.get((tenant, name), []))
            if versions and versions[-1]["digest"] == digest and versions[-1]["kind"] == kind:
                return _info(tenant, name, versions[-1])  # same content again: nothing new
            entry = {"kind": kind, "digest": digest, "size": size, "uploaded_at": time.time()}
            entry["version"] = len(versions) + 1
            versions.append(entry)
            self._index.set((tenant, name), versions)
        return _info(tenant, name, entry)


def _info(tenant: str, name: str, v: dict[str, object]) -> FileInfo:
    return FileInfo(tenant=tenant, name=name, **v)  # type: ignore[arg-type]
