"""Amazon Redshift dialect: DDL, ``COPY ... FROM 's3://...'`` and the store upsert.

Generated from the same metadata as the PostgreSQL statements (``etl.sqlgen``), adjusted
for what Redshift lacks or does differently (AWS Redshift Database Developer Guide:
"Data types", "COPY", "UPDATE", "CREATE TABLE"):

* types: ``VARCHAR(n)`` counts bytes, not characters, so n is multiplied by 4 (UTF-8,
  at most 65535); ``TEXT`` becomes ``VARCHAR(65535)``; timestamps have no precision
  modifier; ``interval`` is not a column type (staged as ``VARCHAR(32)``);
* no indexes and no enforced unique constraints: ``DISTKEY``/``SORTKEY`` instead (the
  first key column and the key by default), ``IDENTITY(1, 1)`` instead of
  ``GENERATED ... AS IDENTITY``;
* no ``INSERT ... ON CONFLICT`` and no ``IS DISTINCT FROM``: the upsert is a deduplicated
  temp batch, an ``UPDATE ... FROM`` of changed rows (null-safe comparison spelled out),
  then an ``INSERT`` of new keys, in one transaction;
* loads read the gzip CSV staging objects with ``COPY ... IAM_ROLE ... CSV GZIP
  IGNOREHEADER 1 EMPTYASNULL``: an unquoted empty field is NULL, a quoted ``""`` stays an
  empty string, as in the PostgreSQL load.

These statements are checked as text by unit tests; no Redshift cluster is reachable
from the test machines.
"""

from __future__ import annotations

import re

from psycopg2 import sql

from etl.errors import ConfigError
from etl.metadata import TableMeta

MAX_VARCHAR = 65535
_SAME = {"smallint", "integer", "bigint", "real", "double precision", "boolean", "date"}


def redshift_type(table: str, column: str, pg_type: str) -> str:
    """Map a warehouse type of ``etl.sqlgen.pg_type`` to Redshift; raises ConfigError when impossible."""
    if pg_type in _SAME:
        return pg_type.upper()
    if pg_type == "text":
        return f"VARCHAR({MAX_VARCHAR})"
    match = re.fullmatch(r"varchar\((\d+)\)", pg_type)
    if match:
        return f"VARCHAR({min(int(match.group(1)) * 4, MAX_VARCHAR)})"
    match = re.fullmatch(r"numeric\((\d+),(\d+)\)", pg_type)
    if match:
        if int(match.group(1)) > 38:
            raise ConfigError(f"table {table!r}, column {column!r}: {pg_type} exceeds Redshift's NUMERIC(38)")
        return pg_type.upper()
    if pg_type.startswith("timestamptz"):
        return "TIMESTAMPTZ"
    if pg_type.startswith("timestamp"):
        return "TIMESTAMP"
    if pg_type == "interval":
        return "VARCHAR(32)"
    raise ConfigError(f"table {table!r}, column {column!r}: type {pg_type!r} has no Redshift mapping")


def _qualified(name) -> sql.Composable:
    return sql.SQL("{}.{}").format(sql.Identifier(name.schema), sql.Identifier(name.table))


def _idents(names) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def landing_ddl(meta: TableMeta, types: dict[str, str]) -> list[sql.Composable]:
    """Landing schema and table (sorted by execution sequence, distributed evenly)."""
    cols = [sql.SQL("execution_sequence INTEGER NOT NULL")]
    cols += [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(redshift_type(meta.name, c, types[c]))) for c in meta.columns]
    cols.append(sql.SQL("landing_row_id BIGINT IDENTITY(1, 1)"))
    cols.append(sql.SQL("etl_loaded_datetime TIMESTAMP DEFAULT GETDATE()"))
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(meta.landing_table.schema)),
        sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}) DISTSTYLE EVEN SORTKEY (execution_sequence)").format(
            _qualified(meta.landing_table), sql.SQL(", ").join(cols)
        ),
    ]


def store_ddl(meta: TableMeta, types: dict[str, str], distkey: str | None = None, sortkey: tuple[str, ...] = ()) -> list[sql.Composable]:
    """Store schema and table: informational primary key, DISTKEY (default: first key column), SORTKEY (default: the key)."""
    cols = []
    for c in meta.columns:
        not_null = sql.SQL(" NOT NULL") if c in meta.unique_columns else sql.SQL("")
        cols.append(sql.SQL("{} {}{}").format(sql.Identifier(c), sql.SQL(redshift_type(meta.name, c, types[c])), not_null))
    cols.append(sql.SQL("etl_created_datetime TIMESTAMP NOT NULL"))
    cols.append(sql.SQL("etl_updated_datetime TIMESTAMP NOT NULL"))
    cols.append(sql.SQL("PRIMARY KEY ({})").format(_idents(meta.unique_columns)))
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(meta.store_table.schema)),
        sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}) DISTKEY ({}) SORTKEY ({})").format(
            _qualified(meta.store_table),
            sql.SQL(", ").join(cols),
            sql.Identifier(distkey or meta.unique_columns[0]),
            _idents(sortkey or meta.unique_columns),
        ),
    ]


