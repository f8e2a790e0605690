# Sourced by the set-up scripts (venv.sh, services.sh, test.sh, bench.sh): one line per set-up step on the
# terminal, the step's whole output (pip's, apt-get's) in a log file.
#
#   . scripts/lib/steps.sh
#   step_prefix=venv
#   step "installing requirements.txt into .venv" .venv/bin/python -m pip install -r requirements.txt
#
# prints, on stderr, "venv: installing requirements.txt into .venv ... done (12 s)". The command (a program or
# a shell function) runs with stdin from /dev/null and its stdout and stderr appended to the log, after a
# header line naming the time, the step and the command. When it fails the line ends "failed (3 s)" and is
# followed by the last 20 lines of its output and the log's path; step returns the command's exit status.
#
# The log is $DW_ETL_SETUP_LOG, by default var/log/setup.log in the repository; it and the folders created for
# it are private (0600, 0700): the output of installs can name local paths and hosts.

DW_ETL_SETUP_LOG="${DW_ETL_SETUP_LOG:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)/var/log/setup.log}"
step_prefix="${step_prefix:-setup}"

# Create the log (and its folders) when missing and make it owner-only; returns 1, saying why, when it cannot.
setup_log_open() {
    if ! (umask 077 && mkdir -p -- "$(dirname -- "$DW_ETL_SETUP_LOG")" && : >>"$DW_ETL_SETUP_LOG") 2>/dev/null; then
        echo "$step_prefix: cannot write the set-up log $DW_ETL_SETUP_LOG; make its folder writable or set" \
            "DW_ETL_SETUP_LOG to another file" >&2
        return 1
    fi
    chmod 600 -- "$DW_ETL_SETUP_LOG" 2>/dev/null || true
}

# step DESCRIPTION COMMAND [ARGUMENT ...]: run COMMAND as one set-up step (see the top of this file).
step() {
    local what=$1 started=$SECONDS status=0 lines
    shift
    setup_log_open || return 1
    lines=$(wc -l <"$DW_ETL_SETUP_LOG")
    printf '\n=== %s %s: %s\n$ %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$step_prefix" "$what" "$*" >>"$DW_ETL_SETUP_LOG"
    printf '%s: %s ... ' "$step_prefix" "$what" >&2
    "$@" </dev/null >>"$DW_ETL_SETUP_LOG" 2>&1 || status=$?
    if [ "$status" = 0 ]; then
        printf 'done (%d s)\n' "$((SECONDS - started))" >&2
        return 0
    fi
    printf 'failed (%d s, exit code %d); its last lines:\n' "$((SECONDS - started))" "$status" >&2
    tail -n +"$((lines + 4))" -- "$DW_ETL_SETUP_LOG" | tail -n 20 | sed 's/^/    /' >&2
    echo "$step_prefix: the whole output is in $DW_ETL_SETUP_LOG" >&2
    return "$status"
}
