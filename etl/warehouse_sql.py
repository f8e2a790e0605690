"""SQL generation, warehouse side: the PostgreSQL statements built from table metadata.

Landing tables hold the source columns plus ``execution_sequence`` (the run that loaded
the row), ``landing_row_id`` (load order, the last tie-break of the batch dedup) and
``etl_loaded_datetime``; on PostgreSQL they are list-partitioned by sequence. Store tables
hold the source columns plus ``etl_created_datetime`` and ``etl_updated_datetime`` and a
unique index on the business key. Also: the store upsert and first bulk load, landing
COPY/purge, hard-delete detection, and the type changes schema drift may apply.

Statements marked portable run unchanged on Redshift; the rest are chosen through the
warehouse's dialect (``etl.dialects``), never by testing the flavour here. Identifiers are
validated by ``etl.metadata`` and quoted with ``psycopg2.sql.Identifier``; values are
bound parameters.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from psycopg2 import sql

from etl import sqlgen
from etl.domain import QualifiedName, TableMeta
from etl.errors import ConfigError

# The grammar of every column type the pipeline puts into DDL: etl.sqlgen.pg_type's results, the access-log
# declaration's types (etl.metadata.WEBLOG_TYPES), the pipeline's own columns, and their Redshift forms
# (case-insensitive; etl.redshift.redshift_type builds its DDL only from a fixed map of these). A type read back
# from etl_control or a marker is executed only when it matches: anything else (an edited record) is refused.
COLUMN_TYPE_RE = re.compile(
    r"(smallint|integer|bigint|real|double precision|boolean|date|interval|text|jsonb|uuid|inet|bytea"
    r"|numeric(\([0-9]{1,4},[0-9]{1,4}\))?|(varchar|char|varbyte|bit)\([0-9]{1,8}\)|timestamp(tz)?(\([0-6]\))?)",
    re.IGNORECASE,
)


def type_problem(column: str, type_: object) -> str | None:
    """None when ``type_`` (a column type as DDL text) matches :data:`COLUMN_TYPE_RE`, else a message
    naming ``column`` and the refused text (shortened to 80 characters)."""
    if isinstance(type_, str) and COLUMN_TYPE_RE.fullmatch(type_):
        return None
    shown = repr(type_)
    return (f"column {column!r}: {shown[:80]}{'...' if len(shown) > 80 else ''} is not a column type the pipeline "
            "writes (it was not derived from the source: refused, not executed)")


def type_sql(column: str, type_: str) -> sql.SQL:
    """``type_`` as a DDL fragment once it matches :data:`COLUMN_TYPE_RE`; raises ConfigError (see
    :func:`type_problem`) otherwise. Every column type in this module's DDL goes through it."""
    problem = type_problem(column, type_)
    if problem:
        raise ConfigError(problem)
    return sql.SQL(type_)


def qualified(name: QualifiedName) -> sql.Composable:
    """``"schema"."table"`` as a quoted SQL identifier pair."""
    return sql.SQL("{}.{}").format(sql.Identifier(name.schema), sql.Identifier(name.table))


def _ident_list(names) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def landing_ddl(meta: TableMeta, types: dict[str, str]) -> list[sql.Composable]:
    """Statements creating the landing schema and table, partitioned by execution sequence (idempotent).

    ``types`` maps column -> warehouse type (see :func:`etl.sqlgen.pg_type`). Every source column is
    nullable in landing: landing holds what the source sent, checks happen later. One
    list partition per sequence (:func:`landing_partition_sql`) replaces an index on
    ``execution_sequence``: a load fills its own partition (no index to maintain or build,
    about half a second per million rows), a reload truncates it, a purge drops it.
    """
    table = qualified(meta.landing_table)
    cols = [sql.SQL("execution_sequence integer NOT NULL")]
    cols += [sql.SQL("{} {}").format(sql.Identifier(c), type_sql(c, types[c])) for c in meta.columns]
    # CACHE: a COPY takes its ids 1,000 at a time instead of one sequence access per row
    # (still increasing within a load, which is all the batch dedup's tie-break needs)
    cols.append(sql.SQL("landing_row_id bigint GENERATED ALWAYS AS IDENTITY (CACHE 1000)"))
    cols.append(sql.SQL("etl_loaded_datetime timestamptz NOT NULL DEFAULT now()"))
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(meta.landing_table.schema)),
        sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}) PARTITION BY LIST (execution_sequence)").format(
            table, sql.SQL(", ").join(cols)),
    ]


