"""The staging file format, and writing MySQL rows into it (the area itself: ``etl.staging``).

RFC 4180 CSV as read by PostgreSQL ``COPY ... (FORMAT csv, HEADER true)``: UTF-8, a header
row, text values quoted with ``"`` doubled (so an empty string is ``""``), numbers, dates
and booleans as written by their producer, NULL as an unquoted empty field. MySQL rows are
formatted by the source server itself (``etl.sqlgen.staged_line_select``), access-log rows
by polars' CSV writer. No line holds a NUL character (PostgreSQL text cannot), nor a JSON
value its ``\\u0000`` escape (jsonb cannot): :func:`write_lines` removes them from MySQL
values and counts the rows it altered; the access-log parser rejects such lines.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from etl.errors import StagingError
from etl.staging import PartFiles


def csv_writer(handle):
    """A csv.writer on a text ``handle``: strings quoted, numbers not (the staging dialect for rows without NULLs)."""
    return csv.writer(handle, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n", doublequote=True)


def header_line(columns: Iterable[str]) -> bytes:
    """The staging file's header row (UTF-8 bytes, newline included)."""
    buffer = io.StringIO()
    csv_writer(buffer).writerow(list(columns))
    return buffer.getvalue().encode("utf-8")


ALTERED_KEYS_KEPT = 10  # keys of the first altered rows an extract records (marker, summary)


@dataclass
class StagedLines:
    """What :func:`write_lines` wrote.

    ``rows``: lines written. ``invalid_dates``: ``{column: zero or partial dates staged as
    NULL}``. ``altered_rows``: rows staged with a value changed so that PostgreSQL can store
    it (a NUL character removed from a text value); ``altered_values``: ``{column: rows
    whose value in it was changed}``; ``altered_keys``: the key of the first
    ``ALTERED_KEYS_KEPT`` altered rows, as ``"col=value, col=value"`` text (``NULL`` for a
    NULL key value).
    """

    rows: int = 0
    invalid_dates: dict[str, int] = field(default_factory=dict)
    altered_rows: int = 0
    altered_values: dict[str, int] = field(default_factory=dict)
    altered_keys: list[str] = field(default_factory=list)


def staged_fields(line: bytes) -> list[bytes | None]:
    """Split one staged CSV line (no newline) into its field values.

    Input: a line in the staging dialect (a quoted field may hold commas, doubled quotes and
    newlines; an unquoted empty field is NULL). Returns the values as bytes, unquoted and
    with quotes undoubled, None for NULL. Raises StagingError for a line that is not valid
    CSV (an unterminated quoted field, text after a closing quote).
    """
    values: list[bytes | None] = []
    pos, end = 0, len(line)
    while True:
        if pos < end and line[pos:pos + 1] == b'"':
            parts, start = [], pos + 1
            while True:
                close = line.find(b'"', start)
                if close < 0:
                    raise StagingError("a staged line is not valid CSV: a quoted field is not closed")
                parts.append(line[start:close])
                if line[close + 1:close + 2] == b'"':  # a doubled quote inside the value
                    parts.append(b'"')
                    start = close + 2
                    continue
                pos = close + 1
                break
            values.append(b"".join(parts))
            if pos < end and line[pos:pos + 1] != b",":
                raise StagingError("a staged line is not valid CSV: text after a closing quote")
        else:
            comma = line.find(b",", pos)
            stop = end if comma < 0 else comma
            values.append(bytes(line[pos:stop]) or None)
            pos = stop
        if pos >= end:
            return values
        pos += 1  # the comma
        if pos == end:  # a trailing comma: one more (NULL) field
            values.append(None)
            return values


# a JSON \u0000 escape (jsonb cannot hold it): the escape itself, not an escaped backslash followed by
# "u0000" (an even run of backslashes before it is kept)
_JSON_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def _quoted(value: bytes | None) -> bytes:
    """One field of the staging dialect: NULL unquoted and empty, any other value quoted."""
    return b"" if value is None else b'"' + value.replace(b'"', b'""') + b'"'


