"""The store step: the sequence's landing rows upserted into store, with tombstones for hard deletes.

:func:`upsert_store` merges the landing rows into the store table on its business key
(the first load of an empty PostgreSQL table inserts, then builds the indexes), marks
store rows whose key is gone from the source as tombstones (``etl_deleted_datetime``; the
key sets are compared when the counts of ``etl.row_counts`` say a key may be missing, or when
the table's metadata changed), refuses a mass delete beyond ``[dw_etl] max_delete_fraction``
(the delete guard) and advances the watermark, all in one transaction.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2

from etl import control, row_counts, source_mysql, sqlgen, warehouse, warehouse_sql
from etl.dialects import dialect_of
from etl.context import Context
from etl.errors import DeleteGuardError, MergeError, is_transient_postgres, pg_message
from etl.domain import QualifiedName, TableMeta, Window
from etl.schema import run_ddl
from etl.staging_format import csv_writer

log = logging.getLogger(__name__)

BULK_INDEX_MEMORY = "256MB"  # maintenance_work_mem for the first load's index builds (server side)


def upsert_store(ctx: Context, meta: TableMeta, sequence: int, from_mysql: bool = True, in_transaction=None) -> dict:
    """Upsert the sequence's landing rows into store and advance the watermark, in one transaction.

    The column types, extracted rows and source counts come from the extract's
    ``etl_control.table_run`` row; the hard-delete counts go back to it (for the quality step).

    Rows with a NULL key column are not merged; they stay in landing and are counted
    (``null_key_rows``) with a warning. With ``[dw_etl] detect_hard_deletes`` on, live store
    rows whose key no longer exists in the source become tombstones in the same transaction
    (see :func:`_tombstone_deleted`; MySQL tables only, ``from_mysql``); ``deleted`` counts them.
    Raises DeleteGuardError (nothing applied) when that would be more than
    ``[dw_etl] max_delete_fraction`` of the table's live rows and ``[dw_etl] allow_deletes`` does
    not name the table.
    ``in_transaction(conn)``, when given, runs inside the upsert transaction (the weblog
    advances its file offsets there). Returns ``{"inserted", "updated", "deleted",
    "null_key_rows", "seconds"}``. Raises MergeError naming the table.
    """
    started = time.monotonic()
    with warehouse.connection(ctx.warehouse) as conn, ThreadPoolExecutor(1) as pool:
        window = control.recorded_window(conn, sequence, meta.name)
        run = control.table_run(conn, sequence, meta.name)
        if run is None:
            raise MergeError(f"table {meta.name!r}: sequence {sequence} has no extract record in etl_control.table_run; "
                             "delete the table's extract marker of this sequence and run again")
        counts = None  # () -> the source's row_counts.SourceCounts
        if from_mysql and ctx.etl.detect_hard_deletes:
            if run.source_counts is not None:  # counted beside the extract, after its snapshot
                counted = row_counts.SourceCounts(*run.source_counts, run.changed_keys)
                counts = lambda: counted  # noqa: E731
            else:  # the source count runs on MySQL while PostgreSQL upserts
                counts = pool.submit(row_counts.source_counts, ctx, meta, window).result
        dialect = dialect_of(conn)
        kept = _set_aside_rekeyed(conn, meta, sequence) if "unique_columns" in run.metadata_changes else None
        run_ddl(conn, dialect.store_ddl(meta, run.column_types), meta.store_table, run.column_types, meta.name,
                own_columns=dialect.store_added_columns)
        try:
            with conn.cursor() as cur:
                if dialect.bulk_loads_store and warehouse.scalar(cur, warehouse_sql.is_empty_sql(meta.store_table)):
                    inserted, deduplicated = _bulk_load_store(cur, meta, sequence)
                    updated = 0
                    # landing holds exactly the extracted rows (the landing step checked), so unless the batch
                    # was deduplicated the rows left out are the NULL-key ones: no second scan of the batch
                    null_keys = _null_key_rows(cur, meta, sequence) if deduplicated else run.extracted_rows - inserted
                else:
                    null_keys = _null_key_rows(cur, meta, sequence)
                    inserted, updated = dialect.upsert(cur, meta, sequence)
            reconcile = bool(run.metadata_changes)  # a full extract after a metadata change
            if reconcile and counts is None and from_mysql:
                log.warning("table %s: its metadata changed, but [dw_etl] detect_hard_deletes is off: store rows the "
                            "new metadata no longer selects stay live", meta.name)
            deleted, counts = (_tombstone_deleted(ctx, meta, conn, counts, window, sequence, reconcile)
                               if counts else (0, None))
            if kept is not None:
                deleted += _carry_tombstones(conn, meta, kept, sequence)
            if in_transaction is not None:
                in_transaction(conn)
            if meta.is_incremental:
                if window is None or window.end is None:
                    raise MergeError(f"table {meta.name!r}: no recorded window for sequence {sequence}")
                control.advance_watermark(conn, meta.name, meta.watermark_column, window.end, sequence)
            control.record_committed_metadata(conn, meta, sequence)
            seconds = round(time.monotonic() - started, 3)
            details = {"inserted": inserted, "updated": updated, "deleted": deleted, "null_key_rows": null_keys}
            if counts is not None:  # reused by the quality step's count check
                details["counts_below_window_end"] = counts
                control.record_counted(conn, sequence, meta.name, counts)
            control.log_step(conn, sequence, "store", meta.name, inserted + updated + deleted, seconds, json.dumps(details))
            conn.commit()
        except psycopg2.Error as exc:
            raise MergeError(
                f"table {meta.name!r}: upsert into {meta.store_table} failed: {pg_message(exc)}",
                transient=is_transient_postgres(exc),
            ) from None
    if null_keys:
        log.warning(
            "table %s: %d landing rows of sequence %d have a NULL in %s and were not merged into store",
            meta.name, null_keys, sequence, ", ".join(meta.unique_columns),
        )
    log.info("store %s: %d inserted, %d updated, %d tombstoned in %.2f s", meta.store_table, inserted, updated, deleted,
             seconds)
    return {
        "table": meta.name,
        "execution_sequence": sequence,
        "inserted": inserted,
        "updated": updated,
        "deleted": deleted,
        "null_key_rows": null_keys,
        "seconds": seconds,
    }


def _set_aside_rekeyed(conn, meta: TableMeta, sequence: int) -> QualifiedName | None:
    """Rename a store table whose ``unique_columns`` changed to ``<table>_before_s<sequence>`` (kept,
    nothing lost; the new key cannot match its rows), so this sequence's full extract fills a new one.
    Idempotent (:func:`etl.warehouse_sql.set_aside_sql`); commits; logs a warning naming both tables.
    Returns the kept table's name when it exists (set aside now or by an earlier try of this
    sequence), else None (no table to set aside)."""
    dialect = dialect_of(conn)
    probe, kept, statements = warehouse_sql.set_aside_sql(meta, sequence, with_indexes=dialect.enforces_keys)
    with conn.cursor() as cur:
        cur.execute(dialect.ddl_lock)
        cur.execute(warehouse_sql.relkind_sql(), [meta.store_table.schema, meta.store_table.table])
        if cur.fetchone() is None or not warehouse.scalar(cur, probe, [sequence]):
            cur.execute(warehouse_sql.relkind_sql(), [kept.schema, kept.table])
            exists = cur.fetchone() is not None
            conn.commit()
            return kept if exists else None
        for statement in statements:
            cur.execute(statement)
    conn.commit()
    log.warning("table %s: unique_columns changed to %s; the store table keyed the old way is kept as %s (drop it when "
                "no longer needed) and %s is filled again from the whole source table",
                meta.name, ", ".join(meta.unique_columns), kept, meta.store_table)
    return kept


def _carry_tombstones(conn, meta: TableMeta, kept: QualifiedName, sequence: int) -> int:
    """Tombstones in the new store table for the rows of the set-aside one it lacks
    (:func:`etl.warehouse_sql.carry_tombstones_sql`), in the caller's transaction; returns how many."""
    with conn.cursor() as cur:
        cur.execute(warehouse_sql.existing_columns_sql(), [kept.schema, kept.table])
        columns = {row[0] for row in cur.fetchall()}
        cur.execute(warehouse_sql.carry_tombstones_sql(meta, kept, columns), [sequence])
        carried = cur.rowcount
    if carried:
        log.info("table %s: %d rows of %s not in the source any more kept as tombstones in %s", meta.name, carried,
                 kept, meta.store_table)
    return carried


