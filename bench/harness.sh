# Shared by bench/callgrind.sh and bench/ab.sh (sourced): the bench's nginx upstream and
# the gateway's bare route in a run directory. Needs BENCH_DIR and LIB set.

# start_upstream DIR PORT [PREFIX...]: renders the upstream's config into DIR and starts
# it (PREFIX, such as `taskset -c 1`, runs it); its pid is in UPSTREAM_PID.
start_upstream() {
    local dir=$1 port=$2
    shift 2
    python3 "$LIB" render "$BENCH_DIR/conf/upstream.nginx.conf" "$dir/conf/upstream.conf" \
        RUN_DIR="$dir" PORT="$port" WORKERS=1 WORKER_CONNECTIONS=1024
    "$@" nginx -p "$dir" -c "$dir/conf/upstream.conf" -e "$dir/logs/upstream.error.log" \
        >/dev/null 2>&1 &
    UPSTREAM_PID=$!
}

# render_bare_gateway DIR UPSTREAM_PORT [TEMPLATE]: DIR/conf/routes.yaml from
# bench/gateway-bare.yaml (or another bench/ template, e.g. gateway-wasm-noop.yaml).
render_bare_gateway() {
    python3 "$LIB" render "$BENCH_DIR/${3:-gateway-bare.yaml}" "$1/conf/routes.yaml" \
        UPSTREAM_ADDR="127.0.0.1:$2" RELOAD_ROUTE_NAME=reload-a BENCH_DIR="$BENCH_DIR"
}

# wait_ok PORT [TRIES]: until GET / on PORT answers 200, 0.2 s apart (default 600 tries).
wait_ok() {
    local i
    for ((i = 0; i < ${2:-600}; i++)); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/" || true) == 200 ]] && return 0
        sleep 0.2
    done
    return 1
}
