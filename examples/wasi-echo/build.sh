#!/bin/sh
# Builds echo.wasm from echo.c with Zig's C compiler from PyPI: `pip install ziglang`.
# The committed echo.wasm was built with ziglang 0.17.1, so deploying it needs no toolchain.
#   --target=wasm32-wasi      wasi-libc: stdio over WASI's fd_read/fd_write, main via _start
#                             (the default command model: a program, not a library)
#   -z stack-size=65536       64 KiB of stack instead of the default 16 MiB of initial memory
set -eu
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m ziglang cc --target=wasm32-wasi -O2 \
    -Wl,-z,stack-size=65536 -Wl,--strip-all \
    -o echo.wasm echo.c
echo "built $(pwd)/echo.wasm ($(wc -c < echo.wasm) bytes)"
