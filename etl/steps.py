"""The per-table steps of the main job: preflight, extract, load landing, upsert store.

Each step is a plain function taking the resolved settings, a table's metadata and the
execution sequence, and returning a JSON-able dict (what the Luigi task writes into its
marker and the run summary reads). Steps open their own connections: with
``--workers N`` every task runs in its own process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg2

from etl import control, overlap, redshift, source_mysql, sqlgen, warehouse
from etl.config import EtlSettings, MySQLSettings, WarehouseSettings, etl_settings, mysql_settings, warehouse_settings
from etl.errors import (
    ConfigError,
    EltError,
    ExtractError,
    LoadError,
    MergeError,
    SourceError,
    StagingError,
    is_transient_mysql,
    is_transient_postgres,
)
from etl.metadata import QualifiedName, TableMeta, check_against_source, load_metadata
from etl.staging import BytePipe, altered_message, csv_writer, open_staging, write_lines

log = logging.getLogger(__name__)

SOURCE = "mysql"
PROGRESS_EVERY_ROWS = 200_000
BULK_INDEX_MEMORY = "256MB"  # maintenance_work_mem for the first load's index builds (server side)
UPSERT_WORK_MEMORY = "64MB"  # work_mem of the upsert: its per-key dedup sort stays in memory
COPY_BUFFER_BYTES = 1 << 20


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


def load_context() -> Context:
    """Resolve all configuration sections; raises ConfigError for a wrong value."""
    return Context(source=mysql_settings(), warehouse=warehouse_settings(), etl=etl_settings())


def preflight(ctx: Context) -> dict[str, TableMeta]:
    """Validate the table metadata against the source before any task runs.

    Returns ``{table: TableMeta}``. Raises ConfigError (bad metadata, unknown table or
    column, unsupported type) or SourceError (source unreachable, access denied).
    """
    if ctx.warehouse.flavor == "redshift":
        if not ctx.etl.staging_uri.startswith("s3://"):
            raise ConfigError(
                f"[warehouse] flavor = redshift loads with COPY from S3, but [staging] uri = {ctx.etl.staging_uri!r} "
                "is a local folder; set [staging] uri = s3://bucket/prefix"
            )
        if not ctx.warehouse.iam_role:
            raise ConfigError("[warehouse] flavor = redshift needs [warehouse] iam_role (the role ARN COPY uses to read S3)")
        if ctx.etl.detect_hard_deletes:
            raise ConfigError(
                "[dw_etl] detect_hard_deletes is not available with [warehouse] flavor = redshift (it streams the "
                "source keys with COPY FROM STDIN, which Redshift lacks); set detect_hard_deletes = false"
            )
    tables = load_metadata(ctx.etl.extract_config_dir)
    ctx.staging.check()
    with source_mysql.connection(ctx.source) as conn:
        found = source_mysql.read_column_types(conn, ctx.source.database, list(tables))
    check_against_source(tables, found, ctx.source.database)
    for meta in tables.values():
        for col in meta.columns:
            wanted = sqlgen.pg_type(meta.name, found[meta.name][col])
            if ctx.warehouse.flavor == "redshift":
                redshift.redshift_type(meta.name, col, wanted)  # e.g. decimal(65,30): refused before any task
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

    On Redshift the control schema is created here, once, before any worker starts (it has
    no advisory locks to serialise concurrent CREATE ... IF NOT EXISTS).
    """
    with warehouse.connection(ctx.warehouse) as conn:
        if warehouse.is_redshift(conn):
            control.ensure_schema(conn)
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'etl_control' AND table_name = 'run'"
            )
            if not cur.fetchone()[0]:
                return 0
        return control.latest_sequence(conn)


