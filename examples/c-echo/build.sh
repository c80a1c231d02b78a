#!/bin/sh
# Builds echo.wasm from echo.c with Zig's C compiler from PyPI: `pip install ziglang`.
# The committed echo.wasm was built with ziglang 0.17.1, so deploying it needs no toolchain.
#   --target=wasm32-wasi      wasi-libc's malloc/free/memcpy; this module imports no WASI call
#   -mexec-model=reactor      a library module: no main; exports _initialize, which the host runs
#                             once per instance before init()
#   -z stack-size=65536       64 KiB of stack instead of the default 16 MiB of initial memory
#   exports come from the export_name attributes in echo.c (memory is exported by default)
set -eu
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m ziglang cc --target=wasm32-wasi -mexec-model=reactor -O2 \
    -Wl,-z,stack-size=65536 -Wl,--strip-all \
    -o echo.wasm echo.c
echo "built $(pwd)/echo.wasm ($(wc -c < echo.wasm) bytes)"
