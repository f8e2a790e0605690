"""The ``etl_control`` schema: runs, recorded watermark windows, watermarks and step log.

Tables (created idempotently by :func:`ensure_schema`)::

    etl_control.run              one row per execution sequence (started/completed time)
    etl_control.extract_window   (execution_sequence, table_name) -> [window_start, window_end)
                                 recorded before extracting, reused when a run is resumed, with
                                 the metadata fingerprint and changes it was computed under
    etl_control.watermark        table_name -> watermark_column, watermark_value (the end of the
                                 last committed window), advanced in the store upsert transaction
    etl_control.extract_tail     (execution_sequence, table_name) -> fingerprint (rows, checksum)
                                 of the extract's last look-back span [tail_start, tail_end), taken
                                 in the extract's snapshot (see etl.overlap)
    etl_control.weblog_file      per access-log identity: bytes and lines read so far, generation
                                 and tail digest (advanced in the weblog store upsert transaction),
                                 inode of the plain file read and alias fingerprint (etl.weblog.files)
    etl_control.weblog_window    (execution_sequence, file_id) -> [start_offset, end_offset) of a log
                                 file, recorded before reading, reused when a run is resumed
    etl_control.table_run        (execution_sequence, table_name) -> what the chain's steps hand on:
                                 the extract's column types, rows, staging parts, source counts and
                                 streamed landing load (written in the extract's commit), then the
                                 rows landed and the store step's counts (see TableRun)
    etl_control.committed_metadata  table_name -> the metadata fingerprint its last store commit was
                                 extracted under (etl.metadata_change), written in the upsert transaction
    etl_control.step_log         one row per finished step: rows and seconds (an audit log, never
                                 read by the steps)
    etl_control.pres_watermark   per sql/pres file: the start of its last build (etl.pres)
    etl_control.pres_shape       per sql/pres file: fingerprint of its text and of the store
                                 column types its tables were last matched to (etl.pres)
    etl_control.quality_check    per sequence: the quality checks' results (etl.quality)
    etl_control.ip_country_cache per IP address: its country, looked up once (etl.geo)
    etl_control.run_holder       per process holding the warehouse run lock: scheduler identity,
                                 host, pid, start, command line, heartbeat (etl.runlock)

The tables are defined once, in :data:`CONTROL_TABLES`; each warehouse dialect spells the
DDL (``etl.dialects``). Functions take an open psycopg2 connection and never commit unless
they say so; the writes that differ by warehouse (no ON CONFLICT on Redshift) are the
dialect's statements.
"""

from __future__ import annotations

import json
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
        "recorded_datetime moment now; metadata_fingerprint json null added; metadata_changes json null added"),
    "watermark": _columns(
        "table_name name key; watermark_column name; watermark_value timestamp; execution_sequence integer; "
        "updated_datetime moment now"),
    "weblog_file": _columns(
        "file_id name key; path path; read_offset bigint; line_no bigint; size_bytes bigint; mtime_ns bigint; "
        "execution_sequence integer; updated_datetime moment now; fingerprint_bytes integer null added; "
        "generation integer null added; tail_digest label null added; inode label null added; "
        "alias_id label null added; alias_bytes integer null added"),
    "weblog_window": _columns(
        "execution_sequence integer key; file_id name key; path path; compressed boolean; start_offset bigint; "
        "start_line_no bigint; end_offset bigint null; size_bytes bigint; mtime_ns bigint; read_offset bigint null; "
        "read_line_no bigint null; recorded_datetime moment now; fingerprint_bytes integer null added; "
        "generation integer null added; read_tail_digest label null added; replaced_offset bigint null added; "
        "inode label null added; alias_id label null added; alias_bytes integer null added"),
    "extract_tail": _columns(
        "execution_sequence integer key; table_name name key; tail_start timestamp; tail_end timestamp; "
        "tail_rows bigint; tail_checksum checksum; fingerprint_version label; recorded_datetime moment now"),
    "table_run": _columns(
        "execution_sequence integer key; table_name name key; column_types json; extracted_rows bigint; "
        "staged_parts integer; source_rows bigint null; source_rows_below_end bigint null; streamed_load_id label null; "
        "streamed_rows bigint null; streamed_replaced_rows bigint null; streamed_seconds seconds null; "
        "landed_rows bigint null; landed_streamed boolean null; counted_source_rows bigint null; "
        "counted_store_rows bigint null; extracted_datetime moment now; metadata_fingerprint json null added; "
        "metadata_changes json null added; source_changed_keys json null added; counted_changed_rows bigint null added"),
    "committed_metadata": _columns(
        "table_name name key; fingerprint json; execution_sequence integer; committed_datetime moment now"),
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
    # the processes holding the warehouse run lock (etl.runlock): one row each, deleted at exit
    "run_holder": _columns(
        "run_identity path key; host name key; process_id integer key; command_line path null; "
        "started_datetime moment now; heartbeat_datetime moment now"),
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