def _null_key_rows(cur, meta: TableMeta, sequence: int) -> int:
    """The sequence's landing rows with a NULL in a key column (never merged into store)."""
    return warehouse.scalar(cur, warehouse_sql.null_key_count_sql(meta), [sequence])


def _bulk_load_store(cur, meta: TableMeta, sequence: int) -> tuple[int, bool]:
    """First load of an empty store table (PostgreSQL): insert, then build the indexes.

    Returns ``(rows inserted, deduplicated)``: deduplicated is True when the batch held a
    key more than once and only each key's newest version was inserted.

    See :func:`etl.warehouse_sql.bulk_load_store_sql`: the batch goes in unsorted; only when the
    unique index cannot be built (duplicate keys in the batch) is it inserted again
    deduplicated. Index builds get ``BULK_INDEX_MEMORY`` of server memory.
    """
    bulk = warehouse_sql.bulk_load_store_sql(meta)
    cur.execute("SET LOCAL maintenance_work_mem = %s", [BULK_INDEX_MEMORY])
    for statement in bulk.drop_indexes:
        cur.execute(statement)
    cur.execute("SAVEPOINT bulk_load")
    cur.execute(bulk.insert, [sequence])
    inserted, deduplicated = cur.rowcount, False
    try:
        cur.execute(bulk.create_unique_index)
    except psycopg2.errors.UniqueViolation:
        log.info("store %s: the batch holds a key more than once; inserting its newest versions", meta.store_table)
        cur.execute("ROLLBACK TO SAVEPOINT bulk_load")
        cur.execute(bulk.insert_deduplicated, [sequence])
        inserted, deduplicated = cur.rowcount, True
        cur.execute(bulk.create_unique_index)
    cur.execute(bulk.create_updated_index)
    return inserted, deduplicated


