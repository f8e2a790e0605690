"""Warehouse dialects: everything PostgreSQL and Amazon Redshift spell differently, in one place.

Every step asks its connection's dialect (:func:`dialect_of`) instead of testing the
flavour: the DDL of landing and store tables, the store upsert, how landing is loaded
(PostgreSQL streams the staging files through ``COPY ... FROM STDIN``; Redshift reads the S3
objects itself), the lock that serialises DDL, the ``etl_control`` statements and how the
control schema (:data:`etl.control.CONTROL_TABLES`, defined once) is spelled, and what each
warehouse can do (capability flags, in the manner of SQLAlchemy's dialects).

:class:`PostgresDialect` is the reference; :class:`RedshiftDialect` overrides what Redshift
lacks or does differently (AWS Redshift Database Developer Guide: "Data types", "COPY",
"LOCK", "CREATE TABLE"), with the SQL text from ``etl.redshift``. The portable statements
both run are in ``etl.warehouse_sql``.
"""

from __future__ import annotations

from etl import redshift, sqlgen, warehouse_sql
from etl.errors import ConfigError
from etl.domain import TableMeta


class PostgresDialect:
    """PostgreSQL 12 or later: the reference dialect.

    Attributes (class constants): ``name`` (the ``[warehouse] flavor``),
    ``maintenance_database`` (where ``CREATE DATABASE`` runs), ``startup_options`` (libpq
    ``options``: a UTC session without JIT compilation, which cost 0.3-0.8 s per pres file of a
    no-op run and saved nothing; see BENCHMARKS.md), ``session_statements`` (run once after
    connecting), ``pres_begin`` (the start of each pres file's transaction: planner settings),
    ``binary_staging`` (the MySQL expression that stages a binary value in this
    warehouse's COPY input format; ``{col}`` is the quoted column), and the capabilities
    ``streams_landing`` (extracts may COPY into landing as they stage), ``partitions_landing``
    (one landing partition per sequence), ``bulk_loads_store`` (an empty store is filled with
    a plain INSERT and indexed after), ``enforces_keys`` (store keys are unique by index),
    ``copies_from_stdin`` (COPY FROM STDIN exists: hard-delete detection streams source keys),
    ``matches_pres_shapes`` (pres columns are altered to follow the store's types),
    ``refreshes_statistics`` (stale planner statistics are refreshed before each pres file),
    :meth:`counts_row_writes` (per-table write counters any session reads once a writer flushed them),
    ``alters_column_types`` (schema drift widens existing columns; otherwise it only adds new ones).
    """

    name = "postgres"
    maintenance_database = "postgres"
    startup_options = "-c timezone=UTC -c jit=off"
    session_statements: tuple[str, ...] = ()
    binary_staging = sqlgen.BYTEA_HEX_FIELD  # \x0041ff, bytea's hex input
    streams_landing = partitions_landing = bulk_loads_store = enforces_keys = True
    copies_from_stdin = matches_pres_shapes = refreshes_statistics = alters_column_types = True

    @staticmethod
    def counts_row_writes(conn) -> bool:
        """True when ``conn``'s server keeps per-table write counters (rows inserted, updated, deleted) that
        a session can flush as it commits (``pg_stat_force_next_flush``: PostgreSQL 15+), so another
        session sees a table's writes without scanning it (etl.pres flushes, etl.reports reads)."""
        return conn.server_version >= 150000

    # serialises concurrent DDL of the workers (CREATE ... IF NOT EXISTS races, drift ALTERs)
    ddl_lock = "SELECT pg_advisory_xact_lock(hashtext('luigi_dw_etl.ddl'))"
    control_lock = "SELECT pg_advisory_xact_lock(hashtext('etl_control.ensure_schema'))"
    upsert_work_memory = "64MB"  # work_mem of the upsert: its per-key dedup sort stays in memory
    # store's own columns a table made by an earlier version may lack (column -> DDL type; etl.schema.run_ddl)
    store_added_columns = warehouse_sql.STORE_ADDED_COLUMNS

    # etl_control writes (named parameters); PostgreSQL's unique keys make them single statements
    open_run = ["INSERT INTO etl_control.run (execution_sequence) VALUES (%(seq)s) ON CONFLICT DO NOTHING"]
    close_run = [
        "INSERT INTO etl_control.run (execution_sequence, completed_datetime) VALUES (%(seq)s, now()) "
        "ON CONFLICT (execution_sequence) DO UPDATE SET completed_datetime = now()"
    ]
    record_window = [
        "INSERT INTO etl_control.extract_window "
        "(execution_sequence, table_name, is_incremental, watermark_column, window_start, window_end, source_clock) "
        "VALUES (%(seq)s, %(table)s, %(incremental)s, %(column)s, %(start)s, %(end)s, %(clock)s) ON CONFLICT DO NOTHING"
    ]
    advance_watermark = [
        "INSERT INTO etl_control.watermark (table_name, watermark_column, watermark_value, execution_sequence) "
        "VALUES (%(table)s, %(column)s, %(value)s, %(seq)s) ON CONFLICT (table_name) DO UPDATE SET "
        "watermark_column = EXCLUDED.watermark_column, "
        "watermark_value = greatest(etl_control.watermark.watermark_value, EXCLUDED.watermark_value), "
        "execution_sequence = EXCLUDED.execution_sequence, updated_datetime = now()"
    ]
    # the start of a pres file's transaction: the planner costs a random page read as the cached or
    # SSD-backed warehouse it is (the default 4.0 is a spinning disk's: it hash-joined every report row
    # to merge 56,000 of a million) and builds indexes in 256 MB
    pres_begin = ["SET LOCAL random_page_cost = 1.1", "SET LOCAL maintenance_work_mem = '256MB'"]
    # the end of a pres file's transaction (params: name); now() is the transaction's start
    pres_advance = [
        "DELETE FROM etl_control.pres_watermark WHERE name = %(name)s",
        "INSERT INTO etl_control.pres_watermark (name, value) VALUES (%(name)s, now())",
        "DROP TABLE pres_build",
    ]

    # how the logical types of etl.control.CONTROL_TABLES are spelled; varchar(n) passes through
    control_types = {"integer": "integer", "bigint": "bigint", "boolean": "boolean", "timestamp": "timestamp",
                     "timestamptz": "timestamptz", "moment": "timestamptz", "name": "text", "path": "text",
                     "label": "text", "json": "jsonb", "checksum": "numeric(38,0)", "seconds": "double precision"}
    now = "now()"

    def control_ddl(self, tables: dict) -> list[str]:
        """The statements creating ``etl_control`` and ``tables`` if missing (idempotent).

        ``tables``: :data:`etl.control.CONTROL_TABLES`. PostgreSQL also adds the columns marked
        ``added`` to tables an earlier release created (``ADD COLUMN IF NOT EXISTS``).
        """
        statements = ["CREATE SCHEMA IF NOT EXISTS etl_control"]
        for table, columns in tables.items():
            statements.append(self._create_control_table(table, columns))
            statements += [f"ALTER TABLE etl_control.{table} ADD COLUMN IF NOT EXISTS {c.name} {self._control_type(c)}"
                           for c in columns if c.added]
        return statements

    def _control_type(self, column) -> str:
        return column.type if column.type.startswith("varchar(") else self.control_types[column.type]

    def _create_control_table(self, table: str, columns) -> str:
        lines = []
        for c in columns:
            line = f"{c.name} {self._control_type(c)}"
            if not c.nullable:
                line += " NOT NULL"
            if c.default_now:
                line += f" DEFAULT {self.now}"
            lines.append(line)
        keys = [c.name for c in columns if c.key]
        if keys:
            lines.append(f"PRIMARY KEY ({', '.join(keys)})")
        return f"CREATE TABLE IF NOT EXISTS etl_control.{table} (\n    " + ",\n    ".join(lines) + ")"

    # the role's privileges (etl.privileges), over pg_catalog.pg_class c (its namespace n) and a privilege p.priv:
    # by oid, which needs no USAGE on the schema; owning = being the owner or a member of the owning role
    table_privilege_sql = "has_table_privilege(c.oid, p.priv)"
    owner_name_sql = "CAST(pg_get_userbyid(c.relowner) AS VARCHAR(128))"
    owns_table_sql = "pg_has_role(c.relowner, 'USAGE')"

    def owner_transfer(self, tables: list[str], role: str) -> list[str]:
        """The statements making ``role`` the owner of ``tables`` (``schema.table``): one DO block."""
        names = ", ".join(_literal(_qualified(t)) for t in tables)
        return [f"DO $$DECLARE t text; BEGIN FOREACH t IN ARRAY ARRAY[{names}] LOOP "
                f"EXECUTE format('ALTER TABLE %s OWNER TO %I', t, {_literal(role)}); END LOOP; END$$"]

    def check_settings(self, staging_uri: str, iam_role: str, detect_hard_deletes: bool) -> None:
        """Refuse settings this warehouse cannot work with (ConfigError naming them); none here."""

    def column_type(self, table: str, column: str, pg_type: str) -> str:
        """The warehouse type of a column whose PostgreSQL type is ``pg_type`` (``etl.sqlgen.pg_type``)."""
        return pg_type

    def landing_ddl(self, meta: TableMeta, types: dict[str, str]) -> list:
        """Statements creating the landing schema and table (``types``: column -> PostgreSQL type)."""
        return warehouse_sql.landing_ddl(meta, types)

    def store_ddl(self, meta: TableMeta, types: dict[str, str]) -> list:
        """Statements creating the store schema, table and indexes (``types``: column -> PostgreSQL type)."""
        return warehouse_sql.store_ddl(meta, types)

    def upsert(self, cur, meta: TableMeta, sequence: int) -> tuple[int, int]:
        """Merge the sequence's landing rows into store on ``cur`` (no commit); returns (inserted, updated)."""
        cur.execute("SET LOCAL work_mem = %s", [self.upsert_work_memory])  # the batch dedup sorts in memory
        cur.execute(warehouse_sql.upsert_sql(meta), [sequence])
        inserted, updated = cur.fetchone()
        return inserted, updated

    def copy_into_landing(self, cur, meta: TableMeta, uri: str, iam_role: str) -> int:
        """Load landing from the staged objects under ``uri`` on the server's side: a warehouse without
        ``copies_from_stdin`` only (PostgreSQL's rows go through ``etl.landing``); NotImplementedError here."""
        raise NotImplementedError("PostgreSQL loads landing with COPY FROM STDIN (etl.landing)")

    def translate_file(self, path, text: str) -> list[str]:
        """The statements to run for a sql/ file's ``text``: PostgreSQL runs it as written."""
        return [text]

    # The warehouse run lock (etl.runlock). PostgreSQL: liveness from session advisory locks
    # (per database, so two warehouse databases never block each other): every process of the
    # run holds the run key shared; the exclusive try succeeding means nobody is alive; the
    # transaction lock on the join key makes check-and-join atomic. Holders are listed in
    # etl_control.run_holder (named in the refusal). The keepalives let the server notice a
    # vanished client host (and drop its lock) within about two minutes.
    run_lock_advisory = True
    run_lock_session = ["SET tcp_keepalives_idle = 60", "SET tcp_keepalives_interval = 10",
                        "SET tcp_keepalives_count = 6"]
    run_lock_join = ["SELECT pg_advisory_xact_lock(hashtext('luigi_dw_etl.run_lock.join'))"]
    run_lock_try_exclusive = "SELECT pg_try_advisory_lock(hashtext('luigi_dw_etl.run_lock'))"
    run_lock_share = ["SELECT pg_advisory_lock_shared(hashtext('luigi_dw_etl.run_lock'))"]
    run_lock_drop_exclusive = ["SELECT pg_advisory_unlock(hashtext('luigi_dw_etl.run_lock'))"]
    run_holder_clear = ["DELETE FROM etl_control.run_holder"]
    run_holders = ("SELECT run_identity, host, process_id, started_datetime, command_line FROM etl_control.run_holder "
                   "ORDER BY started_datetime, host, process_id")
    run_holder_insert = ["INSERT INTO etl_control.run_holder (run_identity, host, process_id, command_line) "
                         "VALUES (%(identity)s, %(host)s, %(pid)s, %(command)s)"]
    run_holder_delete = ["DELETE FROM etl_control.run_holder "
                         "WHERE run_identity = %(identity)s AND host = %(host)s AND process_id = %(pid)s"]


