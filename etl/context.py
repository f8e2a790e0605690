"""The run's context: settings, preflight, row estimates, the latest sequence, closing a run.

:class:`Context` bundles the resolved configuration every step takes as its first
argument; :func:`preflight` validates the table metadata against the source before any
task runs, :func:`preflight_environment` the folders, the staging area and the warehouse
role's privileges; :func:`estimated_rows` and :func:`warehouse_latest_sequence` give what the
task graph needs before it is built (priorities, the execution sequence);
:func:`close_run` records a finished run. Steps open their own connections: with
``--workers N`` every task runs in its own process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from etl import control, folders, pres, privileges, source_mysql, sqlgen, warehouse
from etl.dialects import dialect_of, for_flavor
from etl.config import EtlSettings, MySQLSettings, WarehouseSettings, etl_settings, mysql_settings, warehouse_settings
from etl.domain import TableMeta
from etl.errors import ConfigError
from etl.metadata import heading, key_problems, load_metadata, position, source_problems
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
    """Validate the table metadata against the source before any task runs (so before any data moves).

    Beyond :func:`etl.metadata.load_metadata`'s checks: every table and column exists in the
    source; every column's type is supported by the warehouse's dialect; the source accepts
    each ``where_clause`` in the real extract query (EXPLAIN: an unknown column or function
    is named); ``unique_columns`` holds a primary or unique key of the source table, or, with
    ``unique_check: distinct_count``, no two rows (``where_clause`` applied, NULL keys left out)
    share it; no entry's ``store_table`` moved away from a table the pres files read. Returns
    ``{table: TableMeta}``. Raises ConfigError listing every problem found,
    each naming file, line, table and field, or SourceError (source unreachable, access
    denied, a transient fault).
    """
    dialect = ctx.dialect
    dialect.check_settings(ctx.etl.staging_uri, ctx.warehouse.iam_role, ctx.etl.detect_hard_deletes)
    tables = load_metadata(ctx.etl.extract_config_dir)
    database = ctx.source.database
    with source_mysql.connection(ctx.source) as conn:
        found = source_mysql.read_column_types(conn, database, list(tables))
        problems = source_problems(tables, found, database)
        present = {name: meta for name, meta in tables.items()
                   if name in found and all(col in found[name] for col in meta.columns)}
        for meta in present.values():
            for col in meta.columns:
                try:  # e.g. decimal(65,30) on Redshift, a spatial type anywhere
                    dialect.column_type(meta.name, col, sqlgen.pg_type(meta.name, found[meta.name][col]))
                except ConfigError as exc:
                    problems.append(f"{position(meta, 'columns')}: {exc}")
        keys = source_mysql.read_unique_keys(conn, database, list(present))
        for meta in present.values():
            refused = meta.where_clause and source_mysql.refusal(conn, *sqlgen.explain_extract_query(meta, database))
            if refused:
                from etl.where_clause import ACCEPTED

                problems.append(f"{heading(meta, 'where_clause')}: the source refuses the extract query with "
                                f"{meta.where_clause!r}: {refused}. Accepted: {ACCEPTED}")
                continue  # the key count would be refused the same way
            problems += key_problems(meta, keys.get(meta.name, {}), database)
            if meta.unique_check == "distinct_count":
                problems += _repeated_keys(conn, meta, database, found[meta.name], keys.get(meta.name, {}))
    pres.use_parse_cache(ctx.etl.completed_dir)
    problems += _pres_sources_problems(tables, ctx.etl.sql_dir)
    if problems:
        raise ConfigError("table metadata does not match the source:\n  " + "\n  ".join(problems))
    for meta in tables.values():
        ignored = [c for c in found[meta.name] if c not in meta.columns]
        if ignored:
            log.info("table %s: source columns not in the metadata, not extracted: %s", meta.name, ", ".join(ignored))
    return tables


def state_folders(ctx: Context, rejects_dir: str) -> list[tuple[str, str]]:
    """The folders the job keeps its run files in, as ``[(setting, folder as configured)]``: output, completed,
    reports and ``rejects_dir`` (a local staging folder is the staging area's own: ``ctx.staging``)."""
    settings = ctx.etl
    return [("[dw_etl] output_dir", settings.output_dir), ("[dw_etl] completed_dir", settings.completed_dir),
            ("[dw_etl] reports_dir", settings.reports_dir), ("[weblog] rejects_dir", rejects_dir)]


def preflight_environment(ctx: Context, rejects_dir: str, metas) -> None:
    """Check, before any sequence opens, that the job can write where it writes and the warehouse role may
    do what the job does.

    Folders (``[dw_etl] output_dir``, ``completed_dir``, ``reports_dir``, ``[weblog] rejects_dir`` and the
    staging folder: created when missing, then a file created and deleted in each; an S3 staging prefix:
    a probe object put and deleted): raises ConfigError listing every folder the job user cannot write,
    each with its setting, absolute path, the OS error and what to do. Then the warehouse role
    (:func:`etl.privileges.check_role` on the pipeline of ``metas``, the TableMeta of every table and of the
    access logs): WarehouseError naming the role, each missing privilege and the GRANT statements.
    """
    problems = [folders.writable_problem(key, value) for key, value in state_folders(ctx, rejects_dir)]
    problems = [p for p in problems if p] + ctx.staging.write_problems()
    if problems:
        raise ConfigError("the job cannot write where it writes (checked before any sequence opens):\n  "
                          + "\n  ".join(problems))
    privileges.check_role(ctx.warehouse, metas)


def _pres_sources_problems(tables: dict[str, TableMeta], sql_dir: str) -> list[str]:
    """A pres file reading ``<schema>.<table>`` while the metadata entry ``<table>`` now writes another
    ``store_table`` (renamed, and ``sql/pres`` still reads the old name) would build pres from a table
    nothing updates any more: one problem per such entry, naming the pres files and both names."""
    problems = []
    for table, files in sorted(pres.tables_read(sql_dir).items()):
        meta = tables.get(table.split(".", 1)[1])
        if meta is None or str(meta.store_table) == table:
            continue
        problems.append(f"{heading(meta, 'store_table')}: it is now {meta.store_table}, but the pres files "
                        f"{', '.join(files)} read {table}; keep store_table: {table}, or change those files "
                        f"(in {sql_dir}/pres) to read the new table")
    return problems


def _repeated_keys(conn, meta: TableMeta, database: str, types: dict, keys: dict[str, tuple[str, ...]]) -> list[str]:
    """``unique_check: distinct_count``: [] when no two source rows share ``unique_columns``, else one message
    with the counts, the most shared values and the source's keys."""
    cur = conn.cursor()
    try:
        cur.execute(sqlgen.key_count_query(meta, database, types))
        rows, distinct = cur.fetchone()
        if rows == distinct:
            return []
        cur.execute(sqlgen.repeated_keys_query(meta, database, types))
        shared = cur.fetchall()
    finally:
        cur.close()

    def shown(value) -> str:
        return repr(value.decode(errors="replace") if isinstance(value, (bytes, bytearray)) else value)

    examples = "; ".join(
        " AND ".join(f"{col} = {shown(v)}" for col, v in zip(meta.unique_columns, row[:-1])) + f" ({row[-1]} rows)"
        for row in shared
    )
    declared = "; ".join(f"{name} ({', '.join(cols)})" for name, cols in keys.items()) or "none"
    matching = " matching where_clause" if meta.where_clause else ""
    return [
        f"{heading(meta, 'unique_columns')}: [{', '.join(meta.unique_columns)}] is not unique in {database}.{meta.name} "
        f"(unique_check: distinct_count): {rows} source rows{matching} without a NULL in it hold {distinct} distinct "
        f"values, so {rows - distinct} of them would collapse into others in store; most shared: {examples}. The "
        f"source's keys: {declared}. List columns that are unique (a key's), or make the source's values unique"
    ]


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
    """Highest sequence recorded in etl_control.run (0 when the table does not exist yet).

    Raises WarehouseError when the table exists but the role cannot use its schema or read it
    (:func:`etl.privileges.check_control_run`), rather than taking the latest sequence as 0.

    Where the dialect has no lock to serialise concurrent CREATE ... IF NOT EXISTS
    (Redshift: no advisory locks), the control schema is created here, once, before any
    worker starts.
    """
    with warehouse.connection(ctx.warehouse) as conn:
        if dialect_of(conn).control_lock is None:
            control.ensure_schema(conn)
        if not privileges.check_control_run(conn, ctx.warehouse):  # pg_catalog: information_schema hides
            return 0  # what the role may not use, which would read as "no run yet"
        return control.latest_sequence(conn)


def close_run(ctx: Context, sequence: int) -> None:
    """Record in etl_control.run that every task of ``sequence`` completed (own connection; commits).

    Raises WarehouseError when the warehouse is unreachable.
    """
    with warehouse.connection(ctx.warehouse) as conn:
        control.close_run(conn, sequence)
        conn.commit()