def record_window(conn, sequence: int, table: str, is_incremental: bool, watermark_column, window: Window,
                  fingerprint: dict | None = None, changes=()) -> Window:
    """Record the window of (sequence, table) unless one exists, commit, and return the recorded one.

    The first recorded window wins, so concurrent or restarted extracts of one sequence
    always use the same window. ``fingerprint`` and ``changes``, when given, are recorded
    with it in the same commit (:func:`record_window_metadata`).
    """
    _run(conn, dialect_of(conn).record_window, {
        "seq": sequence, "table": table, "incremental": is_incremental, "column": watermark_column,
        "start": window.start, "end": window.end, "clock": window.source_clock})
    if fingerprint is not None:
        record_window_metadata(conn, sequence, table, fingerprint, changes)
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


@dataclass(frozen=True)
class TableRun:
    """What one table's steps of one sequence hand on to each other (``etl_control.table_run``).

    ``column_types``: column -> PostgreSQL type (``etl.sqlgen.pg_type``) of the extracted
    columns; ``extracted_rows`` and ``staged_parts`` of the staging file; ``source_counts``
    ``(all, below the window end)`` counted beside the extract, or None, and ``changed_keys`` the
    keys counted with them whose watermark is not before the window end (``etl.row_counts``); ``streamed`` the
    landing load the extract streamed and committed (``{"load_id", "rows", "replaced_rows",
    "seconds"}``) or None; ``landed_rows`` (None until a landing step finished) and whether
    it took the streamed load over; ``counted`` the store step's hard-delete counts below the
    window end (``{"source": n, "store": m, "changed": k}``, ``etl.row_counts.compared``) or None. ``metadata_fingerprint`` is the table
    metadata the extract ran under (``etl.metadata_change.fingerprint``; None for the access
    logs); ``metadata_changes`` the fields changed since store last committed, which made the
    extract read the whole table (empty when none).
    """

    sequence: int
    table: str
    column_types: dict
    extracted_rows: int
    staged_parts: int
    source_counts: tuple[int, int] | None = None
    streamed: dict | None = None
    landed_rows: int | None = None
    landed_streamed: bool | None = None
    counted: dict | None = None
    metadata_fingerprint: dict | None = None
    metadata_changes: tuple[str, ...] = ()
    changed_keys: tuple[tuple[str, ...], ...] = ()


_TABLE_RUN_COLUMNS = ("column_types, extracted_rows, staged_parts, source_rows, source_rows_below_end, streamed_load_id, "
                      "streamed_rows, streamed_replaced_rows, streamed_seconds, landed_rows, landed_streamed, "
                      "counted_source_rows, counted_store_rows, metadata_fingerprint, metadata_changes, "
                      "source_changed_keys, counted_changed_rows")


def record_extract(conn, run: TableRun) -> None:
    """Record (replace) the extract's row of ``etl_control.table_run``; no commit (the extract's
    own). Portable SQL; landing, store and quality read it back with :func:`table_run`."""
    counts = run.source_counts or (None, None)
    streamed = run.streamed or {}
    with conn.cursor() as cur:
        cur.execute("DELETE FROM etl_control.table_run WHERE execution_sequence = %s AND table_name = %s",
                    [run.sequence, run.table])
        cur.execute(
            "INSERT INTO etl_control.table_run (execution_sequence, table_name, column_types, extracted_rows, "
            "staged_parts, source_rows, source_rows_below_end, streamed_load_id, streamed_rows, streamed_replaced_rows, "
            "streamed_seconds, metadata_fingerprint, metadata_changes, source_changed_keys) VALUES (%s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, %s, %s, %s, %s, %s)",
            [run.sequence, run.table, json.dumps(run.column_types), run.extracted_rows, run.staged_parts, *counts,
             streamed.get("load_id"), streamed.get("rows"), streamed.get("replaced_rows"), streamed.get("seconds"),
             None if run.metadata_fingerprint is None else json.dumps(run.metadata_fingerprint),
             json.dumps(list(run.metadata_changes)) if run.metadata_changes else None,
             json.dumps([list(k) for k in run.changed_keys]) if run.changed_keys else None],
        )


