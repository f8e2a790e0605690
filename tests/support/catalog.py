"""What the warehouse's catalog says about a project's tables."""

from __future__ import annotations

from tests.support.project import Project


def column_type(project: Project, schema: str, table: str, column: str) -> str:
    """The type of ``schema.table.column`` in the project's warehouse, as ``format_type`` spells it."""
    conn = project.pg()
    cur = conn.cursor()
    cur.execute(
        "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s",
        [schema, table, column],
    )
    (value,) = cur.fetchone()
    conn.close()
    return value
