#!/usr/bin/env bash
# Token streams through the gateway vs straight to api-generation, on the release
# binaries: CLIENTS (500) concurrent streams of TOKENS (200) tokens, each event
# DELAY_MS (5) apart at the source, so that every stream is open at once. Runs
# bench/stream.py three ways, ROUNDS (3) times interleaved:
#   direct   POST api-generation /generate                    (the baseline)
#   gateway  POST gateway /api/v1/generate (proxied, no plugins)
#   pipeline POST gateway /api/v1/process  (generation's events, then the enrichment)
# and prints, per run, time to first token p50/p99 (the gateway's share is gateway −
# direct), the gateway's CPU per streamed event and its RSS per open stream (a fresh
# gateway process for each gateway run, so that memory one run freed but kept does not
# hide the next one's), and the CPU the rest of the machine used meanwhile
# (other_cpu_pct). Every process listens on a free loopback port.
# Usage: cargo build --release --bins --workspace && bench/stream.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/${PROFILE:-release}"
CLIENTS=${CLIENTS:-500} TOKENS=${TOKENS:-200} DELAY_MS=${DELAY_MS:-5} ROUNDS=${ROUNDS:-3}
ulimit -n 65536 2>/dev/null || true
read -r P_GEN P_ENR <<<"$(python3 bench/benchlib.py freeports 2)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
PORT=$P_GEN LOG_LEVEL=warn GENERATION_TOKEN_DELAY_MS=$DELAY_MS MAX_CONCURRENT_REQUESTS=2000 MAX_QUEUE_SIZE=4000 \
  "$bin/api-generation" >/dev/null 2>&1 & gen=$!; pids+=($gen)
PORT=$P_ENR LOG_LEVEL=warn "$bin/api-enrichment" >/dev/null 2>&1 & enr=$!; pids+=($enr)

# a fresh gateway on free ports: sets gw (its pid) and P_GW
start_gw() {
  local p_met
  read -r P_GW p_met <<<"$(python3 bench/benchlib.py freeports 2)"
  PORT=$P_GW METRICS_PORT=$p_met ACCESS_LOG=off LOG_LEVEL=warn \
    API_GENERATION_URL=http://127.0.0.1:$P_GEN API_ENRICHMENT_URL=http://127.0.0.1:$P_ENR \
    "$bin/api-gateway" --config routes.yaml >/dev/null 2>&1 & gw=$!; pids+=($gw)
  for _ in $(seq 100); do curl -sf "localhost:$P_GW/ready" >/dev/null && break; sleep 0.2; done
  curl -sf "localhost:$P_GW/ready" >/dev/null || { echo "stream.sh: the gateway never became ready" >&2; exit 1; }
  sleep 1 # its pools' connections and buffers settle before RSS is read
}
stop_gw() { kill "$gw" 2>/dev/null || true; wait "$gw" 2>/dev/null || true; }

# --others: the stack's processes, so that each run reports the CPU the rest of the
# machine used meanwhile (other_cpu_pct, in % of one CPU)
run() { python3 bench/stream.py --clients "$CLIENTS" --tokens "$TOKENS" "$@"; }
echo "== $CLIENTS streams x $TOKENS tokens, ${DELAY_MS} ms apart, $ROUNDS rounds ($(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg))"
for round in $(seq "$ROUNDS"); do
  run --label "direct#$round" --url "http://127.0.0.1:$P_GEN/generate" --others "$gen,$enr"
  start_gw
  run --label "gateway#$round" --url "http://127.0.0.1:$P_GW/api/v1/generate" --pid "$gw" --others "$gen,$enr,$gw"
  stop_gw
  start_gw
  run --label "pipeline#$round" --url "http://127.0.0.1:$P_GW/api/v1/process" --pid "$gw" --others "$gen,$enr,$gw" \
    --expect $((TOKENS + 2))
  stop_gw
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
