#!/usr/bin/env bash
# Builds the proxy-wasm filters written with the Rust SDK (rust/*/: the `proxy-wasm`
# crate from crates.io, its version pinned by each filter's Cargo.lock) for
# wasm32-wasip1, as Envoy's Rust filters are built. The target's standard library comes
# from rustup (`rustup target add wasm32-wasip1`, once). A filter is rebuilt only when a
# source of its is newer than its .wasm. build.sh runs this.
#
# Where rustup cannot fetch the target (no rustup, or no access to static.rust-lang.org),
# the build committed beside each filter (rust/<name>.wasm, made by this script with
# `--commit`, its rustc and SDK versions in rust/README.md) is used instead, and the
# script says so: the tests then run the same SDK-built module, only not rebuilt here.
#
#   plugins/wasm-examples/build-rust.sh            # -> target/wasm-filters/<name>.wasm
#   plugins/wasm-examples/build-rust.sh --commit   # and copy each build to rust/<name>.wasm
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$target" && target=$(cd "$target" && pwd)
out="$target/wasm-filters"
mkdir -p "$out"
commit=0
[ "${1:-}" = --commit ] && commit=1

have_target() {
  command -v rustup >/dev/null || return 1
  rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1 && return 0
  echo "adding the wasm32-wasip1 target (rustup)"
  timeout 300 rustup target add wasm32-wasip1
}

if ! have_target; then
  for dir in "$here"/rust/*/; do
    name=$(basename "$dir")
    [ -f "$dir/Cargo.toml" ] || continue
    if [ "$commit" = 1 ]; then
      echo "--commit needs the wasm32-wasip1 target" >&2
      exit 1
    fi
    echo "no wasm32-wasip1 target (rustup could not add it): $name.wasm is the committed build rust/$name.wasm"
    cp "$here/rust/$name.wasm" "$out/$name.wasm"
  done
  exit 0
fi

for dir in "$here"/rust/*/; do
  dir=${dir%/}
  name=$(basename "$dir")
  [ -f "$dir/Cargo.toml" ] || continue
  wasm="$out/$name.wasm"
  if [ "$commit" = 0 ] && [ -f "$wasm" ] && [ "$wasm" -nt "$here/rust/$name.wasm" ] \
    && [ -z "$(find "$dir" -newer "$wasm" -type f -print -quit)" ]; then
    continue
  fi
  echo "building $name.wasm ($(rustc --version), proxy-wasm $(sed -n '/^name = "proxy-wasm"/{n;s/version = "\(.*\)"/\1/p}' "$dir/Cargo.lock"))"
  # --locked: the SDK version of Cargo.lock; the paths of this machine left out of the module
  (cd "$dir" && CARGO_TARGET_DIR="$target/rust-wasm" cargo build --release --locked \
    --target wasm32-wasip1 --config "build.rustflags=['--remap-path-prefix=$dir=$name','--remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=cargo']") \
    >"$out/$name.log" 2>&1 || { cat "$out/$name.log"; exit 1; }
  cp "$target/rust-wasm/wasm32-wasip1/release/$name.wasm" "$wasm"
  if [ "$commit" = 1 ]; then
    cp "$wasm" "$here/rust/$name.wasm"
  fi
done
