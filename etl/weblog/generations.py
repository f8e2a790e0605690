"""A truncated or rewritten access log: how many of its first lines the store already holds.

When :func:`etl.weblog.files.resume_check` finds a log truncated or rewritten in place, a
new generation of its identity starts (keys ``<identity>.g<N>:<line number>``, see
:mod:`etl.weblog.files`). Before that, :func:`unchanged_prefix` compares the file's lines,
in file order, with the rows stored for the same identity and line number in the generation
that owns that number (generation N owns the numbers from its first line on, until a later
generation starts: :func:`generation_of`): a line is *unchanged* when it parses to the same
logged fields (:data:`COMPARED_FIELDS`) as that row, or is rejected now and that generation
stored no row for its number (it was rejected then too). The leading unchanged lines stay as they are (their
keys and rows untouched, nothing loaded twice); the new generation starts after them.
Only lines up to the recorded line count are compared and reading stops at the first
changed line, so the cost is one read of the unchanged part, once, when the change is
found. Comparing parsed fields rather than bytes: a line stored before is recognised
however it was written (escapes, trailing spaces aside), since the store holds no raw line.
"""

from __future__ import annotations

from collections.abc import Callable

from psycopg2 import sql

from etl.domain import QualifiedName
from etl.warehouse_sql import qualified
from etl.weblog.files import BLOCK_BYTES, LogFile, key_prefix, read_blocks

COMPARED_FIELDS = ("ip_address", "request_identity", "username", "request_timestamp", "request_line", "status_code",
                   "response_size", "referer", "user_agent")
"""The logged fields of a line (everything the line says; the rest is derived or enriched)."""

LOOKUP_BATCH = 1000  # keys per store query

StoredLookup = Callable[[list[str]], dict[str, tuple]]
"""Keys -> ``{key: values of COMPARED_FIELDS}`` for the keys the store holds (others absent)."""


def _norm(values) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in values)


def generation_of(line_no: int, starts: list[int]) -> int:
    """The generation owning line number ``line_no``: the last one whose first line (``starts[g]``,
    generation g's first line number; ``starts[0]`` is 1) is at or before it."""
    owner = 0
    for generation, first in enumerate(starts):
        if first <= line_no:
            owner = generation
    return owner


def unchanged_prefix(log: LogFile, file_id: str, starts: list[int], recorded_lines: int, stored: StoredLookup,
                     block_bytes: int = BLOCK_BYTES) -> tuple[int, int]:
    """``(lines, offset)``: the leading lines of ``log`` the store already holds, and the byte
    offset after them (where the new generation starts reading).

    ``file_id`` is the identity, ``starts`` the first line number of each of its generations
    so far (``[1]`` for generation 0 alone; see :func:`generation_of`: a line is compared with
    its owning generation's row only, so a line rejected in a later generation is never
    compared with an earlier generation's row of that number), ``recorded_lines`` the lines
    read so far (at most that many are compared), ``stored`` the store lookup
    (:func:`store_lookup`). Reads the file from its start up to the first changed line.
    """
    import polars as pl

    from etl.weblog.parse import parse_block

    lines = offset = 0
    if recorded_lines <= 0:
        return 0, 0
    for _, block in read_blocks(log, 0, None, block_bytes):
        raw = block.split(b"\n")[:-1][: recorded_lines - lines]
        parsed, _ = parse_block(pl.Series([r.decode("utf-8", errors="replace") for r in raw], dtype=pl.String))
        now = {values[0]: _norm(values[1:]) for values in parsed.select("row", *COMPARED_FIELDS).iter_rows()}
        numbers = range(lines + 1, lines + len(raw) + 1)
        keys = {n: f"{key_prefix(file_id, generation_of(n, starts))}:{n}" for n in numbers}
        found = stored(list(keys.values()))
        for row, number in enumerate(numbers):
            was = _norm(found[keys[number]]) if keys[number] in found else None
            if was != now.get(row):
                return lines, offset
            lines += 1
            offset += len(raw[row]) + 1
        if lines >= recorded_lines:
            break
    return lines, offset


def store_lookup(conn, store_table: QualifiedName) -> StoredLookup:
    """A :data:`StoredLookup` reading ``store_table`` (the access-log store) on ``conn`` by
    ``access_key``, :data:`LOOKUP_BATCH` keys a query; portable SQL (PostgreSQL, Redshift)."""
    query = sql.SQL("SELECT access_key, {fields} FROM {table} WHERE access_key IN %s").format(
        fields=sql.SQL(", ").join(map(sql.Identifier, COMPARED_FIELDS)), table=qualified(store_table))

    def lookup(keys: list[str]) -> dict[str, tuple]:
        found: dict[str, tuple] = {}
        with conn.cursor() as cur:
            for start in range(0, len(keys), LOOKUP_BATCH):
                cur.execute(query, [tuple(keys[start:start + LOOKUP_BATCH])])
                found.update((row[0], tuple(row[1:])) for row in cur.fetchall())
        return found

    return lookup