def copy_sql(meta: TableMeta) -> sql.Composable:
    """COPY of one staging object into landing; params: (s3 uri, IAM role ARN)."""
    return sql.SQL(
        "COPY {} ({}) FROM %s IAM_ROLE %s FORMAT AS CSV GZIP IGNOREHEADER 1 EMPTYASNULL "
        "TIMEFORMAT 'auto' DATEFORMAT 'auto' COMPUPDATE OFF STATUPDATE OFF"
    ).format(_qualified(meta.landing_table), _idents(("execution_sequence",) + meta.columns))


BATCH_TABLE = "etl_batch"


def upsert_statements(meta: TableMeta) -> list[sql.Composable]:
    """The store upsert as four statements for one transaction (param of the first: execution_sequence).

    1. temp batch: the sequence's landing rows with non-NULL keys, newest version per key
       (ROW_NUMBER by watermark desc, then landing_row_id desc);
    2. ``UPDATE`` store rows whose values differ (null-safe), never with an older watermark
       - its row count is the number updated;
    3. ``INSERT`` keys not yet in store - its row count is the number inserted;
    4. drop the batch.
    """
    store = _qualified(meta.store_table)
    batch = sql.Identifier(BATCH_TABLE)
    keys = meta.unique_columns
    order = [sql.SQL("{} DESC NULLS LAST").format(sql.Identifier(meta.watermark_column))] if meta.watermark_column else []
    order.append(sql.SQL("landing_row_id DESC"))
    not_null = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in keys)
    create = sql.SQL(
        "CREATE TEMP TABLE {batch} AS SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY {keys} "
        "ORDER BY {order}) AS etl_rn FROM {landing} WHERE execution_sequence = %s AND {not_null}) AS ranked "
        "WHERE etl_rn = 1"
    ).format(batch=batch, cols=_idents(meta.columns), keys=_idents(keys), order=sql.SQL(", ").join(order),
             landing=_qualified(meta.landing_table), not_null=not_null)

    def target(c):
        return sql.SQL("{}.{}").format(store, sql.Identifier(c))

    def source(c):
        return sql.SQL("b.{}").format(sql.Identifier(c))

    match = sql.SQL(" AND ").join(sql.SQL("{} = {}").format(target(c), source(c)) for c in keys)
    statements = [create]
    values = meta.value_columns
    if values:
        differs = sql.SQL(" OR ").join(
            sql.SQL("NOT ({t} = {s} OR ({t} IS NULL AND {s} IS NULL))").format(t=target(c), s=source(c)) for c in values
        )
        condition = sql.SQL("{} AND ({})").format(match, differs)
        if meta.watermark_column:
            wm = meta.watermark_column
            condition = sql.SQL("{} AND ({t} IS NULL OR {s} IS NULL OR {s} >= {t})").format(
                condition, t=target(wm), s=source(wm)
            )
        assignments = [sql.SQL("{} = {}").format(sql.Identifier(c), source(c)) for c in values]
        assignments.append(sql.SQL("etl_updated_datetime = GETDATE()"))
        statements.append(sql.SQL("UPDATE {} SET {} FROM {} AS b WHERE {}").format(
            store, sql.SQL(", ").join(assignments), batch, condition))
    new_match = sql.SQL(" AND ").join(sql.SQL("s.{0} = b.{0}").format(sql.Identifier(c)) for c in keys)
    statements.append(sql.SQL(
        "INSERT INTO {store} ({cols}, etl_created_datetime, etl_updated_datetime) "
        "SELECT {bcols}, GETDATE(), GETDATE() FROM {batch} AS b LEFT JOIN {store} AS s ON {match} WHERE s.{first} IS NULL"
    ).format(store=store, cols=_idents(meta.columns), bcols=sql.SQL(", ").join(source(c) for c in meta.columns),
             batch=batch, match=new_match, first=sql.Identifier(keys[0])))
    statements.append(sql.SQL("DROP TABLE {}").format(batch))
    return statements
