"""The run's context: settings, preflight, row estimates, the latest sequence, closing a run.

:class:`Context` bundles the resolved configuration every step takes as its first
argument; :func:`preflight` validates the table metadata against the source before any
task runs; :func:`estimated_rows` and :func:`warehouse_latest_sequence` give what the
task graph needs before it is built (priorities, the execution sequence);
:func:`close_run` records a finished run. Steps open their own connections: with
``--workers N`` every task runs in its own process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from etl import control, source_mysql, sqlgen, warehouse
from etl.dialects import dialect_of, for_flavor
from etl.config import EtlSettings, MySQLSettings, WarehouseSettings, etl_settings, mysql_settings, warehouse_settings
from etl.domain import TableMeta
from etl.metadata import check_against_source, load_metadata
from etl.staging import open_staging

log = logging.getLogger(__name__)

SOURCE = "mysql"  # the staging folder of the MySQL tables (the access logs stage under "weblog")


@dataclass(frozen=True)
class Context:
    """Everything a step needs from configuration."""

    source: MySQLSettings
    warehouse: WarehouseSettings
    etl: EtlSettings

    @property
    def staging(self):
        """The staging area configured by ``[staging] uri`` (LocalStaging or S3Staging)."""
        return open_staging(self.etl.staging_uri, self.etl.s3_endpoint_url)

    @property
    def dialect(self):
        """The warehouse's dialect (``etl.dialects``) by ``[warehouse] flavor``."""
        return for_flavor(self.warehouse.flavor)


def load_context() -> Context:
    """Resolve all configuration sections; raises ConfigError for a wrong value."""
    return Context(source=mysql_settings(), warehouse=warehouse_settings(), etl=etl_settings())


def preflight(ctx: Context) -> dict[str, TableMeta]:
    """Validate the table metadata against the source before any task runs.

    Returns ``{table: TableMeta}``. Raises ConfigError (bad metadata, unknown table or
    column, unsupported type) or SourceError (source unreachable, access denied).
    """
    dialect = ctx.dialect
    dialect.check_settings(ctx.etl.staging_uri, ctx.warehouse.iam_role, ctx.etl.detect_hard_deletes)
    tables = load_metadata(ctx.etl.extract_config_dir)
    ctx.staging.check()
    with source_mysql.connection(ctx.source) as conn:
        found = source_mysql.read_column_types(conn, ctx.source.database, list(tables))
    check_against_source(tables, found, ctx.source.database)
    for meta in tables.values():
        for col in meta.columns:
            # e.g. decimal(65,30) on Redshift: refused before any task
            dialect.column_type(meta.name, col, sqlgen.pg_type(meta.name, found[meta.name][col]))
        ignored = [c for c in found[meta.name] if c not in meta.columns]
        if ignored:
            log.info("table %s: source columns not in the metadata, not extracted: %s", meta.name, ", ".join(ignored))
    return tables


def estimated_rows(ctx: Context, tables: dict[str, TableMeta]) -> dict[str, int]:
    """InnoDB's estimate of each source table's row count (information_schema.TABLES.TABLE_ROWS).

    Returns ``{table: rows}`` (0 when unknown). Cheap (no scan): used to start the largest
    tables' chains first, which shortens a parallel run's critical path.
    """
    if not tables:
        return {}
    marks = ", ".join(["%s"] * len(tables))
    with source_mysql.connection(ctx.source) as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                    f"AND TABLE_NAME IN ({marks})", [ctx.source.database, *tables])
        found = {source_mysql.text_value(name): int(rows or 0) for name, rows in cur.fetchall()}
        cur.close()
    return {name: found.get(name, 0) for name in tables}


def warehouse_latest_sequence(ctx: Context) -> int:
    """Highest sequence recorded in etl_control.run (0 when the schema does not exist yet).

    Where the dialect has no lock to serialise concurrent CREATE ... IF NOT EXISTS
    (Redshift: no advisory locks), the control schema is created here, once, before any
    worker starts.
    """
    with warehouse.connection(ctx.warehouse) as conn:
        if dialect_of(conn).control_lock is None:
            control.ensure_schema(conn)
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'etl_control' AND table_name = 'run'"
            )
            if not cur.fetchone()[0]:
                return 0
        return control.latest_sequence(conn)


def close_run(ctx: Context, sequence: int) -> None:
    """Record in etl_control.run that every task of ``sequence`` completed (own connection; commits).

    Raises WarehouseError when the warehouse is unreachable.
    """
    with warehouse.connection(ctx.warehouse) as conn:
        control.close_run(conn, sequence)
        conn.commit()
