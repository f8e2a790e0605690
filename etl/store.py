"""The store step: the sequence's landing rows upserted into store, with hard deletes.

:func:`upsert_store` merges the landing rows into the store table on its business key
(the first load of an empty PostgreSQL table inserts, then builds the indexes), deletes
store rows whose key is gone from the source (:func:`source_row_counts` is the cheap
check) and advances the watermark, all in one transaction.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2

from etl import control, source_mysql, sqlgen, warehouse, warehouse_sql
from etl.dialects import dialect_of
from etl.context import Context
from etl.errors import MergeError, is_transient_postgres, pg_message
from etl.domain import TableMeta, Window
from etl.schema import run_ddl
from etl.staging_format import csv_writer

log = logging.getLogger(__name__)

BULK_INDEX_MEMORY = "256MB"  # maintenance_work_mem for the first load's index builds (server side)


def upsert_store(ctx: Context, meta: TableMeta, sequence: int, from_mysql: bool = True, in_transaction=None) -> dict:
    """Upsert the sequence's landing rows into store and advance the watermark, in one transaction.

    The column types, extracted rows and source counts come from the extract's
    ``etl_control.table_run`` row; the hard-delete counts go back to it (for the quality step).

    Rows with a NULL key column are not merged; they stay in landing and are counted
    (``null_key_rows``) with a warning. With ``[dw_etl] detect_hard_deletes`` on, store
    rows whose key no longer exists in the source are deleted in the same transaction
    (see :func:`_delete_hard_deleted`; MySQL tables only, ``from_mysql``).
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
        counts = None  # () -> the source's (all, below the window end) row counts
        if from_mysql and ctx.etl.detect_hard_deletes:
            if run.source_counts is not None:  # counted beside the extract, after its snapshot
                counts = lambda: run.source_counts  # noqa: E731
            else:  # the source count runs on MySQL while PostgreSQL upserts
                counts = pool.submit(source_row_counts, ctx, meta, window).result
        dialect = dialect_of(conn)
        run_ddl(conn, dialect.store_ddl(meta, run.column_types), meta.store_table, run.column_types, meta.name)
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
            deleted, counts = _delete_hard_deleted(ctx, meta, conn, counts, window) if counts else (0, None)
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
    log.info("store %s: %d inserted, %d updated, %d deleted in %.2f s", meta.store_table, inserted, updated, deleted, seconds)
    return {
        "table": meta.name,
        "execution_sequence": sequence,
        "inserted": inserted,
        "updated": updated,
        "deleted": deleted,
        "null_key_rows": null_keys,
        "seconds": seconds,
    }


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


def source_row_counts(ctx: Context, meta: TableMeta, window: Window | None) -> tuple[int, int]:
    """The source table's row counts (``where_clause`` applied): ``(all, below the window end)``.

    Opens its own source connection (it runs beside the extract or the upsert, in a
    thread); ``window`` is the sequence's recorded window (none, an open end or a full table:
    every row counts as below it). These are what :func:`_delete_hard_deleted` compares store with.
    Raises SourceError when the source is unreachable.
    """
    with source_mysql.connection(ctx.source) as src:
        total, below = source_mysql.fetch_one(src, sqlgen.source_count_query(meta, ctx.source.database),
                                              sqlgen.count_params(meta, window))
    return int(total), int(below)


def _delete_hard_deleted(ctx: Context, meta: TableMeta, conn, source_counts,
                         window: Window | None) -> tuple[int, dict | None]:
    """Delete store rows whose key is gone from the source.

    ``source_counts()`` returns the source's (all, below the window end) row counts,
    ``where_clause`` applied, taken once the extract's snapshot existed (beside the extract,
    or beside the upsert: it is called after store was counted). Cheap check first: only when store holds more rows
    than the source are the source keys streamed into a temp table (via a spooled temp
    file and COPY, memory bounded) and the missing keys deleted. Runs inside the caller's
    transaction. A source insert racing with the check can hide a delete until the next
    run; it can never delete a live row (a key in the snapshot is kept). Returns
    ``(deleted, counts)``: ``counts`` = ``{"source": n, "store": m}`` below the window end
    (what the quality step's count check compares), None when rows were deleted.
    """
    with conn.cursor() as cur:
        cur.execute(warehouse_sql.store_count_sql(meta), sqlgen.count_params(meta, window))
        store_total, store_below = (int(v) for v in cur.fetchone())
    source_total, source_below = source_counts()
    if store_total <= source_total:
        return 0, {"source": source_below, "store": store_below}
    with source_mysql.connection(ctx.source) as src, conn.cursor() as cur:
        create, copy = warehouse_sql.source_keys_temp_sql(meta)
        cur.execute(create)
        with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as spool:
            writer = csv_writer(spool)
            query = sqlgen.source_keys_query(meta, ctx.source.database)
            for rows in source_mysql.stream_rows(src, query, [], ctx.etl.batch_rows):
                writer.writerows([v.decode("utf-8") for v in row] for row in rows)
            spool.seek(0)
            cur.copy_expert(copy, spool, size=warehouse.COPY_BUFFER_BYTES)
        cur.execute(warehouse_sql.delete_missing_keys_sql(meta))
        deleted = cur.rowcount
    log.info("table %s: store had %d rows, source %d: %d hard-deleted keys removed from store",
             meta.name, store_total, source_total, deleted)
    return deleted, None if deleted else {"source": source_below, "store": store_below}

