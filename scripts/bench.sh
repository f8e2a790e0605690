#!/usr/bin/env bash
# Benchmark the load against dlt, sling, a raw COPY floor and GoAccess (see BENCHMARKS.md).
#   scripts/bench.sh [--scale 1] [--repeats 3] [--lines 1000000] [--skip dlt_default ...]
#   scripts/bench.sh --help
# Sets up .venv (populate and the harness), .venv-pipeline (requirements.txt only: the pipeline as
# users install it, without the test tools) and .venv-bench (requirements-bench.txt: dlt, sling),
# installs GoAccess from Debian when missing, starts MariaDB/PostgreSQL, then runs python -m bench.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
scripts/venv.sh requirements.txt .venv-pipeline
scripts/services.sh
if [ ! -x .venv-bench/bin/python ]; then
    "$(command -v python3.11 || command -v python3)" -m venv .venv-bench
fi
stamp=".venv-bench/.installed-$(sha256sum requirements-bench.txt | cut -c1-16)"
if [ ! -e "$stamp" ]; then
    .venv-bench/bin/python -m pip install -q --disable-pip-version-check -r requirements-bench.txt 2>&1 \
        | { grep -v "^WARNING: Location" || true; }
    touch "$stamp"
fi
if ! command -v goaccess >/dev/null; then
    (apt-get install -y -q goaccess || (apt-get update -q && apt-get install -y -q goaccess)) >/dev/null
fi
exec .venv/bin/python -m bench "$@"
