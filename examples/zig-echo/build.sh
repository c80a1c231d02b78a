#!/bin/sh
# Builds echo.wasm from echo.zig with Zig from PyPI: `pip install ziglang`.
# The committed echo.wasm was built with ziglang 0.17.1, so deploying it needs no toolchain.
#   build-exe -fno-entry      a module without main: the host calls its exports, there is no _start
#   -rdynamic                 export every `export fn` (and memory, which is exported by default)
#   -target wasm32-wasi       the allocator and std.json need no WASI call: imports only env.log
#   -O ReleaseSmall           52 KB, most of it std.json
#   --stack 65536             64 KiB of stack instead of Zig's default 1 MiB
set -eu
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m ziglang build-exe echo.zig -target wasm32-wasi -fno-entry -rdynamic \
    -O ReleaseSmall --stack 65536 -femit-bin=echo.wasm
rm -f echo.wasm.o
echo "built $(pwd)/echo.wasm ($(wc -c < echo.wasm) bytes)"
