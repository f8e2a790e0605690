#!/usr/bin/env bash
# Run the test suite: venv with test dependencies, local services up, then pytest.
#   scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh requirements-dev.txt
scripts/services.sh
exec .venv/bin/python -m pytest "$@"