def extract_table(ctx: Context, meta: TableMeta, sequence: int, progress=None) -> dict:
    """Extract one table's window (or all of it) into its staging file.

    The window is taken from etl_control when this sequence already recorded one (a
    resumed run), else computed from the committed watermark and the source clock and
    recorded before any row is read. ``progress(rows)`` is called every ~200,000 rows.
    Returns the marker payload: window, row count, column types, file, seconds, and the
    values changed on the way (``invalid_dates`` per column; ``altered_rows``,
    ``altered_values`` per column and the first ``altered_keys``: NUL characters removed
    from text, see ``etl.staging.write_lines``), each logged as a warning.
    Raises SourceError / ExtractError naming the table.
    """
    started = time.monotonic()
    with warehouse.connection(ctx.warehouse) as wh, source_mysql.connection(ctx.source) as src:
        control.ensure_schema(wh)
        control.open_run(wh, sequence)
        wh.commit()
        window = control.recorded_window(wh, sequence, meta.name)
        if window is None:
            if meta.is_incremental:
                window = control.next_window(
                    wh, meta.name, meta.watermark_column, source_mysql.source_clock(src),
                    ctx.etl.lookback_seconds, ctx.etl.safety_lag_seconds,
                )
                missing = _columns_missing_in_store(wh, meta)
                if missing and window.start is not None:
                    log.warning("table %s: %s new in the metadata; extracting the whole table once to fill %s",
                                meta.name, ", ".join(missing), "them" if len(missing) > 1 else "it")
                    window = sqlgen.Window(None, window.end, window.source_clock)
            else:
                window = sqlgen.Window(None, None)
            window = control.record_window(wh, sequence, meta.name, meta.is_incremental, meta.watermark_column, window)
        types = source_mysql.read_column_types(src, ctx.source.database, [meta.name]).get(meta.name)
        if types is None:
            raise SourceError(f"table {meta.name!r} no longer exists in source database {ctx.source.database!r}")
        pg_types = {c: sqlgen.pg_type(meta.name, types[c]) for c in meta.columns}
        null_watermarks = future_watermarks = 0
        if meta.is_incremental and window.source_clock is not None:
            cur = src.cursor()
            clock = window.source_clock
            cur.execute(sqlgen.build_outside_window_count_query(meta, ctx.source.database), [clock, clock])
            null_watermarks, future_watermarks = (int(v) for v in cur.fetchone())
            cur.close()
            if null_watermarks and meta.null_watermark_policy == "fail":
                cur = src.cursor()
                cur.execute(sqlgen.null_watermark_keys_query(meta, ctx.source.database))
                keys = ["/".join(source_mysql.text_value(v) for v in row) for row in cur.fetchall()]
                cur.close()
                raise ExtractError(
                    f"table {meta.name!r}: {null_watermarks} rows have a NULL {meta.watermark_column} "
                    f"({', '.join(meta.unique_columns)} = {', '.join(keys)}{', ...' if null_watermarks > len(keys) else ''}); "
                    f"fix them in the source, or set null_watermark_policy: include (read them every run) or "
                    f"exclude (skip them, counted) for {meta.name} in {meta.source_file}"
                )
            if null_watermarks:
                action = "read by every extract" if meta.null_watermark_policy == "include" else "skipped (policy exclude)"
                log.warning("table %s: %d rows have a NULL %s; %s",
                            meta.name, null_watermarks, meta.watermark_column, action)
            if future_watermarks:
                log.warning("table %s: %d rows have a %s later than the source clock %s; they are read by every "
                            "extract until that time has passed", meta.name, future_watermarks, meta.watermark_column, clock)
        select, date_columns = sqlgen.staged_line_select(meta, types, sequence, ctx.warehouse.flavor)
        snapshotted = source_mysql.is_transactional(src, ctx.source.database, meta.name)
        fingerprinted = snapshotted and meta.is_incremental and window.end is not None
        previous_tail = control.committed_tail(wh, meta.name) if fingerprinted and window.start is not None else None
        wh.commit()  # no warehouse transaction stays open while the rows stream
        next_report = [PROGRESS_EVERY_ROWS]

        def on_batch(rows: int) -> None:
            if rows >= next_report[0]:
                next_report[0] += PROGRESS_EVERY_ROWS
                log.info("extract %s: %d rows", meta.name, rows)
                if progress is not None:
                    progress(rows)

        counting = None
        try:
            with StreamedLanding(ctx, meta, sequence, pg_types) as streamed:
                with ctx.staging.write_parts(SOURCE, meta.name, sequence) as parts, \
                        (source_mysql.snapshot(src) if snapshotted else contextlib.nullcontext()), \
                        ThreadPoolExecutor(1) as pool:
                    if snapshotted and ctx.etl.detect_hard_deletes:
                        # the store step's hard-delete check compares store with these counts; taken on a
                        # second connection once this snapshot exists (so they never miss a staged row),
                        # they are ready when the extract is, instead of delaying the store step
                        counting = pool.submit(_source_counts, ctx, meta, window)
                    streamed.attach(parts)
                    # in the extract's snapshot: verify the look-back overlap, fingerprint the tail (etl.overlap)
                    tail = overlap.plan(meta, ctx.source.database, types, window, ctx.etl.lookback_seconds,
                                        previous_tail, src, ctx.warehouse.flavor) if fingerprinted else None
                    read_window = tail.read_window if tail is not None else window
                    query, params = sqlgen.build_extract_query(meta, ctx.source.database, read_window, select,
                                                               tail=tail.flagged if tail is not None else None)
                    log.info("extract %s window [%s, %s)%s", meta.name, window.start, window.end,
                             f", reading from {read_window.start}" if read_window is not window else "")
                    batches = source_mysql.stream_rows(src, query, params, ctx.etl.batch_rows)
                    if tail is not None and tail.flagged is not None:
                        batches = tail.hashing(batches, len(f"{sequence},"))
                    staged = write_lines(
                        parts, list(meta.columns), batches, date_columns, on_batch,
                        # a large extract is split into parts that landing loads with concurrent COPYs (one COPY
                        # keeps one core busy)
                        split_after_rows=ctx.etl.parallel_copy_min_rows, part_count=ctx.etl.parallel_copies,
                        key_columns=list(meta.unique_columns),
                        json_columns=[c for c in meta.columns if pg_types[c] == "jsonb"],
                    )
                    rows = staged.rows
                    streamed.finish(rows)
                    source_counts = list(counting.result()) if counting is not None else None
                landing = streamed.commit()  # after the staging file is published
        except (OSError, StagingError) as exc:
            raise ExtractError(
                f"table {meta.name!r}: writing staging file under {ctx.staging.describe()} failed: {exc}"
            ) from None
        if tail is not None:  # the staged rows and this fingerprint come from one snapshot
            control.record_tail(wh, sequence, meta.name, tail.fingerprint())
            wh.commit()
    seconds = round(time.monotonic() - started, 3)
    for column, n in staged.invalid_dates.items():
        log.warning("table %s, column %s: %d zero or partial dates (e.g. 0000-00-00) staged as NULL", meta.name, column, n)
    if staged.altered_rows:
        log.warning("%s", altered_message(meta.name, staged.altered_rows, staged.altered_values, staged.altered_keys))
    log.info("extract %s: %d rows in %.2f s", meta.name, rows, seconds)
    return {
        "table": meta.name,
        "execution_sequence": sequence,
        "window_start": window.start.isoformat(sep=" ") if window.start else None,
        "window_end": window.end.isoformat(sep=" ") if window.end else None,
        "rows": rows,
        "null_watermark_rows": null_watermarks,
        "future_watermark_rows": future_watermarks,
        "invalid_dates": staged.invalid_dates,
        "altered_rows": staged.altered_rows,
        "altered_values": staged.altered_values,
        "altered_keys": staged.altered_keys,
        "pg_types": pg_types,
        "read_start": read_window.start.isoformat(sep=" ") if read_window.start else None,
        "file": str(ctx.staging.part_path(SOURCE, meta.name, sequence)),
        "parts": parts.count,
        "landing": landing,
        "source_counts": source_counts,
        "seconds": seconds,
    }


