#!/usr/bin/env bash
# Async jobs end to end through a real Kafka-protocol broker (tansu, in-memory storage):
# starts tansu, api-generation and api-enrichment (Kafka consumers) and the gateway
# (default routes.yaml, KAFKA_BOOTSTRAP_SERVERS set) on loopback ports, then runs
# bench/flows.py jobs (JOBS jobs from CONC connections): jobs/s submit -> done and the
# p50/p99 of each job's queued -> done time.
# Usage: cargo build --release --bins --workspace && bench/kafka.sh
#        PROFILE=debug bench/kafka.sh   (debug binaries: much slower, label the numbers)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:$HOME/.cargo/bin"
command -v tansu >/dev/null 2>&1 || { echo "tansu is not installed (cargo install tansu --version 0.6.0 --features dynostore)"; exit 1; }
bin="${CARGO_TARGET_DIR:-target}/${PROFILE:-release}"
JOBS=${JOBS:-5000} CONC=${CONC:-64}
logs=$(mktemp -d)   # each process's output, kept for a look after a failed run
echo "logs in $logs"
pids=()
trap 'kill -INT "${pids[@]}" 2>/dev/null; wait 2>/dev/null || true' EXIT   # SIGINT: fast shutdown
RUST_LOG=warn tansu broker --listener-url tcp://127.0.0.1:19092 --advertised-listener-url tcp://127.0.0.1:19092 \
  --storage-engine memory://tansu/ >"$logs/tansu.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/19092) 2>/dev/null && break; sleep 0.1; done
export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092
PORT=19001 LOG_LEVEL=warn "$bin/api-generation" >"$logs/generation.log" 2>&1 & pids+=($!)
PORT=19002 LOG_LEVEL=warn "$bin/api-enrichment" >"$logs/enrichment.log" 2>&1 & pids+=($!)
PORT=19080 METRICS_PORT=19081 ACCESS_LOG=off LOG_LEVEL=warn \
  API_GENERATION_URL=http://127.0.0.1:19001 API_ENRICHMENT_URL=http://127.0.0.1:19002 \
  "$bin/api-gateway" --config routes.yaml >"$logs/gateway.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -sf localhost:19080/ready >/dev/null && break; sleep 0.2; done
# a first job end to end: the consumer groups have joined and the topics exist
timeout 60 python3 bench/flows.py jobs --url http://127.0.0.1:19080 --jobs 8 --concurrency 2 >/dev/null \
  || { echo "the first jobs did not finish in 60 s: see $logs"; exit 1; }
echo "== async jobs, Kafka mode ($JOBS jobs, $CONC connections, ${PROFILE:-release} binaries)"
python3 bench/flows.py jobs --url http://127.0.0.1:19080 --jobs "$JOBS" --concurrency "$CONC"
