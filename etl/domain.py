"""The domain types every module may import: table metadata, source columns, watermark windows.

Plain frozen dataclasses with no behaviour beyond naming; they import nothing from the
package, so ``etl.metadata`` (which builds ``TableMeta`` from YAML), ``etl.source_mysql``
(which reads ``SourceColumn`` from information_schema), ``etl.control`` (which records
``Window``) and the SQL generators can all share them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class QualifiedName:
    """A ``schema.table`` name; both parts are validated identifiers."""

    schema: str
    table: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True)
class TableMeta:
    """Validated metadata of one extracted source table.

    ``columns`` and ``unique_columns`` are tuples of identifiers; ``watermark_column`` is
    None for a full extract; ``source_file`` is the YAML file it came from (for messages);
    ``unique_check`` says how preflight makes sure ``unique_columns`` is unique in the source
    (``source_key``: a primary or unique key of the table; ``distinct_count``: a count).
    """

    name: str
    columns: tuple[str, ...]
    where_clause: str
    is_incremental: bool
    watermark_column: str | None
    landing_table: QualifiedName
    store_table: QualifiedName
    unique_columns: tuple[str, ...]
    source_file: str
    null_watermark_policy: str = "fail"
    unique_check: str = "source_key"

    @property
    def value_columns(self) -> tuple[str, ...]:
        """Columns that are not part of the business key, in extract order."""
        return tuple(c for c in self.columns if c not in self.unique_columns)


@dataclass(frozen=True)
class SourceColumn:
    """One column as described by MySQL's information_schema.COLUMNS.

    ``data_type`` is lower case (``varchar``); ``column_type`` is the full type
    (``decimal(10,2) unsigned``); lengths/precisions are None where not applicable.
    """

    name: str
    data_type: str
    column_type: str
    char_length: int | None = None
    numeric_precision: int | None = None
    numeric_scale: int | None = None
    datetime_precision: int | None = None


@dataclass(frozen=True)
class Window:
    """A watermark window ``[start, end)``; start None = unbounded; both None = full extract.

    ``source_clock`` is the source's UTC time when the window was computed: rows whose
    watermark is later than it (future-dated) or NULL belong to no window, so every
    incremental extract also reads them (see :func:`build_extract_query`).
    """

    start: datetime | None
    end: datetime | None
    source_clock: datetime | None = None
