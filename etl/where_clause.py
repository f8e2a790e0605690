"""The ``where_clause`` of a table's metadata: is it exactly one boolean expression?

The extract, the source counts and the look-back fingerprints AND the clause into their
own ``WHERE`` as ``(<where_clause>)``. A clause that is not one expression changes those
queries instead of filtering them: ``is_supplier = 1) OR (1=1`` closes the parentheses and
ORs past the watermark window; a comment (``--``, ``#``, ``/* */``, MySQL's executed
``/*! */``) or ``;`` swallows or adds SQL. :func:`where_clause_problem` reads the clause with
sqlglot's MySQL dialect and names what is wrong, without a database; ``etl.context.preflight``
then asks the source to plan the real extract query (EXPLAIN), which names unknown columns
and functions.

Accepted (:data:`ACCEPTED`): one expression whose value is a boolean (a comparison, ``IN``,
``LIKE``, ``BETWEEN``, ``IS [NOT] NULL``, ``NOT``, ``AND``/``OR``/``XOR`` of those, ...) over the
table's own columns, literals and functions. Refused, besides the above: unbalanced
parentheses; a bare value (``is_supplier``, ``a + 1``: MySQL would take any non-zero number
as true; write ``is_supplier = 1``); subqueries (``IN (SELECT ...)``, ``EXISTS``): a filter
that reads other tables lets rows enter or leave the filter without their watermark
moving, so an incremental extract never sees that change, and the source counts the quality
step compares with store drift apart; session variables (``@x``) and placeholders (``?``),
which have no value in the extract's session; ``%s``, which the MySQL driver takes for a
query parameter even inside a string literal; a backslash, whose meaning in a MySQL string
depends on the server's ``sql_mode`` (``NO_BACKSLASH_ESCAPES``), so no reader can tell where
such a string ends (``LIKE 'a!_b' ESCAPE '!'`` replaces ``LIKE 'a\\_b'``).
"""

from __future__ import annotations

from collections import Counter

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.tokens import TokenType

ACCEPTED = ("one boolean expression over the table's own columns, e.g. \"is_supplier = 1 AND country <> 'XX'\" "
            "(a comparison, IN, LIKE, BETWEEN, IS NULL, NOT, AND/OR of those; no ';', comments, subqueries, "
            "unbalanced parentheses, @variables, placeholders, %s or backslashes), or \"\" for all rows")
_LITERALS = (TokenType.STRING, TokenType.NUMBER, TokenType.NATIONAL_STRING, TokenType.HEX_STRING,
             TokenType.BIT_STRING, TokenType.BYTE_STRING)
_NAMES = (TokenType.VAR, TokenType.IDENTIFIER)
_SUBQUERIES = (exp.Select, exp.Subquery, exp.Exists, exp.SetOperation)


