#!/usr/bin/env bash
# Instructions per request of the gateway, counted by callgrind: repeatable on a loaded
# machine (it counts instructions, not time), so it measures each optimisation step.
#
#   bench/callgrind.sh [GATEWAY_BIN [LABEL]]
#
# Runs the gateway (1 worker, bench/gateway-bare.yaml or CG_CONFIG, LOG_LEVEL=error) under
# valgrind --tool=callgrind in front of the bench's nginx upstream, sends
# CG_WARMUP_S seconds of wrk load uncounted, then CG_SECONDS counted, and prints
# Ir (instructions) per request (all threads, and the serving thread alone: the busiest
# one, without timers and samplers that count per second, not per request) and the top
# functions (inclusive and self) of the serving thread.
# Output: bench/results/callgrind-<label>-<time>/ (callgrind.out, annotate.txt).
# Settings: CG_CONNS [10], CG_SECONDS [10], CG_WARMUP_S [3], CG_CONFIG [gateway-bare.yaml]
# (a bench/ route table template: gateway-wasm-noop.yaml gives the cost of a wasm filter),
# CG_VALGRIND_ARGS (more valgrind options: `--cache-sim=yes` adds I1/D1/LL misses).
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BIN=${1:-$ROOT/target/release/api-gateway}
LABEL=${2:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo gw)}
CONNS=${CG_CONNS:-10}
SECONDS_COUNTED=${CG_SECONDS:-10}
WARMUP=${CG_WARMUP_S:-3}
LIB="$BENCH_DIR/benchlib.py"
# shellcheck source=bench/harness.sh
. "$BENCH_DIR/harness.sh"
DIR="$BENCH_DIR/results/callgrind-$LABEL-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$DIR"/{logs,tmp,conf}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
read -r UP_PORT GW_PORT M_PORT < <(python3 "$LIB" freeports 3)
start_upstream "$DIR" "$UP_PORT"
PIDS+=("$UPSTREAM_PID")
render_bare_gateway "$DIR" "$UP_PORT" "${CG_CONFIG:-gateway-bare.yaml}"
PORT=$GW_PORT METRICS_PORT=$M_PORT GATEWAY_WORKERS=1 LOG_LEVEL=error BIND_ADDRESS=127.0.0.1 \
    valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes ${CG_VALGRIND_ARGS:-} \
    --callgrind-out-file="$DIR/callgrind.out" \
    "$BIN" --config "$DIR/conf/routes.yaml" >"$DIR/logs/gateway.out" 2>"$DIR/logs/valgrind.err" &
GW_PID=$!; PIDS+=("$GW_PID")
wait_ok "$GW_PORT" || true
wrk -t1 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:$GW_PORT/" >/dev/null 2>&1 || true
callgrind_control -i on "$GW_PID" >/dev/null
wrk -t1 -c"$CONNS" -d"${SECONDS_COUNTED}s" "http://127.0.0.1:$GW_PORT/" >"$DIR/wrk.txt" 2>&1 || true
callgrind_control -i off "$GW_PID" >/dev/null
callgrind_control -d "$GW_PID" >/dev/null
sleep 1
kill "$GW_PID" 2>/dev/null || true
wait "$GW_PID" 2>/dev/null || true
REQS=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$DIR/wrk.txt")
# one dump file per thread (-d): the serving thread's is the largest
ir_of() { sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$1" | tail -n1; }
TOTAL=0 WORKER=0 OUT=
for f in "$DIR"/callgrind.out*; do
    n=$(ir_of "$f"); n=${n:-0}
    TOTAL=$((TOTAL + n))
    if ((n > WORKER)); then WORKER=$n OUT=$f; fi
done
callgrind_annotate --inclusive=yes "$OUT" 2>/dev/null | head -n 60 >"$DIR/annotate-inclusive.txt" || true
callgrind_annotate "$OUT" 2>/dev/null | head -n 60 >"$DIR/annotate.txt" || true
R=$((REQS > 0 ? REQS : 1))
echo "label=$LABEL config=${CG_CONFIG:-gateway-bare.yaml} requests=$REQS total_Ir=$TOTAL Ir_per_request=$((TOTAL / R)) serving_thread_Ir_per_request=$((WORKER / R))" | tee "$DIR/summary.txt"
echo "top functions of the serving thread (self): $DIR/annotate.txt; inclusive: $DIR/annotate-inclusive.txt"