PG_NAME_BYTES = 63  # PostgreSQL truncates longer identifiers (NAMEDATALEN - 1)


def suffixed_name(table: QualifiedName, suffix: str) -> QualifiedName:
    """``table`` with ``suffix`` appended to its name, in its schema; a name over 63 bytes (PostgreSQL
    would truncate it) keeps a prefix plus a hash of the whole table name, so it stays unique."""
    base = table.table
    if len((base + suffix).encode()) > PG_NAME_BYTES:
        digest = hashlib.md5(base.encode()).hexdigest()[:8]
        base = base.encode()[:PG_NAME_BYTES - len(suffix.encode()) - 9].decode("utf-8", "ignore") + "_" + digest
    return QualifiedName(table.schema, base + suffix)


def landing_partition_name(meta: TableMeta, sequence: int) -> QualifiedName:
    """The landing partition of one execution sequence: ``<landing table>_s<sequence>`` (see :func:`suffixed_name`)."""
    return suffixed_name(meta.landing_table, f"_s{int(sequence)}")


def landing_partition_sql(meta: TableMeta, sequence: int) -> sql.Composable:
    """``CREATE TABLE IF NOT EXISTS <partition> PARTITION OF <landing> FOR VALUES IN (<sequence>)``."""
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES IN ({})").format(
        qualified(landing_partition_name(meta, sequence)), qualified(meta.landing_table), sql.SQL(str(int(sequence))))


def landing_partitions_sql() -> str:
    """Query of a partitioned table's partitions (params: schema, table): rows of
    ``(partition schema, partition name, bound)`` where bound reads ``FOR VALUES IN (7)``."""
    return (
        "SELECT n.nspname, c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE i.inhparent = (SELECT p.oid FROM pg_class p JOIN pg_namespace pn ON pn.oid = p.relnamespace "
        "WHERE pn.nspname = %s AND p.relname = %s)"
    )


def partition_sequence(bound: str | None) -> int | None:
    """The execution sequence of a landing partition from its bound (``FOR VALUES IN (7)`` -> 7);
    None for any other bound (a partition attached by hand, left alone)."""
    found = re.fullmatch(r"FOR VALUES IN \((\d+)\)", bound or "")
    return int(found.group(1)) if found else None


def landing_conversion_sql(meta: TableMeta, old: QualifiedName, columns: list[str]) -> tuple[sql.Composable, ...]:
    """``(rename, copy, drop)`` converting an unpartitioned landing table: rename it to ``old``;
    after the partitioned table and its partitions exist, copy ``columns`` over (landing ids
    kept: ``OVERRIDING SYSTEM VALUE``); drop ``old``."""
    cols = _ident_list(columns)
    return (
        sql.SQL("ALTER TABLE {} RENAME TO {}").format(qualified(meta.landing_table), sql.Identifier(old.table)),
        sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {}").format(
            qualified(meta.landing_table), cols, cols, qualified(old)),
        sql.SQL("DROP TABLE {}").format(qualified(old)),
    )


def table_sql(template: str, table: QualifiedName) -> sql.Composable:
    """``template`` with ``{}`` replaced by the quoted ``table``, e.g. ``table_sql("TRUNCATE {}", t)``."""
    return sql.SQL(template).format(qualified(table))


def relkind_sql() -> str:
    """Query of a table's ``pg_class.relkind`` (params: schema, table): ``r`` plain, ``p`` partitioned; no row when absent."""
    return ("SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s")


# store's own columns beside the source ones: (name, PostgreSQL type, NOT NULL). etl_deleted_datetime marks a
# tombstone (the source row was hard-deleted; NULL = live); etl_execution_sequence is the sequence whose landing
# batch last wrote the row (the upsert's order of versions: sequence, then watermark)
STORE_ETL_COLUMNS = (
    ("etl_created_datetime", "timestamptz", True),
    ("etl_updated_datetime", "timestamptz", True),
    ("etl_deleted_datetime", "timestamptz", False),
    ("etl_execution_sequence", "integer", False),
)
# the ones a store table made by an earlier version may lack (added in place: etl.schema.run_ddl)
STORE_ADDED_COLUMNS = {name: type_ for name, type_, _ in STORE_ETL_COLUMNS[2:]}


