#!/usr/bin/env bash
# One command for a fresh machine: set up, fill a small sample source if empty, run the job.
#   scripts/run_job.sh [extra luigi arguments, e.g. --workers 2]
# Steps: venv + dependencies; MariaDB/PostgreSQL installed/started; warehouse database
# created; sample source filled when empty; luigi RunJob --module luigi_dw_etl --local-scheduler.
#   scripts/run_job.sh --help
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/run_job.sh [LUIGI ARGUMENTS ...] | --help
Sets up this machine and runs the job once:
  1. .venv with requirements.txt and this project (scripts/venv.sh);
  2. MariaDB and PostgreSQL installed when missing (apt-get, as root, else sudo) and started
     (scripts/services.sh);
  3. the warehouse database ([warehouse] database, default dw_dev) created when missing;
  4. a small sample source ([mysql] database, default b2b_source) filled when it has no orders, and a
     sample access log weblogs/access.log written when there is none;
  5. .venv/bin/luigi RunJob --module luigi_dw_etl --local-scheduler LUIGI ARGUMENTS.
Each set-up step prints one line; pip's and apt-get's whole output goes to var/log/setup.log (mode 0600).
The exit code is the job's ([retcode] in luigi.cfg: 0 done, 30 a task failed, 35 a scheduling error such
as a wrong setting, 10 another run holds the warehouse; see README.md), 1 when set-up fails.

luigi arguments, for example:
  --workers N                 run up to N tasks (tables) in parallel
  --SECTION-KEY VALUE         a luigi.cfg setting for this run only, e.g. --mysql-database other_db
  --dw-etl-allow-deletes T    let this run's store step of table T apply a mass delete
every pipeline setting, with its luigi.cfg section and key:
  .venv/bin/luigi RunJob --module luigi_dw_etl --help     (once set up)

environment:
  LUIGI_CONFIG_PATH  a configuration file read after luigi.cfg (its values win)
  MYSQL_PASSWORD     the source's password when [mysql] password is empty
  PGPASSWORD         the warehouse's password when [warehouse] password is empty
  IPINFO_TOKEN       the ipinfo.io token when [ipinfo] token is empty
  DW_ETL_DEBUG=1     tracebacks of failures on the terminal as well as in the run's log file
  DW_ETL_SETUP_LOG   the set-up log file (default var/log/setup.log in the repository)
--help, -h: this text; nothing is installed, started or created.
EOF
}

for arg in "$@"; do
    case "$arg" in -h|--help) usage; exit 0 ;; esac
done

cd "$(dirname "$0")/.."
scripts/venv.sh
scripts/services.sh
.venv/bin/python -m etl.setup_db
.venv/bin/python -m populate orders --if-empty
.venv/bin/python -m populate weblog --if-missing --lines 20000 --malformed 0.5
exec .venv/bin/luigi RunJob --module luigi_dw_etl --local-scheduler "$@"