def _columns_missing_in_store(conn, meta: TableMeta) -> list[str]:
    """Metadata columns the existing store table lacks ([] when the table does not exist yet)."""
    with conn.cursor() as cur:
        cur.execute(sqlgen.existing_columns_sql(), [meta.store_table.schema, meta.store_table.table])
        existing = {row[0] for row in cur.fetchall()}
    return [c for c in meta.columns if existing and c not in existing]


def _run_ddl(conn, statements, table=None, types: dict[str, str] | None = None, table_name: str = "",
             before=None) -> None:
    """Run idempotent DDL under a lock (parallel workers create schemas too); ``before()``, when
    given, runs under the lock first (a layout migration).

    With ``table`` and ``types``, the existing table then follows schema drift in the same
    transaction: columns newly in the metadata are added, widened source types are
    altered; a narrowing or incompatible change raises ConfigError naming table, column and
    both types (fix the source or migrate the warehouse table by hand). On Redshift only
    new columns are added (its ALTER COLUMN changes VARCHAR lengths only): a value that
    no longer fits fails the COPY, which names the column.
    """
    rs = warehouse.is_redshift(conn)
    with conn.cursor() as cur:
        cur.execute("LOCK etl_control.run" if rs else "SELECT pg_advisory_xact_lock(hashtext('luigi_dw_etl.ddl'))")
        if before is not None:
            before()
        warehouse.execute_all(conn, statements)
        if table is not None and types:
            cur.execute(sqlgen.existing_columns_sql(), [table.schema, table.table])
            existing = dict(cur.fetchall())
            for column, wanted in types.items():
                if column not in existing:
                    if rs:
                        wanted = redshift.redshift_type(table_name, column, wanted)
                    log.warning("table %s: adding column %s %s (new in the metadata)", table, column, wanted)
                    cur.execute(sqlgen.add_column_sql(table, column, wanted))
                    continue
                if rs:
                    continue
                change = sqlgen.type_change(existing[column], wanted)
                if change == "widen":
                    log.warning("table %s: column %s widened from %s to %s in the source; altering", table, column,
                                existing[column], wanted)
                    cur.execute(sqlgen.widen_column_sql(table, column, wanted))
                elif change == "incompatible":
                    conn.rollback()
                    raise ConfigError(
                        f"table {table_name!r}: column {column!r} is {existing[column]} in {table} but the source now "
                        f"gives {wanted}; narrowing or changing a type is not done automatically: fix the source column "
                        f"or alter {table} by hand"
                    )
    conn.commit()


# SQLSTATE classes of a COPY failing on the staged data itself (22 data exception: a value too long,
# out of range or unreadable, a malformed line; 23 integrity constraint violation, e.g. a CHECK
# added to landing by hand): loading the same file again fails again, a new extract may not
DATA_ERROR_CLASSES = ("22", "23")


