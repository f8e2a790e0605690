"""The warehouse (PostgreSQL; Redshift shares the driver): connections and small helpers.

Sessions run in UTC (``timezone = 'UTC'``) so ``now()`` and ``current_date`` agree with the
watermarks and the reports, and without JIT compilation (see :func:`connect`).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import psycopg2
from psycopg2 import sql

from etl.config import WarehouseSettings
from etl.dialects import for_flavor
from etl.errors import WarehouseError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10
COPY_BUFFER_BYTES = 1 << 20  # bytes per read of a COPY ... FROM STDIN (psycopg2 copy_expert's size)


class WarehouseConnection(psycopg2.extensions.connection):
    """A psycopg2 connection that knows its warehouse flavor (``postgres`` or ``redshift``).

    Steps ask ``etl.dialects.dialect_of(conn)`` for the statements and capabilities of that
    warehouse; they never test the flavour themselves.
    """

    flavor = "postgres"


def connect(settings: WarehouseSettings, database: str | None = None):
    """Open a psycopg2 connection (UTC session, not autocommit) to the warehouse.

    ``database`` overrides the configured database (used to create it from ``postgres``).
    Raises WarehouseError naming host, port, user and database, with a hint, on failure.
    """
    kwargs = dict(
        host=settings.host,
        port=settings.port,
        user=settings.user,
        dbname=database or settings.database,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        application_name="luigi_dw_etl",
        connection_factory=WarehouseConnection,
    )
    dialect = for_flavor(settings.flavor)
    if dialect.startup_options:
        kwargs["options"] = dialect.startup_options
    if settings.password:
        kwargs["password"] = settings.password
    try:
        conn = psycopg2.connect(**kwargs)
    except psycopg2.OperationalError as exc:
        message = _describe_connect_error(settings, database, exc)
        refused = "password" in message or "authentication" in message or "does not exist" in message
        raise WarehouseError(message, transient=not refused) from None
    conn.flavor = settings.flavor
    if dialect.session_statements:
        with conn.cursor() as cur:
            for statement in dialect.session_statements:
                cur.execute(statement)
        conn.commit()
    return conn


def _describe_connect_error(settings: WarehouseSettings, database: str | None, exc: Exception) -> str:
    message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    where = f"warehouse {settings.user}@{settings.host}:{settings.port}/{database or settings.database}"
    if "does not exist" in message and "database" in message:
        hint = "create it (scripts/run_job.sh does) or fix [warehouse] database"
    elif "password" in message or "authentication" in message:
        hint = "check [warehouse] user and the PGPASSWORD environment variable"
    else:
        hint = "start PostgreSQL or fix [warehouse] host and port"
    return f"{where}: cannot connect: {message}; {hint}"


@contextmanager
def connection(settings: WarehouseSettings):
    """Context manager around :func:`connect`; rolls back on error and always closes."""
    conn = connect(settings)
    try:
        yield conn
    except BaseException:
        try:
            conn.rollback()
        except psycopg2.Error:
            pass  # the connection itself is gone; the original error says why
        raise
    finally:
        conn.close()


@contextmanager
def thread_sessions(settings: WarehouseSettings):
    """Context manager yielding a function that returns the calling thread's own connection
    (:func:`connect`, opened on the thread's first call), for work spread over a thread pool;
    every connection it opened is closed on exit."""
    import threading

    local, opened, lock = threading.local(), [], threading.Lock()

    def session():
        if getattr(local, "conn", None) is None:
            local.conn = connect(settings)
            with lock:
                opened.append(local.conn)
        return local.conn

    try:
        yield session
    finally:
        for conn in opened:
            conn.close()


def ensure_database(settings: WarehouseSettings) -> bool:
    """Create the configured warehouse database when missing; returns True when created."""
    conn = connect(settings, database=for_flavor(settings.flavor).maintenance_database)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [settings.database])
            if cur.fetchone():
                return False
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings.database)))
            log.info("created warehouse database %s", settings.database)
            return True
    finally:
        conn.close()


def execute_all(conn, statements) -> None:
    """Execute each statement (str or psycopg2.sql.Composable) on one cursor, no commit."""
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


def scalar(cur, query, params=None):
    """Run a one-value query on the cursor ``cur`` and return that value."""
    cur.execute(query, params)
    return cur.fetchone()[0]
