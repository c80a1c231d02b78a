"""Deploy-time checks of an uploaded module (check_module): valid WebAssembly, the exports its
runtime kind needs with the right types, and no imports beyond what the host provides."""

from __future__ import annotations

import time
from dataclasses import dataclass

import wasmtime

from jobico.errors import FileInvalid
from jobico.wasm.engine import MAX_MEMORIES, MAX_TABLES, deadline_ticks, set_limits, shared_engine
from jobico.wasm.faults import describe
from jobico.wasm.host import HostState
from jobico.wasm.outcome import LogSink

VER_FUEL = 10_000_000  # instantiating and calling ver() must be cheap; beyond this, decide at run
VER_MEMORY = 256 << 20
UNKNOWN_VER = -1
# The wall-clock bound on checking one module (compiling it, running its start code for ver())
# and the largest module accepted; the platform passes its settings (JOBICO_DEPLOY_CHECK_S,
# JOBICO_MAX_MODULE_MB).
CHECK_S = 5.0
MAX_MODULE_BYTES = 64 << 20
_MEMORY_SECTION, _TABLE_SECTION = 5, 4


@dataclass(frozen=True)
class ModuleInfo:
    ver: int  # 0 free(ptr), 1 free(ptr, size); -1: could not be read cheaply, decided at run time
    exports: tuple[str, ...]
    imports: tuple[str, ...]  # "module.name"


# Export name -> (params, results) it must have; free takes either form (docs/contract.md#exports).
Signature = tuple[list[str], list[str]]  # (params, results)
_SIGNATURES: dict[str, list[Signature]] = {
    "init": [([], [])],
    "malloc": [(["i32"], ["i32"])],
    "free": [(["i32"], []), (["i32", "i32"], [])],
    "ver": [([], ["i32"])],
    "_start": [([], [])],
}
_MAIN_SIGNATURE: Signature = (["i32", "i32", "i32"], [])  # event(result_struct_ptr, ptr, len)


def check_module(
    data: bytes,
    *,
    kind: str = "jobicolet",
    mainfunc: str = "event",
    timeout_s: float = CHECK_S,
    max_bytes: int = MAX_MODULE_BYTES,
) -> ModuleInfo:
    """Raise FileInvalid (without the file's name; the caller adds it) if `data` cannot run as a
    `kind` module; else what the module offers. Messages are plain strings, never wasmtime's.

    Guest code run here (a start function, `ver()`) stops at `timeout_s` of wall clock from the
    call; compiling cannot be interrupted, so `max_bytes` bounds it and `ModuleChecks` keeps
    callers from waiting on it past the bound."""
    if kind not in ("jobicolet", "wasi"):
        raise ValueError(f"unknown runtime kind {kind!r}: jobicolet or wasi expected")
    deadline = time.monotonic() + timeout_s
    if isinstance(data, (bytes, bytearray)) and len(data) > max_bytes:
        raise FileInvalid(
            f"module is {len(data) / (1 << 20):.1f} MiB; this platform accepts modules of up to "
            f"{max_bytes / (1 << 20):g} MiB"
        )
    module = _compile(data)
    _check_counts(bytes(data))
    exports = {e.name: e.type for e in module.exports}
    imports = {f"{i.module}.{i.name}": i.type for i in module.imports}
    _check_imports(module)
    signatures = dict(_SIGNATURES, **{mainfunc: [_MAIN_SIGNATURE]})
    required = ["memory", "init", "malloc", "free", mainfunc] if kind == "jobicolet" else []
    required += ["_start", "memory"] if kind == "wasi" else []
    missing = [name for name in dict.fromkeys(required) if name not in exports]
    if missing:
        raise FileInvalid(f"{kind} module lacks required export(s): {', '.join(missing)}")
    if not isinstance(exports["memory"], wasmtime.MemoryType):
        raise FileInvalid("export 'memory' must be a memory")
    optional = ["ver"] if kind == "jobicolet" else []
    names = [n for n in (*required, *optional) if n in exports and n in signatures]
    for name in dict.fromkeys(names):
        _check_signature(f"export {name!r}", exports[name], signatures[name])
    ver = 0
    if kind == "jobicolet" and "ver" in exports:
        ver = _read_ver(module, deadline, timeout_s)
        if ver not in (0, 1, UNKNOWN_VER):
            raise FileInvalid(f"ver() returned {ver}; 0 (TinyGo) or 1 (Rust) expected")
        free = exports["free"]
        params = len(free.params) if isinstance(free, wasmtime.FuncType) else 0
        if ver != UNKNOWN_VER and params != ver + 1:
            raise FileInvalid(f"ver() is {ver} but free takes {params} parameter(s)")
    return ModuleInfo(ver=ver, exports=tuple(exports), imports=tuple(imports))


