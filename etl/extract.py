"""The extract step of a MySQL table: its watermark window, streamed into staging.

:func:`extract_table` records the table's window in ``etl_control``, counts the rows
outside it (NULL and future watermarks), verifies the look-back overlap (``etl.overlap``)
and streams the window through a server-side cursor into the staging files, feeding the
landing COPY on the way when streaming is on (``etl.landing.StreamedLanding``). What the
landing and store steps need it records in ``etl_control.table_run``; it returns the
extract marker payload (a completion record, shown in the run summary).
"""

from __future__ import annotations

import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from etl import control, metadata_change, overlap, row_counts, source_mysql, sqlgen, warehouse
from etl.context import SOURCE, Context
from etl.errors import ExtractError, SourceError, StagingError
from etl.landing import StreamedLanding
from etl.domain import TableMeta, Window
from etl.schema import columns_missing_in_store
from etl.staging_format import altered_message, write_lines

log = logging.getLogger(__name__)

PROGRESS_EVERY_ROWS = 200_000


def extract_table(ctx: Context, meta: TableMeta, sequence: int, progress=None) -> dict:
    """Extract one table's window (or all of it) into its staging file.

    The window is taken from etl_control when this sequence already recorded one (a
    resumed run), else computed from the committed watermark and the source clock and
    recorded before any row is read. ``progress(rows)`` is called every ~200,000 rows.
    Records what the next steps need in ``etl_control.table_run`` (column types, rows,
    parts, source counts, the streamed landing load; :func:`etl.control.record_extract`).
    Returns the marker payload: window, row count, column types, file, seconds, and the
    values changed on the way (``invalid_dates`` per column; ``altered_rows``,
    ``altered_values`` per column and the first ``altered_keys``: NUL characters removed
    from text, see ``etl.staging_format.write_lines``), each logged as a warning.
    Raises SourceError / ExtractError naming the table.
    """
    started = time.monotonic()
    with warehouse.connection(ctx.warehouse) as wh, source_mysql.connection(ctx.source) as src:
        control.ensure_schema(wh)
        control.open_run(wh, sequence)
        wh.commit()
        window, metadata_changes = _sequence_window(ctx, wh, src, meta, sequence)
        types = source_mysql.read_column_types(src, ctx.source.database, [meta.name]).get(meta.name)
        if types is None:
            raise SourceError(f"table {meta.name!r} no longer exists in source database {ctx.source.database!r}")
        pg_types = {c: sqlgen.pg_type(meta.name, types[c]) for c in meta.columns}
        null_watermarks, future_watermarks = _rows_outside_windows(ctx, src, meta, window)
        select, date_columns = sqlgen.staged_line_select(meta, types, sequence, ctx.dialect.binary_staging)
        snapshotted = source_mysql.is_transactional(src, ctx.source.database, meta.name)
        fingerprinted = snapshotted and meta.is_incremental and window.end is not None
        previous_tail = control.committed_tail(wh, meta.name) if fingerprinted and window.start is not None else None
        wh.commit()  # no warehouse transaction stays open while the rows stream
        on_batch = _progress_reporter(meta, progress)
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
                        counting = pool.submit(row_counts.source_counts, ctx, meta, window)
                    streamed.attach(parts)
                    # in the extract's snapshot: verify the look-back overlap, fingerprint the tail (etl.overlap)
                    tail = overlap.plan(meta, ctx.source.database, types, window, ctx.etl.lookback_seconds,
                                        previous_tail, src, ctx.dialect.binary_staging) if fingerprinted else None
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
                    counted = counting.result() if counting is not None else None
                landing = streamed.commit()  # after the staging file is published
        except (OSError, StagingError) as exc:
            raise ExtractError(
                f"table {meta.name!r}: writing staging file under {ctx.staging.describe()} failed: {exc}"
            ) from None
        if tail is not None:  # the staged rows and this fingerprint come from one snapshot
            control.record_tail(wh, sequence, meta.name, tail.fingerprint())
        # what landing, store and quality take from here (etl_control.table_run), in the extract's commit
        control.record_extract(wh, control.TableRun(sequence, meta.name, pg_types, rows, parts.count,
                                                    (counted.keyed, counted.below) if counted else None, landing,
                                                    metadata_fingerprint=metadata_change.fingerprint(meta),
                                                    metadata_changes=metadata_changes,
                                                    changed_keys=counted.changed_keys if counted else ()))
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
        "source_counts": [counted.keyed, counted.below] if counted else None,
        "source_changed_after_end": len(counted.changed_keys) if counted else None,
        "seconds": seconds,
    }