def _make_storable(rows: list[tuple], header: list[str], key_columns: list[str], json_columns: list[str],
                   result: StagedLines) -> list[bytes]:
    """The batch's lines with what PostgreSQL cannot store removed; counts the altered rows and
    columns into ``result`` and keeps the first keys (see :class:`StagedLines`).

    Removed: every NUL byte (in UTF-8 a 0 byte is only ever the NUL character, and only text
    values can hold one: numbers, dates and hex-staged binary never do, so removing the
    bytes from the line removes the character from the values that had it), and in the
    ``json_columns`` the escape ``\\u0000`` (valid JSON for MySQL; jsonb refuses it). A line
    whose JSON changed is written again field by field (every non-NULL value quoted).
    """
    columns = ["execution_sequence", *header]
    key_indexes = [columns.index(c) for c in key_columns if c in columns]
    json_indexes = [columns.index(c) for c in json_columns if c in columns]
    lines = []
    for row in rows:
        line = row[0]
        escaped = bool(json_indexes) and b"\\u0000" in line
        if b"\x00" not in line and not escaped:
            lines.append(line)
            continue
        values = staged_fields(line)
        cleaned = [None if v is None else v.replace(b"\x00", b"") for v in values]
        for i in json_indexes if escaped else ():
            if cleaned[i] is not None:
                cleaned[i] = _JSON_NUL_ESCAPE.sub(rb"\1", cleaned[i])
        changed = [name for name, before, after in zip(columns, values, cleaned) if before != after]
        if not changed:  # "\\u0000" as text, or an escaped backslash in JSON: nothing to remove
            lines.append(line)
            continue
        result.altered_rows += 1
        for name in changed:
            result.altered_values[name] = result.altered_values.get(name, 0) + 1
        if len(result.altered_keys) < ALTERED_KEYS_KEPT:
            result.altered_keys.append(", ".join(
                f"{columns[i]}=" + ("NULL" if cleaned[i] is None else cleaned[i].decode("utf-8", "replace"))
                for i in key_indexes))
        lines.append(line.replace(b"\x00", b"") if not escaped else b",".join(_quoted(v) for v in cleaned))
    return lines


def write_lines(parts: PartFiles, header: list[str], batches: Iterable[list[tuple]], date_columns: list[str] = (),
                on_batch=None, split_after_rows: int = 0, part_count: int = 1,
                key_columns: list[str] = (), json_columns: list[str] = ()) -> StagedLines:
    """Write the lines MySQL formatted (see ``etl.sqlgen.staged_line_select``) into staging parts.

    ``parts``: the :class:`PartFiles` of the sequence; every part starts with the header.
    ``header``: the staged columns after ``execution_sequence``; ``key_columns``: those
    naming a row (the business key) in :attr:`StagedLines.altered_keys`; ``json_columns``:
    those loaded as jsonb.
    ``batches``: lists of raw rows ``(line,)`` or, when the table has ``date_columns``,
    ``(line, invalid)`` where ``invalid`` lists the indexes into ``date_columns`` of the
    row's zero or partial dates (None when none). The first ``split_after_rows`` rows go
    to part 0; after that, with ``part_count`` > 1, batches alternate between the parts
    so that a large extract can be loaded by parallel COPYs. ``on_batch(rows_so_far)`` is
    called after each batch. A NUL character, which PostgreSQL text cannot hold, and a
    ``\\u0000`` escape in a JSON column, which jsonb cannot hold, are removed from the value
    that has them and the row counted (one ``in`` test per batch: a batch without one costs
    nothing more). Returns a :class:`StagedLines`;
    ``parts.count`` tells how many parts were written. Raises OSError / StagingError from
    the part files.
    """
    head = header_line(["execution_sequence", *header])
    parts.part(0, head)
    result = StagedLines()
    invalid = [0] * len(date_columns)
    for number, rows in enumerate(batches):
        handle = parts.part(number % part_count if part_count > 1 and result.rows >= split_after_rows else 0, head)
        data = b"\n".join([row[0] for row in rows])
        if b"\x00" in data or (json_columns and b"\\u0000" in data):
            data = b"\n".join(_make_storable(rows, header, list(key_columns), list(json_columns), result))
        handle.write(data)
        handle.write(b"\n")
        # freed before the next batch is joined: the allocator then reuses the same warm pages (with
        # two batch buffers alive the join wrote to fresh memory, which cost more than the NUL test)
        del data
        if date_columns:
            for flags in [row[1] for row in rows if row[1] is not None]:
                for index in flags.split(b","):
                    invalid[int(index)] += 1
        result.rows += len(rows)
        if on_batch is not None:
            on_batch(result.rows)
    result.invalid_dates = {name: n for name, n in zip(date_columns, invalid) if n}
    return result


def altered_message(table: str, rows: int, values: dict[str, int], keys: list[str]) -> str:
    """The warning naming a table's altered values: ``rows`` altered rows, ``values``
    ``{column: rows}``, ``keys`` the first rows' keys (see :class:`StagedLines`). Returns one line."""
    columns = ", ".join(f"{name} {n}" for name, n in values.items())
    more = "; ..." if rows > len(keys) else ""
    return (f"table {table}: {rows} row{'s' if rows != 1 else ''} stored without the NUL characters PostgreSQL "
            f"cannot hold (rows per column: {columns}); keys: {'; '.join(keys)}{more}")
