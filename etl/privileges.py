"""Can the warehouse role do what the job does? Read from pg_catalog before a sequence opens.

``information_schema`` shows a role only the objects it holds some privilege on: a role
without privileges sees no ``etl_control.run``, so the latest sequence would read as 0 and a
new sequence would start over the recorded runs, to fail later with a raw
``InsufficientPrivilege``. ``pg_catalog`` lists every schema and table whatever the role
may do with them, and the ``has_*_privilege`` functions (PostgreSQL and Redshift both have
them) say what it may do.

:func:`check_role` asks, in one query: CREATE and TEMPORARY on the database (new schemas;
the pres files' temporary tables; CREATE SCHEMA IF NOT EXISTS needs CREATE even where the schema
exists), USAGE and CREATE on every pipeline schema that exists,
SELECT/INSERT/UPDATE/DELETE on every ``etl_control`` table, and ownership (itself or a role
it belongs to) of the landing, store and pres tables that exist, which the job alters,
truncates and drops. A refusal is a WarehouseError naming the role, the database, each
missing privilege and the GRANT statements to run. :func:`check_control_run` guards the
latest-sequence read the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from etl import warehouse
from etl.config import WarehouseSettings
from etl.dialects import dialect_of
from etl.errors import WarehouseError

CONTROL_SCHEMA = "etl_control"
PRES_SCHEMA = "pres"  # every table in it is the pres files' (etl.pres)
SCHEMA_PRIVILEGES = ("USAGE", "CREATE")
CONTROL_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
OWNED_SHOWN = 5  # tables named in a refusal for want of ownership (the rest are counted)


@dataclass(frozen=True)
class Pipeline:
    """What the job writes in the warehouse: ``schemas`` (all of them), the ``landing`` and ``store``
    tables it alters, truncates and drops (``schema.table``; landing partitions follow their table)."""

    schemas: tuple[str, ...]
    landing: tuple[str, ...]
    store: tuple[str, ...]


def pipeline(metas) -> Pipeline:
    """The :class:`Pipeline` of the table metadata ``metas`` (TableMeta of every MySQL table and of
    the access logs): etl_control, their landing and store schemas and pres (as BuildPres's)."""
    metas = list(metas)
    landing = sorted({str(m.landing_table) for m in metas})
    store = sorted({str(m.store_table) for m in metas})
    schemas = {CONTROL_SCHEMA, PRES_SCHEMA} | {m.landing_table.schema for m in metas} | {m.store_table.schema for m in metas}
    return Pipeline(tuple(sorted(schemas)), tuple(landing), tuple(store))


def _marks(values) -> str:
    return ", ".join(["%s"] * len(values))


def _choices(*values: str) -> str:
    return " UNION ALL ".join(f"SELECT '{v}' AS priv" for v in values)


def privileges_query(dialect, job: Pipeline) -> tuple[str, list]:
    """The one query :func:`check_role` runs, and its parameters. Rows ``(kind, schema, name, owner,
    privilege, granted)``: ``database`` (CREATE, TEMP; the role as owner), ``schema`` (USAGE, CREATE of each existing
    pipeline schema), ``table`` (each privilege on each etl_control table), ``owner`` (a landing, store
    or pres table the role does not own, owner named)."""
    tables = [*job.landing, *job.store]
    partitions = ""
    if dialect.partitions_landing and job.landing:
        partitions = (" OR c.oid IN (SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class p "
                      "ON p.oid = i.inhparent JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace "
                      f"WHERE pn.nspname || '.' || p.relname IN ({_marks(job.landing)}))")
    query = (
        "SELECT 'database', CAST(current_database() AS VARCHAR(128)), NULL, CAST(current_user AS VARCHAR(128)), p.priv, "
        "has_database_privilege(current_database(), p.priv) "
        f"FROM ({_choices('CREATE', 'TEMP')}) p "
        "UNION ALL "
        "SELECT 'schema', CAST(n.nspname AS VARCHAR(128)), NULL, NULL, p.priv, has_schema_privilege(n.nspname, p.priv) "
        f"FROM pg_catalog.pg_namespace n, ({_choices(*SCHEMA_PRIVILEGES)}) p WHERE n.nspname IN ({_marks(job.schemas)}) "
        "UNION ALL "
        f"SELECT 'table', CAST(n.nspname AS VARCHAR(128)), CAST(c.relname AS VARCHAR(128)), NULL, p.priv, "
        f"{dialect.table_privilege_sql} "
        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace, "
        f"({_choices(*CONTROL_PRIVILEGES)}) p WHERE n.nspname = '{CONTROL_SCHEMA}' AND c.relkind IN ('r', 'p') "
        "UNION ALL "
        f"SELECT 'owner', CAST(n.nspname AS VARCHAR(128)), CAST(c.relname AS VARCHAR(128)), {dialect.owner_name_sql}, "
        "'OWNER', false "
        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE c.relkind IN ('r', 'p') AND NOT {dialect.owns_table_sql} AND (n.nspname = '{PRES_SCHEMA}'"
        + (f" OR n.nspname || '.' || c.relname IN ({_marks(tables)})" if tables else "")
        + partitions + ") "
        "ORDER BY 1, 2, 3, 5"
    )
    return query, [*job.schemas, *tables, *(job.landing if partitions else [])]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def role_problems(rows, job: Pipeline, role: str, database: str, dialect) -> tuple[list[str], list[str]]:
    """``(problems, statements)`` from the rows of :func:`privileges_query`: one line per missing
    privilege, and the statements that grant them (to run as the objects' owner or a superuser)."""
    problems, statements = [], []
    existing = {schema for kind, schema, *_ in rows if kind == "schema"}
    missing_schemas = [s for s in job.schemas if s not in existing]
    database_grants = []
    for kind, schema, name, owner, privilege, granted in rows:
        if kind == "database" and not granted:
            if privilege == "CREATE":  # even CREATE SCHEMA IF NOT EXISTS of a schema that exists needs it
                missing = f"; {', '.join(missing_schemas)} do not exist yet" if missing_schemas else ""
                problems.append(f"CREATE on database {database} (the job runs CREATE SCHEMA IF NOT EXISTS for its "
                                f"schemas{missing})")
                database_grants.append("CREATE")
            elif privilege == "TEMP":
                problems.append(f"TEMPORARY on database {database} (the pres files and the store upsert use "
                                "temporary tables)")
                database_grants.append("TEMPORARY")
    if database_grants:
        statements.append(f"GRANT {', '.join(database_grants)} ON DATABASE {_ident(database)} TO {_ident(role)}")
    for schema in job.schemas:
        lacking = [p for p in SCHEMA_PRIVILEGES
                   if any(k == "schema" and s == schema and q == p and not granted for k, s, _, _, q, granted in rows)]
        if not lacking:
            continue
        why = ""
        if "USAGE" in lacking:
            why = (" (it exists, but this role cannot use it: the runs recorded in etl_control.run are invisible "
                   "to it, so the job would take the latest sequence as 0)" if schema == CONTROL_SCHEMA
                   else " (it exists, but this role cannot use it)")
        problems.append(f"{' and '.join(lacking)} on schema {schema}{why}")
        statements.append(f"GRANT {', '.join(lacking)} ON SCHEMA {_ident(schema)} TO {_ident(role)}")
    tables: dict[str, list[str]] = {}
    for kind, schema, name, _, privilege, granted in rows:
        if kind == "table" and not granted:
            tables.setdefault(f"{schema}.{name}", []).append(privilege)
    if tables:
        lacking = [p for p in CONTROL_PRIVILEGES if any(p in privs for privs in tables.values())]
        problems.append(f"{', '.join(lacking)} on the etl_control tables {', '.join(sorted(tables))}")
        statements.append(f"GRANT {', '.join(CONTROL_PRIVILEGES)} ON ALL TABLES IN SCHEMA {_ident(CONTROL_SCHEMA)} "
                          f"TO {_ident(role)}")
    owned = [(f"{schema}.{name}", owner) for kind, schema, name, owner, *_ in rows if kind == "owner"]
    if owned:
        owners = sorted({owner or "?" for _, owner in owned})
        shown = ", ".join(name for name, _ in owned[:OWNED_SHOWN])
        more = f" and {len(owned) - OWNED_SHOWN} more" if len(owned) > OWNED_SHOWN else ""
        tables_word = "table" if len(owned) == 1 else "tables"
        problems.append(f"ownership of {len(owned)} {tables_word} the job alters, truncates and drops, owned by "
                        f"{', '.join(owners)}: {shown}{more}")
        statements += dialect.owner_transfer([name for name, _ in owned], role)
    return problems, statements


def refusal(settings: WarehouseSettings, role: str, problems: list[str], statements: list[str]) -> str:
    """The WarehouseError message: the role, the warehouse, each missing privilege, the statements to run."""
    return (f"warehouse {settings.describe()}: the role {role} lacks privileges the job needs (checked before any "
            "sequence opens):\n  " + "\n  ".join(problems)
            + f"\n  run as the owner of these objects or a superuser: {'; '.join(statements)}; "
            "or set [warehouse] user to a role that has them")


def check_role(settings: WarehouseSettings, metas) -> None:
    """Refuse (WarehouseError, see :func:`refusal`) a ``[warehouse] user`` that lacks a privilege the job
    needs on the pipeline of ``metas`` (:func:`pipeline`); one query on its own connection. Raises
    WarehouseError also when the warehouse is unreachable."""
    import psycopg2

    job = pipeline(metas)
    with warehouse.connection(settings) as conn:
        dialect = dialect_of(conn)
        query, params = privileges_query(dialect, job)
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                rows = cur.fetchall()
        except psycopg2.Error as exc:
            raise WarehouseError(f"warehouse {settings.describe()}: reading the role's privileges failed: "
                                 f"{warehouse.pg_message(exc)}") from None
        conn.rollback()
    role = next(owner for kind, _, _, owner, *_ in rows if kind == "database")
    problems, statements = role_problems(rows, job, role, settings.database, dialect)
    if problems:
        raise WarehouseError(refusal(settings, role, problems, statements))


CONTROL_RUN_QUERY = (
    "SELECT current_user, has_schema_privilege(n.nspname, 'USAGE'), {table_privilege} "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace, (SELECT 'SELECT' AS priv) p "
    f"WHERE n.nspname = '{CONTROL_SCHEMA}' AND c.relname = 'run'"
)


def check_control_run(conn, settings: WarehouseSettings) -> bool:
    """True when ``etl_control.run`` exists and the role may read it, False when it does not exist (no
    sequence recorded yet); WarehouseError when it exists but the role cannot use its schema or read it
    (the latest sequence would otherwise silently read as 0)."""
    with conn.cursor() as cur:
        cur.execute(CONTROL_RUN_QUERY.format(table_privilege=dialect_of(conn).table_privilege_sql))
        row = cur.fetchone()
    if row is None:
        return False
    role, usage, select = row
    if usage and select:
        return True
    problems, statements = [], []
    if not usage:
        problems.append(f"USAGE on schema {CONTROL_SCHEMA} (it exists, but this role cannot use it: the runs "
                        "recorded in etl_control.run are invisible to it, so the job would take the latest sequence as 0)")
        statements.append(f"GRANT USAGE ON SCHEMA {_ident(CONTROL_SCHEMA)} TO {_ident(role)}")
    if not select:
        problems.append(f"SELECT on {CONTROL_SCHEMA}.run")
        statements.append(f"GRANT SELECT ON {_ident(CONTROL_SCHEMA)}.{_ident('run')} TO {_ident(role)}")
    raise WarehouseError(refusal(settings, role, problems, statements))
