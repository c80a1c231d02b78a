"""The jobicolet guest ABI (docs/contract.md#guest-abi): one reusable instance (store, exports,
`ver`, `init`) and the per-event call protocol (malloc, event, result struct, free)."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass

import wasmtime

from jobico.wasm.calls import I32Func
from jobico.wasm.engine import set_limits
from jobico.wasm.faults import GuestFault, describe
from jobico.wasm.host import HostState, check_range, read_bytes, write_bytes
from jobico.wasm.outcome import INVALID_RESULT, OUT_OF_MEMORY, RESULT_TOO_LARGE, TRAP

U32 = 0xFFFFFFFF
_RESULT = struct.Struct("<QQ")  # code u64, enc u64 = (result_ptr << 32) | result_len


@dataclass(frozen=True)
class Answer:
    """What the guest answered, read in full (code, pointer, length, bytes): the execution's
    answer. `free_failed`: why freeing its blocks afterwards trapped, if it did."""

    code: int
    result: str
    free_failed: str | None = None


def _func(exports: Mapping[str, object], name: str) -> wasmtime.Func:
    item = exports.get(name)
    if not isinstance(item, wasmtime.Func):
        raise GuestFault(TRAP, f"module does not export a function {name!r}")
    return item


class Jobicolet:
    """One Store + Instance of a jobicolet, reused for events until a failure discards it.

    Not thread-safe: the sandbox lends an instance to one execution at a time.
    """

    def __init__(
        self, engine: wasmtime.Engine, module: wasmtime.Module, mainfunc: str, memory_limit: int
    ) -> None:
        self.host = HostState()
        self.store = wasmtime.Store(engine)
        self.memory_limit = memory_limit
        set_limits(self.store, memory_limit)
        self.store.set_wasi(wasmtime.WasiConfig())  # stdout/stderr: discarded
        self.ready = False  # instantiated and init() done
        self._linker = self.host.linker(engine)
        self._module = module
        self._mainfunc_name = mainfunc
        self._memory: wasmtime.Memory | None = None
        self.spoiled = False  # a free trapped after an answer: never lent again

    def set_memory_limit(self, memory_limit: int) -> None:
        if memory_limit != self.memory_limit:
            set_limits(self.store, memory_limit)
            self.memory_limit = memory_limit

    def memory_bytes(self) -> int:
        return self._memory.data_len(self.store) if self._memory is not None else 0

    def start(self) -> None:
        """Instantiate, run `_start` (or a reactor's `_initialize`), read `ver`, call `init()`.

        Runs inside the current execution's limits, so a hanging init is a timeout like any other.
        """
        store = self.store
        exports = self._linker.instantiate(store, self._module).exports(store)
        memory = exports.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            raise GuestFault(TRAP, "module does not export a memory named 'memory'")
        self._memory = memory
        malloc, free = _func(exports, "malloc"), _func(exports, "free")
        main = _func(exports, self._mainfunc_name)
        init = _func(exports, "init")
        for entry in ("_start", "_initialize"):
            if entry in exports:
                exit_code = _run_entry(store, _func(exports, entry))
                if exit_code:
                    raise GuestFault(TRAP, f"{entry} exited with code {exit_code}")
                break  # a module is a command or a reactor, never both
        self._ver = int(_func(exports, "ver")(store)) if "ver" in exports else 0
        if self._ver not in (0, 1):
            raise GuestFault(TRAP, f"ver() returned {self._ver}; 0 (TinyGo) or 1 (Rust) expected")
        self._malloc = I32Func(store, malloc, "malloc", params=1, results=1)
        self._free = I32Func(store, free, "free", params=1 + self._ver, results=0)
        self._main = I32Func(store, main, self._mainfunc_name, params=3, results=0)
        init(store)
        self.ready = True

    def call(self, event: bytes, result_limit: int) -> Answer:
        """Run one event: its Answer, or GuestFault / a wasmtime error before the answer."""
        store, memory = self.store, self._memory
        assert memory is not None, "start() first"
        size = len(event)
        ptr = self._alloc(size)
        # The input goes in before the result slot is asked for, as in the original host: a
        # guest whose malloc hands out that address again still gets its input.
        write_bytes(memory, store, ptr, event)
        ret = self._alloc(16)
        check_range(memory, store, ret, 16)
        self._main(ret, ptr, size)
        code, enc = _RESULT.unpack(read_bytes(memory, store, ret, 16))
        result_ptr, result_len = enc >> 32, enc & U32
        result = _decode_result(memory, store, result_ptr, result_len, result_limit)
        blocks = [(result_ptr, result_len)] if result_ptr != 0 else []
        return Answer(code, result, self._release_all([*blocks, (ret, 16), (ptr, size)]))

    def _release_all(self, blocks: list[tuple[int, int]]) -> str | None:
        """Free the event's blocks once its answer is read; why a free trapped, if one did.

        The answer stands whatever free does: the original Rust SDK's allocator (wee_alloc)
        traps here, and the original host logs it and carries on. The instance is left in an
        unknown state, so it is marked spoiled and never lent again."""
        for block_ptr, block_size in blocks:
            try:
                self._release(block_ptr, block_size)
            except Exception as exc:  # a trap, or a limit reached inside free
                self.spoiled = True
                return describe(exc) if not isinstance(exc, GuestFault) else exc.message
        return None

    def _alloc(self, size: int) -> int:
        ptr = self._malloc(size) & U32  # i32 results arrive signed
        if ptr == 0 and size > 0:
            raise GuestFault(OUT_OF_MEMORY, f"malloc({size}) returned null")
        return ptr

    def _release(self, ptr: int, size: int) -> None:
        if self._ver == 1:
            self._free(ptr, size)
        else:
            self._free(ptr)


def _run_entry(store: wasmtime.Store, entry: wasmtime.Func) -> int:
    """Call `_start`/`_initialize`; the WASI exit code, 0 when it simply returns."""
    try:
        entry(store)
    except wasmtime.ExitTrap as e:
        return int(e.code)
    return 0


def _decode_result(
    memory: wasmtime.Memory, store: wasmtime.Store, ptr: int, size: int, limit: int
) -> str:
    # Where first, then how much: a length running past memory is a broken answer, not a big one.
    if ptr == 0 and size > 0:  # address 0 is the null pointer, never a result's home
        raise GuestFault(INVALID_RESULT, f"result of {size} bytes at the null pointer")
    if ptr + size > memory.data_len(store):
        raise GuestFault(
            INVALID_RESULT,
            f"result outside guest memory: {size} bytes at {ptr}, memory is "
            f"{memory.data_len(store)} bytes",
        )
    if size > limit:
        raise GuestFault(RESULT_TOO_LARGE, f"result too large: {size} bytes, limit is {limit}")
    raw = read_bytes(memory, store, ptr, size)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        reason = f"result is not valid UTF-8 (byte {e.start}: {e.reason})"
    raise GuestFault(INVALID_RESULT, reason)
