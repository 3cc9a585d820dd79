#!/usr/bin/env bash
# CPU cost of a proxy-wasm filter, measured so that it can decide issue 19's targets
# (gw-wasm-noop <= gw-bare + 3 µs CPU per request at c=50, gw-wasm-headers <= + 6 µs).
#
#   bench/wasm_cost.sh            full run: 40 rounds x 3 gateways x 2 s (about 6 minutes)
#   bench/wasm_cost.sh --quick    smoke run: 6 rounds x 1 s (about 40 s)
#   python3 bench/paired.py bench/results/wasm-cost-<time>/windows.tsv   re-analyse a run
#
# Starts one nginx upstream and three long-lived gateways from the same binary (1 worker,
# LOG_LEVEL=error): bench/gateway-bare.yaml, gateway-wasm-noop.yaml and
# gateway-wasm-headers.yaml, each on its own free ports and run dir. Checks that each
# answers 200 "ok" and that only the headers one adds `x-wasm-response: 1`, warms each up,
# then runs ROUNDS rounds; a round visits the three gateways in a random order (seed
# printed), each for one window of `wrk -t1 -c CONNS -d WINDOW`, pinned like bench/run.sh
# (wrk on CPU 0, gateways and upstream on CPU 1). A window's CPU is the sum over the
# gateway's threads of /proc/PID/task/TID/schedstat's first field (ns on CPU) just before
# and after wrk; utime/stime ticks of /proc/PID/stat give the user/system split. The
# windows of one round share the machine's state, so bench/paired.py takes the per-round
# differences (noop - bare, headers - bare), their median and a bootstrap 95% CI, and
# gives a verdict per target: met (CI upper bound <= target), not met (CI lower bound >
# target) or undecided.
#
# Output: bench/results/wasm-cost-<time>/: windows.tsv (one row per window, with the CPU
# other processes used meanwhile: other_pct, % of one CPU), meta.tsv,
# report.md (bench/paired.py's tables), wrk/ (each window's wrk output), logs/.
# A window with failed requests (non-2xx, socket errors) or none at all is reported, its
# round is left out of the statistics, and the run exits 1 after the report.
#
# Settings (environment; defaults in brackets, --quick in braces):
#   WASM_COST_ROUNDS   rounds                                   [40] {6}
#   WASM_COST_WINDOW   seconds of wrk per window (integer)      [2]  {1}
#   WASM_COST_CONNS    wrk connections                          [50]
#   WASM_COST_WARMUP   seconds of wrk warm-up per gateway       [3]  {1}
#   WASM_COST_PAUSE    seconds between windows                  [0.2]
#   WASM_COST_SEED     seed of the visiting order               [random, printed]
#   WASM_COST_PIN      0: no taskset pinning                    [1 if >= 2 CPUs]
#   GATEWAY_BIN        gateway binary          [target/release/api-gateway]
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
LIB="$BENCH_DIR/benchlib.py"
# shellcheck source=bench/harness.sh
. "$BENCH_DIR/harness.sh"

