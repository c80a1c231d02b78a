"""Deploy-time checks of an uploaded module (check_module): valid WebAssembly, the exports its
runtime kind needs with the right types, and no imports beyond what the host provides."""

from __future__ import annotations

from dataclasses import dataclass

import wasmtime

from jobico.errors import FileInvalid
from jobico.wasm.engine import set_limits, shared_engine
from jobico.wasm.faults import describe
from jobico.wasm.host import HostState

VER_FUEL = 10_000_000  # instantiating and calling ver() must be cheap; beyond this, decide at run
VER_MEMORY = 256 << 20
UNKNOWN_VER = -1


@dataclass(frozen=True)
class ModuleInfo:
    ver: int  # 0 free(ptr), 1 free(ptr, size); -1: could not be read cheaply, decided at run time
    exports: tuple[str, ...]
    imports: tuple[str, ...]  # "module.name"


# Export name -> (params, results) it must have; free accepts either form of DESIGN §4.
Signature = tuple[list[str], list[str]]  # (params, results)
_SIGNATURES: dict[str, list[Signature]] = {
    "init": [([], [])],
    "malloc": [(["i32"], ["i32"])],
    "free": [(["i32"], []), (["i32", "i32"], [])],
    "ver": [([], ["i32"])],
    "_start": [([], [])],
}
_MAIN_SIGNATURE: Signature = (["i32", "i32", "i32"], [])  # event(result_struct_ptr, ptr, len)


def check_module(data: bytes, *, kind: str = "jobicolet", mainfunc: str = "event") -> ModuleInfo:
    """Raise FileInvalid (without the file's name; the caller adds it) if `data` cannot run as a
    `kind` module; else what the module offers. Messages are plain strings, never wasmtime's."""
    if kind not in ("jobicolet", "wasi"):
        raise ValueError(f"unknown runtime kind {kind!r}: jobicolet or wasi expected")
    module = _compile(data)
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
        ver = _read_ver(module)
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


def _read_ver(module: wasmtime.Module) -> int:
    """Call ver() in a throwaway store, without _start or init; UNKNOWN_VER if that is not cheap
    (start code runs out of fuel, initial memory too large, instantiation fails)."""
    engine = shared_engine()
    host = HostState()
    store = wasmtime.Store(engine)
    try:
        set_limits(store, VER_MEMORY)
        store.set_fuel(VER_FUEL)
        store.set_epoch_deadline(1 << 40)  # the shared engine's epoch never advances; fuel bounds
        store.set_wasi(wasmtime.WasiConfig())
        exports = host.linker(engine).instantiate(store, module).exports(store)
        ver = exports["ver"]
        if isinstance(ver, wasmtime.Func):
            return int(ver(store))
    except Exception:  # whatever stops it, ver is then decided at run time
        pass
    return UNKNOWN_VER
