#!/usr/bin/env bash
# Start or stop the Luigi central scheduler on 127.0.0.1 with its state and logs in var/luigid/.
#   scripts/luigid.sh start [PORT]   (default 8082; web UI at http://127.0.0.1:PORT/)
#   scripts/luigid.sh stop
#   scripts/luigid.sh status
# Then run the job against it:  .venv/bin/luigi RunJob --module luigi_dw_etl --scheduler-url http://127.0.0.1:PORT/
set -euo pipefail
cd "$(dirname "$0")/.."
dir=var/luigid
pidfile=$dir/luigid.pid
port="${2:-${LUIGID_PORT:-8082}}"
mkdir -p "$dir"

running() { [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-}" in
start)
    if running; then echo "luigid already running (pid $(cat "$pidfile"))"; exit 0; fi
    scripts/venv.sh
    # --background exits 0 even when the daemon dies at start: poll the API until it answers
    .venv/bin/luigid --address 127.0.0.1 --port "$port" --background --pidfile "$pidfile" \
        --logdir "$dir" --state-path "$dir/state.pickle"
    for _ in $(seq 1 50); do
        if curl -fsS "http://127.0.0.1:$port/api/task_list" >/dev/null 2>&1; then
            echo "luigid running (pid $(cat "$pidfile")); web UI: http://127.0.0.1:$port/"
            exit 0
        fi
        sleep 0.2
    done
    echo "luigid did not answer on 127.0.0.1:$port; see $dir/luigi-server.log" >&2
    exit 1
    ;;
stop)
    if running; then kill -TERM "$(cat "$pidfile")"; rm -f "$pidfile"; echo "luigid stopped"; else echo "luigid not running"; fi
    ;;
status)
    if running; then echo "luigid running (pid $(cat "$pidfile"))"; else echo "luigid not running"; exit 3; fi
    ;;
*)
    echo "usage: $0 start [PORT] | stop | status" >&2; exit 2
    ;;
esac