def store_ddl(meta: TableMeta, types: dict[str, str]) -> list[sql.Composable]:
    """Statements creating the store schema, table (source columns + :data:`STORE_ETL_COLUMNS`), unique
    index on ``unique_columns`` and an index on ``etl_updated_datetime`` (incremental pres builds)."""
    table = qualified(meta.store_table)
    cols = []
    for c in meta.columns:
        not_null = sql.SQL(" NOT NULL") if c in meta.unique_columns else sql.SQL("")
        cols.append(sql.SQL("{} {}{}").format(sql.Identifier(c), type_sql(c, types[c]), not_null))
    for name, type_, not_null in STORE_ETL_COLUMNS:
        cols.append(sql.SQL("{} {}{}").format(sql.Identifier(name), sql.SQL(type_), sql.SQL(" NOT NULL" if not_null else "")))
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(meta.store_table.schema)),
        sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(table, sql.SQL(", ").join(cols)),
        *store_index_sql(meta),
    ]


def _store_index_names(meta: TableMeta) -> tuple[str, str]:
    return f"{meta.store_table.table}_uk", f"{meta.store_table.table}_etl_updated_idx"


def store_index_sql(meta: TableMeta) -> list[sql.Composable]:
    """The store's unique index on ``unique_columns`` and its ``etl_updated_datetime`` index (idempotent)."""
    table = qualified(meta.store_table)
    unique, updated = _store_index_names(meta)
    return [
        sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({})").format(
            sql.Identifier(unique), table, _ident_list(meta.unique_columns)
        ),
        # pres files find the rows changed since their previous build with a range scan on this
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (etl_updated_datetime)").format(sql.Identifier(updated), table),
    ]


def is_empty_sql(table: QualifiedName) -> sql.Composable:
    """``SELECT`` true when ``table`` has no row at all (one probe; picks the bulk-load paths)."""
    return sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(qualified(table))


@dataclass(frozen=True)
class BulkLoad:
    """The statements of a first load into an empty store table (see :func:`bulk_load_store_sql`)."""

    drop_indexes: list
    insert: sql.Composable
    insert_deduplicated: sql.Composable
    create_unique_index: sql.Composable
    create_updated_index: sql.Composable


def bulk_load_store_sql(meta: TableMeta) -> BulkLoad:
    """The first load of an empty store table (param of both INSERTs: execution_sequence).

    Meant for one transaction: drop the two indexes, ``insert`` the batch's non-NULL-key
    rows as they are (one extract is one SELECT, so its keys are normally unique: no
    sort), then build the unique index - a bulk build is much cheaper than maintaining
    it row by row. Should that fail with a unique violation (``unique_columns`` not
    unique in the source, or a re-extracted sequence), roll back to before the insert and
    run ``insert_deduplicated`` (same rule as :func:`upsert_sql`: the newest version of a
    key wins) instead. A failure leaves the table and its indexes as they were.
    """
    schema = meta.store_table.schema
    target = sql.SQL("INSERT INTO {store} ({cols}, etl_created_datetime, etl_updated_datetime, etl_execution_sequence) "
                     ).format(store=qualified(meta.store_table), cols=_ident_list(meta.columns))
    not_null = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in meta.unique_columns)
    create_unique, create_updated = store_index_sql(meta)
    return BulkLoad(
        drop_indexes=[sql.SQL("DROP INDEX IF EXISTS {}.{}").format(sql.Identifier(schema), sql.Identifier(name))
                      for name in _store_index_names(meta)],
        insert=target + sql.SQL(
            "SELECT {cols}, now(), now(), execution_sequence FROM {landing} WHERE execution_sequence = %s AND {nn}"
        ).format(cols=_ident_list(meta.columns), landing=qualified(meta.landing_table), nn=not_null),
        insert_deduplicated=target + sql.SQL("SELECT {cols}, now(), now(), execution_sequence FROM ({batch}) AS batch").format(
            cols=_ident_list(meta.columns), batch=_batch_sql(meta)),
        create_unique_index=create_unique,
        create_updated_index=create_updated,
    )


def landing_copy_sql(meta: TableMeta) -> sql.Composable:
    """``COPY landing (execution_sequence, cols...) FROM STDIN`` for the staging CSV (header, NULL = unquoted empty)."""
    return sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER true)").format(
        qualified(meta.landing_table),
        _ident_list(("execution_sequence",) + meta.columns),
    )


