"""The landing step: staging files COPYed into the sequence's landing rows.

:func:`load_landing` replaces one execution sequence's landing rows (PostgreSQL: its
partition of the landing table, older partitions dropped; Redshift: COPY from S3), with
one COPY per staging part on parallel connections for a split extract;
:class:`StreamedLanding` is the same load fed while the extract writes its staging file,
which :func:`load_landing` then takes over. Staged data that cannot be loaded fails with
a LoadError that discards the extract (see ``DATA_ERROR_CLASSES``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg2

from etl import control, warehouse, warehouse_sql
from etl.dialects import dialect_of
from etl.context import SOURCE, Context
from etl.errors import EltError, ExtractError, LoadError, StagingError, is_transient_postgres, pg_message
from etl.domain import QualifiedName, TableMeta
from etl.schema import ensure_landing_table
from etl.staging import BytePipe

log = logging.getLogger(__name__)

# SQLSTATE classes of a COPY failing on the staged data itself (22 data exception: a value too long,
# out of range or unreadable, a malformed line; 23 integrity constraint violation, e.g. a CHECK
# added to landing by hand): loading the same file again fails again, a new extract may not
DATA_ERROR_CLASSES = ("22", "23")


def load_landing(ctx: Context, meta: TableMeta, sequence: int, source: str = SOURCE, forget_extract=None) -> dict:
    """COPY the sequence's staging files into the landing table, replacing that sequence's rows.

    What the extract staged (column types, row count, parts, a streamed load) is read from
    its ``etl_control.table_run`` row (:func:`etl.control.table_run`). In one
    transaction (PostgreSQL, :func:`_replace_landing_rows`): truncate or create the
    sequence's partition, COPY, drop the partitions older than the kept ones (Redshift:
    delete the sequence's rows, COPY, delete older sequences). A split extract (``parts``
    > 1) is loaded by one COPY per part on parallel connections, each committing on its
    own after the truncate or create committed: a failure leaves
    part of the sequence in landing, which the rerun (no marker was written) replaces.
    When the extract already streamed its rows into landing (see :class:`StreamedLanding`)
    and no landing step finished since that extract, the load is taken over (recorded in
    table_run) without a second COPY; a rerun of this step
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
        dialect = dialect_of(conn)
        run = control.table_run(conn, sequence, meta.name)
        if run is None:  # e.g. the extract ran under an earlier release, which kept this in its marker
            raise _bad_staging(f"table {meta.name!r}: sequence {sequence} has no extract record in "
                               "etl_control.table_run", meta, sequence, forget_extract)
        refused = [p for c, t in run.column_types.items() if (p := warehouse_sql.type_problem(c, t))]
        if refused or set(run.column_types) != set(meta.columns):  # an edited record: nothing of it is executed
            refused = refused or [f"columns {sorted(run.column_types)} are not the metadata's {list(meta.columns)}"]
            raise _bad_staging(f"table {meta.name!r}: the column types etl_control.table_run holds for sequence "
                               f"{sequence} are refused ({'; '.join(refused)})", meta, sequence, forget_extract)
        streamed = run.streamed
        if streamed is not None and dialect.streams_landing and _take_over_streamed(conn, run, started):
            seconds = round(time.monotonic() - started, 3)
            log.info("landing %s: %d rows, streamed by the extract (COPY %.2f s beside it); taken over in %.2f s",
                     meta.landing_table, streamed["rows"], streamed["seconds"], seconds)
            return {"table": meta.name, "execution_sequence": sequence, "rows": streamed["rows"],
                    "replaced_rows": streamed["replaced_rows"], "seconds": seconds, "streamed": True,
                    "streamed_copy_seconds": streamed["seconds"]}
        ensure_landing_table(conn, meta, run.column_types)
        try:
            with conn.cursor() as cur:
                if not dialect.copies_from_stdin:  # the warehouse reads the staged objects itself
                    cur.execute(warehouse_sql.landing_delete_sequence_sql(meta), [sequence])
                    replaced = cur.rowcount
                    rows = dialect.copy_into_landing(cur, meta, ctx.staging.parts_uri(source, meta.name, sequence),
                                                     ctx.warehouse.iam_role)
                    cur.execute(warehouse_sql.landing_purge_sql(meta), [sequence - ctx.etl.landing_keep_sequences + 1])
                else:
                    parts = run.staged_parts

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
            message = f"table {meta.name!r}: COPY of {path} into {meta.landing_table} failed: {pg_message(exc)}"
            if (exc.pgcode or "")[:2] in DATA_ERROR_CLASSES and dialect.copies_from_stdin:
                raise _bad_staging(message, meta, sequence, forget_extract) from None
            raise LoadError(message, transient=is_transient_postgres(exc)) from None
        if rows != run.extracted_rows:
            conn.rollback()
            raise _bad_staging(f"table {meta.name!r}: {path} held {run.extracted_rows} rows at extract but COPY "
                               f"loaded {rows}", meta, sequence, forget_extract)
        seconds = round(time.monotonic() - started, 3)
        control.record_landed(conn, sequence, meta.name, rows, streamed=False)
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


