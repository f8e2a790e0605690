#!/usr/bin/env bash
# Run the test suite: venv with test dependencies, local services up, then pytest.
#   scripts/test.sh [pytest arguments]      e.g. scripts/test.sh tests/unit (no services needed)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh requirements-dev.txt
# only tests/unit asked for (paths under it, and options without values): no database, service or
# browser to set up; anything else (no path, another path, an option's value) sets them up
unit_paths=0 other=0
for arg in "$@"; do
    case "$arg" in
        tests/unit | tests/unit/* ) unit_paths=1 ;;
        -*) ;;
        *) other=1 ;;
    esac
done
if [ "$unit_paths" = 1 ] && [ "$other" = 0 ]; then
    exec .venv/bin/python -m pytest "$@"
fi
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
