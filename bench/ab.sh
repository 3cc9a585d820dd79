#!/usr/bin/env bash
# Interleaved A/B of two gateway builds: CPU per request and requests/s.
#
#   bench/ab.sh BIN_A BIN_B [PAIRS [SECONDS]]
#
# Each pair runs BIN_A then BIN_B, each freshly started (1 worker,
# bench/gateway-bare.yaml, LOG_LEVEL=error) in front of the bench's nginx upstream,
# pinned like bench/run.sh (wrk on CPU 0, gateway and upstream on CPU 1), with a
# 2 s warm-up and then SECONDS (5) of wrk -t1 -c AB_CONNS (50). Prints one line per
# run and the medians. Use it to time one change on a noisy machine: the pairs share
# whatever the machine does meanwhile. Raw output: bench/results/ab-<time>/.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
A=${1:?usage: bench/ab.sh BIN_A BIN_B [PAIRS [SECONDS]]}
B=${2:?usage: bench/ab.sh BIN_A BIN_B [PAIRS [SECONDS]]}
PAIRS=${3:-6}
SECS=${4:-5}
CONNS=${AB_CONNS:-50}
LIB="$BENCH_DIR/benchlib.py"
# shellcheck source=bench/harness.sh
. "$BENCH_DIR/harness.sh"
OUT="$BENCH_DIR/results/ab-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# one run: prints "<cpu µs/request> <req/s>"
run_one() {
    local bin=$1 dir=$2
    mkdir -p "$dir"/{logs,tmp,conf}
    local up gw m
    read -r up gw m < <(python3 "$LIB" freeports 3)
    start_upstream "$dir" "$up" taskset -c 1
    local np=$UPSTREAM_PID
    render_bare_gateway "$dir" "$up"
    PORT=$gw METRICS_PORT=$m GATEWAY_WORKERS=1 LOG_LEVEL=error BIND_ADDRESS=127.0.0.1 \
        taskset -c 1 "$bin" --config "$dir/conf/routes.yaml" >"$dir/logs/gateway.out" 2>&1 &
    local gp=$!
    PIDS+=("$np" "$gp")
    wait_ok "$gw" 100 || true
    taskset -c 0 wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$gw/" >/dev/null
    local t0 t1 reqs
    t0=$(awk '{print $14 + $15}' "/proc/$gp/stat")
    taskset -c 0 wrk -t1 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$gw/" >"$dir/wrk.txt"
    t1=$(awk '{print $14 + $15}' "/proc/$gp/stat")
    kill "$gp" "$np" 2>/dev/null || true
    wait "$gp" "$np" 2>/dev/null || true
    reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$dir/wrk.txt")
    python3 -c "import os; t=os.sysconf('SC_CLK_TCK'); print(f'{($t1-$t0)*1e6/t/$reqs:.2f} {$reqs/$SECS:.0f}')"
}

: >"$OUT/runs.txt"
for i in $(seq 1 "$PAIRS"); do
    for side in A B; do
        bin=$A; [[ $side == B ]] && bin=$B
        r=$(run_one "$bin" "$OUT/$side-$i")
        echo "$side $r" | tee -a "$OUT/runs.txt"
    done
done
python3 - "$OUT/runs.txt" "$A" "$B" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
for side, name in (("A", sys.argv[2]), ("B", sys.argv[3])):
    cpu = sorted(float(r[1]) for r in rows if r[0] == side)
    rps = [float(r[2]) for r in rows if r[0] == side]
    print(f"{side} {name}: CPU µs/request median {statistics.median(cpu):.2f} "
          f"(runs: {', '.join(f'{c:.2f}' for c in cpu)}), req/s median {statistics.median(rps):,.0f}")
EOF
