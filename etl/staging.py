"""Staging files: where each run's extracted rows wait between extract and landing load.

Layout (the same under a local folder and, later, an S3 prefix)::

    <staging uri>/<source>/<table>/execution_sequence=<seq>/part-00000.csv

File format: RFC 4180 CSV as read by PostgreSQL ``COPY ... (FORMAT csv, HEADER true)``:
a header row, every non-NULL value quoted (so an empty string is ``""``), NULL written as
an unquoted empty field. Python 3.11's csv module has no "quote all but NULL" mode
(3.12 adds ``QUOTE_NOTNULL``); with ``QUOTE_NONNUMERIC`` it leaves numbers unquoted, so
NULL is written as :data:`NULL`, a number-typed object whose text is empty.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path


class _Null(float):
    """A float whose ``str`` is empty: the csv module writes it unquoted, COPY reads NULL."""

    def __str__(self) -> str:
        return ""

    __repr__ = __str__


NULL = _Null(0.0)


class LocalStaging:
    """Staging files under a local folder ``root`` (created on demand)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def describe(self) -> str:
        """The staging location for messages."""
        return str(self.root)

    def partition_dir(self, source: str, table: str, sequence: int) -> Path:
        """The folder holding one sequence's files of ``source``/``table``."""
        return self.root / source / table / f"execution_sequence={sequence}"

    def part_path(self, source: str, table: str, sequence: int, part: int = 0) -> Path:
        """The path of one part file (``part-NNNNN.csv``)."""
        return self.partition_dir(source, table, sequence) / f"part-{part:05d}.csv"

    @contextmanager
    def write_part(self, source: str, table: str, sequence: int):
        """Yield a text file for the sequence's single part; publish it atomically on success.

        Any older files of the same sequence are removed first, so a rerun of a sequence
        replaces its own files and nothing else. On error the partial file is deleted.
        """
        folder = self.partition_dir(source, table, sequence)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("part-*"):
            old.unlink()
        final = self.part_path(source, table, sequence)
        tmp = final.with_name(final.name + f".tmp-{os.getpid()}")
        try:
            with open(tmp, "w", encoding="utf-8", newline="") as handle:
                yield handle
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                tmp.unlink()

    def open_part(self, source: str, table: str, sequence: int):
        """Open the sequence's part file for reading as bytes (for COPY)."""
        return open(self.part_path(source, table, sequence), "rb")


def csv_writer(handle):
    """A csv.writer producing the staging dialect described in the module docstring."""
    return csv.writer(handle, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n", doublequote=True)


def is_invalid_date(text: str) -> bool:
    """True for MySQL's zero and partial dates (``0000-00-00``, ``2024-00-10``, ``2024-02-00``).

    PostgreSQL rejects them; MySQL client libraries (mysql-connector, mysqlclient) return
    them as NULL, so the staging file carries NULL too.
    """
    return text.startswith("0000") or text[4:8] == "-00-" or text[7:10] == "-00"


def write_raw_batches(
    handle, header: list[str], sequence: int, batches: Iterable[list[tuple]], on_batch=None,
    date_columns: Iterable[int] = (),
) -> tuple[int, dict[str, int]]:
    """Write a header and every row of ``batches`` (raw driver rows) prefixed with ``sequence``.

    Raw rows hold ``bytes`` (the server's text form, decoded as UTF-8) or None (-> NULL).
    Values of ``date_columns`` (0-based indexes into a row) that are zero or partial dates
    are written as NULL and counted. ``on_batch(rows_so_far)`` is called after each batch.
    Returns ``(row count, {column name: invalid dates replaced by NULL})``.
    """
    writer = csv_writer(handle)
    writer.writerow(["execution_sequence", *header])
    count = 0
    seq = sequence
    null = NULL
    dates = tuple(date_columns)
    invalid = dict.fromkeys((header[i] for i in dates), 0)
    for rows in batches:
        if dates:
            out = []
            for row in rows:
                values = [null if v is None else v.decode("utf-8") for v in row]
                for i in dates:
                    value = values[i]
                    if value is not null and is_invalid_date(value):
                        values[i] = null
                        invalid[header[i]] += 1
                out.append([seq, *values])
            writer.writerows(out)
        else:
            writer.writerows([seq, *[null if v is None else v.decode("utf-8") for v in row]] for row in rows)
        count += len(rows)
        if on_batch is not None:
            on_batch(count)
    return count, {k: v for k, v in invalid.items() if v}


def write_rows(handle, header: list[str], rows: Iterable[tuple]) -> int:
    """Write ``rows`` of Python values (str, int, bool, datetime; None -> NULL) after ``header`` once.

    Pass ``header=None`` to append rows without a header. Returns the number of rows written.
    """
    writer = csv_writer(handle)
    if header is not None:
        writer.writerow(header)
    null = NULL
    batch = [[null if v is None else v for v in row] for row in rows]
    writer.writerows(batch)
    return len(batch)
