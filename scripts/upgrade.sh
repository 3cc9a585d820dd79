#!/usr/bin/env bash
# Zero-downtime binary upgrade of a running gateway:
#   scripts/upgrade.sh OLD_PID [NEW_BINARY] [-- extra args for serve]
# Starts NEW_BINARY (default: target/release/api-gateway, else api-gateway on PATH)
# with `serve --upgrade` in the same environment (PORT, METRICS_PORT, ROUTES_FILE,
# UPGRADE_SOCK...), waits until it listens on the upgrade socket, sends SIGQUIT to
# OLD_PID (which hands over its listening sockets and drains), and waits for the old
# process to exit. The new process writes its log to this script's stdout (redirect it
# as you do for a normal start); its id goes to stderr and to $UPGRADE_PIDFILE if set.
set -euo pipefail
old=${1:?usage: upgrade.sh OLD_PID [NEW_BINARY] [-- serve args]}
shift
bin=${1:-}
[[ -n "$bin" && "$bin" != "--" ]] && shift || bin=""
[[ "${1:-}" == "--" ]] && shift
if [[ -z "$bin" ]]; then
  if [[ -x target/release/api-gateway ]]; then bin=target/release/api-gateway; else bin=$(command -v api-gateway); fi
fi
sock=${UPGRADE_SOCK:-/tmp/api-gateway-upgrade.sock}
kill -0 "$old" 2>/dev/null || { echo "upgrade.sh: no process $old" >&2; exit 1; }
rm -f "$sock"
"$bin" "$@" serve --upgrade &
new=$!
for _ in $(seq 1 200); do
  [[ -S "$sock" ]] && break
  kill -0 "$new" 2>/dev/null || { echo "upgrade.sh: the new process exited" >&2; exit 1; }
  sleep 0.05
done
[[ -S "$sock" ]] || { echo "upgrade.sh: no upgrade socket at $sock" >&2; kill "$new"; exit 1; }
kill -QUIT "$old"
echo "upgrade.sh: listeners handed to $new; waiting for $old to drain" >&2
while kill -0 "$old" 2>/dev/null; do sleep 0.2; done
echo "upgrade.sh: done; the gateway now runs as process $new" >&2
[[ -n "${UPGRADE_PIDFILE:-}" ]] && echo "$new" > "$UPGRADE_PIDFILE"
exit 0
