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
exists, what to do about it. Messages never contain passwords.
"""


class EltError(Exception):
    """Base class of every error the pipeline raises on purpose."""


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
