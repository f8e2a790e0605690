"""Amazon Redshift dialect: DDL, ``COPY ... FROM 's3://...'`` and the store upsert.

Generated from the same metadata as the PostgreSQL statements (``etl.sqlgen``), adjusted
for what Redshift lacks or does differently (AWS Redshift Database Developer Guide:
"Data types", "COPY", "UPDATE", "CREATE TABLE"):

* types: ``VARCHAR(n)`` counts bytes, not characters, so n is multiplied by 4 (UTF-8,
  at most 65535); ``TEXT`` becomes ``VARCHAR(65535)``; timestamps have no precision
  modifier; ``interval`` is not a column type (staged as ``VARCHAR(32)``);
* no indexes and no enforced unique constraints: ``DISTKEY``/``SORTKEY`` instead (the
  first key column and the key by default), ``IDENTITY(1, 1)`` instead of
  ``GENERATED ... AS IDENTITY``;
* no ``INSERT ... ON CONFLICT`` and no ``IS DISTINCT FROM``: the upsert is a deduplicated
  temp batch, an ``UPDATE ... FROM`` of changed rows (null-safe comparison spelled out),
  then an ``INSERT`` of new keys, in one transaction;
* loads read the gzip CSV staging objects with ``COPY ... IAM_ROLE ... CSV GZIP
  IGNOREHEADER 1 EMPTYASNULL``: an unquoted empty field is NULL, a quoted ``""`` stays an
  empty string, as in the PostgreSQL load.

These statements are checked as text by unit tests; no Redshift cluster is reachable
from the test machines.
"""

from __future__ import annotations

import re

from psycopg2 import sql

from etl import sqlfile, warehouse_sql
from etl.errors import ConfigError
from etl.domain import TableMeta
from etl.warehouse_sql import qualified

MAX_VARCHAR = 65535
MAX_VARBYTE = 1024000  # VARBYTE's maximum when it came out (2021); newer clusters take up to 16 MB
_SAME = {"smallint", "integer", "bigint", "real", "double precision", "boolean", "date"}


def redshift_type(table: str, column: str, pg_type: str) -> str:
    """Map a warehouse type of ``etl.sqlgen.pg_type`` to Redshift (DDL text).

    ``table`` and ``column`` name the column in the error. Besides the plain renames:
    ``text`` and ``jsonb`` -> ``VARCHAR(65535)`` (JSON kept as the text MySQL writes; read
    it with JSON_PARSE; SUPER would need its own comparison in the upsert); ``varchar(n)``
    -> ``VARCHAR(4n)`` (bytes); ``bytea`` -> ``VARBYTE(1024000)`` (staged as hex, which
    Redshift's CSV COPY reads); ``bit(n)`` -> ``VARCHAR(n)`` of its ``0``/``1`` digits
    (Redshift has no bit type); ``interval`` (MySQL TIME) -> ``VARCHAR(32)`` holding MySQL's
    text (``-838:59:59.000000``); ``uuid`` -> ``CHAR(36)``; ``inet`` -> ``VARCHAR(45)``;
    timestamps without precision. A longer value than the Redshift type holds fails the COPY,
    which names the column. Raises ConfigError naming table, column and type, and what to
    do, when there is no Redshift type: ``numeric`` above 38 digits (e.g. decimal(65,30)).
    """
    if pg_type in _SAME:
        return pg_type.upper()
    if pg_type in ("text", "jsonb"):
        return f"VARCHAR({MAX_VARCHAR})"
    match = re.fullmatch(r"varchar\((\d+)\)", pg_type)
    if match:
        return f"VARCHAR({min(int(match.group(1)) * 4, MAX_VARCHAR)})"
    match = re.fullmatch(r"numeric\((\d+),(\d+)\)", pg_type)
    if match:
        if int(match.group(1)) > 38:
            raise ConfigError(
                f"table {table!r}, column {column!r}: {pg_type} exceeds Redshift's NUMERIC(38); exclude the column "
                "from the table's columns in extract_config, or extract a view that casts it to DECIMAL(38,s) "
                "(if its values fit) or to CHAR"
            )
        return pg_type.upper()
    match = re.fullmatch(r"bit\((\d+)\)", pg_type)
    if match:
        return f"VARCHAR({int(match.group(1))})"
    if pg_type.startswith("timestamptz"):
        return "TIMESTAMPTZ"
    if pg_type.startswith("timestamp"):
        return "TIMESTAMP"
    if pg_type == "interval":
        return "VARCHAR(32)"
    if pg_type == "bytea":
        return f"VARBYTE({MAX_VARBYTE})"
    if pg_type == "uuid":
        return "CHAR(36)"
    if pg_type == "inet":
        return "VARCHAR(45)"
    raise ConfigError(f"table {table!r}, column {column!r}: type {pg_type!r} has no Redshift mapping; exclude the "
                      "column from the table's columns in extract_config, or extract a view that casts it")


