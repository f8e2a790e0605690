"""The MySQL/MariaDB source: connections, information_schema, the source clock, streaming.

Sessions run with ``time_zone = '+00:00'``: DATETIME watermarks are compared with the
source's own UTC clock. Rows are streamed with an unbuffered (server-side) cursor in
raw mode: values arrive as the server's text bytes, so decimals and datetimes keep every
digit and no per-value Python conversion happens beyond a UTF-8 decode.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import mysql.connector
from mysql.connector import errorcode

from etl.config import MySQLSettings
from etl.errors import SourceError, is_transient_mysql
from etl.domain import SourceColumn

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10


def connect(settings: MySQLSettings, database: bool = True):
    """Open a connection (UTC session, utf8mb4, autocommit) to the source.

    ``database=False`` connects without selecting the database (to create it). Raises
    SourceError naming host, port, user and database, with a hint, when the server is
    unreachable, the credentials are refused or the database does not exist.
    """
    kwargs = dict(
        host=settings.host,
        port=settings.port,
        user=settings.user,
        password=settings.password,
        charset="utf8mb4",
        collation="utf8mb4_unicode_ci",
        connection_timeout=CONNECT_TIMEOUT_SECONDS,
        autocommit=True,
        use_pure=False,
    )
    if database:
        kwargs["database"] = settings.database
    try:
        conn = mysql.connector.connect(**kwargs)
    except mysql.connector.Error as exc:
        raise SourceError(_describe_connect_error(settings, exc), transient=is_transient_mysql(exc)) from None
    cur = conn.cursor()
    cur.execute("SET time_zone = '+00:00'")
    cur.close()
    return conn


def _describe_connect_error(settings: MySQLSettings, exc: mysql.connector.Error) -> str:
    where = f"MySQL source {settings.describe()}"
    if exc.errno == errorcode.ER_ACCESS_DENIED_ERROR:
        return f"{where}: access denied for user {settings.user!r}; check [mysql] user and the MYSQL_PASSWORD environment variable"
    if exc.errno == errorcode.ER_BAD_DB_ERROR:
        return f"{where}: database {settings.database!r} does not exist; create it (python -m populate orders) or fix [mysql] database"
    if exc.errno in (errorcode.CR_CONN_HOST_ERROR, errorcode.CR_CONNECTION_ERROR, errorcode.CR_UNKNOWN_HOST, 2013):
        return f"{where}: server unreachable ({exc.msg}); start MariaDB/MySQL or fix [mysql] host and port"
    return f"{where}: cannot connect: {exc.msg} (error {exc.errno})"


@contextmanager
def connection(settings: MySQLSettings, database: bool = True):
    """Context manager around :func:`connect` that always closes the connection."""
    conn = connect(settings, database=database)
    try:
        yield conn
    finally:
        conn.close()


def read_column_types(conn, database: str, tables: list[str]) -> dict[str, dict[str, SourceColumn]]:
    """Read information_schema.COLUMNS for ``tables`` of ``database``.

    Returns ``{table: {column: SourceColumn}}``; a table that does not exist is absent
    from the result (the caller reports it). On MariaDB, whose JSON type is LONGTEXT with a
    ``CHECK (json_valid(col))`` constraint, a text column with exactly that check (column-
    or table-level, information_schema.CHECK_CONSTRAINTS) is described with ``data_type``
    ``json`` (its ``column_type`` stays ``longtext``), as MySQL's native JSON is. Raises
    mysql.connector.Error when the server refuses the queries.
    """
    if not tables:
        return {}
    marks = ", ".join(["%s"] * len(tables))
    cur = conn.cursor()
    cur.execute(
        "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_MAXIMUM_LENGTH, "
        "NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION FROM information_schema.COLUMNS "
        f"WHERE TABLE_SCHEMA = %s AND TABLE_NAME IN ({marks}) ORDER BY TABLE_NAME, ORDINAL_POSITION",
        [database, *tables],
    )
    result: dict[str, dict[str, SourceColumn]] = {}
    for table, column, data_type, column_type, char_len, precision, scale, dt_precision in cur:
        result.setdefault(text_value(table), {})[text_value(column)] = SourceColumn(
            name=text_value(column),
            data_type=text_value(data_type).lower(),
            column_type=text_value(column_type).lower(),
            char_length=char_len,
            numeric_precision=precision,
            numeric_scale=scale,
            datetime_precision=dt_precision,
        )
    cur.close()
    for table, column in _mariadb_json_columns(conn, database, tables):
        found = result.get(table, {}).get(column)
        if found is not None and found.data_type in _TEXT_TYPES:
            result[table][column] = dataclasses.replace(found, data_type="json")
    return result


_TEXT_TYPES = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext")


def read_unique_keys(conn, database: str, tables: list[str]) -> dict[str, dict[str, tuple[str, ...]]]:
    """The primary and unique keys of ``tables`` of ``database`` (information_schema.STATISTICS).

    Returns ``{table: {index name: (column, ...)}}``, the primary key first, columns in index
    order; a table with no such key (or a view) is absent. A key over an expression (MySQL 8's
    functional index parts have no column) is left out: it says nothing of the columns. A
    prefix index (``UNIQUE (name(10))``) counts: unique prefixes make the whole values unique.
    Raises mysql.connector.Error when the server refuses the query.
    """
    if not tables:
        return {}
    marks = ", ".join(["%s"] * len(tables))
    cur = conn.cursor()
    cur.execute(
        "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
        f"WHERE TABLE_SCHEMA = %s AND TABLE_NAME IN ({marks}) AND NON_UNIQUE = 0 "
        "ORDER BY TABLE_NAME, INDEX_NAME <> 'PRIMARY', INDEX_NAME, SEQ_IN_INDEX",
        [database, *tables],
    )
    keys: dict[str, dict[str, list]] = {}
    for table, index, column in cur.fetchall():
        keys.setdefault(text_value(table), {}).setdefault(text_value(index), []).append(
            None if column is None else text_value(column))
    cur.close()
    result: dict[str, dict[str, tuple[str, ...]]] = {}
    for table, indexes in keys.items():
        usable = {index: tuple(cols) for index, cols in indexes.items() if None not in cols}
        if usable:
            result[table] = usable
    return result


def _mariadb_json_columns(conn, database: str, tables: list[str]) -> set[tuple[str, str]]:
    """``(table, column)`` of the columns a MariaDB check constraint ``json_valid(`column`)``
    guarantees to hold JSON (empty on MySQL: its CHECK_CONSTRAINTS has no TABLE_NAME, and its
    JSON columns say ``json`` themselves)."""
    if "mariadb" not in (getattr(conn, "server_info", "") or "").lower():
        return set()
    marks = ", ".join(["%s"] * len(tables))
    cur = conn.cursor()
    cur.execute(
        "SELECT TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
        f"WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME IN ({marks})",
        [database, *tables],
    )
    found = set()
    for table, clause in cur.fetchall():
        match = re.fullmatch(r"json_valid\(`((?:[^`]|``)+)`\)", text_value(clause).strip(), re.IGNORECASE)
        if match:
            found.add((text_value(table), match.group(1).replace("``", "`")))
    cur.close()
    return found


def refusal(conn, query: str, params: list | None = None) -> str | None:
    """Run ``query`` (e.g. an EXPLAIN) and read its rows: None when the server accepts it, else the
    server's message and error number (``Unknown column 'x' in 'where clause' (MySQL error 1054)``).

    Raises SourceError when the fault is transient (a lost connection): that says nothing of the query.
    """
    cur = conn.cursor()
    try:
        cur.execute(query, params or None)
        cur.fetchall()
        return None
    except mysql.connector.Error as exc:
        if is_transient_mysql(exc):
            raise SourceError(f"MySQL source: {exc.msg} (error {exc.errno})", transient=True) from None
        return f"{exc.msg} (MySQL error {exc.errno})" if exc.errno else str(exc)
    finally:
        cur.close()


def is_transactional(conn, database: str, table: str) -> bool:
    """True when ``table`` is an InnoDB table (consistent snapshots; a view or MyISAM is not)."""
    cur = conn.cursor()
    cur.execute("SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                [database, table])
    row = cur.fetchone()
    cur.close()
    return row is not None and text_value(row[0] or "").lower() == "innodb"


@contextmanager
def snapshot(conn):
    """A read-only REPEATABLE READ transaction started WITH CONSISTENT SNAPSHOT on ``conn``.

    Every query inside sees the same committed state (InnoDB), so a fingerprint and an
    extract taken inside agree with each other. Commits on leaving; after an error the
    transaction ends when the caller closes the connection (a half-read streaming result
    cannot be rolled back on the same connection).
    """
    cur = conn.cursor()
    # (mysql-connector's start_transaction refuses READ ONLY on MariaDB: it reads its version as 5.5.5)
    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
    cur.close()
    yield conn
    conn.commit()


def source_clock(conn) -> datetime:
    """Return the source server's current UTC time (microseconds), naive datetime."""
    cur = conn.cursor()
    cur.execute("SELECT UTC_TIMESTAMP(6)")
    (now,) = cur.fetchone()
    cur.close()
    return now


