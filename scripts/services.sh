#!/usr/bin/env bash
# Make sure the local MariaDB/MySQL and PostgreSQL servers are installed and running.
# Installs them from Debian packages when missing (needs root), starts them when stopped,
# and waits until both accept connections on 127.0.0.1. Safe to run repeatedly. --help: usage.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/services.sh [--help]
Makes sure the local database servers the job and the tests use are installed and running:
  - MariaDB (or MySQL) on 127.0.0.1:3306 and PostgreSQL on 127.0.0.1:5432;
  - installs mariadb-server and postgresql from Debian packages when missing (apt-get; as root, else sudo);
  - starts them when stopped and waits up to 60 s for each to accept connections;
  - after a fresh MariaDB install lets root log in over TCP with an empty password, and creates the
    PostgreSQL role root (the default [warehouse] user) when it is missing.
Safe to run repeatedly: when both are up it changes nothing. Each install prints one line; apt-get's whole
output goes to var/log/setup.log (mode 0600). Exit code 0 when both servers are up, 1 otherwise.

environment:
  MYSQL_PASSWORD    root's MariaDB password, for the check that it is up (default: none)
  DW_ETL_SETUP_LOG  the set-up log file (default var/log/setup.log in the repository)
--help, -h: this text; nothing is installed, started or created.
EOF
}

case "${1:-}" in
-h|--help) usage; exit 0 ;;
"") ;;
*) usage >&2; exit 2 ;;
esac

step_prefix=services
. "$(dirname "$0")/lib/steps.sh"

log() { echo "services: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        step "updating the package lists (apt-get update)" as_root apt-get update || exit 1
        apt_updated=1
    fi
    step "installing $* (apt-get)" as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" || exit 1
}

mysql_up() { mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -u root ${MYSQL_PASSWORD:+-p"$MYSQL_PASSWORD"} status >/dev/null 2>&1; }
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1; }

wait_for() {  # name, check function
    for _ in $(seq 1 60); do "$2" && return 0; sleep 1; done
    log "$1 did not come up within 60 s"; return 1
}

# --- MariaDB / MySQL ---------------------------------------------------------------
if ! command -v mariadbd >/dev/null 2>&1 && ! command -v mysqld >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    apt_install mariadb-server mariadb-client
    fresh_mariadb=1
fi
if ! mysql_up; then
    log "starting MariaDB"
    install -d -o mysql -g mysql /run/mysqld 2>/dev/null || true
    as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql >/dev/null 2>&1 || true
    wait_for MariaDB mysql_up || {
        # a fresh package install: root only via the unix socket; allow TCP with an empty password
        if [ "${fresh_mariadb:-0}" = 1 ]; then
            as_root mariadb -e "ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD(''); FLUSH PRIVILEGES;" || true
        fi
        mysql_up || { log "MariaDB is not reachable on 127.0.0.1:3306 as root"; exit 1; }
    }
fi

# --- PostgreSQL ----------------------------------------------------------------------
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt_install postgresql postgresql-client
fi
if ! pg_up; then
    log "starting PostgreSQL"
    for version in $(ls /etc/postgresql); do
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    wait_for PostgreSQL pg_up
fi
# the pipeline connects as [warehouse] user (default root): create that role when missing
if ! psql -h 127.0.0.1 -U root -d postgres -Atqc "select 1" >/dev/null 2>&1; then
    log "creating PostgreSQL role root"
    as_root runuser -u postgres -- psql -qc "CREATE ROLE root SUPERUSER LOGIN" || true
fi
log "MariaDB and PostgreSQL are up"
