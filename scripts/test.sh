#!/usr/bin/env bash
# Runs every check and test: formatting, clippy (warnings are errors), and the whole
# workspace's tests, which start real gateway and backend processes on free loopback
# ports. Installs what is missing (cmake for pingora's zlib build, redis-server for the
# Redis job store test, python3-venv and nodejs/npm for the SDK tests) from Debian's
# packages, and the SDKs' test dependencies (pip into target/sdk-venv, npm ci in sdk/js).
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkg() { command -v "$1" >/dev/null 2>&1 || { echo "installing $2"; (apt-get install -y -qq "$2" || { apt-get update -qq && apt-get install -y -qq "$2"; }) >/dev/null; }; }
need_pkg cmake cmake
need_pkg redis-server redis-server

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

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace --no-fail-fast -- --nocapture 2>&1 | tee target/test-output.log
status=${PIPESTATUS[0]}
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' target/test-output.log | awk '{p+=$4; f+=$6} END {print p+0, f+0}')
set -- $passed
echo "$1 passed, $2 failed"
exit "$status"