def landing_delete_sequence_sql(meta: TableMeta) -> sql.Composable:
    """Delete one sequence's landing rows (param: execution_sequence) so a reload replaces them (Redshift:
    its landing tables are not partitioned)."""
    return sql.SQL("DELETE FROM {} WHERE execution_sequence = %s").format(qualified(meta.landing_table))


def landing_purge_sql(meta: TableMeta) -> sql.Composable:
    """Delete landing rows of sequences older than the kept ones (param: oldest sequence to keep; Redshift)."""
    return sql.SQL("DELETE FROM {} WHERE execution_sequence < %s").format(qualified(meta.landing_table))


def null_key_count_sql(meta: TableMeta) -> sql.Composable:
    """Count one sequence's landing rows with a NULL in a key column (param: execution_sequence)."""
    any_null = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(sql.Identifier(c)) for c in meta.unique_columns)
    return sql.SQL("SELECT count(*) FROM {} WHERE execution_sequence = %s AND ({})").format(
        qualified(meta.landing_table), any_null
    )


def newer_version_sql(incoming: sql.Composable, stored: sql.Composable, watermark_column: str | None,
                      incoming_sequence: str = "etl_execution_sequence") -> sql.Composable:
    """The condition "the ``incoming`` row version is newer than the ``stored`` one" (``incoming`` and
    ``stored`` are row references: aliases or table names; portable to Redshift).

    Versions are ordered by the execution sequence of the landing batch that carried them, then
    by the watermark: a later sequence's extract read the source later, so it wins even when
    the watermark went backwards (a future-dated row corrected to now); within one sequence the
    later watermark wins; a replayed older sequence never overwrites a newer version. A stored
    row from before sequences were kept (NULL) compares by watermark only; a NULL watermark on
    either side does not block the update. The incoming sequence is ``incoming.<incoming_sequence>``
    (``EXCLUDED.etl_execution_sequence`` in an ON CONFLICT, a landing batch's ``execution_sequence``),
    the stored one ``stored.etl_execution_sequence``.
    """
    parts = {"i": incoming, "s": stored, "iseq": sql.SQL("{}.{}").format(incoming, sql.Identifier(incoming_sequence)),
             "sseq": sql.SQL("{}.etl_execution_sequence").format(stored)}
    same_or_unknown = sql.SQL("({iseq} = {sseq} OR {sseq} IS NULL)").format(**parts)
    if watermark_column:
        same_or_unknown = sql.SQL("{} AND ({s}.{wm} IS NULL OR {i}.{wm} IS NULL OR {i}.{wm} >= {s}.{wm})").format(
            same_or_unknown, wm=sql.Identifier(watermark_column), **parts)
    return sql.SQL("({iseq} > {sseq} OR ({same}))").format(same=same_or_unknown, **parts)


def upsert_sql(meta: TableMeta) -> sql.Composable:
    """The store upsert of one sequence's landing rows (param: execution_sequence).

    * rows with a NULL key column are skipped (counted separately, they stay in landing);
    * within the batch the newest version of a key wins: ``DISTINCT ON (key)`` ordered by
      the watermark descending, then by ``landing_row_id`` descending (later row wins);
    * ``INSERT ... ON CONFLICT (key) DO UPDATE`` only where a value column differs
      (``IS DISTINCT FROM``) or the stored row is a tombstone (it comes back to life), so
      unchanged rows keep their ``etl_updated_datetime`` and a replay changes nothing; and
      only when the incoming version is newer (:func:`newer_version_sql`: execution sequence,
      then watermark), so replaying an old sequence cannot roll a row back;
    * returns one row ``(inserted, updated)``, counted with the ``xmax = 0`` test (a revived
      tombstone counts as updated).
    """
    store = qualified(meta.store_table)
    keys = _ident_list(meta.unique_columns)
    values = meta.value_columns
    assignments = [sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in values]
    assignments += [sql.SQL("etl_updated_datetime = EXCLUDED.etl_updated_datetime"),
                    sql.SQL("etl_execution_sequence = EXCLUDED.etl_execution_sequence"),
                    sql.SQL("etl_deleted_datetime = NULL")]
    changed = [sql.SQL("s.etl_deleted_datetime IS NOT NULL")]
    if len(values) == 1:  # a one-element row constructor needs no parentheses
        changed.insert(0, sql.SQL("s.{0} IS DISTINCT FROM EXCLUDED.{0}").format(sql.Identifier(values[0])))
    elif values:
        changed.insert(0, sql.SQL("({}) IS DISTINCT FROM ({})").format(
            sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in values),
            sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in values),
        ))
    conflict = sql.SQL("DO UPDATE SET {} WHERE ({}) AND {}").format(
        sql.SQL(", ").join(assignments), sql.SQL(" OR ").join(changed),
        newer_version_sql(sql.SQL("EXCLUDED"), sql.SQL("s"), meta.watermark_column))
    return sql.SQL(
        "WITH batch AS ({batch}), merged AS ("
        "INSERT INTO {store} AS s ({cols}, etl_created_datetime, etl_updated_datetime, etl_execution_sequence) "
        "SELECT {cols}, now(), now(), execution_sequence FROM batch "
        "ON CONFLICT ({keys}) {conflict} "
        "RETURNING (s.xmax = 0) AS inserted"
        ") SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged"
    ).format(keys=keys, cols=_ident_list(meta.columns), batch=_batch_sql(meta), store=store, conflict=conflict)