def _replace_landing_rows(cur, meta: TableMeta, sequence: int, keep_sequences: int, copy) -> tuple[int, int]:
    """Replace one sequence's landing rows in the caller's transaction (PostgreSQL).

    The sequence's partition is truncated (a reload) or created, ``copy(cur)`` loads it
    (returns the rows it loaded; through the partitioned table, which assigns the
    landing ids), and the partitions of sequences older than the ``keep_sequences``
    newest are dropped. Returns ``(rows, replaced)``: rows loaded, rows the reload replaced.
    """
    table = meta.landing_table
    cur.execute(warehouse_sql.landing_partitions_sql(), [table.schema, table.table])
    partitions = {}
    for schema, name, bound in cur.fetchall():
        if (seq := warehouse_sql.partition_sequence(bound)) is not None:
            partitions[seq] = QualifiedName(schema, name)
    replaced = 0
    if sequence in partitions:
        replaced = warehouse.scalar(cur, warehouse_sql.table_sql("SELECT count(*) FROM {}", partitions[sequence]))
        cur.execute(warehouse_sql.table_sql("TRUNCATE {}", partitions[sequence]))
    else:
        cur.execute(warehouse_sql.landing_partition_sql(meta, sequence))
    rows = copy(cur)
    for old in sorted(s for s in partitions if s < sequence - keep_sequences + 1):
        cur.execute(warehouse_sql.table_sql("DROP TABLE {}", partitions[old]))
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
    The landing rows commit only after the staging file exists, and the extract then records
    the load in its ``etl_control.table_run`` row (after ``commit()`` succeeded), which
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
            ensure_landing_table(self.conn, self.meta, self.pg_types)
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
        copy_sql = warehouse_sql.landing_copy_sql(self.meta)

        def copy(cur) -> int:
            cur.copy_expert(copy_sql, self.pipe, size=warehouse.COPY_BUFFER_BYTES)
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
        reason = pg_message(self.error) if isinstance(self.error, psycopg2.Error) else (
            self.error or f"COPY loaded {self.result[0] if self.result else 0} of {rows} rows")
        log.warning("table %s: the landing load streamed beside the extract failed (%s); the landing step loads "
                    "the staging file instead", self.meta.name, reason)
        self.conn.rollback()
        return False

    def commit(self) -> dict | None:
        """Commit the load (with its audit step_log row); returns ``{"load_id", "rows", "replaced_rows",
        "seconds"}`` for the extract's table_run row, or None when nothing was loaded or the commit
        failed (the landing step then COPYs the staging file)."""
        if not self._loaded:
            return None
        rows, replaced = self.result
        try:
            control.log_step(self.conn, self.sequence, "landing_streamed", self.meta.name, rows, self.seconds,
                             json.dumps({"load_id": self._load_id, "replaced": replaced}))
            self.conn.commit()
        except psycopg2.Error as exc:
            log.warning("table %s: committing the streamed landing load failed (%s); the landing step loads the "
                        "staging file instead", self.meta.name, pg_message(exc))
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
    return ctx.etl.stream_landing and ctx.dialect.streams_landing and ctx.etl.parallel_copies == 1


def _take_over_streamed(conn, run: control.TableRun, started: float) -> bool:
    """True when the extract's streamed landing load is still this sequence's landing rows and is
    taken over now (recorded in table_run and, with the seconds since ``started``, a
    ``time.monotonic()`` value, in step_log; committed); False when the landing step must COPY.

    The extract records its streamed load in table_run only after that load committed, having
    loaded exactly the extract's rows; only this step replaces a sequence's landing rows
    afterwards, and it records ``landed_rows`` when it does (a new extract records a new row).
    So the row decides, without a count.
    """
    if run.landed_rows is not None or run.extracted_rows != run.streamed["rows"]:
        return False
    control.record_landed(conn, run.sequence, run.table, run.extracted_rows, streamed=True)
    control.log_step(conn, run.sequence, "landing", run.table, run.extracted_rows, round(time.monotonic() - started, 3),
                     json.dumps({"streamed_load": run.streamed["load_id"], "replaced": run.streamed["replaced_rows"]}))
    conn.commit()
    return True


def _copy_part(ctx: Context, meta: TableMeta, source: str, sequence: int, part: int, cur) -> int:
    """COPY one staging part into the landing table on ``cur``; returns the rows loaded."""
    with ctx.staging.open_part(source, meta.name, sequence, part) as handle:
        cur.copy_expert(warehouse_sql.landing_copy_sql(meta), handle, size=warehouse.COPY_BUFFER_BYTES)
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

