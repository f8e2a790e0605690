"""The oracle of the whole-job tests: store compared with source, every row, every metadata column."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from tests.support.project import Project


def source_rows(project: Project, table: str) -> list[tuple]:
    """Every source row of ``table`` (metadata columns) as a sorted list of repr tuples."""
    entry = project.metadata()[table]
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute(f"SELECT {', '.join('`%s`' % c for c in entry['columns'])} FROM `{table}`")
    rows = sorted(tuple(norm(v) for v in r) for r in cur.fetchall())
    conn.close()
    return rows


def store_rows(project: Project, table: str, extra: tuple[str, ...] = (), tombstones: bool = False) -> list[tuple]:
    """Every live store row of ``table`` (metadata columns + ``extra``) as a sorted list of repr tuples;
    ``tombstones``: the tombstones (rows hard-deleted at the source) instead."""
    entry = project.metadata()[table]
    conn = project.pg()
    cur = conn.cursor()
    cols = [f'"{c}"' for c in entry["columns"]] + list(extra)
    live = "NOT NULL" if tombstones else "NULL"
    cur.execute(f"SELECT {', '.join(cols)} FROM {entry['store_table']} WHERE etl_deleted_datetime IS {live}")
    rows = sorted(tuple(norm(v) for v in r) for r in cur.fetchall())
    conn.close()
    return rows


def norm(value) -> str:
    """A comparable text form of a value: exact digits for numbers, repr for text, ISO for times.

    int and Decimal compare by their digits (so MySQL's BIGINT UNSIGNED 5 equals
    PostgreSQL's numeric 5, but 1.50 does not equal 1.5); None and '' stay distinct.
    """
    if isinstance(value, (bytes, bytearray)):
        value = value.decode()
    if value is None:
        return "<NULL>"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return repr(value)


def assert_store_equals_source(project: Project) -> int:
    """Assert every metadata table's live store rows equal its source, all columns; returns rows compared."""
    compared = 0
    for table in project.metadata():
        src, dst = source_rows(project, table), store_rows(project, table)
        missing = sorted(set(src) - set(dst))[:3]
        extra = sorted(set(dst) - set(src))[:3]
        assert src == dst, f"{table}: {len(src)} source rows vs {len(dst)} store rows; missing {missing}; extra {extra}"
        compared += len(src)
    return compared


def selected_source_rows(project: Project, table: str) -> list[tuple]:
    """The source rows of ``table`` its metadata's ``where_clause`` selects (every row when it is
    empty), metadata columns, as a sorted list of repr tuples (see :func:`source_rows`)."""
    entry = project.metadata()[table]
    where = (entry.get("where_clause") or "").strip()
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute(f"SELECT {', '.join('`%s`' % c for c in entry['columns'])} FROM `{table}`"
                + (f" WHERE ({where})" if where else ""))
    rows = sorted(tuple(norm(v) for v in r) for r in cur.fetchall())
    conn.close()
    return rows


def assert_store_equals_selected_source(project: Project) -> int:
    """Assert every metadata table's live store rows equal the source rows its ``where_clause``
    selects, all columns (:func:`assert_store_equals_source` where no table has one); returns rows compared."""
    compared = 0
    for table, entry in project.metadata().items():
        src, dst = selected_source_rows(project, table), store_rows(project, table)
        missing = sorted(set(src) - set(dst))[:3]
        extra = sorted(set(dst) - set(src))[:3]
        where = f" (where_clause {entry.get('where_clause')!r})" if entry.get("where_clause") else ""
        assert src == dst, (f"{table}{where}: {len(src)} source rows vs {len(dst)} store rows; missing {missing}; "
                            f"extra {extra}")
        compared += len(src)
    return compared