def where_clause_problem(clause: str) -> str | None:
    """Why ``clause`` is not accepted as a ``where_clause`` (one sentence), or None when it is.

    ``clause`` is the YAML field's text; "" (or only blanks) means no filter and is accepted.
    Pure: reads the text with sqlglot's MySQL dialect, no database. Raises nothing.
    """
    if not clause.strip():
        return None
    if "\\" in clause:
        return ("it holds a backslash, whose meaning in a MySQL string depends on the server's sql_mode "
                "(NO_BACKSLASH_ESCAPES), so where its strings end cannot be told; write LIKE 'a!_b' ESCAPE '!' "
                "instead of LIKE 'a\\_b'")
    if "%s" in clause:
        return ("it holds '%s', which the MySQL driver takes for a query parameter (even inside a string); "
                "write e.g. LIKE CONCAT('%', 'sale%') instead of LIKE '%sale%'")
    try:
        tokens = _tokens(clause)
    except TokenError as exc:
        return f"it cannot be read as SQL ({_first_line(exc)}): a string or quoted name is not closed"
    if not tokens or any(token.comments for token in tokens):
        return "it holds a comment (--, #, /* */ or /*! */), which would hide or add SQL; remove it"
    problem = _token_problem(tokens)
    if problem:
        return problem
    try:
        tree = sqlglot.parse_one(clause, read="mysql", into=exp.Condition)
    except ParseError as exc:
        return f"it is not one expression ({_parse_error(exc)})"
    except Exception as exc:  # noqa: BLE001 - sqlglot fails on some malformed calls with other errors
        return f"sqlglot's MySQL dialect cannot read it ({type(exc).__name__}: {_first_line(exc)}); rephrase it"
    if tree.find(*_SUBQUERIES) is not None:
        return ("it holds a subquery (SELECT, EXISTS, IN (SELECT ...)): a filter that reads other tables lets "
                "rows enter or leave it without their watermark moving, which an incremental extract never sees; "
                "filter on the table's own columns, or extract a view that joins")
    if not _is_boolean(tree):
        return (f"it is a {_kind(tree)}, not a boolean expression (MySQL would take any non-zero number as true); "
                "compare it, e.g. is_supplier = 1 instead of is_supplier")
    swallowed = _swallowed(clause, tree)
    if swallowed:
        return f"sqlglot's MySQL reading of it drops {', '.join(swallowed)}: it is not plain SQL the extract can wrap"
    return None


def _tokens(clause: str) -> list:
    return sqlglot.Dialect.get_or_raise("mysql").tokenize(clause)


def _token_problem(tokens: list) -> str | None:
    depth = 0
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            return "it holds ';': a where_clause is one expression, not statements"
        if token.token_type == TokenType.PARAMETER:
            return "it uses a session variable (@name), which has no value in the extract's session; write the value"
        if token.token_type == TokenType.PLACEHOLDER:
            return "it holds a placeholder (?), which the extract does not fill; write the value"
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
            if depth < 0:
                return ("its parentheses are unbalanced: a ')' closes one it did not open, which would close the "
                        "extract's own parentheses around the clause and OR past the watermark window")
    if depth > 0:
        return f"its parentheses are unbalanced: {depth} '(' {'is' if depth == 1 else 'are'} not closed"
    return None


def _is_boolean(tree: exp.Expression) -> bool:
    while isinstance(tree, exp.Paren):
        tree = tree.this
    if isinstance(tree, (exp.Predicate, exp.Connector, exp.Not, exp.Boolean, exp.Xor)):
        return True
    typed = annotate_types(tree.copy(), dialect="mysql")
    return typed.type is not None and typed.type.is_type(exp.DataType.Type.BOOLEAN)


def _kind(tree: exp.Expression) -> str:
    while isinstance(tree, exp.Paren):
        tree = tree.this
    if isinstance(tree, exp.Column):
        return f"bare column ({tree.sql(dialect='mysql')})"
    if isinstance(tree, exp.Literal):
        return f"bare {'string' if tree.is_string else 'number'} ({tree.sql(dialect='mysql')})"
    return f"value ({tree.sql(dialect='mysql')})"


def _swallowed(clause: str, tree: exp.Expression) -> list[str]:
    """Literals and names of ``clause`` missing from sqlglot's rendering of its reading (each quoted)."""
    lost = _significant(_tokens(clause)) - _significant(_tokens(tree.sql(dialect="mysql")))
    return [repr(text) for (_, text) in sorted(lost)]


def _significant(tokens: list) -> Counter:
    found: Counter = Counter()
    for i, token in enumerate(tokens):
        following = tokens[i + 1].token_type if i + 1 < len(tokens) else None
        if token.token_type in _LITERALS:
            found[("literal", token.text)] += 1
        elif token.token_type in _NAMES and following != TokenType.L_PAREN:  # function names may be respelled
            found[("name", token.text.lower())] += 1
    return found


def _parse_error(exc: ParseError) -> str:
    errors = getattr(exc, "errors", None) or []
    if errors and errors[0].get("description"):
        near = errors[0].get("highlight")
        return errors[0]["description"] + (f" near {near!r}" if near else "")
    return _first_line(exc)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
