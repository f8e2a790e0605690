"""A fake database connection for unit tests: it records every statement and answers queries
with canned rows (no database).

``FakeConnection(answers)`` answers a statement with the rows of the first ``(needle, rows)``
of ``answers`` whose needle the statement's text contains (``rows`` may be a callable taking
the params, for answers that depend on them); a SELECT no needle matches raises
AssertionError, so a test fails when the code under test asks something unplanned. It
serves both sides: the warehouse (``with conn.cursor() as cur``) and the MySQL source
(``cur = conn.cursor(); ...; cur.close()``); ``flavor`` is what ``etl.warehouse.is_redshift``
reads.
"""

from __future__ import annotations

from tests.support.sqltext import as_text


class FakeCursor:
    def __init__(self, conn: FakeConnection):
        self.conn, self.rowcount, self._rows = conn, -1, []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, statement, params=None):
        text = statement if isinstance(statement, str) else as_text(statement)
        self.conn.statements.append((text, params))
        self._rows = list(self.conn.answer(text, params))

    def fetchone(self):
        return self._rows[0] if self._rows else None

    def fetchall(self):
        return list(self._rows)

    def close(self):
        pass


class FakeConnection:
    """Records ``statements`` as ``(text, params)``, counts ``commits``; see the module docstring."""

    def __init__(self, answers=(), flavor: str = "postgres"):
        self.answers = list(answers)
        self.flavor = flavor
        self.statements: list[tuple[str, object]] = []
        self.commits = 0
        self.closed = False

    def answer(self, text: str, params) -> list:
        for needle, rows in self.answers:
            if needle in text:
                return rows(params) if callable(rows) else rows
        if text.lstrip().upper().startswith("SELECT"):
            raise AssertionError(f"unplanned query: {text}")
        return []

    def ran(self, needle: str) -> list:
        """The params of every statement whose text contains ``needle``, in order."""
        return [params for text, params in self.statements if needle in text]

    def cursor(self, **kwargs):
        return FakeCursor(self)

    def commit(self):
        self.commits += 1

    def rollback(self):
        pass

    def close(self):
        self.closed = True