def _idents(names) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def landing_ddl(meta: TableMeta, types: dict[str, str]) -> list[sql.Composable]:
    """Landing schema and table (sorted by execution sequence, distributed evenly)."""
    cols = [sql.SQL("execution_sequence INTEGER NOT NULL")]
    cols += [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(redshift_type(meta.name, c, types[c]))) for c in meta.columns]
    cols.append(sql.SQL("landing_row_id BIGINT IDENTITY(1, 1)"))
    cols.append(sql.SQL("etl_loaded_datetime TIMESTAMP DEFAULT GETDATE()"))
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(meta.landing_table.schema)),
        sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}) DISTSTYLE EVEN SORTKEY (execution_sequence)").format(
            qualified(meta.landing_table), sql.SQL(", ").join(cols)
        ),
    ]


# the Redshift spelling of store's own columns (etl.warehouse_sql.STORE_ETL_COLUMNS): times as TIMESTAMP (UTC)
STORE_ETL_TYPES = {"timestamptz": "TIMESTAMP", "integer": "INTEGER"}
STORE_ADDED_COLUMNS = {name: STORE_ETL_TYPES[type_] for name, type_ in warehouse_sql.STORE_ADDED_COLUMNS.items()}


def store_ddl(meta: TableMeta, types: dict[str, str], distkey: str | None = None, sortkey: tuple[str, ...] = ()) -> list[sql.Composable]:
    """Store schema and table: informational primary key, DISTKEY (default: first key column), SORTKEY (default: the key)."""
    cols = []
    for c in meta.columns:
        not_null = sql.SQL(" NOT NULL") if c in meta.unique_columns else sql.SQL("")
        cols.append(sql.SQL("{} {}{}").format(sql.Identifier(c), sql.SQL(redshift_type(meta.name, c, types[c])), not_null))
    for name, type_, not_null in warehouse_sql.STORE_ETL_COLUMNS:
        cols.append(sql.SQL("{} {}{}").format(sql.Identifier(name), sql.SQL(STORE_ETL_TYPES[type_]),
                                               sql.SQL(" NOT NULL" if not_null else "")))
    cols.append(sql.SQL("PRIMARY KEY ({})").format(_idents(meta.unique_columns)))
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(meta.store_table.schema)),
        sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}) DISTKEY ({}) SORTKEY ({})").format(
            qualified(meta.store_table),
            sql.SQL(", ").join(cols),
            sql.Identifier(distkey or meta.unique_columns[0]),
            _idents(sortkey or meta.unique_columns),
        ),
    ]


def copy_sql(meta: TableMeta) -> sql.Composable:
    """COPY of a sequence's staging objects into landing; params: (s3 prefix of its parts, IAM role ARN)."""
    return sql.SQL(
        "COPY {} ({}) FROM %s IAM_ROLE %s FORMAT AS CSV GZIP IGNOREHEADER 1 EMPTYASNULL "
        "TIMEFORMAT 'auto' DATEFORMAT 'auto' COMPUPDATE OFF STATUPDATE OFF"
    ).format(qualified(meta.landing_table), _idents(("execution_sequence",) + meta.columns))


BATCH_TABLE = "etl_batch"


