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


def run_pres(settings: WarehouseSettings, sql_dir: str | Path, completed_dir: str | Path, sequence: int) -> list[dict]:
    """Run every pres file whose step marker is missing; returns one dict per file.

    Each dict: ``{"file", "seconds", "skipped"}``. Raises PresError naming the file and
    the database message; files before it stay committed with their markers.
    """
    results = []
    files = pres_files(sql_dir)
    with warehouse.connection(settings) as conn:
        for path in files:
            marker = step_marker(completed_dir, sequence, "pres", path.name)
            if marker.exists():
                results.append({"file": path.name, "seconds": 0.0, "skipped": True})
                continue
            started = time.monotonic()
            text = path.read_text(encoding="utf-8")
            statements = redshift.translate_file(path, text) if warehouse.is_redshift(conn) else [text]
            try:
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
