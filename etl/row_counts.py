"""The row counts of a MySQL table that hard-delete detection and the quality step's count check compare.

One population on both sides. With ``S`` the source rows store mirrors (``where_clause``
applied, complete key: store merges no NULL-key row), counted in one snapshot:

* source: the rows of ``S`` whose watermark is before the window end ``E`` (a full
  table: all of ``S``);
* store: the live store rows whose watermark is before ``E``, less those whose key is one
  of ``changed_keys``: the keys of ``S`` whose watermark is not before ``E`` (changed or
  added after ``E``, future-dated, or NULL), read in the same snapshot as the source count.

Why this cannot alarm on a concurrent writer: a row updated after ``E`` has a watermark
at or after ``E``. The source count leaves its new version out, and store's older version
(below ``E``) is left out too, because its key is in ``changed_keys``; a row inserted after
``E`` is in neither count. A NULL-key row is in neither (store never holds one).

Why it cannot miss a truly missing row: ``changed_keys`` only holds keys whose source row
the source count leaves out, so leaving them out of the store count never hides a row the
source counts. Writing ``B`` for the source keys below ``E`` and ``W`` for the live store
keys below ``E``, store minus source is ``|W not in S| - |B not in W|``: the store rows
the source no longer has (hard deletes not followed) minus the source rows below ``E``
that store lacks (lost rows, late commits with an old watermark). Either is reported by
its count, unless one of each cancels in the same run (a count cannot tell them apart).

The cost: the count is one scan of the source table (it was before); ``changed_keys`` is
an index range on the watermark plus the NULL-watermark rows - about what the next
extract reads - and is matched in store with one indexed ``IN`` list per
:data:`KEYS_PER_QUERY` keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

from etl import source_mysql, sqlgen, warehouse_sql
from etl.domain import TableMeta, Window

KEYS_PER_QUERY = 500
KEY_BATCH_ROWS = 10_000


@dataclass(frozen=True)
class SourceCounts:
    """A source table's counts, taken in one snapshot (``where_clause`` applied, complete keys only):
    ``keyed`` rows, ``below`` the window end (a full table: all), and ``changed_keys``, the keys
    (tuples of the values' text) of the rows whose watermark is not before the window end."""

    keyed: int
    below: int
    changed_keys: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class StoreCounts:
    """A store table's live rows: ``live`` in all, ``below`` the window end, and ``changed``: of those
    below it, the ones whose key is among the source's ``changed_keys``."""

    live: int
    below: int
    changed: int = 0

    @property
    def comparable(self) -> int:
        """The store count the source's ``below`` compares with: ``below - changed``."""
        return self.below - self.changed


def count_source(src, meta: TableMeta, database: str, window: Window | None) -> SourceCounts:
    """:class:`SourceCounts` of ``meta``'s table on the open MySQL connection ``src``; the caller holds
    the snapshot both queries run in (see :func:`source_counts`). ``window`` is the sequence's recorded
    one (None, or an open end: every row is below it). Raises SourceError on a server error of the key
    query (a count error is the driver's)."""
    params = sqlgen.count_params(meta, window)
    (keyed,) = source_mysql.fetch_one(src, sqlgen.source_count_query(meta, database), [])
    changed: list[tuple[str, ...]] = []
    query = sqlgen.source_changed_keys_query(meta, database)
    if query is not None:
        for rows in source_mysql.stream_rows(src, query, params, KEY_BATCH_ROWS):
            changed.extend(tuple(source_mysql.text_value(v) for v in row) for row in rows)
    keyed = int(keyed or 0)
    # every counted row is before the window end, or one of the changed rows (after it, or no watermark)
    return SourceCounts(keyed, keyed - len(changed), tuple(changed))


def source_counts(ctx, meta: TableMeta, window: Window | None) -> SourceCounts:
    """:func:`count_source` on a connection of its own (it runs beside the extract, the upsert or the
    warehouse checks, in a thread), in one consistent snapshot. Raises SourceError when the source is
    unreachable."""
    with source_mysql.connection(ctx.source) as src, source_mysql.snapshot(src):
        return count_source(src, meta, ctx.source.database, window)


def count_store(cur, meta: TableMeta, window: Window | None, changed_keys) -> StoreCounts:
    """:class:`StoreCounts` of ``meta``'s store table on the warehouse cursor ``cur`` (in the caller's
    transaction), ``changed_keys`` as :class:`SourceCounts` has them."""
    params = sqlgen.count_params(meta, window)
    cur.execute(warehouse_sql.store_count_sql(meta), params)
    live, below = (int(v) for v in cur.fetchone())
    changed = 0
    keys = iter(sorted(set(map(tuple, changed_keys))) if params else ())
    while chunk := list(islice(keys, KEYS_PER_QUERY)):
        cur.execute(warehouse_sql.store_keys_below_end_sql(meta, len(chunk)),
                    [*params, *(value for key in chunk for value in key)])
        changed += int(cur.fetchone()[0])
    return StoreCounts(live, below, changed)


def compared(source: SourceCounts, store: StoreCounts) -> dict:
    """What the count check compares: ``{"source": n, "store": m, "changed": k}`` (``k`` store rows
    below the window end left out: changed in the source after it)."""
    return {"source": source.below, "store": store.comparable, "changed": store.changed}