def upsert_statements(meta: TableMeta) -> list[sql.Composable]:
    """The store upsert as four statements for one transaction (param of the first: execution_sequence).

    1. temp batch: the sequence's landing rows with non-NULL keys (and their execution_sequence),
       newest version per key (ROW_NUMBER by watermark desc, then landing_row_id desc);
    2. ``UPDATE`` store rows whose values differ (null-safe) or that are tombstones (they come
       back to life), only with a newer version (``etl.warehouse_sql.newer_version_sql``:
       execution sequence, then watermark) - its row count is the number updated;
    3. ``INSERT`` keys not yet in store - its row count is the number inserted;
    4. drop the batch.
    """
    store = qualified(meta.store_table)
    batch = sql.Identifier(BATCH_TABLE)
    keys = meta.unique_columns
    order = [sql.SQL("{} DESC NULLS LAST").format(sql.Identifier(meta.watermark_column))] if meta.watermark_column else []
    order.append(sql.SQL("landing_row_id DESC"))
    not_null = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in keys)
    batch_cols = _idents(meta.columns + ("execution_sequence",))
    create = sql.SQL(
        "CREATE TEMP TABLE {batch} AS SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY {keys} "
        "ORDER BY {order}) AS etl_rn FROM {landing} WHERE execution_sequence = %s AND {not_null}) AS ranked "
        "WHERE etl_rn = 1"
    ).format(batch=batch, cols=batch_cols, keys=_idents(keys), order=sql.SQL(", ").join(order),
             landing=qualified(meta.landing_table), not_null=not_null)

    def target(c):
        return sql.SQL("{}.{}").format(store, sql.Identifier(c))

    def source(c):
        return sql.SQL("b.{}").format(sql.Identifier(c))

    match = sql.SQL(" AND ").join(sql.SQL("{} = {}").format(target(c), source(c)) for c in keys)
    changed = [sql.SQL("NOT ({t} = {s} OR ({t} IS NULL AND {s} IS NULL))").format(t=target(c), s=source(c))
               for c in meta.value_columns]
    changed.append(sql.SQL("{} IS NOT NULL").format(target("etl_deleted_datetime")))
    condition = sql.SQL("{} AND ({}) AND {}").format(
        match, sql.SQL(" OR ").join(changed),
        warehouse_sql.newer_version_sql(sql.SQL("b"), store, meta.watermark_column, "execution_sequence"))
    assignments = [sql.SQL("{} = {}").format(sql.Identifier(c), source(c)) for c in meta.value_columns]
    assignments += [sql.SQL("etl_updated_datetime = GETDATE()"),
                    sql.SQL("etl_execution_sequence = b.execution_sequence"),
                    sql.SQL("etl_deleted_datetime = NULL")]
    update = sql.SQL("UPDATE {} SET {} FROM {} AS b WHERE {}").format(
        store, sql.SQL(", ").join(assignments), batch, condition)
    new_match = sql.SQL(" AND ").join(sql.SQL("s.{0} = b.{0}").format(sql.Identifier(c)) for c in keys)
    insert = sql.SQL(
        "INSERT INTO {store} ({cols}, etl_created_datetime, etl_updated_datetime, etl_execution_sequence) "
        "SELECT {bcols}, GETDATE(), GETDATE(), b.execution_sequence FROM {batch} AS b LEFT JOIN {store} AS s ON {match} "
        "WHERE s.{first} IS NULL"
    ).format(store=store, cols=_idents(meta.columns), bcols=sql.SQL(", ").join(source(c) for c in meta.columns),
             batch=batch, match=new_match, first=sql.Identifier(keys[0]))
    return [create, update, insert, sql.SQL("DROP TABLE {}").format(batch)]


# --- pres and report SQL files -------------------------------------------------------------

_UNSUPPORTED = {
    # what Redshift lacks -> how to write it instead (the files in sql/ follow these rules)
    "ON CONFLICT": "UPDATE ... FROM changed rows, then INSERT ... WHERE NOT EXISTS",
    "GENERATE_SERIES": "a digits cross join or the pres.dim_date calendar (generate_series runs on the leader node only)",
    "TO_REGCLASS": "information_schema.tables",
    "JSONB": "VARCHAR(MAX) or SUPER",
    "ON COMMIT": "DROP TABLE IF EXISTS before CREATE TEMPORARY TABLE and DROP TABLE after use",
    "TEMPORARY VIEW": "a temporary table or a common table expression",
    "TEMP VIEW": "a temporary table or a common table expression",
    "RETURNING": "a separate SELECT",
}
PRES_NUMERIC = "DECIMAL(38, 10)"