def load_landing(ctx: Context, meta: TableMeta, sequence: int, extracted: dict, source: str = SOURCE,
                 forget_extract=None) -> dict:
    """COPY the sequence's staging files into the landing table, replacing that sequence's rows.

    ``extracted`` is the extract marker payload (column types, row count, parts). In one
    transaction (PostgreSQL, :func:`_replace_landing_rows`): truncate or create the
    sequence's partition, COPY, drop the partitions older than the kept ones (Redshift:
    delete the sequence's rows, COPY, delete older sequences). A split extract (``parts``
    > 1) is loaded by one COPY per part on parallel connections, each committing on its
    own after the truncate or create committed: a failure leaves
    part of the sequence in landing, which the rerun (no marker was written) replaces.
    When the extract already streamed its rows into landing (``extracted["landing"]``, see
    :class:`StreamedLanding`) and that load was not taken over before, it is taken over
    (recorded in step_log) without a second COPY; a rerun of this step
    (its marker deleted) always COPYs the staging file again. ``source`` names the staging
    folder (``mysql``, ``weblog``). Raises LoadError naming table and file when COPY fails
    or loads another row count than was extracted. Returns ``{"rows", "seconds"}``.

    When the staged data itself cannot be loaded (the file is missing or unreadable, COPY
    fails with a data error - SQLSTATE class 22 or 23, see ``DATA_ERROR_CLASSES`` - or
    loads another row count), loading the same file again would fail forever:
    ``forget_extract()``, when given, is called first and must make the next run extract
    the table again (the task layer deletes the extract marker; the extract reuses the
    window recorded in ``etl_control.extract_window`` and replaces the staging file), and
    the LoadError says so. Without it the message says which marker to delete.
    """
    started = time.monotonic()
    path = ctx.staging.part_path(source, meta.name, sequence)
    with warehouse.connection(ctx.warehouse) as conn:
        rs = warehouse.is_redshift(conn)
        streamed = extracted.get("landing")
        if streamed is not None and not rs and _take_over_streamed(conn, meta, sequence, extracted["rows"], streamed, started):
            seconds = round(time.monotonic() - started, 3)
            log.info("landing %s: %d rows, streamed by the extract (COPY %.2f s beside it); taken over in %.2f s",
                     meta.landing_table, streamed["rows"], streamed["seconds"], seconds)
            return {"table": meta.name, "execution_sequence": sequence, "rows": streamed["rows"],
                    "replaced_rows": streamed["replaced_rows"], "seconds": seconds, "streamed": True,
                    "streamed_copy_seconds": streamed["seconds"]}
        _ensure_landing_table(conn, meta, extracted["pg_types"])
        try:
            with conn.cursor() as cur:
                if rs:
                    cur.execute(sqlgen.landing_delete_sequence_sql(meta), [sequence])
                    replaced = cur.rowcount
                    # Redshift reads the gzip objects itself (IAM role, every part in parallel); nothing
                    # streams through here
                    cur.execute(redshift.copy_sql(meta), [ctx.staging.parts_uri(source, meta.name, sequence),
                                                          ctx.warehouse.iam_role])
                    cur.execute("SELECT pg_last_copy_count()")
                    rows = cur.fetchone()[0]
                    cur.execute(sqlgen.landing_purge_sql(meta), [sequence - ctx.etl.landing_keep_sequences + 1])
                else:
                    parts = extracted.get("parts", 1)

                    def copy(cursor) -> int:
                        if parts == 1:
                            return _copy_part(ctx, meta, source, sequence, 0, cursor)
                        conn.commit()  # the truncate or create commits first; each part's COPY commits on its own
                        return _copy_parts(ctx, meta, source, sequence, parts)

                    rows, replaced = _replace_landing_rows(cur, meta, sequence, ctx.etl.landing_keep_sequences, copy)
        except (FileNotFoundError, StagingError) as exc:
            if getattr(exc, "transient", False):
                raise LoadError(f"table {meta.name!r}: staging file {path} cannot be read ({exc})", transient=True) from None
            raise _bad_staging(f"table {meta.name!r}: staging file {path} cannot be read ({exc})", meta, sequence,
                               forget_extract) from None
        except psycopg2.Error as exc:
            message = f"table {meta.name!r}: COPY of {path} into {meta.landing_table} failed: {_pg_message(exc)}"
            if (exc.pgcode or "")[:2] in DATA_ERROR_CLASSES and not rs:
                raise _bad_staging(message, meta, sequence, forget_extract) from None
            raise LoadError(message, transient=is_transient_postgres(exc)) from None
        if rows != extracted["rows"]:
            conn.rollback()
            raise _bad_staging(f"table {meta.name!r}: {path} held {extracted['rows']} rows at extract but COPY "
                               f"loaded {rows}", meta, sequence, forget_extract)
        seconds = round(time.monotonic() - started, 3)
        control.log_step(conn, sequence, "landing", meta.name, rows, seconds, json.dumps({"replaced": replaced}))
        conn.commit()
    log.info("landing %s: %d rows in %.2f s", meta.landing_table, rows, seconds)
    return {"table": meta.name, "execution_sequence": sequence, "rows": rows, "replaced_rows": replaced, "seconds": seconds}