def _batch_sql(meta: TableMeta) -> sql.Composable:
    """One sequence's landing rows (columns + execution_sequence), non-NULL keys, newest version per key
    (param: execution_sequence)."""
    order = [sql.SQL("{}").format(sql.Identifier(c)) for c in meta.unique_columns]
    if meta.watermark_column:
        order.append(sql.SQL("{} DESC NULLS LAST").format(sql.Identifier(meta.watermark_column)))
    order.append(sql.SQL("landing_row_id DESC"))
    not_null = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in meta.unique_columns)
    return sql.SQL(
        "SELECT DISTINCT ON ({keys}) {cols}, execution_sequence FROM {landing} WHERE execution_sequence = %s "
        "AND {not_null} ORDER BY {order}"
    ).format(keys=_ident_list(meta.unique_columns), cols=_ident_list(meta.columns),
             landing=qualified(meta.landing_table), not_null=not_null, order=sql.SQL(", ").join(order))


def store_count_sql(meta: TableMeta) -> sql.Composable:
    """Row counts of the store table's live rows (tombstones left out): all, and those whose watermark
    is before the window end (param, incremental tables only; else all). Portable (PostgreSQL and Redshift)."""
    below = sqlgen.below_end_count(meta, lambda name: '"' + name.replace('"', '""') + '"')
    return sql.SQL("SELECT count(*), {} FROM {} WHERE etl_deleted_datetime IS NULL").format(
        sql.SQL(below), qualified(meta.store_table))



def store_keys_below_end_sql(meta: TableMeta, keys: int) -> sql.Composable:
    """Count of the store table's live rows whose watermark is before the window end and whose key is one
    of ``keys`` given keys. Params: the window end, then each key's values in ``unique_columns`` order
    (text: the literals take the key columns' types). ``key IN (...)``, or for a composite key an OR of
    ANDs: portable (Redshift has no row constructors). Incremental tables only."""
    if len(meta.unique_columns) == 1:
        match = sql.SQL("{} IN ({})").format(sql.Identifier(meta.unique_columns[0]),
                                              sql.SQL(", ".join(["%s"] * keys)))
    else:
        one = sql.SQL("({})").format(sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c))
                                                            for c in meta.unique_columns))
        match = sql.SQL("({})").format(sql.SQL(" OR ").join([one] * keys))
    return sql.SQL("SELECT count(*) FROM {} WHERE etl_deleted_datetime IS NULL AND {} < %s AND {}").format(
        qualified(meta.store_table), sql.Identifier(meta.watermark_column), match)

SOURCE_KEYS_TABLE = "etl_source_keys"


def source_keys_temp_sql(meta: TableMeta) -> list[sql.Composable]:
    """Create a transaction-scoped temp table shaped like the store key, and the COPY into it."""
    keys = _ident_list(meta.unique_columns)
    return [
        sql.SQL("CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
            sql.Identifier(SOURCE_KEYS_TABLE), keys, qualified(meta.store_table)
        ),
        sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(sql.Identifier(SOURCE_KEYS_TABLE), keys),
        sql.SQL("ANALYZE {}").format(sql.Identifier(SOURCE_KEYS_TABLE)),
    ]


