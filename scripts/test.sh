#!/usr/bin/env bash
# Run the test suite: venv with test dependencies, local services up, then pytest.
#   scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh requirements-dev.txt
scripts/services.sh
# the dashboard test renders in Debian's headless Chromium: install it when missing
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
            || echo "test: could not install chromium; the dashboard test will be skipped" >&2
    else
        echo "test: chromium missing and not root; the dashboard test will be skipped" >&2
    fi
fi
exec .venv/bin/python -m pytest "$@"
