"""The guest sandbox: runs tenants' WebAssembly (jobicolet ABI or WASI commands) under limits
with wasmtime, and checks modules at deploy time. Plain Python: nothing here imports Ray."""

from jobico.wasm.inspect import ModuleInfo, check_module
from jobico.wasm.outcome import STATUSES, LogLine, Outcome
from jobico.wasm.sandbox import Sandbox

__all__ = [
    "STATUSES",
    "LogLine",
    "ModuleInfo",
    "Outcome",
    "Sandbox",
    "check_module",
]