def _missing_key_sql(meta: TableMeta) -> sql.Composable:
    """Live store rows ``s`` whose key is not among the copied source keys (hard-deleted at the source)."""
    match = sql.SQL(" AND ").join(sql.SQL("k.{0} = s.{0}").format(sql.Identifier(c)) for c in meta.unique_columns)
    return sql.SQL("s.etl_deleted_datetime IS NULL AND NOT EXISTS (SELECT 1 FROM {} AS k WHERE {})").format(
        sql.Identifier(SOURCE_KEYS_TABLE), match)


def set_aside_sql(meta: TableMeta, sequence: int, with_indexes: bool) -> tuple[sql.Composable, QualifiedName, list]:
    """A store table whose ``unique_columns`` changed is set aside (renamed, kept) and a new one filled.

    Returns ``(probe, kept, statements)``: ``probe`` (param: the sequence) selects true when the
    table holds rows and none written by ``sequence`` (so a rerun after the new table was filled,
    or while it is still empty, sets nothing aside again); ``kept`` is the name the old table
    gets, ``<table>_before_s<sequence>``; ``statements`` rename the table (and, ``with_indexes``,
    its two indexes, whose names the new table needs).
    """
    table = meta.store_table
    kept = suffixed_name(table, f"_before_s{sequence}")
    probe = sql.SQL("SELECT EXISTS (SELECT 1 FROM {t}) AND NOT EXISTS (SELECT 1 FROM {t} WHERE etl_execution_sequence = %s)"
                    ).format(t=qualified(table))
    statements = [sql.SQL("ALTER TABLE {} RENAME TO {}").format(qualified(table), sql.Identifier(kept.table))]
    if with_indexes:
        for name in _store_index_names(meta):
            statements.append(sql.SQL("ALTER INDEX IF EXISTS {}.{} RENAME TO {}").format(
                sql.Identifier(table.schema), sql.Identifier(name),
                sql.Identifier(name.replace(table.table, kept.table, 1))))
    return probe, kept, statements


def carry_tombstones_sql(meta: TableMeta, kept: QualifiedName, kept_columns: set[str]) -> sql.Composable:
    """Tombstones, in a re-keyed store table, for the rows of the table it replaced (``kept``, see
    :func:`set_aside_sql`) that the new one lacks (param: the execution sequence).

    The new table is filled from the whole source, so a row hard-deleted at the source just before
    ``unique_columns`` changed is in neither; without a tombstone, incremental pres builds would
    never see it go. Each key (the new ``unique_columns``) of ``kept`` missing from store is
    inserted once (its newest version by the old ``etl_execution_sequence``, then
    ``etl_updated_datetime``) with its last values (columns ``kept`` lacks: NULL),
    ``etl_deleted_datetime`` set (kept if it was a tombstone already) and ``etl_updated_datetime``
    now. Rows whose new key has a NULL are left out. Idempotent (only missing keys); portable.
    """
    cols = [sql.Identifier(c) if c in kept_columns else sql.SQL("NULL") for c in meta.columns]
    not_null = sql.SQL(" AND ").join(sql.SQL("old.{} IS NOT NULL").format(sql.Identifier(c)) for c in meta.unique_columns)
    match = sql.SQL(" AND ").join(sql.SQL("s.{0} = old.{0}").format(sql.Identifier(c)) for c in meta.unique_columns)
    return sql.SQL(
        "INSERT INTO {store} ({cols}, etl_created_datetime, etl_updated_datetime, etl_deleted_datetime, "
        "etl_execution_sequence) SELECT {cols}, etl_created_datetime, now(), coalesce(etl_deleted_datetime, now()), %s "
        "FROM (SELECT old.*, ROW_NUMBER() OVER (PARTITION BY {okeys} ORDER BY old.etl_execution_sequence DESC NULLS "
        "LAST, old.etl_updated_datetime DESC) AS etl_rn FROM {kept} AS old WHERE {not_null} AND NOT EXISTS "
        "(SELECT 1 FROM {store} AS s WHERE {match})) AS old WHERE etl_rn = 1"
    ).format(store=qualified(meta.store_table), cols=sql.SQL(", ").join(cols), kept=qualified(kept),
             okeys=sql.SQL(", ").join(sql.SQL("old.{}").format(sql.Identifier(c)) for c in meta.unique_columns),
             not_null=not_null, match=match)


def tombstone_sql(meta: TableMeta) -> sql.Composable:
    """Mark live store rows whose key is not among the copied source keys as tombstones (param: the
    execution sequence): ``etl_deleted_datetime`` and ``etl_updated_datetime`` set (pres builds see the
    change), the last seen values kept."""
    return sql.SQL(
        "UPDATE {} AS s SET etl_deleted_datetime = now(), etl_updated_datetime = now(), etl_execution_sequence = %s "
        "WHERE {}").format(qualified(meta.store_table), _missing_key_sql(meta))


