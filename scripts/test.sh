#!/usr/bin/env bash
# Run the test suite: venv with test dependencies, local services up, then pytest.
#   scripts/test.sh [pytest arguments]      e.g. scripts/test.sh tests/unit (no services needed)
#   scripts/test.sh --help
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/test.sh [PYTEST ARGUMENTS ...] | --help
Runs the test suite (.venv/bin/python -m pytest PYTEST ARGUMENTS) after setting up what it needs:
  - .venv with requirements-dev.txt and this project (scripts/venv.sh);
  - unless every path given is under tests/unit: MariaDB and PostgreSQL installed and started
    (scripts/services.sh), and Debian's chromium for the dashboard test when missing (installed when
    run as root; otherwise, or when that fails, the dashboard test is skipped).
Each set-up step prints one line; pip's and apt-get's whole output goes to var/log/setup.log (mode 0600).
The exit code is pytest's (1 when set-up fails).

examples:
  scripts/test.sh                  the whole suite (what CI runs, through .ci/run)
  scripts/test.sh tests/unit       the unit tests only: no database, service or browser is set up
  scripts/test.sh -k roundtrip     the tests whose names match (pytest's -k)
pytest's own options: .venv/bin/python -m pytest --help (once set up)

environment:
  DW_ETL_SETUP_LOG  the set-up log file (default var/log/setup.log in the repository)
  MYSQL_PASSWORD    root's MariaDB password, for the check that it is up (default: none)
  DW_ETL_TEST_PROCESSES  test processes for a run that needs the services (default 2, pytest-xdist's -n)
--help, -h: this text; nothing is installed, started or created.
EOF
}

for arg in "$@"; do
    case "$arg" in -h|--help) usage; exit 0 ;; esac
done

cd "$(dirname "$0")/.."
step_prefix=test
. scripts/lib/steps.sh
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
        step "updating the package lists (apt-get update)" apt-get update \
            && step "installing chromium (apt-get)" env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
            || echo "test: could not install chromium; the dashboard test will be skipped" >&2
    else
        echo "test: chromium missing and not root; the dashboard test will be skipped" >&2
    fi
fi
# two test processes (pytest-xdist): the integration tests mostly wait on subprocesses and the databases;
# DW_ETL_TEST_PROCESSES=1 runs them in one, and an -n/--numprocesses given here wins
workers=(-n "${DW_ETL_TEST_PROCESSES:-2}")
for arg in "$@"; do
    case "$arg" in -n|-n*|--numprocesses|--numprocesses=*) workers=() ;; esac
done
exec .venv/bin/python -m pytest "${workers[@]}" "$@"
