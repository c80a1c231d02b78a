#!/bin/sh
# Builds greet.wasm from greet.rs with a bare rustc: no Cargo, no crates.
# The committed greet.wasm was built with Debian 12's rustc 1.63.0:
#   apt-get install -y rustc libstd-rust-dev-wasm32 && RUSTC=/usr/bin/rustc ./build.sh
# With rustup instead: `rustup target add wasm32-unknown-unknown`, then ./build.sh.
#   --crate-type cdylib       a library module: every #[export_name] function is exported,
#                             with the memory; no _start
#   -C lto -C strip=symbols   27 KB instead of 5 MB (the standard library's symbols and debug info)
set -eu
cd "$(dirname "$0")"
RUSTC="${RUSTC:-rustc}"
"$RUSTC" --target wasm32-unknown-unknown --edition 2021 --crate-type cdylib -O -C lto -C strip=symbols \
    -o greet.wasm greet.rs
echo "built $(pwd)/greet.wasm ($(wc -c < greet.wasm) bytes)"
