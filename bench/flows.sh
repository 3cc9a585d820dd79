#!/usr/bin/env bash
# Measures the flows on the release binaries: starts api-generation, api-enrichment and
# the gateway (default routes.yaml, embedded async jobs) on loopback ports, then
#   - async jobs end to end: bench/flows.py (JOBS jobs from CONC connections)
#   - the synchronous pipeline: wrk, POST /api/v1/process, 50 connections, 10 s
# Usage: cargo build --release --bins --workspace && bench/flows.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null 2>&1 || { apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }; }
bin="${CARGO_TARGET_DIR:-target}/release"
JOBS=${JOBS:-5000} CONC=${CONC:-64}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
PORT=19001 LOG_LEVEL=warn "$bin/api-generation" >/dev/null 2>&1 & pids+=($!)
PORT=19002 LOG_LEVEL=warn "$bin/api-enrichment" >/dev/null 2>&1 & pids+=($!)
PORT=19080 METRICS_PORT=19081 ACCESS_LOG=off LOG_LEVEL=warn \
  API_GENERATION_URL=http://127.0.0.1:19001 API_ENRICHMENT_URL=http://127.0.0.1:19002 \
  "$bin/api-gateway" --config routes.yaml >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -sf localhost:19080/ready >/dev/null && break; sleep 0.2; done
echo "== async jobs, embedded mode ($JOBS jobs, $CONC connections)"
python3 bench/flows.py jobs --url http://127.0.0.1:19080 --jobs "$JOBS" --concurrency "$CONC"
echo "== synchronous pipeline (wrk, 50 connections, 10 s)"
lua=$(mktemp --suffix .lua)
cat >"$lua" <<'LUA'
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"prompt": "The fox and the", "max_tokens": 24}'
LUA
wrk -t2 -c50 -d10s --latency -s "$lua" http://127.0.0.1:19080/api/v1/process | grep -E "Requests/sec|Non-2xx|50%|99%|Latency"
rm -f "$lua"
