"""The i32 fast path into guest functions answers exactly as wasmtime-py's own calls do."""

from __future__ import annotations

import pytest
import wasmtime

from jobico.wasm.calls import I32Func
from jobico.wasm.faults import GuestFault

MODULE = """
(module
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "nothing") (param i32))
  (func (export "boom") (param i32) (result i32) unreachable)
  (func (export "wide") (param i64) (result i64) (local.get 0)))
"""


Exports = tuple[wasmtime.Store, dict[str, wasmtime.Func]]


@pytest.fixture
def exports() -> Exports:
    store = wasmtime.Store(wasmtime.Engine())
    instance = wasmtime.Instance(store, wasmtime.Module(store.engine, MODULE), [])
    funcs = {name: f for name, f in instance.exports(store).items()}
    return store, funcs  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("a", "b"), [(1, 2), (-7, 3), (0x7FFFFFFF, 1), (0xFFFFFFF0, 0x20), (3_000_000_000, 0)]
)
def test_results_match_wasmtime_pys_own_call_bit_for_bit(exports: Exports, a: int, b: int) -> None:
    store, funcs = exports
    fast = I32Func(store, funcs["add"], "add", params=2, results=1)
    assert fast(a, b) & 0xFFFFFFFF == funcs["add"](store, a & 0xFFFFFFFF, b) & 0xFFFFFFFF


def test_a_function_without_result_answers_zero(exports: Exports) -> None:
    store, funcs = exports
    assert I32Func(store, funcs["nothing"], "nothing", params=1, results=0)(5) == 0


def test_a_trap_in_the_guest_raises_wasmtimes_trap(exports: Exports) -> None:
    store, funcs = exports
    with pytest.raises(wasmtime.Trap, match="unreachable"):
        I32Func(store, funcs["boom"], "boom", params=1, results=1)(1)


@pytest.mark.parametrize(("name", "params", "results"), [("wide", 1, 1), ("add", 1, 1)])
def test_an_export_of_another_type_is_refused_naming_it(
    exports: Exports, name: str, params: int, results: int
) -> None:
    store, funcs = exports
    with pytest.raises(GuestFault, match=f"export '{name}' has type"):
        I32Func(store, funcs[name], name, params=params, results=results)
