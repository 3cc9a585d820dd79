#!/usr/bin/env bash
# Builds and starts the whole stack on loopback: api-generation (:8001),
# api-enrichment (:8002) and api-gateway (:8080 proxy, :8081 metrics/admin) with the
# default routes.yaml and embedded defaults (no Redis, no Kafka): both flows (the
# pipeline /api/v1/process and async jobs /api/v1/async-process) run inside the
# gateway. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cmake >/dev/null 2>&1 || { apt-get install -y -qq cmake || { apt-get update -qq && apt-get install -y -qq cmake; }; }
cargo build --release --bins --workspace
bin="${CARGO_TARGET_DIR:-target}/release"
pids=()
stop() { trap - INT TERM EXIT; kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; echo "stack stopped"; }
trap stop INT TERM EXIT
PORT=${GENERATION_PORT:-8001} "$bin/api-generation" & pids+=($!)
PORT=${ENRICHMENT_PORT:-8002} "$bin/api-enrichment" & pids+=($!)
export ADMIN_TOKEN=${ADMIN_TOKEN:-change-me}
"$bin/api-gateway" --config "${ROUTES_FILE:-routes.yaml}" & pids+=($!)
echo "stack up: gateway http://127.0.0.1:${PORT:-8080}  metrics http://127.0.0.1:${METRICS_PORT:-8081}/metrics  (Ctrl-C stops)"
wait -n "${pids[@]}"
