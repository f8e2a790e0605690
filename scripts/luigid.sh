#!/usr/bin/env bash
# Start or stop the Luigi central scheduler on 127.0.0.1 with its state and logs in var/luigid/.
#   scripts/luigid.sh start [PORT]   (default 8082; web UI at http://127.0.0.1:PORT/)
#   scripts/luigid.sh stop
#   scripts/luigid.sh status
#   scripts/luigid.sh --help
# Then run the job against it:  .venv/bin/luigi RunJob --module luigi_dw_etl --scheduler-url http://127.0.0.1:PORT/
#
# luigid runs under umask 077 (var/luigid 0700; state.pickle, logs and pid file 0600). luigid unpickles its
# state file at start (whoever can write it runs code as you) and the pid file says what stop kills, so start
# refuses, and stop does not kill, when the folder, the state file or the pid file is writable by others or
# owned by another user; stop kills only a luigid process using this folder's state file.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/luigid.sh start [PORT] | stop | status | --help
  start [PORT]  start luigid on 127.0.0.1:PORT (default $LUIGID_PORT, else 8082), state and logs in var/luigid/;
                files private (umask 077); refuses a state file, pid file or folder others could have written
  stop          stop the luigid named by var/luigid/luigid.pid (only a luigid process using var/luigid/state.pickle)
  status        exit 0 when that luigid runs, 3 when not
  --help, -h    this text (nothing is started or created)
EOF
}

case "${1:-}" in
-h|--help) usage; exit 0 ;;
start|stop|status) ;;
*) usage >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
dir=var/luigid
pidfile=$dir/luigid.pid
state="$(pwd -P)/$dir/state.pickle"
port="${2:-${LUIGID_PORT:-8082}}"

# Whether PATH (when it exists) may have been written by someone else: owned by another user, or writable by
# group or others. Returns 0 when so, with the reason in $why and "owner" or "mode" in $kind; 1 when missing or ours.
untrusted() {
    local path=$1 mode uid owner
    [ -e "$path" ] || return 1
    read -r mode uid owner < <(stat -L -c '%a %u %U' -- "$path")
    if [ "$uid" != "$(id -u)" ]; then
        why="$path is owned by $owner (uid $uid), not by you ($(id -un), uid $(id -u))"; kind=owner
        return 0
    fi
    if (( 8#$mode & 8#022 )); then
        why=$(printf '%s is mode %04o (owner %s): others can write it' "$path" "$((8#$mode))" "$owner"); kind=mode
        return 0
    fi
    return 1
}

# Exit 1 naming the first of the folder, state file and pid file that is untrusted, why it matters and what to do.
refuse_untrusted() {
    local action=$1 path risk fix why kind
    for path in "$dir" "$dir/state.pickle" "$pidfile"; do
        untrusted "$path" || continue
        case "$path" in
        "$dir")
            risk="whoever can write it can replace the state file luigid unpickles at start (code execution) and the pid file stop kills"
            fix="rm -r $dir (or, if its files are as you left them, chmod go-w $dir)" ;;
        "$pidfile")
            risk="stop kills the pid it names"
            fix="rm $pidfile (stop any luigid you started yourself by its pid)" ;;
        *)
            risk="luigid unpickles it at start: whoever can write it runs code as you"
            fix="rm $path (luigid then starts with no task history; or, if you trust its contents, chmod go-w $path)" ;;
        esac
        if [ "$kind" = owner ]; then fix="${fix%% (*} (or run luigid.sh as its owner)"; fi
        echo "luigid.sh: refusing to $action: $why; $risk. Remove it: $fix" >&2
        exit 1
    done
}

# The pid of the luigid the pid file names: a live process whose command line is luigid with this folder's
# state file. Prints it and returns 0, else returns 1.
luigid_pid() {
    local pid args
    [ -s "$pidfile" ] || return 1
    pid=$(head -c 32 "$pidfile" | tr -dc 0-9)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    args=$(tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" || ps -p "$pid" -o args= 2>/dev/null) || return 1
    case "$args" in
    *luigid*"--state-path $state"*) echo "$pid" ;;
    *) return 1 ;;
    esac
}

case "$1" in
start)
    umask 077
    refuse_untrusted start
    if pid=$(luigid_pid); then echo "luigid already running (pid $pid)"; exit 0; fi
    scripts/venv.sh
    mkdir -p "$dir"
    chmod 700 "$dir"  # ours (checked above); an older version left it and its logs readable by others
    find "$dir" -maxdepth 1 -type f -user "$(id -u)" -exec chmod go-rwx {} +
    # in the foreground under this umask (luigid --background resets the umask to 0), detached from the terminal
    setsid .venv/bin/luigid --address 127.0.0.1 --port "$port" --logdir "$dir" --state-path "$state" \
        </dev/null >>"$dir/luigid.out" 2>&1 &
    pid=$!
    echo "$pid" >"$pidfile"
    for _ in $(seq 1 50); do
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        if curl -fsS "http://127.0.0.1:$port/api/task_list" >/dev/null 2>&1 && luigid_pid >/dev/null; then
            echo "luigid running (pid $pid); web UI: http://127.0.0.1:$port/"
            exit 0
        fi
        sleep 0.2
    done
    kill -TERM "$pid" 2>/dev/null || true
    rm -f "$pidfile"
    echo "luigid did not answer on 127.0.0.1:$port; see $dir/luigi-server.log and $dir/luigid.out" >&2
    exit 1
    ;;
stop)
    refuse_untrusted stop
    if pid=$(luigid_pid); then
        kill -TERM "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done  # it saves its state on the way out
        rm -f "$pidfile"
        echo "luigid stopped"
    elif [ -s "$pidfile" ]; then
        echo "luigid not running (pid file $pidfile named pid $(head -c 32 "$pidfile" | tr -dc 0-9), not a luigid of $dir; removed it)"
        rm -f "$pidfile"
    else
        echo "luigid not running"
    fi
    ;;
status)
    if pid=$(luigid_pid); then echo "luigid running (pid $pid)"; else echo "luigid not running"; exit 3; fi
    ;;
esac
