"""Compiled modules by digest: an in-memory LRU in front of an optional directory of serialized
(`.cwasm`) modules, so a restarted executor does not compile again."""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import wasmtime

from jobico.wasm.engine import fingerprint
from jobico.wasm.faults import describe

MAX_MODULES = 256  # compiled modules are megabytes of machine code; bound how many stay loaded
_SAFE_DIGEST = re.compile(r"[A-Za-z0-9_:.-]{1,160}")


class CompileFailed(Exception):
    """The module cannot be compiled by this engine; `message` is a plain string."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModuleCache:
    def __init__(self, engine: wasmtime.Engine, cache_dir: Path | None) -> None:
        self._engine = engine
        self._dir = cache_dir
        self._fingerprint = fingerprint()
        self._modules: OrderedDict[str, wasmtime.Module] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str, load: Callable[[], bytes]) -> wasmtime.Module:
        """The compiled module; `load()` only on a miss. Raises CompileFailed, or whatever
        `load` raises (the caller's own errors, e.g. the repository is unreachable)."""
        with self._lock:
            module = self._modules.get(digest)
            if module is not None:
                self._modules.move_to_end(digest)
                return module
        # Compile outside the lock: it can take a second, and other digests should not wait.
        module = self._from_disk(digest) or self._compile(digest, load)
        with self._lock:
            self._modules[digest] = module
            self._modules.move_to_end(digest)
            while len(self._modules) > MAX_MODULES:
                self._modules.popitem(last=False)
        return module

    def _path(self, digest: str) -> Path | None:
        if self._dir is None or not _SAFE_DIGEST.fullmatch(digest) or ".." in digest:
            return None  # a digest that is not a plain name never becomes a path
        return self._dir / f"{digest}-{self._fingerprint}.cwasm"

    def _from_disk(self, digest: str) -> wasmtime.Module | None:
        path = self._path(digest)
        if path is None or not path.is_file():
            return None
        try:
            return wasmtime.Module.deserialize_file(self._engine, str(path))
        except wasmtime.WasmtimeError:
            pass  # damaged or stale despite the fingerprint: compile again and overwrite
        return None

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
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(module.serialize())
            os.replace(tmp, path)  # readers see the old file or the whole new one, never half
        except (OSError, wasmtime.WasmtimeError):
            tmp.unlink(missing_ok=True)  # the disk cache is an optimisation; running goes on