QUICK=0
while (($#)); do
    case $1 in
        --quick) QUICK=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
q() { if [[ $QUICK == 1 ]]; then echo "$2"; else echo "$1"; fi; }  # q FULL QUICK
ROUNDS=${WASM_COST_ROUNDS:-$(q 40 6)}
WINDOW=${WASM_COST_WINDOW:-$(q 2 1)}
CONNS=${WASM_COST_CONNS:-50}
WARMUP=${WASM_COST_WARMUP:-$(q 3 1)}
PAUSE=${WASM_COST_PAUSE:-0.2}
SEED=${WASM_COST_SEED:-$((RANDOM * 32768 + RANDOM))}
GATEWAY_BIN=${GATEWAY_BIN:-$ROOT/target/release/api-gateway}
PIN=${WASM_COST_PIN:-$([[ $(nproc) -ge 2 ]] && echo 1 || echo 0)}
[[ $WINDOW =~ ^[1-9][0-9]*$ ]] || { echo "WASM_COST_WINDOW must be a whole number of seconds" >&2; exit 2; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "WASM_COST_ROUNDS must be a positive integer" >&2; exit 2; }
[[ -x $GATEWAY_BIN ]] || { echo "gateway binary $GATEWAY_BIN not found (cargo build --release)" >&2; exit 1; }
for tool in nginx wrk curl taskset python3; do
    command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done
if [[ $PIN == 1 ]]; then
    PIN_LOAD=(taskset -c 0) PIN_PROXY=(taskset -c 1)
    PINNING="wrk on CPU 0, gateways and upstream nginx on CPU 1"
else
    PIN_LOAD=() PIN_PROXY=()
    PINNING="none"
fi

TARGETS=(gw-bare gw-wasm-noop gw-wasm-headers)
declare -A TEMPLATE=([gw-bare]=gateway-bare.yaml [gw-wasm-noop]=gateway-wasm-noop.yaml
                     [gw-wasm-headers]=gateway-wasm-headers.yaml)
declare -A GW_PORT GW_PID
OUT="$BENCH_DIR/results/wasm-cost-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"/{wrk,logs,tmp,conf}
log() { printf '[wasm_cost %s] %s\n' "$(date +%T)" "$*"; }
die() { printf '[wasm_cost] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# processes: everything started here is stopped on exit (TERM, then KILL)
# ---------------------------------------------------------------------------
PIDS=()      # TERM on exit (then KILL)
GW_PIDS=()   # INT on exit: pingora's fast shutdown (TERM waits for a grace period)
WRK_PID=""
alive() {  # a process that exists and is not a zombie
    local s
    s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
    [[ -n $s && $s != Z ]]
}
cleanup() {
    local rc=$? others=() gws=() p i any
    trap - EXIT INT TERM
    if [[ -n $WRK_PID ]]; then PIDS+=("$WRK_PID"); fi
    for p in "${GW_PIDS[@]}"; do if alive "$p"; then gws+=("$p"); fi; done
    for p in "${PIDS[@]}"; do
        alive "$p" || continue
        # shellcheck disable=SC2207  # pids, one per line (nginx: master and worker)
        others+=($(python3 "$LIB" tree "$p" 2>/dev/null || echo "$p"))
    done
    if ((${#gws[@]})); then kill -INT "${gws[@]}" 2>/dev/null || true; fi
    if ((${#others[@]})); then kill -TERM "${others[@]}" 2>/dev/null || true; fi
    for ((i = 0; i < 50; i++)); do
        any=0
        for p in "${gws[@]}" "${others[@]}"; do if alive "$p"; then any=1; fi; done
        ((any)) || break
        sleep 0.1
    done
    for p in "${gws[@]}" "${others[@]}"; do if alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi; done
    for p in "${PIDS[@]}" "${GW_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -f "$OUT/tmp/api-gateway"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# measurements
# ---------------------------------------------------------------------------
# cpu_ns PID: ns on CPU summed over the process's threads (schedstat field 1)
# (%.0f, not %d: mawk's %d stops at 2^31, 2.1 s)
cpu_ns() { cat "/proc/$1/task/"*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }
# ticks PID: "utime stime" of the process (all its threads), in clock ticks
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12, $13 }'; }
# busy: ticks the whole machine has been busy (user nice system irq softirq steal)
busy() { awk '/^cpu / { printf "%.0f", $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
# tree_ticks PID...: utime + stime summed over these processes
tree_ticks() {
    local p t=0 u s
    for p in "$@"; do
        read -r u s < <(ticks "$p" 2>/dev/null || echo 0 0)
        t=$((t + u + s))
    done
    echo "$t"
}
CHILDREN_MS=0
children_cpu() {  # CHILDREN_MS = CPU of this shell's reaped children (wrk), in ms
    times >"$OUT/tmp/times"   # line 2: the children's "user sys", as XmY.YYYs
    CHILDREN_MS=$(awk 'NR == 2 { s = 0
        for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); s += p[1] * 60 + p[2] }
        printf "%d", s * 1000 }' "$OUT/tmp/times")
}
CLK_TCK=$(getconf CLK_TCK)

WINDOWS="$OUT/windows.tsv"
FAILED_WINDOWS=0
window() {  # ROUND POS TARGET: one wrk window against TARGET, appended to windows.tsv
    local round=$1 pos=$2 t=$3 pid=${GW_PID[$3]} out c0 c1 u0 s0 u1 s1 w0 w1 parsed
    local b0 b1 n0 n1 k0 k1
    out="$OUT/wrk/r$(printf %03d "$round")-$pos-$t.txt"
    alive "$pid" || die "$t (pid $pid) has exited: see $OUT/logs/$t.out"
    w0=$EPOCHREALTIME; b0=$(busy); n0=$(tree_ticks "${UP_TREE[@]}")
    read -r u0 s0 < <(ticks "$pid"); c0=$(cpu_ns "$pid")
    children_cpu; k0=$CHILDREN_MS
    "${PIN_LOAD[@]}" wrk -t1 -c"$CONNS" -d"${WINDOW}s" "http://127.0.0.1:${GW_PORT[$t]}/" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || echo "wrk exited non-zero" >>"$out"
    WRK_PID=""
    children_cpu; k1=$CHILDREN_MS
    sleep 0.1  # the gateway closes the window's connections
    c1=$(cpu_ns "$pid"); read -r u1 s1 < <(ticks "$pid")
    n1=$(tree_ticks "${UP_TREE[@]}"); b1=$(busy); w1=$EPOCHREALTIME
    # what other processes used meanwhile, in % of one CPU: the machine's busy time less
    # this gateway's, the upstream's and wrk's
    local other
    other=$(awk -v b=$((b1 - b0)) -v g=$((u1 - u0 + s1 - s0)) -v n=$((n1 - n0)) \
        -v k=$((k1 - k0)) -v hz="$CLK_TCK" -v a="$w0" -v z="$w1" \
        'BEGIN { o = (b - g - n) / hz - k / 1000; if (o < 0) o = 0; printf "%.1f", o / (z - a) * 100 }')
    parsed=$(python3 "$LIB" wrk "$out")
    local requests non2xx sockerr wrk_s
    requests=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$parsed")
    wrk_s=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$parsed")
    non2xx=$(sed -n 's/.*non2xx=\([0-9]*\).*/\1/p' <<<"$parsed")
    sockerr=$(sed -n 's/.*socket_errors=\([0-9]*\).*/\1/p' <<<"$parsed")
    local errors=$((${non2xx:-0} + ${sockerr:-0}))
    # a window that served nothing (a stalled gateway or machine) fails too
    if [[ -z $requests || $requests == 0 ]]; then requests=0; errors=$((errors + 1)); fi
    if ((errors)); then
        FAILED_WINDOWS=$((FAILED_WINDOWS + 1))
        log "  WARNING: round $round $t: $requests requests, $non2xx non-2xx, $sockerr socket errors (${out#"$ROOT/"})"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$pos" "$t" "$requests" \
        "${wrk_s:-0}" "$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.3f", b - a }')" \
        $((c1 - c0)) $((u1 - u0)) $((s1 - s0)) "${non2xx:-0}" "${sockerr:-0}" "$errors" "$other" >>"$WINDOWS"
    LAST_US=$(awk -v c=$((c1 - c0)) -v r="$requests" 'BEGIN { if (r > 0) printf "%.2f", c / 1000 / r; else print "-" }')
    LAST_US+=" ($other%)"
}

# ---------------------------------------------------------------------------
# start: one upstream, three gateways from one binary
# ---------------------------------------------------------------------------
# The three processes run the same file even if a build replaces GATEWAY_BIN meanwhile.
ln -f "$GATEWAY_BIN" "$OUT/tmp/api-gateway" 2>/dev/null || cp "$GATEWAY_BIN" "$OUT/tmp/api-gateway"
BIN="$OUT/tmp/api-gateway"
# the binary may hold changes not committed yet: say so beside the commit
DIRTY=""
if [[ -n $(git -C "$ROOT" status --porcelain -- src plugins vendor Cargo.toml 2>/dev/null) ]]; then
    DIRTY=" (+ uncommitted changes in the tree)"
fi
{
    printf 'date\t%s\n' "$(date -u '+%F %T UTC')"
    printf 'gateway_bin\t%s\n' "$GATEWAY_BIN"
    printf 'gateway_built\t%s\n' "$(date -u -r "$GATEWAY_BIN" '+%F %T UTC')"
    printf 'gateway_sha256\t%s\n' "$(sha256sum "$BIN" | cut -c1-16)"
    printf 'commit\t%s%s\n' "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" "$DIRTY"
    printf 'rounds\t%s\n' "$ROUNDS"
    printf 'window_s\t%s\n' "$WINDOW"
    printf 'conns\t%s\n' "$CONNS"
    printf 'seed\t%s\n' "$SEED"
    printf 'pinning\t%s\n' "$PINNING"
    printf 'clk_tck\t%s\n' "$(getconf CLK_TCK)"
    printf 'nproc\t%s\n' "$(nproc)"
    printf 'loadavg_before\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/meta.tsv"

read -r -a PORTS <<<"$(python3 "$LIB" freeports 7)"
UP_PORT=${PORTS[0]}
mkdir -p "$OUT/upstream"/{logs,tmp,conf}
start_upstream "$OUT/upstream" "$UP_PORT" "${PIN_PROXY[@]}"
PIDS+=("$UPSTREAM_PID")
i=1
for t in "${TARGETS[@]}"; do
    dir="$OUT/$t"
    mkdir -p "$dir"/{logs,tmp,conf}
    render_bare_gateway "$dir" "$UP_PORT" "${TEMPLATE[$t]}"
    "$BIN" check --config "$dir/conf/routes.yaml" >"$OUT/logs/$t.check" 2>&1 \
        || die "$t: api-gateway check rejects its routes: $(head -n 5 "$OUT/logs/$t.check")"
    GW_PORT[$t]=${PORTS[$i]}
    env -u REDIS_URL -u KAFKA_BOOTSTRAP_SERVERS -u OTEL_EXPORTER_OTLP_ENDPOINT -u RUST_LOG \
        -u API_GENERATION_URL -u API_ENRICHMENT_URL \
        PORT="${GW_PORT[$t]}" METRICS_PORT="${PORTS[$((i + 1))]}" GATEWAY_WORKERS=1 \
        LOG_LEVEL=error BIND_ADDRESS=127.0.0.1 ROUTES_FILE="$dir/conf/routes.yaml" \
        "${PIN_PROXY[@]}" "$BIN" --config "$dir/conf/routes.yaml" >"$OUT/logs/$t.out" 2>&1 &
    GW_PID[$t]=$!
    GW_PIDS+=("${GW_PID[$t]}")
    i=$((i + 2))
done
wait_ok "$UP_PORT" 100 || die "upstream nginx does not answer 200 (see $OUT/upstream/logs/)"
mapfile -t UP_TREE < <(python3 "$LIB" tree "$UPSTREAM_PID")  # nginx: master and worker

# Each gateway must serve "ok" through the upstream, and only gw-wasm-headers may add the
# filter's response header (bench/wasm-headers.wat): a mixed-up run fails here.
check_target() {  # TARGET
    local t=$1 head body
    head=$(curl -si --max-time 2 "http://127.0.0.1:${GW_PORT[$t]}/" || true)
    body=$(tail -n1 <<<"$head" | tr -d '\r')
    if ! grep -q '^HTTP/[0-9.]* 200' <<<"$head" || [[ $body != ok ]]; then
        die "$t: GET / did not answer 200 \"ok\": $(head -n1 <<<"$head")"
    fi
    if grep -qi '^x-wasm-response: 1' <<<"$head"; then
        [[ $t == gw-wasm-headers ]] || die "$t answers with x-wasm-response: wrong route table?"
    else
        [[ $t != gw-wasm-headers ]] || die "$t: no x-wasm-response: 1 in its answer: is the filter active?"
    fi
}
for t in "${TARGETS[@]}"; do
    wait_ok "${GW_PORT[$t]}" 150 || { tail -n 15 "$OUT/logs/$t.out" >&2; die "$t does not answer 200 on / (log: $OUT/logs/$t.out)"; }
    check_target "$t"
    log "$t on 127.0.0.1:${GW_PORT[$t]} (pid ${GW_PID[$t]}, ${TEMPLATE[$t]})"
done
log "upstream nginx on 127.0.0.1:$UP_PORT; pinning: $PINNING; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------
# warm-up, then the rounds
# ---------------------------------------------------------------------------
log "warm-up: wrk -c$CONNS -d${WARMUP}s per gateway"
for t in "${TARGETS[@]}"; do
    "${PIN_LOAD[@]}" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:${GW_PORT[$t]}/" >"$OUT/wrk/warmup-$t.txt" 2>&1 || true
done

printf 'round\tpos\ttarget\trequests\twrk_s\twall_s\tcpu_ns\tuser_ticks\tsys_ticks\tnon2xx\tsocket_errors\terrors\tother_pct\n' >"$WINDOWS"
log "$ROUNDS rounds x ${#TARGETS[@]} gateways x ${WINDOW}s (wrk -t1 -c$CONNS), random order, seed $SEED"
# one line per round: the visiting order
mapfile -t ORDERS < <(python3 -c '
import random, sys
rng = random.Random(int(sys.argv[1]))
names = sys.argv[3:]
for _ in range(int(sys.argv[2])):
    rng.shuffle(names)
    print(" ".join(names))' "$SEED" "$ROUNDS" "${TARGETS[@]}")
for ((round = 1; round <= ROUNDS; round++)); do
    read -r -a order <<<"${ORDERS[$((round - 1))]}"
    line=""
    for ((pos = 1; pos <= ${#order[@]}; pos++)); do
        t=${order[$((pos - 1))]}
        window "$round" "$pos" "$t"
        line+=" $t=$LAST_US"
        sleep "$PAUSE"
    done
    log "round $round/$ROUNDS (µs CPU/request, others' CPU %):$line"
done
for t in "${TARGETS[@]}"; do check_target "$t"; done  # still the same filters at the end
printf 'loadavg_after\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/meta.tsv"

echo
python3 "$BENCH_DIR/paired.py" "$WINDOWS"
echo
log "report: ${OUT#"$ROOT/"}/report.md; raw windows: ${WINDOWS#"$ROOT/"}"
if ((FAILED_WINDOWS)); then
    log "WARNING: $FAILED_WINDOWS window(s) had failed requests: this run is flagged"
    exit 1
fi
