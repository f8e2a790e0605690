#!/usr/bin/env bash
# Create a virtual environment (Python >= 3.11) with the pinned dependencies plus this project (editable).
# Usage: scripts/venv.sh [requirements file] [folder]   (defaults: requirements.txt, .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
req="${1:-requirements.txt}"
venv="${2:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
    py="$(command -v python3.11 || command -v python3)"
    if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "venv: Python >= 3.11 is required ($py is older)" >&2; exit 1
    fi
    "$py" -m venv "$venv" || { echo "venv: python3 -m venv failed; install python3-venv" >&2; exit 1; }
fi
stamp="$venv/.installed-$(cat "$req" requirements.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -e "$stamp" ]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e . 2>/dev/null
    touch "$stamp"
fi
