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
    etl_control.quality_check    per sequence: the quality checks' results (etl.quality)
    etl_control.ip_country_cache per IP address: its country, looked up once (etl.geo)

The tables are defined once, in :data:`CONTROL_TABLES`; each warehouse dialect spells the
DDL (``etl.dialects``). Functions take an open psycopg2 connection and never commit unless
they say so; the writes that differ by warehouse (no ON CONFLICT on Redshift) are the
dialect's statements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from etl.dialects import dialect_of
from etl.domain import Window
from etl.errors import MergeError

@dataclass(frozen=True)
class ControlColumn:
    """One column of an ``etl_control`` table, in a logical type each dialect spells its way
    (``etl.dialects``: e.g. ``name`` is text on PostgreSQL, VARCHAR(256) on Redshift).

    ``key`` columns form the primary key; ``default_now`` columns default to the insert's
    time; ``added`` columns came after the first release (PostgreSQL adds them in place).
    """

    name: str
    type: str
    nullable: bool = False
    key: bool = False
    default_now: bool = False
    added: bool = False


def _columns(spec: str) -> tuple[ControlColumn, ...]:
    """Columns from ``"name type [key|null|now|added ...]; ..."`` (the compact form below)."""
    columns = []
    for item in spec.split(";"):
        name, type_, *flags = item.split()
        columns.append(ControlColumn(name, type_, nullable="null" in flags, key="key" in flags,
                                     default_now="now" in flags, added="added" in flags))
    return tuple(columns)


# The one definition of the etl_control schema (see the module docstring for what each holds).
CONTROL_TABLES = {
    "run": _columns("execution_sequence integer key; started_datetime moment now; completed_datetime moment null"),
    "extract_window": _columns(
        "execution_sequence integer key; table_name name key; is_incremental boolean; watermark_column name null; "
        "window_start timestamp null; window_end timestamp null; source_clock timestamp null added; "
        "recorded_datetime moment now"),
    "watermark": _columns(
        "table_name name key; watermark_column name; watermark_value timestamp; execution_sequence integer; "
        "updated_datetime moment now"),
    "weblog_file": _columns(
        "file_id name key; path path; read_offset bigint; line_no bigint; size_bytes bigint; mtime_ns bigint; "
        "execution_sequence integer; updated_datetime moment now; fingerprint_bytes integer null added"),
    "weblog_window": _columns(
        "execution_sequence integer key; file_id name key; path path; compressed boolean; start_offset bigint; "
        "start_line_no bigint; end_offset bigint null; size_bytes bigint; mtime_ns bigint; read_offset bigint null; "
        "read_line_no bigint null; recorded_datetime moment now; fingerprint_bytes integer null added"),
    "extract_tail": _columns(
        "execution_sequence integer key; table_name name key; tail_start timestamp; tail_end timestamp; "
        "tail_rows bigint; tail_checksum checksum; fingerprint_version label; recorded_datetime moment now"),
    "step_log": _columns(
        "execution_sequence integer; step label; table_name name; row_count bigint null; seconds seconds null; "
        "details json null; logged_datetime moment now"),
    "pres_watermark": _columns("name name key; value timestamptz"),
    "pres_shape": _columns("file_name name key; fingerprint label; updated_datetime moment now"),
    "quality_check": _columns(
        "execution_sequence integer; check_name varchar(64); table_name varchar(256); problem_count bigint; "
        "level varchar(8); status varchar(8); details varchar(1024) null; checked_datetime timestamp"),
    "ip_country_cache": _columns(
        "ip_address varchar(64) key; country varchar(2); source varchar(16); looked_up_datetime timestamp"),
}

# pg_catalog rather than information_schema.columns (a view that costs 5-10 ms per task);
# Redshift has these catalog tables too. Every column present = schema complete.
SCHEMA_COLUMNS = tuple(f"{table}.{c.name}" for table, columns in CONTROL_TABLES.items() for c in columns)
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
        dialect = dialect_of(conn)
        if dialect.control_lock:
            cur.execute(dialect.control_lock)
        for statement in dialect.control_ddl(CONTROL_TABLES):
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
    _run(conn, dialect_of(conn).open_run, {"seq": sequence})


def close_run(conn, sequence: int) -> None:
    """Record that every task of ``sequence`` completed; no commit."""
    _run(conn, dialect_of(conn).close_run, {"seq": sequence})


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
    _run(conn, dialect_of(conn).record_window, {
        "seq": sequence, "table": table, "incremental": is_incremental, "column": watermark_column,
        "start": window.start, "end": window.end, "clock": window.source_clock})
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
    _run(conn, dialect_of(conn).advance_watermark,
         {"table": table, "column": watermark_column, "value": value, "seq": sequence})


def log_step(conn, sequence: int, step: str, table: str, row_count: int | None, seconds: float, details: str) -> None:
    """Append a step_log row (``details`` is a JSON text); no commit."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO etl_control.step_log (execution_sequence, step, table_name, row_count, seconds, details) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [sequence, step, table, row_count, seconds, details],
        )
