"""The sample table the SQL-generation tests generate statements for, and rendering them as text.

``META`` is an incremental ``order_lines`` table with a composite key and a ``where_clause``;
``TYPES`` its PostgreSQL column types; :func:`as_text` renders a psycopg2.sql composition
without a connection, so tests assert generated statements as exact text.
"""

from __future__ import annotations

from etl.domain import QualifiedName, TableMeta

META = TableMeta(
    name="order_lines",
    columns=("order_no", "order_line_no", "quantity", "updated_datetime"),
    where_clause="is_test = 0",
    is_incremental=True,
    watermark_column="updated_datetime",
    landing_table=QualifiedName("landing", "mysql_order_lines"),
    store_table=QualifiedName("store_mysql", "order_lines"),
    unique_columns=("order_no", "order_line_no"),
    source_file="x.yaml",
)

TYPES = {"order_no": "varchar(20)", "order_line_no": "integer", "quantity": "integer", "updated_datetime": "timestamp(0)"}


def as_text(composable) -> str:
    """Render a psycopg2.sql composition without a connection (identifiers double-quoted)."""
    from psycopg2 import sql

    def render(part):
        if isinstance(part, sql.Composed):
            return "".join(render(p) for p in part.seq)
        if isinstance(part, sql.Identifier):
            return ".".join('"' + s.replace('"', '""') + '"' for s in part.strings)
        if isinstance(part, sql.SQL):
            return part.string
        raise TypeError(part)

    return render(composable)