def _bad_staging(message: str, meta: TableMeta, sequence: int, forget_extract) -> LoadError:
    """The LoadError for staged data that cannot be loaded (see :func:`load_landing`); calls
    ``forget_extract()`` first when given. Returns the error (to raise)."""
    if forget_extract is None:
        return LoadError(f"{message}; fix the source value, then delete the extract marker of table {meta.name!r}, "
                         f"sequence {sequence}, and run again: it extracts the same window again")
    forget_extract()
    return LoadError(f"{message}; the extract of sequence {sequence} was discarded: once the source value (or the "
                     f"warehouse table) is fixed, the next run extracts {meta.name} again, same window, and loads it")


def _ensure_landing_table(conn, meta: TableMeta, pg_types: dict[str, str]) -> None:
    """Create the landing table (this connection's flavour) or follow schema drift; commits.

    On PostgreSQL a landing table of an earlier version (one table with a sequence index)
    is converted to the partitioned layout first, in the same transaction, keeping its rows
    (:func:`_partition_landing_table`).
    """
    rs = warehouse.is_redshift(conn)
    ddl = (redshift.landing_ddl if rs else sqlgen.landing_ddl)(meta, pg_types)
    before = None if rs else lambda: _partition_landing_table(conn, meta, pg_types)
    _run_ddl(conn, ddl, meta.landing_table, pg_types, meta.name, before=before)


def _partition_landing_table(conn, meta: TableMeta, pg_types: dict[str, str]) -> None:
    """Convert an unpartitioned PostgreSQL landing table into one partition per execution
    sequence, copying its rows (landing ids kept), inside the caller's transaction; no-op
    when the table is absent or partitioned already."""
    table = meta.landing_table
    with conn.cursor() as cur:
        cur.execute(sqlgen.relkind_sql(), [table.schema, table.table])
        kind = cur.fetchone()
        if kind is None or kind[0] != "r":
            return
        old = sqlgen.suffixed_name(table, "_unpartitioned")
        cur.execute(sqlgen.existing_columns_sql(), [table.schema, table.table])
        kept = [c for c, _ in cur.fetchall() if c in ("execution_sequence", "landing_row_id", "etl_loaded_datetime", *meta.columns)]
        rename, copy, drop = sqlgen.landing_conversion_sql(meta, old, kept)
        cur.execute(rename)
        warehouse.execute_all(conn, sqlgen.landing_ddl(meta, pg_types))
        cur.execute(sqlgen.table_sql("SELECT DISTINCT execution_sequence FROM {}", old))
        for (sequence,) in cur.fetchall():
            cur.execute(sqlgen.landing_partition_sql(meta, sequence))
        cur.execute(copy)
        rows = cur.rowcount
        cur.execute(drop)
    log.warning("landing %s: converted to one partition per execution sequence (%d rows kept)", table, rows)


def _replace_landing_rows(cur, meta: TableMeta, sequence: int, keep_sequences: int, copy) -> tuple[int, int]:
    """Replace one sequence's landing rows in the caller's transaction (PostgreSQL).

    The sequence's partition is truncated (a reload) or created, ``copy(cur)`` loads it
    (returns the rows it loaded; through the partitioned table, which assigns the
    landing ids), and the partitions of sequences older than the ``keep_sequences``
    newest are dropped. Returns ``(rows, replaced)``: rows loaded, rows the reload replaced.
    """
    table = meta.landing_table
    cur.execute(sqlgen.landing_partitions_sql(), [table.schema, table.table])
    partitions = {}
    for schema, name, bound in cur.fetchall():
        if (seq := sqlgen.partition_sequence(bound)) is not None:
            partitions[seq] = QualifiedName(schema, name)
    replaced = 0
    if sequence in partitions:
        replaced = warehouse.scalar(cur, sqlgen.table_sql("SELECT count(*) FROM {}", partitions[sequence]))
        cur.execute(sqlgen.table_sql("TRUNCATE {}", partitions[sequence]))
    else:
        cur.execute(sqlgen.landing_partition_sql(meta, sequence))
    rows = copy(cur)
    for old in sorted(s for s in partitions if s < sequence - keep_sequences + 1):
        cur.execute(sqlgen.table_sql("DROP TABLE {}", partitions[old]))
    return rows, replaced


