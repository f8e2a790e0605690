#!/usr/bin/env bash
# One command for a fresh machine: set up, fill a small sample source if empty, run the job.
#   scripts/run_job.sh [extra luigi arguments, e.g. --workers 2]
# Steps: venv + dependencies; MariaDB/PostgreSQL installed/started; warehouse database
# created; sample source filled when empty; luigi RunJob --module luigi_dw_etl --local-scheduler.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
scripts/services.sh
.venv/bin/python -m etl.setup_db
.venv/bin/python -m populate orders --if-empty
.venv/bin/python -m populate weblog --if-missing --lines 20000 --malformed 0.5
exec .venv/bin/luigi RunJob --module luigi_dw_etl --local-scheduler "$@"
