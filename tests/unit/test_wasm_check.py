"""check_module, the deploy-time check: valid WebAssembly with the exports its kind needs and
no imports beyond env.log and WASI; errors are plain FileInvalid messages."""

from __future__ import annotations

import pickle

import pytest

from jobico.errors import FileInvalid
from jobico.wasm import ModuleInfo, check_module
from tests.guests import wasm


def test_a_ver0_jobicolet_passes_with_its_exports_and_imports() -> None:
    info = check_module(wasm("echo"))
    assert info == ModuleInfo(
        ver=0, exports=("memory", "init", "malloc", "free", "event"), imports=("env.log",)
    )


def test_ver_is_read_from_the_module() -> None:
    assert check_module(wasm("echo_ver1")).ver == 1


def test_a_wasi_command_passes_as_kind_wasi() -> None:
    info = check_module(wasm("wasi_echo"), kind="wasi")
    assert "_start" in info.exports
    assert all(name.startswith("wasi_snapshot_preview1.") for name in info.imports)


def test_a_missing_export_is_named() -> None:
    with pytest.raises(FileInvalid, match=r"lacks required export.*malloc"):
        check_module(wasm("missing_malloc"))


def test_the_main_function_name_is_checked() -> None:
    with pytest.raises(FileInvalid, match="handle"):
        check_module(wasm("echo"), mainfunc="handle")


def test_a_jobicolet_is_not_a_wasi_command() -> None:
    with pytest.raises(FileInvalid, match="_start"):
        check_module(wasm("echo"), kind="wasi")


def test_an_import_the_host_does_not_provide_is_named() -> None:
    with pytest.raises(FileInvalid, match=r"env\.other"):
        check_module(wasm("import_other"))


def test_an_export_with_the_wrong_type_is_refused() -> None:
    with pytest.raises(FileInvalid, match=r"'malloc' has type \(i64\) -> \(i64\)"):
        check_module(wasm("bad_signature"))


@pytest.mark.parametrize("data", [b"", b"hello", b"\0asm\x01\0\0\0\x99"])
def test_bytes_that_are_not_webassembly_are_refused(data: bytes) -> None:
    with pytest.raises(FileInvalid, match="not a valid WebAssembly module") as caught:
        check_module(data)
    # Nothing from wasmtime rides along: the error pickles and carries no native cause.
    assert caught.value.__context__ is None and caught.value.__cause__ is None
    assert str(pickle.loads(pickle.dumps(caught.value))) == str(caught.value)