def _tombstone_deleted(ctx: Context, meta: TableMeta, conn, source_counts, window: Window | None, sequence: int,
                       reconcile: bool = False) -> tuple[int, dict]:
    """Mark live store rows whose key is gone from the source as tombstones, under the delete guard.

    ``source_counts()`` returns the source's :class:`etl.row_counts.SourceCounts`, taken once the
    extract's snapshot existed. The key sets are compared when store holds more live keys than
    the source has, or more rows below the window end than the source once the rows changed after
    it are left out on both sides (``etl.row_counts``): a delete must make one so (preflight holds
    ``unique_columns`` to a source key, and NULL keys are counted on neither side); or always with
    ``reconcile`` (the metadata changed: rows it no longer selects go). Then every source key is
    streamed into a temp table (a spooled temp file and COPY, memory bounded) and the live store
    rows without one become tombstones (``etl_deleted_datetime`` set, last values kept). A source
    insert racing with the count can postpone a delete to the next run; a live source row is
    never tombstoned (its key is read after the extract).
    Runs inside the caller's transaction. Raises DeleteGuardError (the caller's transaction is
    then rolled back: nothing applied) when the tombstones would exceed ``[dw_etl]
    max_delete_fraction`` of the live rows and ``[dw_etl] allow_deletes`` does not name the table.
    Returns ``(tombstoned, counts)``: ``counts`` is what the quality step's count check compares
    (:func:`etl.row_counts.compared`); after a key comparison the source is counted again in the
    snapshot its keys were streamed in, and store after the tombstones.
    """
    with conn.cursor() as cur:
        source = source_counts()
        store = row_counts.count_store(cur, meta, window, source.changed_keys)
    if store.live <= source.keyed and store.comparable <= source.below and not reconcile:
        return 0, row_counts.compared(source, store)
    with source_mysql.connection(ctx.source) as src, source_mysql.snapshot(src), conn.cursor() as cur:
        # the counts the quality step compares, in the snapshot of the keys (a delete after it stays live in both)
        source = row_counts.count_source(src, meta, ctx.source.database, window)
        create, copy, analyze = warehouse_sql.source_keys_temp_sql(meta)
        cur.execute(create)
        with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as spool:
            writer = csv_writer(spool)
            query = sqlgen.source_keys_query(meta, ctx.source.database)
            for rows in source_mysql.stream_rows(src, query, [], ctx.etl.batch_rows):
                writer.writerows([v.decode("utf-8") for v in row] for row in rows)
            spool.seek(0)
            cur.copy_expert(copy, spool, size=warehouse.COPY_BUFFER_BYTES)
        cur.execute(analyze)
        cur.execute(warehouse_sql.tombstone_sql(meta), [sequence])
        tombstoned = cur.rowcount
        after = row_counts.count_store(cur, meta, window, source.changed_keys)
    _check_delete_guard(ctx, meta, tombstoned, store.live)
    if tombstoned:
        log.info("table %s: store had %d live rows, the source %d keys: %d hard-deleted rows kept as tombstones",
                 meta.name, store.live, source.keyed, tombstoned)
    return tombstoned, row_counts.compared(source, after)


def _check_delete_guard(ctx: Context, meta: TableMeta, tombstoned: int, live: int) -> None:
    """Raise DeleteGuardError when ``tombstoned`` of ``live`` rows is more than ``[dw_etl]
    max_delete_fraction`` and ``[dw_etl] allow_deletes`` does not name the table; log when it does."""
    limit = ctx.etl.max_delete_fraction
    if not tombstoned or tombstoned <= limit * live:
        return
    share = f"{tombstoned} of {live} live rows ({tombstoned / live:.0%})"
    if ctx.etl.allows_deletes(meta.name):
        log.warning("table %s: %s tombstoned, above [dw_etl] max_delete_fraction = %s, allowed by [dw_etl] "
                    "allow_deletes", meta.name, share, limit)
        return
    raise DeleteGuardError(
        f"table {meta.name!r}: this run would mark {share} of {meta.store_table} as deleted, more than "
        f"[dw_etl] max_delete_fraction = {limit}; nothing was applied. Check the source table (truncated?) and its "
        f"where_clause in {meta.source_file}; if the rows are really gone, allow it for one run: luigi RunJob "
        f"--module luigi_dw_etl --local-scheduler --dw-etl-allow-deletes {meta.name}"
    )
