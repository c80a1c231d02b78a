"""Compiled modules by digest: an in-memory LRU in front of an optional directory of serialized
(`.cwasm`) modules, so a restarted executor does not compile again.

A `.cwasm` is native code that wasmtime loads without checking it, so each file carries an
HMAC-SHA256 of its contents under a key kept beside the directory, not in it (0600, the
directory 0700): a file that anyone else wrote or changed is compiled again from the module.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

import wasmtime

from jobico.config import CACHE_MODULES
from jobico.lru import LRU
from jobico.wasm.engine import fingerprint
from jobico.wasm.faults import describe

_SAFE_DIGEST = re.compile(r"[A-Za-z0-9_:.-]{1,160}")
_MAGIC = b"jobico-cwasm-hmac-sha256\n"
_MAC_BYTES = 32
_KEY_BYTES = 32

log = logging.getLogger(__name__)


class CompileFailed(Exception):
    """The module cannot be compiled by this engine; `message` is a plain string."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModuleCache:
    """`bound` compiled modules in memory (JOBICO_CACHE_MODULES); one evicted is read again
    from the directory, or compiled again from `load()`."""

    def __init__(
        self, engine: wasmtime.Engine, cache_dir: Path | None, *, bound: int = CACHE_MODULES
    ) -> None:
        self._engine = engine
        self._dir = cache_dir
        self._key: bytes | None = None  # read or made on first use of the directory
        self._fingerprint = fingerprint()
        self._modules: LRU[str, wasmtime.Module] = LRU(bound)

    def __len__(self) -> int:
        return len(self._modules)

    def get(self, digest: str, load: Callable[[], bytes]) -> wasmtime.Module:
        """The compiled module; `load()` only on a miss. Raises CompileFailed, or whatever
        `load` raises (the caller's own errors, e.g. the repository is unreachable)."""
        # Compiled outside the LRU's lock: it can take a second, and other digests should not wait.
        return self._modules.load(
            digest, lambda: self._from_disk(digest) or self._compile(digest, load)
        )

    def _path(self, digest: str) -> Path | None:
        if self._dir is None or not _SAFE_DIGEST.fullmatch(digest) or ".." in digest:
            return None  # a digest that is not a plain name never becomes a path
        return self._dir / f"{digest}-{self._fingerprint}.cwasm"

    def _from_disk(self, digest: str) -> wasmtime.Module | None:
        path = self._path(digest)
        if path is None or not path.is_file():
            return None
        key = self._cache_key()
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        code = _verified(raw, key) if key is not None else None
        if code is None:
            log.warning("compiled module %s failed its integrity check; compiling it again", path)
            return None
        try:  # the bytes checked, not the file again: it could change in between
            return wasmtime.Module.deserialize(self._engine, code)
        except wasmtime.WasmtimeError:
            pass  # damaged or stale despite the fingerprint: compile again and overwrite
        return None

    def _cache_key(self) -> bytes | None:
        """The HMAC key, beside the directory (`<dir>.key`): one who can write the directory
        cannot forge a file's MAC. None when it cannot be read or made (no disk cache)."""
        if self._key is None and self._dir is not None:
            try:
                self._key = _key_file(self._dir.with_name(f"{self._dir.name}.key"))
            except OSError:
                return None
        return self._key

    def _compile(self, digest: str, load: Callable[[], bytes]) -> wasmtime.Module:
        data = load()
        try:
            module = wasmtime.Module(self._engine, data)
        except wasmtime.WasmtimeError as e:
            message = f"module {digest} cannot be compiled: {describe(e)}"
        else:
            self._to_disk(digest, module)
            return module
        raise CompileFailed(message)

    def _to_disk(self, digest: str, module: wasmtime.Module) -> None:
        path = self._path(digest)
        if path is None:
            return
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            _private_dir(path.parent)
            key = self._cache_key()
            if key is None:
                return
            code = bytes(module.serialize())
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(_MAGIC + _mac(key, code) + code)
            os.replace(tmp, path)  # readers see the old file or the whole new one, never half
        except (OSError, wasmtime.WasmtimeError):
            tmp.unlink(missing_ok=True)  # the disk cache is an optimisation; running goes on


def _mac(key: bytes, code: bytes) -> bytes:
    return hmac.new(key, code, hashlib.sha256).digest()


def _verified(raw: bytes, key: bytes) -> bytes | None:
    """The serialized module inside `raw` if its MAC is right; else None."""
    if not raw.startswith(_MAGIC):
        return None
    mac, code = raw[len(_MAGIC) : len(_MAGIC) + _MAC_BYTES], raw[len(_MAGIC) + _MAC_BYTES :]
    return code if hmac.compare_digest(mac, _mac(key, code)) else None


def _private_dir(path: Path) -> None:
    """The cache directory, made 0700 or narrowed to it: it is the platform's own."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def _key_file(path: Path) -> bytes:
    """The key in `path`, made (0600, exclusively) if there is none. Its directory is the
    cache directory's parent, which may be anyone's: it is made if missing, never changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) != _KEY_BYTES:  # another process is writing it, or it is damaged
            raise OSError(f"{path}: not a module cache key") from None
        return key
    key = secrets.token_bytes(_KEY_BYTES)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key
