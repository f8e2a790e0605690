#!/usr/bin/env bash
# Benchmark the load against dlt, sling, a raw COPY floor and GoAccess (see BENCHMARKS.md).
#   scripts/bench.sh [--scale 1] [--repeats 3] [--lines 1000000] [--skip dlt_default ...]
#   scripts/bench.sh --help   (the harness's usage, from python -m bench; nothing set up)
# Sets up .venv (populate and the harness), .venv-pipeline (requirements.txt only: the pipeline as
# users install it, without the test tools) and .venv-bench (requirements-bench.txt: dlt, sling),
# installs GoAccess from Debian when missing, starts MariaDB/PostgreSQL, then runs python -m bench.
set -euo pipefail
cd "$(dirname "$0")/.."
for arg in "$@"; do
    case "$arg" in
    -h|--help)
        # the harness's parser needs only the standard library: any Python >= 3.11 prints it
        py=.venv/bin/python
        [ -x "$py" ] || py="$(command -v python3.11 || command -v python3)"
        exec env PYTHONDONTWRITEBYTECODE=1 "$py" -m bench --help ;;
    esac
done
step_prefix=bench
. scripts/lib/steps.sh
scripts/venv.sh
scripts/venv.sh requirements.txt .venv-pipeline
scripts/services.sh
if [ ! -x .venv-bench/bin/python ]; then
    step "creating virtual environment .venv-bench" "$(command -v python3.11 || command -v python3)" -m venv .venv-bench \
        || exit 1
fi
stamp=".venv-bench/.installed-$(sha256sum requirements-bench.txt | cut -c1-16)"
if [ ! -e "$stamp" ]; then
    step "installing requirements-bench.txt into .venv-bench" .venv-bench/bin/python -m pip install \
        --disable-pip-version-check --no-input --progress-bar off -r requirements-bench.txt || exit 1
    touch "$stamp"
fi
install_goaccess() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y goaccess || { apt-get update && apt-get install -y goaccess; }
}
if ! command -v goaccess >/dev/null; then
    step "installing goaccess (apt-get)" install_goaccess || exit 1
fi
exec .venv/bin/python -m bench "$@"