def _sequence_window(ctx: Context, wh, src, meta: TableMeta, sequence: int) -> tuple[Window, tuple[str, ...]]:
    """The table's window for ``sequence`` and the metadata fields changed since store last committed
    (``etl.metadata_change``): the ones recorded in etl_control (a resumed run), else new ones,
    recorded (committed) with the metadata fingerprint before any row is read. A new incremental
    window starts at the committed watermark minus the look-back and ends at the source clock minus
    the safety lag; it starts unbounded (the whole table) when the metadata changed since the last
    store commit, and once when store lacks a column new in the metadata. A full table's window is
    unbounded."""
    window = control.recorded_window(wh, sequence, meta.name)
    if window is not None:
        return window, control.recorded_window_metadata(wh, sequence, meta.name)[1]
    changes = metadata_change.changes_since_commit(wh, meta)
    if not meta.is_incremental:
        window = Window(None, None)
    elif changes:  # the whole table; not from the watermark, which may be another column's
        clock = source_mysql.source_clock(src)
        window = Window(None, clock - timedelta(seconds=ctx.etl.safety_lag_seconds), clock)
    else:
        window = control.next_window(
            wh, meta.name, meta.watermark_column, source_mysql.source_clock(src),
            ctx.etl.lookback_seconds, ctx.etl.safety_lag_seconds,
        )
    if meta.is_incremental:
        missing = columns_missing_in_store(wh, meta)
        if missing and (window.start is not None or changes):
            log.warning("table %s: %s new in the metadata; extracting the whole table once to fill %s",
                        meta.name, ", ".join(missing), "them" if len(missing) > 1 else "it")
            window = Window(None, window.end, window.source_clock)
    window = control.record_window(wh, sequence, meta.name, meta.is_incremental, meta.watermark_column, window,
                                   fingerprint=metadata_change.fingerprint(meta), changes=changes)
    return window, control.recorded_window_metadata(wh, sequence, meta.name)[1]


def _rows_outside_windows(ctx: Context, src, meta: TableMeta, window: Window) -> tuple[int, int]:
    """Count an incremental table's rows that no window holds: ``(NULL watermark, watermark later than
    the source clock)``, each logged as a warning; (0, 0) for a full table. Raises ExtractError,
    naming the first keys and the choices, for NULL watermarks under ``null_watermark_policy: fail``."""
    if not meta.is_incremental or window.source_clock is None:
        return 0, 0
    clock = window.source_clock
    null_watermarks, future_watermarks = source_mysql.fetch_one(
        src, sqlgen.build_outside_window_count_query(meta, ctx.source.database), [clock, clock])
    null_watermarks, future_watermarks = int(null_watermarks), int(future_watermarks)
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
        log.warning("table %s: %d rows have a NULL %s; %s", meta.name, null_watermarks, meta.watermark_column, action)
    if future_watermarks:
        log.warning("table %s: %d rows have a %s later than the source clock %s; they are read by every "
                    "extract until that time has passed", meta.name, future_watermarks, meta.watermark_column, clock)
    return null_watermarks, future_watermarks


def _progress_reporter(meta: TableMeta, progress):
    """A per-batch callback ``(rows so far) -> None`` that logs, and calls ``progress(rows)``, every
    ``PROGRESS_EVERY_ROWS`` rows."""
    next_report = [PROGRESS_EVERY_ROWS]

    def on_batch(rows: int) -> None:
        if rows >= next_report[0]:
            next_report[0] += PROGRESS_EVERY_ROWS
            log.info("extract %s: %d rows", meta.name, rows)
            if progress is not None:
                progress(rows)

    return on_batch