def _compile(data: bytes) -> wasmtime.Module:
    # Validation first: it is cheap and gives the clearest message; compiling gives the types.
    problem = None
    try:
        wasmtime.Module.validate(shared_engine(), data)
        return wasmtime.Module(shared_engine(), data)
    except wasmtime.WasmtimeError as e:
        problem = describe(e)
    except TypeError:
        problem = f"expected bytes, got {type(data).__name__}"
    # Raised outside the except block so no wasmtime error rides along as __context__.
    raise FileInvalid(f"not a valid WebAssembly module: {problem}")


def _check_imports(module: wasmtime.Module) -> None:
    """Every import must be something the host defines, with the host's type: asked of the very
    linker guests run with, so a made-up WASI name or an imported memory is refused here."""
    engine = shared_engine()
    store = wasmtime.Store(engine)
    linker = HostState().linker(engine)
    for item in module.imports:
        name = f"{item.module}.{item.name}"
        provided = _lookup(linker, store, item.module, item.name or "")
        if not isinstance(provided, wasmtime.Func):
            raise FileInvalid(
                f"imports {name!r}; only env.log and the functions of WASI preview1 "
                "(wasi_snapshot_preview1) are provided"
            )
        host_type = provided.type(store)
        _check_signature(f"import {name!r}", item.type, [_signature(host_type)])


def _lookup(linker: wasmtime.Linker, store: wasmtime.Store, module: str, name: str) -> object:
    try:
        return linker.get(store, module, name)
    except wasmtime.WasmtimeError:  # "item not defined in linker"
        return None


def _signature(ty: wasmtime.FuncType) -> Signature:
    return ([str(p) for p in ty.params], [str(r) for r in ty.results])


def _check_signature(what: str, ty: object, allowed: list[Signature]) -> None:
    def show(sig: Signature) -> str:
        return f"({', '.join(sig[0])}) -> ({', '.join(sig[1])})"

    if not isinstance(ty, wasmtime.FuncType):
        raise FileInvalid(f"{what} must be a function")
    actual = _signature(ty)
    if actual not in allowed:
        expected = " or ".join(show(sig) for sig in allowed)
        raise FileInvalid(f"{what} has type {show(actual)}, expected {expected}")


def _read_ver(module: wasmtime.Module, deadline: float, timeout_s: float) -> int:
    """Call ver() in a throwaway store, without _start or init; UNKNOWN_VER if that is not cheap
    (start code runs out of fuel, initial memory too large, instantiation fails). Start code or
    ver() still running at `deadline` is refused: WASI calls cost almost no fuel, so a start
    function looping on them would otherwise hold the deploy for hours."""
    engine = shared_engine()
    host = HostState()
    store = wasmtime.Store(engine)
    left_ms = max(1, int((deadline - time.monotonic()) * 1000))
    timed_out = False
    try:
        set_limits(store, VER_MEMORY)
        store.set_fuel(VER_FUEL)
        store.set_epoch_deadline(deadline_ticks(left_ms))
        store.set_wasi(wasmtime.WasiConfig())
        host.begin(LogSink(max_lines=0, max_bytes=0), left_ms)  # poll_oneoff sleeps end there
        exports = host.linker(engine).instantiate(store, module).exports(store)
        ver = exports["ver"]
        if isinstance(ver, wasmtime.Func):
            return int(ver(store))
    except Exception as exc:  # whatever else stops it, ver is then decided at run time
        timed_out = _interrupted(exc) or time.monotonic() >= deadline
    if timed_out:
        raise FileInvalid(
            f"its start code (run to read ver()) was still running after {timeout_s:g} s, "
            "the bound on guest code at deploy"
        )
    return UNKNOWN_VER


def _interrupted(exc: BaseException) -> bool:
    if isinstance(exc, wasmtime.Trap):
        return exc.trap_code == wasmtime.TrapCode.INTERRUPT
    return "time limit exceeded" in str(getattr(exc, "message", ""))  # poll_oneoff's deadline


def _check_counts(data: bytes) -> None:
    """One memory and at most MAX_TABLES tables: the store limits count memory per memory and
    table elements per table, so a module with eight memories would get eight times the memory
    limit. Imported memories and tables are refused with the other imports."""
    counts = _section_counts(data)
    memories, tables = counts.get(_MEMORY_SECTION, 0), counts.get(_TABLE_SECTION, 0)
    if memories > MAX_MEMORIES:
        raise FileInvalid(
            f"module defines {memories} memories; a guest has one memory (its 'memory' export), "
            "and the memory limit counts it"
        )
    if tables > MAX_TABLES:
        raise FileInvalid(f"module defines {tables} tables; at most {MAX_TABLES} are allowed")


def _section_counts(data: bytes) -> dict[int, int]:
    """The entry count of each section that opens with one (memory, table), by section id;
    `data` is valid WebAssembly already."""
    counts: dict[int, int] = {}
    pos = 8  # magic and version
    while pos < len(data):
        section = data[pos]
        size, pos = _leb128(data, pos + 1)
        if section in (_MEMORY_SECTION, _TABLE_SECTION):
            counts[section] = _leb128(data, pos)[0]
        pos += size
    return counts


def _leb128(data: bytes, pos: int) -> tuple[int, int]:
    """An unsigned LEB128 number at `pos`, and the position after it."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