class StreamedLanding:
    """The landing load of an extract, fed while the extract writes its staging file (PostgreSQL).

    An extract and its landing COPY done one after the other keep one core busy each in
    turn; fed through a :class:`etl.staging.BytePipe`, the COPY parses rows while MySQL
    (or the log parser) produces the next ones. Use: ``sink`` as the mirror of the staging
    part (``attach(parts)``), ``finish(rows)`` once the staging file is complete and
    ``commit()`` once it is published, all inside ``with StreamedLanding(...)`` (leaving it
    stops the COPY and closes its connection; an error inside commits nothing). Off when
    :func:`streams_landing` says so: then every method does nothing and ``commit()``
    returns None. The COPY starts (landing DDL, then the COPY in a thread of this process,
    on its own connection) once more than ``START_BYTES`` were staged: a smaller extract
    gains nothing from it, and its landing step COPYs the file.
    The landing rows commit only after the staging file exists, and the extract marker
    (written after ``commit()``) records the load in ``"landing"``, which
    :func:`load_landing` takes over. A COPY that fails does not fail the extract: the load
    is rolled back and the landing step COPYs the staging file as usual (and reports the
    error, if it persists). Same transaction as :func:`load_landing`: truncate or create
    the sequence's partition, COPY, drop old partitions.
    """

    START_BYTES = 1 << 20

    def __init__(self, ctx: Context, meta: TableMeta, sequence: int, pg_types: dict[str, str]):
        self.ctx, self.meta, self.sequence, self.pg_types = ctx, meta, sequence, pg_types
        self.pipe = BytePipe()
        self.conn = None
        self.error: BaseException | None = None
        self.result: tuple[int, int] | None = None
        self.seconds = 0.0
        self._thread: threading.Thread | None = None
        self._load_id = uuid.uuid4().hex
        self._pending: list[bytes] | None = []  # staged bytes before the COPY starts; None once it has
        self._pending_bytes = 0
        self.enabled = streams_landing(ctx)
        self._loaded = False

    def __enter__(self) -> "StreamedLanding":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.close(exc)

    def attach(self, parts) -> None:
        """Mirror part 0 of ``parts`` (an ``etl.staging.PartFiles``) into the COPY, when streaming is on."""
        if self.enabled:
            parts.mirror(0, self.sink)

    def _start(self) -> None:
        """Create or migrate the landing table, then start the COPY thread.

        Any failure here (warehouse unreachable, a schema-drift error) only turns the
        streaming off: the landing step meets the same problem and reports it.
        """
        try:
            self.conn = warehouse.connect(self.ctx.warehouse)
            _ensure_landing_table(self.conn, self.meta, self.pg_types)
        except (EltError, psycopg2.Error) as exc:
            log.info("table %s: landing not streamed beside the extract (%s)", self.meta.name, exc)
            self.error = exc
            self.pipe.discard()
            return
        self._thread = threading.Thread(target=self._copy, name=f"landing-{self.meta.name}", daemon=True)
        self._thread.start()

    def sink(self, data: bytes) -> None:
        """Hand staged bytes to the COPY (held back until ``START_BYTES``; dropped once the COPY failed)."""
        if self._pending is None:
            self.pipe.write(data)
            return
        self._pending.append(bytes(data))
        self._pending_bytes += len(data)
        if self._pending_bytes > self.START_BYTES:
            pending, self._pending = self._pending, None
            self._start()
            for chunk in pending:
                self.pipe.write(chunk)

    def _copy(self) -> None:
        started = time.monotonic()
        copy_sql = sqlgen.landing_copy_sql(self.meta)

        def copy(cur) -> int:
            cur.copy_expert(copy_sql, self.pipe, size=COPY_BUFFER_BYTES)
            return cur.rowcount

        try:
            with self.conn.cursor() as cur:
                self.result = _replace_landing_rows(cur, self.meta, self.sequence,
                                                    self.ctx.etl.landing_keep_sequences, copy)
        except BaseException as exc:  # noqa: BLE001 - reported by finish(); the landing step retries
            self.error = exc
            self.pipe.discard()
        self.seconds = round(time.monotonic() - started, 3)

    def finish(self, rows: int) -> bool:
        """The staging file holds ``rows`` rows: wait for the COPY; True when it loaded exactly those."""
        self.pipe.close()
        if self._thread is None:  # off, a small extract, or the COPY could not start (see _start())
            return False
        self._thread.join()
        if self.error is None and self.result is not None and self.result[0] == rows:
            self._loaded = True
            return True
        reason = _pg_message(self.error) if isinstance(self.error, psycopg2.Error) else (
            self.error or f"COPY loaded {self.result[0] if self.result else 0} of {rows} rows")
        log.warning("table %s: the landing load streamed beside the extract failed (%s); the landing step loads "
                    "the staging file instead", self.meta.name, reason)
        self.conn.rollback()
        return False

    def commit(self) -> dict | None:
        """Commit the load (with its step_log row); returns the ``"landing"`` entry of the extract
        marker, or None when nothing was loaded or the commit failed (the landing step then COPYs
        the staging file)."""
        if not self._loaded:
            return None
        rows, replaced = self.result
        try:
            control.log_step(self.conn, self.sequence, "landing_streamed", self.meta.name, rows, self.seconds,
                             json.dumps({"load_id": self._load_id, "replaced": replaced}))
            self.conn.commit()
        except psycopg2.Error as exc:
            log.warning("table %s: committing the streamed landing load failed (%s); the landing step loads the "
                        "staging file instead", self.meta.name, _pg_message(exc))
            return None
        return {"load_id": self._load_id, "rows": rows, "replaced_rows": replaced, "seconds": self.seconds}

    def close(self, error: BaseException | None = None) -> None:
        """Stop the COPY (``error``: the extract failed; nothing is committed) and close the connection."""
        if self._thread is not None and self._thread.is_alive():
            self.pipe.abort(error or ExtractError(f"table {self.meta.name!r}: extract stopped"))
            self._thread.join()
        if self.conn is not None:
            self.conn.close()


