#!/usr/bin/env bash
# Token streams through the gateway vs straight to api-generation, on the release
# binaries: CLIENTS (500) concurrent streams of TOKENS (200) tokens, each event
# DELAY_MS (5) apart at the source, so that every stream is open at once. Runs
# bench/stream.py three ways:
#   direct   POST api-generation /generate                    (the baseline)
#   gateway  POST gateway /api/v1/generate (proxied, no plugins)
#   pipeline POST gateway /api/v1/process  (generation's events, then the enrichment)
# and prints time to first token p50/p99 (the gateway's share is gateway − direct),
# the gateway's CPU per streamed event and its RSS per open stream.
# Usage: cargo build --release --bins --workspace && bench/stream.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/${PROFILE:-release}"
CLIENTS=${CLIENTS:-500} TOKENS=${TOKENS:-200} DELAY_MS=${DELAY_MS:-5}
ulimit -n 65536 2>/dev/null || true
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
PORT=19101 LOG_LEVEL=warn GENERATION_TOKEN_DELAY_MS=$DELAY_MS MAX_CONCURRENT_REQUESTS=2000 MAX_QUEUE_SIZE=4000 \
  "$bin/api-generation" >/dev/null 2>&1 & pids+=($!)
PORT=19102 LOG_LEVEL=warn "$bin/api-enrichment" >/dev/null 2>&1 & pids+=($!)
PORT=19180 METRICS_PORT=19181 ACCESS_LOG=off LOG_LEVEL=warn \
  API_GENERATION_URL=http://127.0.0.1:19101 API_ENRICHMENT_URL=http://127.0.0.1:19102 \
  "$bin/api-gateway" --config routes.yaml >/dev/null 2>&1 & gw=$!; pids+=($gw)
for _ in $(seq 100); do curl -sf localhost:19180/ready >/dev/null && break; sleep 0.2; done
run() { python3 bench/stream.py --clients "$CLIENTS" --tokens "$TOKENS" "$@"; }
echo "== $CLIENTS streams x $TOKENS tokens, ${DELAY_MS} ms apart"
run --label direct --url http://127.0.0.1:19101/generate
run --label gateway --url http://127.0.0.1:19180/api/v1/generate --pid "$gw"
run --label pipeline --url http://127.0.0.1:19180/api/v1/process --pid "$gw" --expect $((TOKENS + 2))
run --label direct-again --url http://127.0.0.1:19101/generate