class RedshiftDialect(PostgresDialect):
    """Amazon Redshift: what differs from PostgreSQL (SQL text in ``etl.redshift``).

    No startup options (a ``SET timezone`` after connecting instead), binary values staged as
    bare quoted hex (VARBYTE's CSV input), no landing streaming or partitions, no bulk first
    load, unenforced keys, no ``COPY FROM STDIN``; the control writes are LOCK + UPDATE +
    INSERT ... WHERE NOT EXISTS in the caller's transaction (no ON CONFLICT; the LOCK
    serialises workers, which Redshift would otherwise abort as conflicting serializable
    transactions).
    """

    name = "redshift"
    maintenance_database = "dev"
    startup_options = None
    session_statements = ("SET timezone TO 'UTC'",)
    # bare hex, quoted so that an empty value stays empty under COPY's EMPTYASNULL
    binary_staging = """IFNULL(CONCAT('"', HEX({col}), '"'), '')"""
    streams_landing = partitions_landing = bulk_loads_store = enforces_keys = False
    copies_from_stdin = matches_pres_shapes = refreshes_statistics = alters_column_types = False
    ddl_lock = "LOCK etl_control.run"
    control_lock = None  # RunJob creates the schema before any worker starts (etl.context)
    store_added_columns = redshift.STORE_ADDED_COLUMNS

    open_run = [
        "LOCK etl_control.run",
        "INSERT INTO etl_control.run (execution_sequence) SELECT %(seq)s "
        "WHERE NOT EXISTS (SELECT 1 FROM etl_control.run WHERE execution_sequence = %(seq)s)",
    ]
    close_run = [
        "LOCK etl_control.run",
        "UPDATE etl_control.run SET completed_datetime = GETDATE() WHERE execution_sequence = %(seq)s",
        "INSERT INTO etl_control.run (execution_sequence, completed_datetime) SELECT %(seq)s, GETDATE() "
        "WHERE NOT EXISTS (SELECT 1 FROM etl_control.run WHERE execution_sequence = %(seq)s)",
    ]
    record_window = [
        "LOCK etl_control.extract_window",
        "INSERT INTO etl_control.extract_window "
        "(execution_sequence, table_name, is_incremental, watermark_column, window_start, window_end, source_clock) "
        "SELECT %(seq)s, %(table)s, %(incremental)s, %(column)s, %(start)s, %(end)s, %(clock)s "
        "WHERE NOT EXISTS (SELECT 1 FROM etl_control.extract_window "
        "WHERE execution_sequence = %(seq)s AND table_name = %(table)s)",
    ]
    advance_watermark = [
        "LOCK etl_control.watermark",
        "UPDATE etl_control.watermark SET watermark_column = %(column)s, "
        "watermark_value = GREATEST(watermark_value, %(value)s), execution_sequence = %(seq)s, "
        "updated_datetime = GETDATE() WHERE table_name = %(table)s",
        "INSERT INTO etl_control.watermark (table_name, watermark_column, watermark_value, execution_sequence) "
        "SELECT %(table)s, %(column)s, %(value)s, %(seq)s "
        "WHERE NOT EXISTS (SELECT 1 FROM etl_control.watermark WHERE table_name = %(table)s)",
    ]
    pres_begin: list[str] = []  # no planner cost settings

    @staticmethod
    def counts_row_writes(conn) -> bool:
        """Redshift keeps no per-table write counters a session can read (see PostgresDialect)."""
        return False
    # SYSDATE is the transaction's start, as PostgreSQL's now()
    pres_advance = [
        "DELETE FROM etl_control.pres_watermark WHERE name = %(name)s",
        "INSERT INTO etl_control.pres_watermark (name, value) VALUES (%(name)s, SYSDATE)",
        "DROP TABLE pres_build",
    ]
    control_types = {**PostgresDialect.control_types, "moment": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ",
                     "name": "VARCHAR(256)", "path": "VARCHAR(4096)", "label": "VARCHAR(64)",
                     "json": f"VARCHAR({redshift.MAX_VARCHAR})", "checksum": "DECIMAL(38,0)"}
    now = "GETDATE()"

    def control_ddl(self, tables: dict) -> list[str]:
        """As PostgreSQL's, every column in the CREATE (Redshift has no ADD COLUMN IF NOT EXISTS)."""
        return ["CREATE SCHEMA IF NOT EXISTS etl_control"] + [self._create_control_table(t, c) for t, c in tables.items()]

    # Redshift: HAS_TABLE_PRIVILEGE takes a table name (resolved only where the schema is usable), no
    # pg_has_role: owning = being the owner or a superuser
    table_privilege_sql = ("CASE WHEN has_schema_privilege(n.nspname, 'USAGE') THEN has_table_privilege("
                           "quote_ident(n.nspname) || '.' || quote_ident(c.relname), p.priv) ELSE false END")
    owner_name_sql = "(SELECT CAST(u.usename AS VARCHAR(128)) FROM pg_catalog.pg_user u WHERE u.usesysid = c.relowner)"
    owns_table_sql = ("(c.relowner = (SELECT u.usesysid FROM pg_catalog.pg_user u WHERE u.usename = current_user) "
                      "OR (SELECT u.usesuper FROM pg_catalog.pg_user u WHERE u.usename = current_user))")

    def owner_transfer(self, tables: list[str], role: str) -> list[str]:
        """One ``ALTER TABLE ... OWNER TO`` per table (Redshift has no DO blocks)."""
        return [f"ALTER TABLE {_qualified(t)} OWNER TO {_ident(role)}" for t in tables]

    def check_settings(self, staging_uri: str, iam_role: str, detect_hard_deletes: bool) -> None:
        """Refuse a local staging folder, a missing IAM role and hard-delete detection (ConfigError)."""
        if not staging_uri.startswith("s3://"):
            raise ConfigError(
                f"[warehouse] flavor = redshift loads with COPY from S3, but [staging] uri = {staging_uri!r} "
                "is a local folder; set [staging] uri = s3://bucket/prefix"
            )
        if not iam_role:
            raise ConfigError("[warehouse] flavor = redshift needs [warehouse] iam_role (the role ARN COPY uses to read S3)")
        if detect_hard_deletes:
            raise ConfigError(
                "[dw_etl] detect_hard_deletes is not available with [warehouse] flavor = redshift (it streams the "
                "source keys with COPY FROM STDIN, which Redshift lacks); set detect_hard_deletes = false"
            )

    def column_type(self, table: str, column: str, pg_type: str) -> str:
        """:func:`etl.redshift.redshift_type`; raises ConfigError for a type Redshift cannot hold."""
        return redshift.redshift_type(table, column, pg_type)

    def landing_ddl(self, meta: TableMeta, types: dict[str, str]) -> list:
        """:func:`etl.redshift.landing_ddl` (types mapped to Redshift)."""
        return redshift.landing_ddl(meta, types)

    def store_ddl(self, meta: TableMeta, types: dict[str, str]) -> list:
        """:func:`etl.redshift.store_ddl` (DISTKEY/SORTKEY instead of indexes)."""
        return redshift.store_ddl(meta, types)

    def upsert(self, cur, meta: TableMeta, sequence: int) -> tuple[int, int]:
        """Run :func:`etl.redshift.upsert_statements` on ``cur``; returns (inserted, updated) row counts."""
        create, *middle, insert, drop = redshift.upsert_statements(meta)
        cur.execute(create, [sequence])
        updated = 0
        for statement in middle:  # the UPDATE, absent for a table with key columns only
            cur.execute(statement)
            updated = cur.rowcount
        cur.execute(insert)
        inserted = cur.rowcount
        cur.execute(drop)
        return inserted, updated

    def copy_into_landing(self, cur, meta: TableMeta, uri: str, iam_role: str) -> int:
        """COPY the staged gzip objects under ``uri`` into landing (Redshift reads them itself, every
        part in parallel); returns the rows loaded (``pg_last_copy_count()``)."""
        cur.execute(redshift.copy_sql(meta), [uri, iam_role])
        cur.execute("SELECT pg_last_copy_count()")
        return cur.fetchone()[0]

    def translate_file(self, path, text: str) -> list[str]:
        """:func:`etl.redshift.translate_file`: the file's statements in Redshift's SQL."""
        return redshift.translate_file(path, text)

    # The run lock without advisory locks: the holder rows themselves, serialised by LOCK, kept
    # alive by a heartbeat (etl.runlock); a row whose heartbeat is older than %(stale)s seconds
    # belongs to a dead process and is deleted by the next process that takes the lock.
    run_lock_advisory = False
    run_lock_session: list[str] = []
    run_lock_join = ["LOCK etl_control.run_holder",
                     "DELETE FROM etl_control.run_holder WHERE heartbeat_datetime < DATEADD(second, -%(stale)s, GETDATE())"]
    run_holder_heartbeat = ["LOCK etl_control.run_holder",
                            "UPDATE etl_control.run_holder SET heartbeat_datetime = GETDATE() "
                            "WHERE run_identity = %(identity)s AND host = %(host)s AND process_id = %(pid)s"]
    run_holder_delete = ["LOCK etl_control.run_holder"] + PostgresDialect.run_holder_delete


def _ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _qualified(table: str) -> str:
    """``schema.table`` as quoted identifiers."""
    return ".".join(_ident(part) for part in table.split(".", 1))


def _literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


DIALECTS = {d.name: d for d in (PostgresDialect(), RedshiftDialect())}


def for_flavor(flavor: str) -> PostgresDialect:
    """The dialect of a ``[warehouse] flavor`` (``postgres`` or ``redshift``); KeyError otherwise
    (``etl.config`` refuses other flavours first)."""
    return DIALECTS[flavor]


def dialect_of(conn) -> PostgresDialect:
    """The dialect of a warehouse connection (its ``flavor``, set by ``etl.warehouse.connect``;
    a connection without one is PostgreSQL)."""
    return DIALECTS[getattr(conn, "flavor", "postgres")]
