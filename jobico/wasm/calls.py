"""Calls into guest functions that take and return only i32, the jobicolet ABI's own
(malloc, free, the main function), without wasmtime-py's per-call overhead.

`wasmtime.Func.__call__` asks the store for the function's type, builds type objects and
converts every argument on each call: about 13 µs here against 3 µs for the call itself, and
an echo event makes six calls. The type is checked once, when the instance starts; each call
then fills preallocated argument slots and calls `wasmtime_func_call` as `Func.__call__` does,
with the same trap and host-exception handling (`enter_wasm`).

This uses wasmtime-py's internals (`_ffi`, `_func.enter_wasm`); the version is pinned in
constraints.txt and the unit tests call through this path, so an upgrade that moves them fails
loudly.
"""

from __future__ import annotations

import ctypes

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime._func import enter_wasm

from jobico.wasm.faults import GuestFault
from jobico.wasm.outcome import TRAP

_I32 = wasmtime.ValType.i32()


class I32Func:
    """A guest function of `params` i32 parameters and `results` (0 or 1) i32 results.

    Not thread-safe (its argument slots are reused), as its instance is not.
    """

    def __init__(
        self, store: wasmtime.Store, func: wasmtime.Func, name: str, *, params: int, results: int
    ) -> None:
        ty = func.type(store)
        if [*ty.params] != [_I32] * params or [*ty.results] != [_I32] * results:
            want = f"({', '.join(['i32'] * params)}) -> ({', '.join(['i32'] * results)})"
            raise GuestFault(TRAP, f"export {name!r} has type {ty}, the ABI needs {want}")
        self._store, self._context, self._func = store, store._context(), func._func
        self._n, self._m = params, results
        self._params = (ffi.wasmtime_val_t * max(params, 1))()
        self._results = (ffi.wasmtime_val_t * max(results, 1))()
        for slot in self._params:
            slot.kind = ffi.WASMTIME_I32

    def __call__(self, *args: int) -> int:
        """The result (signed, as wasm i32 values are), or 0 for a function without one."""
        slots = self._params
        for i, value in enumerate(args):
            slots[i].of.i32 = value
        with enter_wasm(self._store) as trap:
            error = ffi.wasmtime_func_call(
                self._context,
                ctypes.byref(self._func),
                slots,
                self._n,
                self._results,
                self._m,
                trap,
            )
            if error:
                raise wasmtime.WasmtimeError._from_ptr(error)
        return int(self._results[0].of.i32) if self._m else 0
