#!/usr/bin/env bash
# Runs every check and test: formatting, clippy (warnings are errors), and the whole
# workspace's tests, which start real gateway and backend processes on free loopback
# ports. Installs what is missing (cmake for pingora's zlib build, redis-server for the
# Redis job store test) from Debian's packages.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkg() { command -v "$1" >/dev/null 2>&1 || { echo "installing $2"; (apt-get install -y -qq "$2" || { apt-get update -qq && apt-get install -y -qq "$2"; }) >/dev/null; }; }
need_pkg cmake cmake
need_pkg redis-server redis-server

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