def streams_landing(ctx: Context) -> bool:
    """True when extracts stream their rows into landing as they stage them (:class:`StreamedLanding`):
    ``[dw_etl] stream_landing`` on, a PostgreSQL warehouse (Redshift COPYs from S3) and one
    staging part per extract (``parallel_copies = 1``)."""
    return ctx.etl.stream_landing and ctx.warehouse.flavor == "postgres" and ctx.etl.parallel_copies == 1


def _take_over_streamed(conn, meta: TableMeta, sequence: int, extracted_rows: int, streamed: dict,
                        started: float) -> bool:
    """True when the extract's streamed landing load is still this sequence's landing rows and is
    taken over now (recorded in step_log with the seconds since ``started``, a ``time.monotonic()``
    value; committed); False when the landing step must COPY.

    The streamed load committed its rows together with its ``landing_streamed`` step_log row,
    after checking that COPY loaded exactly the extract's rows; only this step replaces a
    sequence's landing rows afterwards, and it logs a ``landing`` row when it does (a later
    extract streams under a new load id). So the two step_log rows decide, without a count.
    """
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FILTER (WHERE step = 'landing_streamed' AND details->>'load_id' = %(id)s), "
            "count(*) FILTER (WHERE step = 'landing' AND details->>'streamed_load' = %(id)s) "
            "FROM etl_control.step_log WHERE execution_sequence = %(seq)s AND table_name = %(table)s "
            "AND step IN ('landing', 'landing_streamed')",
            {"id": streamed["load_id"], "seq": sequence, "table": meta.name},
        )
        loaded, taken = cur.fetchone()
        if not loaded or taken or extracted_rows != streamed["rows"]:
            conn.rollback()
            return False
    control.log_step(conn, sequence, "landing", meta.name, extracted_rows, round(time.monotonic() - started, 3),
                     json.dumps({"streamed_load": streamed["load_id"], "replaced": streamed["replaced_rows"]}))
    conn.commit()
    return True


def _copy_part(ctx: Context, meta: TableMeta, source: str, sequence: int, part: int, cur) -> int:
    """COPY one staging part into the landing table on ``cur``; returns the rows loaded."""
    with ctx.staging.open_part(source, meta.name, sequence, part) as handle:
        cur.copy_expert(sqlgen.landing_copy_sql(meta), handle, size=COPY_BUFFER_BYTES)
    return cur.rowcount


def _copy_parts(ctx: Context, meta: TableMeta, source: str, sequence: int, parts: int) -> int:
    """COPY ``parts`` staging parts at once, one connection (and transaction) each; returns the rows loaded."""
    def copy(part: int) -> int:
        with warehouse.connection(ctx.warehouse) as conn:
            with conn.cursor() as cur:
                rows = _copy_part(ctx, meta, source, sequence, part, cur)
            conn.commit()
            return rows

    with ThreadPoolExecutor(parts) as pool:
        return sum(pool.map(copy, range(parts)))


