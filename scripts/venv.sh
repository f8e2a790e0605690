#!/usr/bin/env bash
# Create a virtual environment (Python >= 3.11) with the pinned dependencies plus this project (editable).
# Usage: scripts/venv.sh [requirements file] [folder]   (defaults: requirements.txt, .venv); --help
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/venv.sh [REQUIREMENTS [FOLDER]] | --help
Creates the virtual environment FOLDER (default .venv) with python3.11, else python3 (at least 3.11),
when it has none, and installs REQUIREMENTS (default requirements.txt) and this project (editable) into it
when the requirements, requirements.txt or pyproject.toml changed since its last install (a stamp file
FOLDER/.installed-<hash>; nothing to do: nothing printed), then byte-compiles the project's modules where a
source changed (python -m compileall). Paths are relative to the repository root.

Each step prints one line ("venv: installing requirements.txt into .venv ... done (41 s)"); pip's whole
output goes to var/log/setup.log (appended, mode 0600). A failed step prints the last lines of its output
and the log's path, and the script exits 1.

environment:
  DW_ETL_SETUP_LOG  the set-up log file (default var/log/setup.log in the repository)
  PIP_*             pip's own settings (PIP_INDEX_URL, PIP_PROXY, ...)
--help, -h: this text; nothing is created or installed.
EOF
}

for arg in "$@"; do
    case "$arg" in -h|--help) usage; exit 0 ;; esac
done
if [ $# -gt 2 ]; then usage >&2; exit 2; fi

cd "$(dirname "$0")/.."
step_prefix=venv
. scripts/lib/steps.sh
req="${1:-requirements.txt}"
venv="${2:-.venv}"
if [ ! -f "$req" ]; then
    echo "venv: no requirements file $req (a path relative to the repository root, e.g. requirements-dev.txt)" >&2
    exit 2
fi
if [ ! -x "$venv/bin/python" ]; then
    py="$(command -v python3.11 || command -v python3)" || { echo "venv: no python3 on PATH; install Python >= 3.11" >&2; exit 1; }
    if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "venv: Python >= 3.11 is required ($py is older)" >&2; exit 1
    fi
    step "creating virtual environment $venv ($py)" "$py" -m venv "$venv" \
        || { echo "venv: python3 -m venv failed; install python3-venv (Debian: apt-get install python3-venv)" >&2; exit 1; }
fi
stamp="$venv/.installed-$(cat "$req" requirements.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -e "$stamp" ]; then
    pip=("$venv/bin/python" -m pip install --disable-pip-version-check --no-input --progress-bar off)
    step "installing $req into $venv" "${pip[@]}" -r "$req" || exit 1
    step "installing this project into $venv (editable)" "${pip[@]}" --no-deps -e . || exit 1
    touch "$stamp"
fi
# the project's byte code, refreshed where a source changed (quiet, about 0.1 s): where the environment sets
# PYTHONDONTWRITEBYTECODE, Python would otherwise compile every module again at each start of the job
"$venv/bin/python" -m compileall -q -j 0 etl populate bench luigi_dw_etl.py >/dev/null || true
