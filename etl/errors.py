"""The project's exception tree.

::

    EltError                    base; str() is a complete message for the user
    +-- ConfigError             wrong or inconsistent luigi.cfg value or extract_config metadata
    +-- SourceError             the MySQL source: unreachable, bad credentials, missing table
    +-- WarehouseError          the PostgreSQL / Redshift warehouse: unreachable, failed DDL
    +-- StagingError            reading or writing a staging file/object failed
    +-- ExtractError            streaming a table into its staging file failed
    +-- LoadError               COPY of a staging file into landing failed
    +-- MergeError              the store upsert or watermark advance failed
    +-- PresError               a sql/pres file failed

Every message names the thing that failed (file, table, column, host) and, where one
exists, what to do about it. Messages never contain passwords. ``transient`` marks faults
worth retrying (a dropped connection, a server restarting, a deadlock), as classified by
:func:`is_transient_postgres` and :func:`is_transient_mysql`.
"""

# SQLSTATEs of faults that a retry can cure (PostgreSQL Appendix A: class 08 connection
# exception, 57P01-03 admin shutdown / crash shutdown / cannot connect now, 40001
# serialization failure, 40P01 deadlock detected).
TRANSIENT_SQLSTATES = ("57P01", "57P02", "57P03", "40001", "40P01")
# MySQL/MariaDB client and server error numbers of the same kind (2003 can't connect,
# 2006 server has gone away, 2013 lost connection, 2055 lost connection (system error),
# 1040 too many connections, 1205 lock wait timeout, 1213 deadlock).
TRANSIENT_MYSQL_ERRNOS = (2003, 2006, 2013, 2055, 1040, 1205, 1213)


class EltError(Exception):
    """Base class of every error the pipeline raises on purpose.

    ``transient=True`` says a retry of the step may succeed.
    """

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


def is_transient_postgres(exc: BaseException) -> bool:
    """True for psycopg2 errors a retry can cure: connection faults, shutdowns, deadlocks."""
    import psycopg2

    code = getattr(exc, "pgcode", None)
    if code:
        return code.startswith("08") or code in TRANSIENT_SQLSTATES
    # a connection dropped mid-statement arrives without a SQLSTATE
    return isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError))


def is_transient_mysql(exc: BaseException) -> bool:
    """True for mysql-connector errors a retry can cure (see TRANSIENT_MYSQL_ERRNOS)."""
    return getattr(exc, "errno", None) in TRANSIENT_MYSQL_ERRNOS


def pg_message(exc) -> str:
    """The server's message of a psycopg2 error (``pgerror``, else ``str(exc)``) on one line,
    whitespace collapsed: the tail of a LoadError or MergeError message."""
    text = (exc.pgerror or str(exc)).strip()
    return " ".join(text.split())


class ConfigError(EltError):
    """A configuration value or table metadata entry is wrong."""


class SourceError(EltError):
    """The MySQL/MariaDB source cannot be used."""


class WarehouseError(EltError):
    """The warehouse cannot be used."""


class StagingError(EltError):
    """A staging file or S3 object could not be read or written."""


class ExtractError(EltError):
    """Extracting a source table to staging failed."""


class LoadError(EltError):
    """Loading a staging file into landing failed."""


class MergeError(EltError):
    """Upserting landing rows into store failed."""


class PresError(EltError):
    """Running a presentation SQL file failed."""


class DeleteGuardError(MergeError):
    """A store step would tombstone more of a table's live rows than ``[dw_etl] max_delete_fraction``
    allows (a truncated source table, a mistaken ``where_clause``); nothing of the step was applied."""