def table_run(conn, sequence: int, table: str) -> TableRun | None:
    """The ``etl_control.table_run`` row of (sequence, table), or None when no extract recorded one."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT {_TABLE_RUN_COLUMNS} FROM etl_control.table_run "
                    "WHERE execution_sequence = %s AND table_name = %s", [sequence, table])
        row = cur.fetchone()
    if row is None:
        return None
    (types, rows, parts, source_rows, source_below, load_id, streamed_rows, replaced, seconds, landed, landed_streamed,
     counted_source, counted_store, fingerprint, changes, changed_keys, counted_changed) = row
    return TableRun(
        sequence, table, json.loads(types) if isinstance(types, str) else types, int(rows), int(parts),
        None if source_rows is None else (int(source_rows), int(source_below)),
        None if load_id is None else {"load_id": load_id, "rows": int(streamed_rows), "replaced_rows": int(replaced),
                                      "seconds": seconds},
        None if landed is None else int(landed), landed_streamed,
        None if counted_source is None else {"source": int(counted_source), "store": int(counted_store),
                                             "changed": int(counted_changed or 0)},
        _json_value(fingerprint), tuple(_json_value(changes) or ()),
        tuple(tuple(k) for k in _json_value(changed_keys) or ()),
    )


def record_landed(conn, sequence: int, table: str, rows: int, streamed: bool) -> None:
    """Record that the landing step loaded ``rows`` (``streamed``: by taking the extract's streamed
    load over); no commit (the landing step's own)."""
    with conn.cursor() as cur:
        cur.execute("UPDATE etl_control.table_run SET landed_rows = %s, landed_streamed = %s "
                    "WHERE execution_sequence = %s AND table_name = %s", [rows, streamed, sequence, table])


def record_counted(conn, sequence: int, table: str, counts: dict) -> None:
    """Record the store step's row counts below the window end (``{"source": n, "store": m, "changed": k}``,
    ``etl.row_counts.compared``); no commit (the upsert's transaction). The quality step's count check
    reuses them."""
    with conn.cursor() as cur:
        cur.execute("UPDATE etl_control.table_run SET counted_source_rows = %s, counted_store_rows = %s, "
                    "counted_changed_rows = %s WHERE execution_sequence = %s AND table_name = %s",
                    [counts["source"], counts["store"], counts.get("changed", 0), sequence, table])


def counted_rows(conn, sequence: int) -> dict[str, dict]:
    """``{table: {"source": n, "store": m, "changed": k}}`` counted by the sequence's store steps; tables
    without are absent."""
    with conn.cursor() as cur:
        cur.execute("SELECT table_name, counted_source_rows, counted_store_rows, counted_changed_rows "
                    "FROM etl_control.table_run WHERE execution_sequence = %s AND counted_source_rows IS NOT NULL",
                    [sequence])
        return {table: {"source": int(source), "store": int(store), "changed": int(changed or 0)}
                for table, source, store, changed in cur.fetchall()}


# --- table metadata fingerprints (etl.metadata_change computes and compares them) -------------

def _json_value(value):
    """A json control column's value as Python (jsonb arrives parsed, Redshift's VARCHAR as text)."""
    return json.loads(value) if isinstance(value, str) else value


def record_window_metadata(conn, sequence: int, table: str, fingerprint: dict, changes) -> None:
    """Record the metadata fingerprint and the changed fields (``changes``, field names; none ->
    NULL) a new window of (sequence, table) was computed under, unless some are recorded already
    (the first recorded window wins, see :func:`record_window`); no commit. Portable SQL."""
    with conn.cursor() as cur:
        cur.execute("UPDATE etl_control.extract_window SET metadata_fingerprint = %s, metadata_changes = %s "
                    "WHERE execution_sequence = %s AND table_name = %s AND metadata_fingerprint IS NULL",
                    [json.dumps(fingerprint), json.dumps(list(changes)) if changes else None, sequence, table])


def recorded_window_metadata(conn, sequence: int, table: str) -> tuple[dict | None, tuple[str, ...]]:
    """``(fingerprint, changed fields)`` recorded with the window of (sequence, table); ``(None, ())``
    when no window or no fingerprint was recorded (a window recorded before fingerprints existed)."""
    with conn.cursor() as cur:
        cur.execute("SELECT metadata_fingerprint, metadata_changes FROM etl_control.extract_window "
                    "WHERE execution_sequence = %s AND table_name = %s", [sequence, table])
        row = cur.fetchone()
    if row is None:
        return None, ()
    return _json_value(row[0]), tuple(_json_value(row[1]) or ())


def committed_metadata(conn, table: str) -> tuple[dict, int] | None:
    """``(fingerprint, sequence)`` of ``table``'s last store commit, or None before the first commit
    that recorded one (first run, or a warehouse from before fingerprints existed)."""
    with conn.cursor() as cur:
        cur.execute("SELECT fingerprint, execution_sequence FROM etl_control.committed_metadata WHERE table_name = %s",
                    [table])
        row = cur.fetchone()
    return None if row is None else (_json_value(row[0]), int(row[1]))


def record_committed_metadata(conn, meta, sequence: int) -> None:
    """Record, as ``meta.name``'s committed metadata, the fingerprint its extract of ``sequence``
    ran under (from ``etl_control.table_run``); no commit (the store upsert's transaction).

    The extract's fingerprint rather than the store step's metadata: if the metadata changed
    in between, the next extract sees the difference and extracts the whole table. Without
    an extract fingerprint (an extract from before fingerprints existed; the access logs)
    no committed fingerprint is left for the table. Portable SQL (DELETE + INSERT ... SELECT).
    """
    with conn.cursor() as cur:
        cur.execute("DELETE FROM etl_control.committed_metadata WHERE table_name = %s", [meta.name])
        cur.execute("INSERT INTO etl_control.committed_metadata (table_name, fingerprint, execution_sequence) "
                    "SELECT table_name, metadata_fingerprint, execution_sequence FROM etl_control.table_run "
                    "WHERE execution_sequence = %s AND table_name = %s AND metadata_fingerprint IS NOT NULL",
                    [sequence, meta.name])


def assume_committed_metadata(conn, table: str, fingerprint: dict, sequence: int) -> None:
    """Record ``fingerprint`` as ``table``'s committed metadata (of ``sequence``); no commit. Only for
    a table with none recorded: the metadata a resumed sequence extracted under stands for its last
    commit's, so a change since makes the next extract read the whole table. Portable SQL."""
    with conn.cursor() as cur:
        cur.execute("INSERT INTO etl_control.committed_metadata (table_name, fingerprint, execution_sequence) "
                    "VALUES (%s, %s, %s)", [table, json.dumps(fingerprint), sequence])


def sequence_fingerprints(conn, sequence: int) -> dict[str, list[dict]]:
    """``{table: [fingerprint, ...]}`` recorded for ``sequence``: with its window (extract_window)
    and by its extract (table_run); tables with neither are absent."""
    found: dict[str, list[dict]] = {}
    with conn.cursor() as cur:
        for control_table in ("extract_window", "table_run"):
            cur.execute(f"SELECT table_name, metadata_fingerprint FROM etl_control.{control_table} "
                        "WHERE execution_sequence = %s AND metadata_fingerprint IS NOT NULL", [sequence])
            for table, fingerprint in cur.fetchall():
                found.setdefault(table, []).append(_json_value(fingerprint))
    return found


def forget_table_sequence(conn, sequence: int, table: str) -> None:
    """Delete what the steps of (sequence, table) recorded: its window, table_run row and tail
    fingerprint, so its next extract computes a new window; no commit."""
    with conn.cursor() as cur:
        for control_table in ("extract_window", "table_run", "extract_tail"):
            cur.execute(f"DELETE FROM etl_control.{control_table} WHERE execution_sequence = %s AND table_name = %s",
                        [sequence, table])
