"""Warehouse DDL and schema drift: creating landing and store tables and following the source.

:func:`run_ddl` runs idempotent DDL under the DDL lock and alters an existing table to
the metadata and source types (new columns added, widened types altered, a narrowing
refused); :func:`ensure_landing_table` creates a landing table in this connection's
flavour, converting a PostgreSQL landing table of an earlier version to one partition
per execution sequence first; :func:`columns_missing_in_store` tells the extract which
metadata columns the store table still lacks.
"""

from __future__ import annotations

import logging

from etl import warehouse, warehouse_sql
from etl.dialects import dialect_of
from etl.errors import ConfigError
from etl.domain import TableMeta

log = logging.getLogger(__name__)


def columns_missing_in_store(conn, meta: TableMeta) -> list[str]:
    """Metadata columns the existing store table lacks, in metadata order ([] when the table
    does not exist yet): the extract reads the whole table once to fill them. Reads only."""
    with conn.cursor() as cur:
        cur.execute(warehouse_sql.existing_columns_sql(), [meta.store_table.schema, meta.store_table.table])
        existing = {row[0] for row in cur.fetchall()}
    return [c for c in meta.columns if existing and c not in existing]


def run_ddl(conn, statements, table=None, types: dict[str, str] | None = None, table_name: str = "",
            before=None, own_columns: dict[str, str] | None = None) -> None:
    """Run idempotent DDL under a lock (parallel workers create schemas too); ``before()``, when
    given, runs under the lock first (a layout migration). Commits; returns None.

    ``statements`` are run in order on ``conn`` (``etl.warehouse.execute_all``). With
    ``table`` (a QualifiedName) and ``types`` (column -> warehouse type), the existing table
    then follows schema drift in the same transaction: columns newly in the metadata are
    added, widened source types are altered; a narrowing or incompatible change rolls back
    and raises ConfigError naming table (``table_name``), column and both types (fix the
    source or migrate the warehouse table by hand). ``own_columns`` (column -> the dialect's DDL type)
    are the pipeline's own columns a table made by an earlier version may lack (store's
    tombstone and sequence columns): added when missing, never altered. On Redshift only new columns are added
    (its ALTER COLUMN changes VARCHAR lengths only): a value that no longer fits fails the
    COPY, which names the column. Driver errors (psycopg2.Error) propagate.
    """
    dialect = dialect_of(conn)
    with conn.cursor() as cur:
        cur.execute(dialect.ddl_lock)
        if before is not None:
            before()
        warehouse.execute_all(conn, statements)
        if table is not None and (types or own_columns):
            cur.execute(warehouse_sql.existing_columns_sql(), [table.schema, table.table])
            existing = dict(cur.fetchall())
            for column, wanted in (own_columns or {}).items():
                if column not in existing:
                    log.info("table %s: adding the pipeline's column %s (made by an earlier version)", table, column)
                    cur.execute(warehouse_sql.add_column_sql(table, column, wanted))
            for column, wanted in (types or {}).items():
                if column not in existing:
                    wanted = dialect.column_type(table_name, column, wanted)
                    log.warning("table %s: adding column %s %s (new in the metadata)", table, column, wanted)
                    cur.execute(warehouse_sql.add_column_sql(table, column, wanted))
                    continue
                if not dialect.alters_column_types:
                    continue
                change = warehouse_sql.type_change(existing[column], wanted)
                if change == "widen":
                    log.warning("table %s: column %s widened from %s to %s in the source; altering", table, column,
                                existing[column], wanted)
                    cur.execute(warehouse_sql.widen_column_sql(table, column, wanted))
                elif change == "incompatible":
                    conn.rollback()
                    raise ConfigError(
                        f"table {table_name!r}: column {column!r} is {existing[column]} in {table} but the source now "
                        f"gives {wanted}; narrowing or changing a type is not done automatically: fix the source column "
                        f"or alter {table} by hand"
                    )
    conn.commit()


def ensure_landing_table(conn, meta: TableMeta, pg_types: dict[str, str]) -> None:
    """Create the landing table (in the connection's dialect) or follow schema drift; commits.

    ``pg_types`` maps each metadata column to its PostgreSQL type (the extract marker's
    ``pg_types``). Raises what :func:`run_ddl` raises (ConfigError on an incompatible type
    change). On PostgreSQL a landing table of an earlier version (one table with a sequence index)
    is converted to the partitioned layout first, in the same transaction, keeping its rows
    (:func:`_partition_landing_table`).
    """
    dialect = dialect_of(conn)
    before = (lambda: _partition_landing_table(conn, meta, pg_types)) if dialect.partitions_landing else None
    run_ddl(conn, dialect.landing_ddl(meta, pg_types), meta.landing_table, pg_types, meta.name, before=before)


def _partition_landing_table(conn, meta: TableMeta, pg_types: dict[str, str]) -> None:
    """Convert an unpartitioned PostgreSQL landing table into one partition per execution
    sequence, copying its rows (landing ids kept), inside the caller's transaction; no-op
    when the table is absent or partitioned already."""
    table = meta.landing_table
    with conn.cursor() as cur:
        cur.execute(warehouse_sql.relkind_sql(), [table.schema, table.table])
        kind = cur.fetchone()
        if kind is None or kind[0] != "r":
            return
        old = warehouse_sql.suffixed_name(table, "_unpartitioned")
        cur.execute(warehouse_sql.existing_columns_sql(), [table.schema, table.table])
        kept = [c for c, _ in cur.fetchall() if c in ("execution_sequence", "landing_row_id", "etl_loaded_datetime", *meta.columns)]
        rename, copy, drop = warehouse_sql.landing_conversion_sql(meta, old, kept)
        cur.execute(rename)
        warehouse.execute_all(conn, warehouse_sql.landing_ddl(meta, pg_types))
        cur.execute(warehouse_sql.table_sql("SELECT DISTINCT execution_sequence FROM {}", old))
        for (sequence,) in cur.fetchall():
            cur.execute(warehouse_sql.landing_partition_sql(meta, sequence))
        cur.execute(copy)
        rows = cur.rowcount
        cur.execute(drop)
    log.warning("landing %s: converted to one partition per execution sequence (%d rows kept)", table, rows)