def fetch_one(conn, query: str, params=()) -> tuple:
    """Run a one-row query and return that row."""
    cur = conn.cursor()
    try:
        cur.execute(query, params)
        return cur.fetchone()
    finally:
        cur.close()


def scalar(conn, query: str, params=()) -> object:
    """Run a one-value query and return that value."""
    (value,) = fetch_one(conn, query, params)
    return value


def stream_rows(conn, query: str, params: list, batch_rows: int) -> Iterator[list[tuple]]:
    """Yield lists of at most ``batch_rows`` raw rows (tuples of bytes or None).

    Uses an unbuffered cursor, so the server streams and memory stays bounded by one
    batch. Raises SourceError naming the query's table on a server error.
    """
    cur = conn.cursor(raw=True, buffered=False)
    try:
        cur.execute(query, params)
        while True:
            rows = cur.fetchmany(batch_rows)
            if not rows:
                break
            yield rows
    except mysql.connector.Error as exc:
        raise SourceError(
            f"MySQL source query failed: {exc.msg} (error {exc.errno}); query: {query}", transient=is_transient_mysql(exc)
        ) from None
    finally:
        try:
            cur.close()
        except mysql.connector.Error:
            # a stream stopped early (the consumer failed or was stopped) leaves unread rows, and closing
            # then raises "Unread result found": the consumer's error, not this one, is the cause
            pass


def text_value(value) -> str:
    """A value from the driver as text (bytes decoded as UTF-8)."""
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)