def _adapt(node):
    """sqlglot transform: the PostgreSQL constructs of the sql/ files that Redshift spells differently."""
    from sqlglot import exp

    if isinstance(node, exp.CurrentTimestamp):
        # now() / current_timestamp are leader-node-only on Redshift; SYSDATE is the
        # transaction start, like PostgreSQL's now() (AWS: "SYSDATE function")
        return exp.var("SYSDATE")
    if isinstance(node, exp.Collate):
        # Redshift has no locale collations (AWS: "Unsupported PostgreSQL features")
        return node.this
    if isinstance(node, exp.NullSafeNEQ):
        a, b = node.this, node.expression
        return exp.not_(exp.paren(exp.or_(exp.EQ(this=a.copy(), expression=b.copy()),
                                          exp.and_(exp.Is(this=a.copy(), expression=exp.null()),
                                                   exp.Is(this=b.copy(), expression=exp.null())))))
    if isinstance(node, exp.GeneratedAsIdentityColumnConstraint) and node.this is False:
        # explicit values (the -1 unknown members) need the BY DEFAULT form
        return exp.var("GENERATED BY DEFAULT AS IDENTITY(1, 1)")
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.DECIMAL and not node.expressions:
        # unconstrained NUMERIC is NUMERIC(18, 0) on Redshift: it would drop the cents
        return exp.DataType.build(PRES_NUMERIC, dialect="redshift")
    return node


class CreateIfMissing(str):
    """A translated ``CREATE TABLE ... AS`` statement to run only when ``table`` does not exist.

    PostgreSQL's ``CREATE TABLE IF NOT EXISTS t AS <query> WITH NO DATA`` (a pres table whose
    columns take the types of the store columns it selects) has no Redshift spelling;
    the statement is ``CREATE TABLE t AS <query> LIMIT 0`` and the caller runs it only when
    ``table`` (``schema.name``) is missing.
    """

    table: str

    def __new__(cls, statement: str, table: str):
        obj = super().__new__(cls, statement)
        obj.table = table
        return obj


def _is_set_not_null(tree) -> bool:
    """True for ``ALTER TABLE ... ALTER COLUMN ... SET NOT NULL`` (Redshift cannot alter nullability)."""
    from sqlglot import exp

    return (isinstance(tree, exp.Alter) and bool(tree.args.get("actions"))
            and all(isinstance(a, exp.AlterColumn) and a.args.get("allow_null") is False for a in tree.args["actions"]))


def _is_storage_parameter(tree) -> bool:
    """True for ``ALTER TABLE ... SET (parameter = value)`` (PostgreSQL storage parameters such as
    fillfactor; Redshift has none)."""
    from sqlglot import exp

    return (isinstance(tree, exp.Alter) and bool(tree.args.get("actions"))
            and all(isinstance(a, exp.AlterSet) for a in tree.args["actions"]))


def _create_if_missing(tree) -> CreateIfMissing | None:
    """The Redshift form of ``CREATE TABLE IF NOT EXISTS t AS <query> WITH NO DATA``, else None."""
    created = sqlfile.created_from_query(tree)
    if created is None:
        return None
    table, query = created
    query = query.transform(_adapt).limit(0)
    statement = f"CREATE TABLE {table.sql(dialect='redshift')} AS {query.sql(dialect='redshift', comments=False)}"
    return CreateIfMissing(statement, f"{table.db}.{table.name}")


def translate_file(path, text: str) -> list[str]:
    """Translate one PostgreSQL pres/report file into Redshift statements, in order.

    ``text`` is the file's SQL (several statements); returns one string per statement.
    sqlglot (PostgreSQL -> Redshift dialect) maps types and functions (``text`` ->
    ``VARCHAR(MAX)``, casts, identity columns); :func:`_adapt` adds the rules above;
    ``CREATE INDEX``, ``ALTER COLUMN ... SET NOT NULL`` and ``ALTER TABLE ... SET (fillfactor ...)``
    statements are dropped (Redshift has no indexes, sort keys instead, cannot change a
    column's nullability and has no storage parameters); a
    ``CREATE TABLE IF NOT EXISTS ... AS ... WITH NO DATA`` becomes a :class:`CreateIfMissing`.
    Raises ConfigError naming the file when it uses something Redshift lacks (see
    ``_UNSUPPORTED``) or cannot be parsed.
    """
    from sqlglot import exp

    upper = " ".join(re.sub(r"--[^\n]*", "", text).upper().split())
    for construct, instead in _UNSUPPORTED.items():
        if construct in upper:
            raise ConfigError(f"{path}: {construct} does not exist on Redshift; write it as {instead}")
    try:
        trees = sqlfile.parse(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: cannot be translated to Redshift SQL: {exc}") from None
    statements = []
    for tree in trees:
        if (tree is None or (isinstance(tree, exp.Create) and tree.kind == "INDEX") or _is_set_not_null(tree)
                or _is_storage_parameter(tree)):
            continue
        statements.append(_create_if_missing(tree) or tree.transform(_adapt).sql(dialect="redshift", comments=False))
    return statements