def upsert_store(
    ctx: Context, meta: TableMeta, sequence: int, extracted: dict, from_mysql: bool = True, in_transaction=None
) -> dict:
    """Upsert the sequence's landing rows into store and advance the watermark, in one transaction.

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
        counts = None  # () -> the source's (all, below the window end) row counts
        if from_mysql and ctx.etl.detect_hard_deletes:
            if extracted.get("source_counts") is not None:  # counted beside the extract, after its snapshot
                counts = lambda: tuple(extracted["source_counts"])  # noqa: E731
            else:  # the source count runs on MySQL while PostgreSQL upserts
                counts = pool.submit(_source_counts, ctx, meta, window).result
        rs = warehouse.is_redshift(conn)
        ddl = (redshift.store_ddl if rs else sqlgen.store_ddl)(meta, extracted["pg_types"])
        _run_ddl(conn, ddl, meta.store_table, extracted["pg_types"], meta.name)
        try:
            with conn.cursor() as cur:
                if not rs and warehouse.scalar(cur, sqlgen.is_empty_sql(meta.store_table)):
                    inserted, deduplicated = _bulk_load_store(cur, meta, sequence)
                    updated = 0
                    # landing holds exactly the extracted rows (the landing step checked), so unless the batch
                    # was deduplicated the rows left out are the NULL-key ones: no second scan of the batch
                    null_keys = _null_key_rows(cur, meta, sequence) if deduplicated else extracted["rows"] - inserted
                else:
                    null_keys = _null_key_rows(cur, meta, sequence)
                    if rs:
                        inserted, updated = _redshift_upsert(cur, meta, sequence)
                    else:
                        cur.execute("SET LOCAL work_mem = %s", [UPSERT_WORK_MEMORY])  # the batch dedup sorts in memory
                        cur.execute(sqlgen.upsert_sql(meta), [sequence])
                        inserted, updated = cur.fetchone()
            deleted, counts = _delete_hard_deleted(ctx, meta, conn, counts, window) if counts else (0, None)
            if in_transaction is not None:
                in_transaction(conn)
            if meta.is_incremental:
                if window is None or window.end is None:
                    raise MergeError(f"table {meta.name!r}: no recorded window for sequence {sequence}")
                control.advance_watermark(conn, meta.name, meta.watermark_column, window.end, sequence)
            seconds = round(time.monotonic() - started, 3)
            details = {"inserted": inserted, "updated": updated, "deleted": deleted, "null_key_rows": null_keys}
            if counts is not None:  # reused by the quality step's count check
                details["counts_below_window_end"] = counts
            control.log_step(conn, sequence, "store", meta.name, inserted + updated + deleted, seconds, json.dumps(details))
            conn.commit()
        except psycopg2.Error as exc:
            raise MergeError(
                f"table {meta.name!r}: upsert into {meta.store_table} failed: {_pg_message(exc)}",
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
    return warehouse.scalar(cur, sqlgen.null_key_count_sql(meta), [sequence])


def _bulk_load_store(cur, meta: TableMeta, sequence: int) -> tuple[int, bool]:
    """First load of an empty store table (PostgreSQL): insert, then build the indexes.

    Returns ``(rows inserted, deduplicated)``: deduplicated is True when the batch held a
    key more than once and only each key's newest version was inserted.

    See :func:`etl.sqlgen.bulk_load_store_sql`: the batch goes in unsorted; only when the
    unique index cannot be built (duplicate keys in the batch) is it inserted again
    deduplicated. Index builds get ``BULK_INDEX_MEMORY`` of server memory.
    """
    bulk = sqlgen.bulk_load_store_sql(meta)
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


def _redshift_upsert(cur, meta: TableMeta, sequence: int) -> tuple[int, int]:
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


def _source_counts(ctx: Context, meta: TableMeta, window: sqlgen.Window | None) -> tuple[int, int]:
    """The source table's row counts (``where_clause`` applied): all, and those below the window end."""
    with source_mysql.connection(ctx.source) as src:
        total, below = source_mysql.fetch_one(src, sqlgen.source_count_query(meta, ctx.source.database),
                                              sqlgen.count_params(meta, window))
    return int(total), int(below)


def _delete_hard_deleted(ctx: Context, meta: TableMeta, conn, source_counts,
                         window: sqlgen.Window | None) -> tuple[int, dict | None]:
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
        cur.execute(sqlgen.store_count_sql(meta), sqlgen.count_params(meta, window))
        store_total, store_below = (int(v) for v in cur.fetchone())
    source_total, source_below = source_counts()
    if store_total <= source_total:
        return 0, {"source": source_below, "store": store_below}
    with source_mysql.connection(ctx.source) as src, conn.cursor() as cur:
        create, copy = sqlgen.source_keys_temp_sql(meta)
        cur.execute(create)
        with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as spool:
            writer = csv_writer(spool)
            query = sqlgen.source_keys_query(meta, ctx.source.database)
            for rows in source_mysql.stream_rows(src, query, [], ctx.etl.batch_rows):
                writer.writerows([v.decode("utf-8") for v in row] for row in rows)
            spool.seek(0)
            cur.copy_expert(copy, spool, size=COPY_BUFFER_BYTES)
        cur.execute(sqlgen.delete_missing_keys_sql(meta))
        deleted = cur.rowcount
    log.info("table %s: store had %d rows, source %d: %d hard-deleted keys removed from store",
             meta.name, store_total, source_total, deleted)
    return deleted, None if deleted else {"source": source_below, "store": store_below}


def with_retries(step: str, work, attempts: int, delay_seconds: float):
    """Run ``work()``; on a transient fault retry it up to ``attempts`` more times.

    Waits ``delay_seconds``, doubling each time (exponential backoff). Transient faults are
    EltError with ``transient`` set, or raw driver errors classified by
    ``is_transient_postgres`` / ``is_transient_mysql``; anything else (bad data, SQL
    errors, configuration) is raised at once. Every step of the pipeline is idempotent,
    so running it again is safe. Returns what ``work()`` returns.
    """
    import mysql.connector
    import psycopg2

    for attempt in range(attempts + 1):
        try:
            return work()
        except (EltError, psycopg2.Error, mysql.connector.Error) as exc:
            transient = (
                exc.transient if isinstance(exc, EltError)
                else is_transient_postgres(exc) if isinstance(exc, psycopg2.Error)
                else is_transient_mysql(exc)
            )
            if not transient or attempt == attempts:
                raise
            wait = delay_seconds * (2 ** attempt)
            log.warning("%s: transient fault (%s); retry %d of %d in %.1f s",
                        step, " ".join(str(exc).split())[:300], attempt + 1, attempts, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


def close_run(ctx: Context, sequence: int) -> None:
    """Record in etl_control.run that every task of ``sequence`` completed."""
    with warehouse.connection(ctx.warehouse) as conn:
        control.close_run(conn, sequence)
        conn.commit()


def _pg_message(exc: psycopg2.Error) -> str:
    text = (exc.pgerror or str(exc)).strip()
    return " ".join(text.split())
