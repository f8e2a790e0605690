"""The ``sql/`` files as statements: parsing (sqlglot, PostgreSQL dialect) and the one construct
both the pres runner and the Redshift translation look for.

A pres table is created with ``CREATE TABLE IF NOT EXISTS <schema>.<table> AS <query> WITH NO
DATA``, so that its columns take the types of the store columns the query selects
(``etl.pres`` matches existing tables to them; ``etl.redshift`` spells it for Redshift).
"""

from __future__ import annotations


def parse(text: str) -> list:
    """The statements of one SQL file as sqlglot trees (PostgreSQL dialect), in order.

    ``text``: the file's SQL. Returns a list of ``sqlglot.exp.Expression`` (None for an
    empty statement). Raises ValueError with sqlglot's message (one line, at most 300
    characters) when the text cannot be parsed; callers name the file.
    """
    import sqlglot
    from sqlglot.errors import SqlglotError

    try:
        return sqlglot.parse(text, read="postgres")
    except SqlglotError as exc:
        raise ValueError(" ".join(str(exc).split())[:300]) from None


def created_from_query(tree):
    """``(table, query)`` when ``tree`` is ``CREATE TABLE IF NOT EXISTS <table> AS <query>``, else None.

    ``table`` is the sqlglot Table node (``.db`` the schema, ``.name`` the table), ``query``
    the sqlglot query node.
    """
    from sqlglot import exp

    if (isinstance(tree, exp.Create) and tree.kind == "TABLE" and tree.args.get("exists")
            and isinstance(tree.expression, exp.Query)):
        return tree.this, tree.expression
    return None
