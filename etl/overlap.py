"""Look-back overlap verification: skip re-reading the overlap when nothing was committed late into it.

An incremental window ``[start, end)`` starts ``lookback_seconds`` before the previous
window's end ``E``, so rows committed late with a watermark below ``E`` are still found
(docs/pipeline.md, "Late-committing rows"). Re-reading that overlap costs a re-extract, landing and
upsert of every row changed in the last ``lookback_seconds``. Instead:

* every incremental extract records the fingerprint of its **tail** ``[end - lookback,
  end)`` - the span the next window reads again: the row count and the exact sum of a
  60-bit hash of each row's staged text (``etl.sqlgen.row_fingerprint_sql``), taken in the
  extract's consistent snapshot, so it describes exactly the rows that were staged (or,
  in the verified part, already stored);
* the next extract, in its own snapshot, fingerprints the overlap ``[start, E)`` in MySQL.
  Equal to the recorded tail (same rows, same values, same hash expression): only
  ``[E, end)`` is read. Different (a late commit, a same-second update, a delete): the
  whole window is read as before.

The hash of the rows the extract reads is computed in Python from the staged lines (one
MD5 per tail row), so only the overlap, never the new rows, is hashed by MySQL.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal

from etl import sqlgen
from etl.control import TailFingerprint
from etl.domain import TableMeta, Window
from etl.source_mysql import fetch_one

log = logging.getLogger(__name__)


def row_fingerprint(text: bytes) -> int:
    """The hash of one row's staged text (its staged line without the ``<sequence>,`` prefix).

    Equal to MySQL's :func:`etl.sqlgen.row_fingerprint_sql` of the same row: the first 15
    hex digits (60 bits) of the MD5 of the text, as an integer.
    """
    return int(hashlib.md5(text).hexdigest()[:15], 16)


class TailPlan:
    """What one extract reads and how it fingerprints its tail (see the module docstring).

    ``read_window`` is the window to read (its start moved to the previous end when the
    overlap was verified); ``tail`` is ``(tail_start, end)``. ``flagged`` is the range the
    extract query flags (``etl.sqlgen.build_extract_query(tail=...)``) for :meth:`hashing`
    to sum the flagged staged lines, or None when MySQL fingerprinted the whole tail
    already (a first, unbounded extract: its tail is a small part of what it reads).
    ``rows``/``checksum`` start with what MySQL counted; :meth:`fingerprint` returns the
    tail's record.
    """

    def __init__(self, read_window: Window, tail_start: datetime, end: datetime, version: str,
                 rows: int = 0, checksum: int = 0, flag_rows: bool = True):
        self.read_window = read_window
        self.tail = (tail_start, end)
        self.flagged = self.tail if flag_rows else None
        self.version = version
        self.rows = rows
        self.checksum = checksum

    def hashing(self, batches: Iterable[list[tuple]], prefix_bytes: int) -> Iterator[list[tuple]]:
        """Pass ``batches`` of raw rows through, adding the flagged rows (last value ``b"1"``) to the tail.

        ``prefix_bytes``: length of the ``<sequence>,`` prefix of each staged line.
        """
        for rows in batches:
            flagged = [row[0][prefix_bytes:] for row in rows if row[-1] == b"1"]
            self.rows += len(flagged)
            self.checksum += sum(map(row_fingerprint, flagged))
            yield rows

    def fingerprint(self) -> TailFingerprint:
        """The tail's fingerprint once every batch went through :meth:`hashing`."""
        return TailFingerprint(self.tail[0], self.tail[1], self.rows, Decimal(self.checksum), self.version)


def plan(meta: TableMeta, database: str, types: dict, window: Window, lookback_seconds: int,
         previous: TailFingerprint | None, src, binary_field: str = sqlgen.BYTEA_HEX_FIELD) -> TailPlan:
    """Decide what an incremental extract reads; verify the overlap against ``previous``.

    Runs on ``src`` inside the extract's consistent snapshot (``etl.source_mysql.snapshot``).
    ``window`` is the recorded window (``end`` set; an unbounded start is a first extract,
    whose tail MySQL fingerprints at once); ``previous`` the tail recorded by the extract
    behind the committed watermark (``etl.control.committed_tail``). The overlap
    is verified only when ``previous`` is exactly ``[window.start, previous end)`` with the
    same hash version (same columns, types and ``where_clause``): a count over the
    watermark index first (a different count ends it), then one range scan counts and sums
    it, and the part of the new tail that lies inside it. ``binary_field`` is the
    warehouse dialect's binary staging (the staged text, hence the row hash, of a binary column
    depends on it). Returns the
    :class:`TailPlan`.
    """
    lookback = timedelta(seconds=lookback_seconds)
    tail_start = window.end - lookback if window.start is None else max(window.end - lookback, window.start)
    version = fingerprint_version(meta, types, binary_field)
    if window.start is None:  # a first extract reads everything: MySQL fingerprints just the tail
        rows, checksum = fetch_one(src, sqlgen.range_fingerprint_query(meta, database, types, 1, binary_field),
                                   sqlgen.range_fingerprint_params([(tail_start, window.end)]))
        return TailPlan(window, tail_start, window.end, version, int(rows), int(checksum), flag_rows=False)
    if previous is None or not (previous.version == version and previous.start == window.start
                                and window.start < previous.end <= window.end):
        return TailPlan(window, tail_start, window.end, version)
    # the row count first (the watermark index alone): rows that moved out of the overlap
    # or were added to it show here, without hashing anything
    (rows,) = fetch_one(src, sqlgen.range_count_query(meta, database), [previous.start, previous.end])
    if int(rows) != previous.rows:
        return _changed(meta, previous, window, tail_start, version, int(rows))
    ranges = [(previous.start, previous.end)]
    if tail_start < previous.end:
        ranges.append((tail_start, previous.end))
    values = fetch_one(src, sqlgen.range_fingerprint_query(meta, database, types, len(ranges), binary_field),
                       sqlgen.range_fingerprint_params(ranges))
    if (int(values[0]), Decimal(values[1])) != (previous.rows, previous.checksum):
        return _changed(meta, previous, window, tail_start, version, int(values[0]))
    log.info("extract %s: look-back overlap [%s, %s) unchanged since the previous extract (%d rows); not read again",
             meta.name, previous.start, previous.end, previous.rows)
    # the new tail's rows below the previous end are not read again: MySQL counted and summed them
    rows, checksum = (int(values[2]), int(values[3])) if len(ranges) > 1 else (0, 0)
    return TailPlan(Window(previous.end, window.end, window.source_clock), tail_start, window.end, version,
                    rows, checksum)


def _changed(meta: TableMeta, previous: TailFingerprint, window: Window, tail_start: datetime,
             version: str, rows: int) -> TailPlan:
    """The plan when the overlap changed: read the whole window (and flag its tail)."""
    log.info("extract %s: look-back overlap [%s, %s) changed since the previous extract (%d rows, %d recorded); "
             "reading the whole window", meta.name, previous.start, previous.end, rows, previous.rows)
    return TailPlan(window, tail_start, window.end, version)


def fingerprint_version(meta: TableMeta, types: dict, binary_field: str = sqlgen.BYTEA_HEX_FIELD) -> str:
    """A short hash of the row hash expression and ``where_clause``: fingerprints of different
    versions are never compared (a changed column list, type or filter)."""
    expression = sqlgen.row_fingerprint_sql(meta, types, binary_field)
    return hashlib.sha256(f"{expression}|{meta.where_clause}".encode()).hexdigest()[:16]
