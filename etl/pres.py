"""Presentation layer: run ``sql/pres/*.sql`` in file-name order, one transaction per file.

Each finished file leaves ``<completed_dir>/<seq>/pres/<file name>`` (JSON: seconds), so a
resumed run skips the files already done and deleting one marker reruns that file.

The files are PostgreSQL SQL written in the subset Redshift shares; with ``[warehouse]
flavor = redshift`` each is translated first (:func:`etl.redshift.translate_file`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import psycopg2

from etl import redshift, warehouse
from etl.config import WarehouseSettings
from etl.errors import PresError, is_transient_postgres
from etl.markers import step_marker, write_json_atomic

log = logging.getLogger(__name__)


def pres_files(sql_dir: str | Path) -> list[Path]:
    """The ``*.sql`` files of ``<sql_dir>/pres`` sorted by file name."""
    return sorted((Path(sql_dir) / "pres").glob("*.sql"))


STALE_FRACTION = 0.1  # rows changed since the last ANALYZE, as a fraction of the table, that make its statistics stale
_STALE_TABLES_SQL = """SELECT quote_ident(schemaname) || '.' || quote_ident(relname) FROM pg_stat_user_tables
WHERE schemaname = ANY(%s) AND n_mod_since_analyze > 0
AND (coalesce(last_analyze, last_autoanalyze) IS NULL OR n_mod_since_analyze > %s * greatest(n_live_tup, 1))
ORDER BY 1"""


def refresh_statistics(conn, schemas: list[str]) -> list[str]:
    """ANALYZE the tables of ``schemas`` whose planner statistics are missing or stale (PostgreSQL).

    Stale: more than STALE_FRACTION of the rows changed since the last ANALYZE (autovacuum
    catches up only later; a pres query planned on an empty table's statistics picks
    nested loops over a million rows). Reads pg_stat_user_tables after flushing this
    session's own counters (PostgreSQL 15+; older servers see them once flushed, after at
    most a second); commits. Returns the tables analysed. Source of the rule:
    the PostgreSQL manual, "The Autovacuum Daemon" (analyze threshold + scale factor).
    """
    started = time.monotonic()
    with conn.cursor() as cur:
        if conn.server_version >= 150000:  # this session's own pres changes count too (PostgreSQL 15+)
            cur.execute("SELECT pg_stat_force_next_flush()")
            conn.commit()
        cur.execute(_STALE_TABLES_SQL, [list(schemas), STALE_FRACTION])
        tables = [row[0] for row in cur.fetchall()]
        for table in tables:
            cur.execute(f"ANALYZE {table}")  # names quoted by quote_ident above
    conn.commit()
    if tables:
        log.info("pres: refreshed planner statistics of %s in %.2f s", ", ".join(tables), time.monotonic() - started)
    return tables


def run_pres(settings: WarehouseSettings, sql_dir: str | Path, completed_dir: str | Path, sequence: int,
             schemas: list[str] = ("pres",)) -> list[dict]:
    """Run every pres file whose step marker is missing; returns one dict per file.

    Each dict: ``{"file", "seconds", "skipped"}``. On PostgreSQL, before each file, the
    stale statistics of the tables in ``schemas`` (the store schemas and pres) are
    refreshed (:func:`refresh_statistics`). Raises PresError naming the file and the
    database message; files before it stay committed with their markers.
    """
    results = []
    files = pres_files(sql_dir)
    with warehouse.connection(settings) as conn:
        rs = warehouse.is_redshift(conn)
        for path in files:
            marker = step_marker(completed_dir, sequence, "pres", path.name)
            if marker.exists():
                results.append({"file": path.name, "seconds": 0.0, "skipped": True})
                continue
            text = path.read_text(encoding="utf-8")
            statements = redshift.translate_file(path, text) if rs else [text]
            try:
                if not rs:
                    refresh_statistics(conn, schemas)
                started = time.monotonic()
                with conn.cursor() as cur:
                    for statement in statements:
                        cur.execute(statement)
                conn.commit()
            except psycopg2.Error as exc:
                conn.rollback()
                message = " ".join((exc.pgerror or str(exc)).split())
                raise PresError(f"pres file {path} failed: {message}", transient=is_transient_postgres(exc)) from None
            seconds = round(time.monotonic() - started, 3)
            write_json_atomic(marker, {"file": path.name, "execution_sequence": sequence, "seconds": seconds})
            log.info("pres %s done in %.2f s", path.name, seconds)
            results.append({"file": path.name, "seconds": seconds, "skipped": False})
    return results
