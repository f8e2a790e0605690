"""The ``etl_control`` schema: runs, recorded watermark windows, watermarks and step log.

Tables (created idempotently by :func:`ensure_schema`)::

    etl_control.run              one row per execution sequence (started/completed time)
    etl_control.extract_window   (execution_sequence, table_name) -> [window_start, window_end)
                                 recorded before extracting, reused when a run is resumed
    etl_control.watermark        table_name -> watermark_column, watermark_value (the end of the
                                 last committed window), advanced in the store upsert transaction
    etl_control.extract_tail     (execution_sequence, table_name) -> fingerprint (rows, checksum)
                                 of the extract's last look-back span [tail_start, tail_end), taken
                                 in the extract's snapshot (see etl.overlap)
    etl_control.weblog_file      per access-log identity: bytes and lines read so far (advanced in
                                 the weblog store upsert transaction)
    etl_control.weblog_window    (execution_sequence, file_id) -> [start_offset, end_offset) of a log
                                 file, recorded before reading, reused when a run is resumed
    etl_control.step_log         one row per finished step: rows and seconds
    etl_control.pres_watermark   per sql/pres file: the start of its last build (etl.pres)
    etl_control.pres_shape       per sql/pres file: fingerprint of its text and of the store
                                 column types its tables were last matched to (etl.pres)

Functions take an open psycopg2 connection and never commit unless they say so. On a
Redshift connection (``etl.warehouse.is_redshift``) they run the statements of
``etl.redshift`` instead (no ON CONFLICT, no advisory locks, no jsonb there).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from etl import redshift
from etl.errors import MergeError
from etl.domain import Window
from etl.warehouse import is_redshift

SCHEMA_DDL = [
    "CREATE SCHEMA IF NOT EXISTS etl_control",
    """CREATE TABLE IF NOT EXISTS etl_control.run (
        execution_sequence integer PRIMARY KEY,
        started_datetime timestamptz NOT NULL DEFAULT now(),
        completed_datetime timestamptz)""",
    """CREATE TABLE IF NOT EXISTS etl_control.extract_window (
        execution_sequence integer NOT NULL,
        table_name text NOT NULL,
        is_incremental boolean NOT NULL,
        watermark_column text,
        window_start timestamp,
        window_end timestamp,
        source_clock timestamp,
        recorded_datetime timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (execution_sequence, table_name))""",
    # added after the first release: upgrade existing warehouses in place
    "ALTER TABLE etl_control.extract_window ADD COLUMN IF NOT EXISTS source_clock timestamp",
    """CREATE TABLE IF NOT EXISTS etl_control.watermark (
        table_name text PRIMARY KEY,
        watermark_column text NOT NULL,
        watermark_value timestamp NOT NULL,
        execution_sequence integer NOT NULL,
        updated_datetime timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS etl_control.weblog_file (
        file_id text PRIMARY KEY,
        path text NOT NULL,
        read_offset bigint NOT NULL,
        line_no bigint NOT NULL,
        size_bytes bigint NOT NULL,
        mtime_ns bigint NOT NULL,
        execution_sequence integer NOT NULL,
        updated_datetime timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS etl_control.weblog_window (
        execution_sequence integer NOT NULL,
        file_id text NOT NULL,
        path text NOT NULL,
        compressed boolean NOT NULL,
        start_offset bigint NOT NULL,
        start_line_no bigint NOT NULL,
        end_offset bigint,
        size_bytes bigint NOT NULL,
        mtime_ns bigint NOT NULL,
        read_offset bigint,
        read_line_no bigint,
        recorded_datetime timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (execution_sequence, file_id))""",
    "ALTER TABLE etl_control.weblog_file ADD COLUMN IF NOT EXISTS fingerprint_bytes integer",
    "ALTER TABLE etl_control.weblog_window ADD COLUMN IF NOT EXISTS fingerprint_bytes integer",
    """CREATE TABLE IF NOT EXISTS etl_control.extract_tail (
        execution_sequence integer NOT NULL,
        table_name text NOT NULL,
        tail_start timestamp NOT NULL,
        tail_end timestamp NOT NULL,
        tail_rows bigint NOT NULL,
        tail_checksum numeric(38,0) NOT NULL,
        fingerprint_version text NOT NULL,
        recorded_datetime timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (execution_sequence, table_name))""",
    """CREATE TABLE IF NOT EXISTS etl_control.step_log (
        execution_sequence integer NOT NULL,
        step text NOT NULL,
        table_name text NOT NULL,
        row_count bigint,
        seconds double precision,
        details jsonb,
        logged_datetime timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS etl_control.pres_watermark (
        name text PRIMARY KEY,
        value timestamptz NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS etl_control.pres_shape (
        file_name text PRIMARY KEY,
        fingerprint text NOT NULL,
        updated_datetime timestamptz NOT NULL DEFAULT now())""",
]


# one column per table, and the columns added by upgrades: all present = schema complete
SCHEMA_COLUMNS = ("run.completed_datetime", "extract_window.source_clock", "watermark.watermark_value",
                  "weblog_file.fingerprint_bytes", "weblog_window.fingerprint_bytes", "step_log.details",
                  "extract_tail.fingerprint_version", "pres_watermark.value",
                  "pres_shape.fingerprint")
# pg_catalog rather than information_schema.columns (a view that costs 5-10 ms per task);
# Redshift has these catalog tables too
SCHEMA_CHECK = (
    "SELECT count(*) FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'etl_control' "
    "AND a.attnum > 0 AND NOT a.attisdropped AND c.relname || '.' || a.attname IN ("
    + ", ".join(f"'{c}'" for c in SCHEMA_COLUMNS) + ")"
)


def ensure_schema(conn) -> None:
    """Create the etl_control schema and tables if missing, and commit.

    Concurrent workers may race on CREATE ... IF NOT EXISTS; on PostgreSQL an advisory lock
    serialises them. On Redshift, RunJob creates the schema before any worker starts
    (``etl.context.warehouse_latest_sequence``).
    """
    with conn.cursor() as cur:
        # fast path, no locks: every task calls this, and ALTER TABLE (even ADD COLUMN IF NOT
        # EXISTS) takes an exclusive lock that deadlocked with a parallel worker's open read
        cur.execute(SCHEMA_CHECK)
        if cur.fetchone()[0] == len(SCHEMA_COLUMNS):
            conn.commit()
            return
        if is_redshift(conn):
            for statement in redshift.CONTROL_DDL:
                cur.execute(statement)
        else:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('etl_control.ensure_schema'))")
            for statement in SCHEMA_DDL:
                cur.execute(statement)
    conn.commit()


def _run(conn, statements: list[str], params: dict) -> None:
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement, params)


def latest_sequence(conn) -> int:
    """Return the highest execution sequence recorded in etl_control.run (0 when none)."""
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(execution_sequence), 0) FROM etl_control.run")
        return cur.fetchone()[0]


def open_run(conn, sequence: int) -> None:
    """Record that ``sequence`` started (no-op when already recorded); no commit."""
    if is_redshift(conn):
        return _run(conn, redshift.OPEN_RUN, {"seq": sequence})
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO etl_control.run (execution_sequence) VALUES (%s) ON CONFLICT DO NOTHING", [sequence]
        )


def close_run(conn, sequence: int) -> None:
    """Record that every task of ``sequence`` completed; no commit."""
    if is_redshift(conn):
        return _run(conn, redshift.CLOSE_RUN, {"seq": sequence})
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO etl_control.run (execution_sequence, completed_datetime) VALUES (%s, now()) "
            "ON CONFLICT (execution_sequence) DO UPDATE SET completed_datetime = now()",
            [sequence],
        )


def recorded_window(conn, sequence: int, table: str) -> Window | None:
    """Return the window recorded for (sequence, table), or None when none was recorded."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT window_start, window_end, source_clock FROM etl_control.extract_window "
            "WHERE execution_sequence = %s AND table_name = %s",
            [sequence, table],
        )
        row = cur.fetchone()
    return Window(row[0], row[1], row[2]) if row else None


def record_window(conn, sequence: int, table: str, is_incremental: bool, watermark_column, window: Window) -> Window:
    """Record the window of (sequence, table) unless one exists, commit, and return the recorded one.

    The first recorded window wins, so concurrent or restarted extracts of one sequence
    always use the same window.
    """
    if is_redshift(conn):
        _run(conn, redshift.RECORD_WINDOW, {
            "seq": sequence, "table": table, "incremental": is_incremental, "column": watermark_column,
            "start": window.start, "end": window.end, "clock": window.source_clock})
        conn.commit()
        return recorded_window(conn, sequence, table)
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO etl_control.extract_window "
            "(execution_sequence, table_name, is_incremental, watermark_column, window_start, window_end, source_clock) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [sequence, table, is_incremental, watermark_column, window.start, window.end, window.source_clock],
        )
    conn.commit()
    return recorded_window(conn, sequence, table)


def current_watermark(conn, table: str, watermark_column: str) -> datetime | None:
    """Return the committed watermark of ``table`` (None before its first load).

    Raises MergeError when the stored watermark belongs to another column: changing the
    watermark column needs an explicit reset (delete the table's etl_control.watermark row).
    """
    with conn.cursor() as cur:
        cur.execute(
            "SELECT watermark_column, watermark_value FROM etl_control.watermark WHERE table_name = %s", [table]
        )
        row = cur.fetchone()
    if row is None:
        return None
    if row[0] != watermark_column:
        raise MergeError(
            f"table {table!r}: the stored watermark is for column {row[0]!r} but the metadata now says "
            f"{watermark_column!r}; to reset, run: DELETE FROM etl_control.watermark WHERE table_name = '{table}'"
        )
    return row[1]


def next_window(conn, table: str, watermark_column: str, source_now: datetime, lookback_seconds: int, safety_lag_seconds: int) -> Window:
    """Compute a new incremental window: ``[last end - lookback, source_now - lag)``.

    The start is None (unbounded) before the table's first committed load; ``source_now``
    is kept as the window's ``source_clock``.
    """
    last = current_watermark(conn, table, watermark_column)
    start = None if last is None else last - timedelta(seconds=lookback_seconds)
    return Window(start, source_now - timedelta(seconds=safety_lag_seconds), source_now)


@dataclass(frozen=True)
class TailFingerprint:
    """The fingerprint of one extract's look-back span ``[start, end)``: its row count and
    the exact sum of the rows' hashes (``etl.sqlgen.range_fingerprint_query``), and the
    ``version`` of the hash expression (it changes with the table's columns or types)."""

    start: datetime
    end: datetime
    rows: int
    checksum: Decimal
    version: str


def record_tail(conn, sequence: int, table: str, tail: TailFingerprint) -> None:
    """Record (replace) the tail fingerprint of (sequence, table); no commit. Portable SQL."""
    with conn.cursor() as cur:
        cur.execute("DELETE FROM etl_control.extract_tail WHERE execution_sequence = %s AND table_name = %s",
                    [sequence, table])
        cur.execute(
            "INSERT INTO etl_control.extract_tail (execution_sequence, table_name, tail_start, tail_end, tail_rows, "
            "tail_checksum, fingerprint_version) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [sequence, table, tail.start, tail.end, tail.rows, tail.checksum, tail.version],
        )


def committed_tail(conn, table: str) -> TailFingerprint | None:
    """The tail fingerprint of the extract behind ``table``'s committed watermark, or None.

    Found only when the sequence that last advanced the watermark recorded a tail ending
    exactly at the watermark (the end of the window its store upsert committed).
    """
    with conn.cursor() as cur:
        cur.execute(
            "SELECT t.tail_start, t.tail_end, t.tail_rows, t.tail_checksum, t.fingerprint_version "
            "FROM etl_control.watermark w JOIN etl_control.extract_tail t ON t.table_name = w.table_name "
            "AND t.execution_sequence = w.execution_sequence AND t.tail_end = w.watermark_value "
            "WHERE w.table_name = %s",
            [table],
        )
        row = cur.fetchone()
    return None if row is None else TailFingerprint(row[0], row[1], int(row[2]), Decimal(row[3]), row[4])


def advance_watermark(conn, table: str, watermark_column: str, value: datetime, sequence: int) -> None:
    """Set the table's watermark to ``value`` (never backwards); no commit (same txn as the upsert)."""
    if is_redshift(conn):
        return _run(conn, redshift.ADVANCE_WATERMARK,
                    {"table": table, "column": watermark_column, "value": value, "seq": sequence})
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO etl_control.watermark (table_name, watermark_column, watermark_value, execution_sequence) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (table_name) DO UPDATE SET "
            "watermark_column = EXCLUDED.watermark_column, "
            "watermark_value = greatest(etl_control.watermark.watermark_value, EXCLUDED.watermark_value), "
            "execution_sequence = EXCLUDED.execution_sequence, updated_datetime = now()",
            [table, watermark_column, value, sequence],
        )


def log_step(conn, sequence: int, step: str, table: str, row_count: int | None, seconds: float, details: str) -> None:
    """Append a step_log row (``details`` is a JSON text); no commit."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO etl_control.step_log (execution_sequence, step, table_name, row_count, seconds, details) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [sequence, step, table, row_count, seconds, details],
        )