_INTEGER_RANK = {"smallint": 1, "integer": 2, "bigint": 3}


def canonical_type(formatted: str) -> str:
    """PostgreSQL ``format_type()`` text -> the spelling :func:`pg_type` produces.

    ``character varying(50)`` -> ``varchar(50)``; ``timestamp(0) without time zone`` ->
    ``timestamp(0)``; ``timestamp with time zone`` -> ``timestamptz(6)``; others unchanged.
    """
    text = formatted.strip().lower()
    if text.startswith("character varying"):
        return "varchar" + text[len("character varying"):]
    if text.startswith("timestamp"):
        precision = text[len("timestamp"):].split(" ")[0] or "(6)"
        aware = text.endswith("with time zone") and "without" not in text
        return ("timestamptz" if aware else "timestamp") + precision
    return text


_TYPE_RE = re.compile(r"([a-z ]+?)(?:\((\d+)(?:,(\d+))?\))?")


def _type_parts(type_: str) -> tuple[str, int | None, int]:
    """``numeric(12,2)`` -> ("numeric", 12, 2); ``varchar(5)`` -> ("varchar", 5, 0); ``text`` -> ("text", None, 0)."""
    m = _TYPE_RE.fullmatch(type_)
    if not m:
        return type_, None, 0
    return m.group(1), int(m.group(2)) if m.group(2) else None, int(m.group(3)) if m.group(3) else 0


def type_change(old: str, new: str) -> str:
    """Classify a column type change: ``same``, ``widen`` (safe ALTER) or ``incompatible``.

    Widening: varchar(n) to a longer varchar or text; numeric(p,s) to one holding every old
    value (more integer digits and at least as many decimals); smallint -> integer -> bigint
    (or numeric with enough digits); timestamp(p)/timestamptz(p) to a higher precision;
    real -> double precision (MySQL float -> double); text or varchar -> jsonb (a MySQL or
    MariaDB json column was staged as text before jsonb; its values are JSON, converted by
    :func:`widen_column_sql`). Everything else is incompatible, among them bit(n) to another
    length (PostgreSQL pads or cuts bit strings on the right, which changes the value) and
    jsonb -> text.
    """
    old, new = canonical_type(old), canonical_type(new)
    if old == new:
        return "same"
    (o, op, os_), (n, np_, ns) = _type_parts(old), _type_parts(new)
    if o == "varchar" and (n == "text" or (n == "varchar" and np_ and op and np_ > op)):
        return "widen"
    if o == "numeric" and n == "numeric" and np_ - ns >= op - os_ and ns >= os_:
        return "widen"
    if o in _INTEGER_RANK and n in _INTEGER_RANK and _INTEGER_RANK[n] > _INTEGER_RANK[o]:
        return "widen"
    if o in _INTEGER_RANK and n == "numeric" and np_ - ns >= {1: 5, 2: 10, 3: 19}[_INTEGER_RANK[o]]:
        return "widen"
    if o == n and o in ("timestamp", "timestamptz") and (np_ or 0) > (op or 0):
        return "widen"
    if (old, new) in (("real", "double precision"), ("text", "jsonb")) or (o == "varchar" and new == "jsonb"):
        return "widen"
    return "incompatible"


def existing_columns_sql() -> str:
    """Query of a table's columns and formatted types (params: schema, table)."""
    return (
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped"
    )


def add_column_sql(table: QualifiedName, column: str, type_: str) -> sql.Composable:
    """``ALTER TABLE ... ADD COLUMN`` for a column newly listed in the metadata."""
    return sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(qualified(table), sql.Identifier(column),
                                                             type_sql(column, type_))


def widen_column_sql(table: QualifiedName, column: str, type_: str) -> sql.Composable:
    """``ALTER TABLE ... ALTER COLUMN ... TYPE`` for a widened source column (see :func:`type_change`);
    to jsonb with ``USING column::jsonb`` (text has no implicit cast to jsonb)."""
    alter = sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {}").format(qualified(table), sql.Identifier(column),
                                                                      type_sql(column, type_))
    if type_ == "jsonb":
        alter = sql.SQL("{} USING {}::jsonb").format(alter, sql.Identifier(column))
    return alter
