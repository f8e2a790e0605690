"""Presentation layer: run ``sql/pres/*.sql`` in file-name order, one transaction per file; files
that share no pres table run at the same time on their own warehouse sessions (:func:`run_pres`).

Each finished file leaves ``<completed_dir>/<seq>/pres/<file name>`` (JSON: seconds), so a
resumed run skips the files already done and deleting one marker reruns that file.

The files are PostgreSQL SQL written in the subset Redshift shares; with ``[warehouse]
flavor = redshift`` each is translated first (:func:`etl.redshift.translate_file`).

The runner keeps each file's watermark: before the file, in its transaction, the temporary
table ``pres_build`` holds one row, ``since``: the time of the file's previous build
(``etl_control.pres_watermark``, named after the file without its number prefix:
``031_dim_company.sql`` -> ``dim_company``), or 1900-01-01 when there is none (a full
build). The file rebuilds what changed in store at or after ``since``; after it, in the
same transaction, the watermark becomes the transaction's start time. A pres file holds only
its transform.

A pres table takes the types of the store columns it is built from: its file creates it
with ``CREATE TABLE IF NOT EXISTS pres.<name> AS <query over store> WITH NO DATA``. When
the store's column types or the file change (a widened source column, a new release),
:func:`match_shapes` alters the existing table to the query's current column types before
the file runs, keeping its rows (PostgreSQL; on Redshift the table keeps its first types).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from pathlib import Path

import psycopg2
from psycopg2 import sql

from etl import redshift, sqlfile, warehouse
from etl.dialects import dialect_of
from etl.config import WarehouseSettings
from etl.errors import PresError, is_transient_postgres
from etl.markers import step_marker, write_json_atomic

log = logging.getLogger(__name__)


def pres_files(sql_dir: str | Path) -> list[Path]:
    """The ``*.sql`` files of ``<sql_dir>/pres`` sorted by file name."""
    return sorted((Path(sql_dir) / "pres").glob("*.sql"))


def tables_read(sql_dir: str | Path) -> dict[str, list[str]]:
    """The warehouse tables the pres files read outside their own schema: ``{"schema.table": [file names]}``.

    Read from the parsed files (:func:`file_tables`): every table named with a schema other
    than ``pres`` (temporary tables have none). Raises PresError naming a file that cannot be parsed.
    """
    found: dict[str, list[str]] = {}
    for path in pres_files(sql_dir):
        for table in sorted(file_tables(path, path.read_text(encoding="utf-8"))[0]):
            if not table.startswith("pres."):
                found.setdefault(table, []).append(path.name)
    _save_parse_cache()
    return found


def file_tables(path: Path, text: str) -> tuple[frozenset[str], frozenset[str]]:
    """The warehouse tables one pres file names and the pres tables it writes.

    ``path``/``text``: the file and its SQL. Returns ``(named, written)``: ``named`` every table
    the file names with a schema (``"schema.table"``, store and pres; temporary tables have
    none), ``written`` the ``pres`` tables it creates, inserts into, updates or deletes from.
    Read from the parsed file (sqlglot, about 20 ms per file), once per text: the preflight's
    parse serves the pres step (its process is forked from the one that ran the preflight), and
    with :func:`use_parse_cache` later runs too. Raises PresError naming a file that cannot be
    parsed.
    """
    key = hashlib.sha256(text.encode()).hexdigest()
    if key in _known_tables:
        return _known_tables[key]
    try:
        found = _known_tables[key] = _parsed_tables(text)
    except ValueError as exc:
        raise PresError(f"{path}: cannot be parsed: {exc}") from None
    _unsaved.add(key)
    return found


def _save_parse_cache() -> None:
    """Write the parse cache (:func:`use_parse_cache`) when texts were parsed since it was read."""
    if _parse_cache is None or not _unsaved:
        return
    try:
        write_json_atomic(_parse_cache, {k: [sorted(n), sorted(w)] for k, (n, w) in _known_tables.items()})
        _unsaved.clear()
    except OSError as exc:  # a cache: the next run parses again
        log.warning("pres: cannot write %s (%s); the pres files are parsed again next run", _parse_cache, exc)


PARSE_CACHE_FILE = "pres_tables.json"  # in completed_dir: {SHA-256 of a pres file's text: [named, written]}
_known_tables: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
_unsaved: set[str] = set()  # keys parsed since the cache file was read
_parse_cache: Path | None = None


def use_parse_cache(folder: str | Path) -> None:
    """Keep :func:`file_tables`' results in ``<folder>/pres_tables.json`` (keyed by the SHA-256 of each
    file's text), so a run whose pres files did not change parses none (sqlglot: 0.06 s to import, about
    20 ms per file). An unreadable cache is ignored."""
    global _parse_cache
    _parse_cache = Path(folder) / PARSE_CACHE_FILE
    try:
        saved = json.loads(_parse_cache.read_text(encoding="utf-8"))
        _known_tables.update({k: (frozenset(n), frozenset(w)) for k, (n, w) in saved.items()})
    except (OSError, ValueError, TypeError, AttributeError):
        pass


def _parsed_tables(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """:func:`file_tables` of one SQL text; raises ValueError (``etl.sqlfile.parse``)."""
    from sqlglot import exp

    named, written = set(), set()
    for tree in filter(None, sqlfile.parse(text)):
        for table in tree.find_all(exp.Table):
            if table.db:
                named.add(f"{table.db}.{table.name}")
        if isinstance(tree, (exp.Create, exp.Insert, exp.Update, exp.Delete, exp.Alter)):
            target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
            if isinstance(target, exp.Table) and target.db == "pres":
                written.add(f"pres.{target.name}")
    return frozenset(named), frozenset(written)


STALE_FRACTION = 0.1  # rows changed since the last ANALYZE, as a fraction of the table, that make its statistics stale
_STALE_TABLES_SQL = """SELECT quote_ident(schemaname) || '.' || quote_ident(relname), schemaname || '.' || relname
FROM pg_stat_user_tables
WHERE schemaname = ANY(%s) AND n_mod_since_analyze > 0
AND (coalesce(last_analyze, last_autoanalyze) IS NULL OR n_mod_since_analyze > %s * greatest(n_live_tup, 1))
ORDER BY 1"""


def refresh_statistics(conn, schemas: list[str], tables: set[str] | None = None) -> list[str]:
    """ANALYZE the tables of ``schemas`` whose planner statistics are missing or stale (PostgreSQL).

    ``tables``: only these (``"schema.table"``, unquoted), when given.

    Stale: more than STALE_FRACTION of the rows changed since the last ANALYZE (autovacuum
    catches up only later; a pres query planned on an empty table's statistics picks
    nested loops over a million rows). Reads pg_stat_user_tables after flushing this
    session's own counters (PostgreSQL 15+; older servers see them once flushed, after at
    most a second); commits. Returns the tables analysed. Source of the rule:
    the PostgreSQL manual, "The Autovacuum Daemon" (analyze threshold + scale factor).
    """
    started = time.monotonic()
    with conn.cursor() as cur:
        if conn.server_version >= 150000:  # this session's own pres changes count too (PostgreSQL 15+)
            cur.execute("SELECT pg_stat_force_next_flush()")
            conn.commit()
        cur.execute(_STALE_TABLES_SQL, [list(schemas), STALE_FRACTION])
        stale = [quoted for quoted, name in cur.fetchall() if tables is None or name in tables]
        for table in stale:
            cur.execute(f"ANALYZE {table}")  # names quoted by quote_ident above
    conn.commit()
    if stale:
        log.info("pres: refreshed planner statistics of %s in %.2f s", ", ".join(stale), time.monotonic() - started)
    return stale


_COLUMNS_SQL = """SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
    EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = a.attrelid AND i.indisunique
            AND a.attnum = ANY(i.indkey))
FROM pg_catalog.pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum"""
_STORE_TYPES_SQL = """SELECT coalesce(md5(string_agg(n.nspname || '.' || c.relname || '.' || a.attname || ' '
    || format_type(a.atttypid, a.atttypmod), ',' ORDER BY n.nspname, c.relname, a.attnum)), '')
FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0
AND NOT a.attisdropped"""


def shape_queries(path: Path, text: str) -> list[tuple[str, str, str]]:
    """The ``CREATE TABLE IF NOT EXISTS <schema>.<table> AS <query> WITH NO DATA`` statements of a pres file.

    Returns ``(schema, table, query)`` per statement, the query rendered as PostgreSQL SQL
    (sqlglot), in file order. Raises PresError naming ``path`` when the text cannot be parsed.
    """
    try:
        trees = sqlfile.parse(text)
    except ValueError as exc:
        raise PresError(f"pres file {path} cannot be parsed: {exc}") from None
    shapes = []
    for tree in trees:
        created = sqlfile.created_from_query(tree)
        if created is not None:
            table, query = created
            shapes.append((table.db, table.name, query.sql(dialect="postgres")))
    return shapes


def _columns(cur, table: sql.Composable) -> dict[str, tuple[str, bool, bool]]:
    """``{column: (type as format_type writes it, NOT NULL, in a unique index)}`` of ``table``, in order."""
    cur.execute(_COLUMNS_SQL, [table.as_string(cur)])
    return {name: (typ, not_null, unique) for name, typ, not_null, unique in cur.fetchall()}


def match_shapes(cur, path: Path, text: str) -> list[str]:
    """Alter the existing pres tables of one file to the column types of their creating queries.

    For each ``CREATE TABLE IF NOT EXISTS t AS <query> WITH NO DATA`` of the file (see
    :func:`shape_queries`) whose table exists: the query's columns (a temporary table
    made from it, no rows) are compared with the table's; a missing column is added, a
    column of another type is altered to the query's type (``USING column::type``, rows
    kept), and NOT NULL is dropped from columns outside every unique index (the file sets
    it again on its keys). Runs in the caller's transaction; returns the changes made, as
    ``"table.column: old -> new"`` strings. Raises PresError naming the file, table, column
    and both types when a conversion fails, with how to rebuild the table instead.
    """
    changes = []
    for schema, name, query in shape_queries(path, text):
        table = sql.Identifier(schema, name)
        cur.execute("SELECT to_regclass(%s)", [table.as_string(cur)])
        if cur.fetchone()[0] is None:
            continue  # the file creates it
        cur.execute("DROP TABLE IF EXISTS pg_temp.tmp_pres_shape")
        cur.execute(f"CREATE TEMPORARY TABLE tmp_pres_shape AS {query} WITH NO DATA")
        wanted, current = _columns(cur, sql.Identifier("tmp_pres_shape")), _columns(cur, table)
        cur.execute("DROP TABLE tmp_pres_shape")
        for column, (typ, _, _) in wanted.items():
            col = sql.Identifier(column)
            if column not in current:
                cur.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(table, col, sql.SQL(typ)))
                changes.append(f"{schema}.{name}.{column}: added as {typ}")
                continue
            old, not_null, unique = current[column]
            if old != typ:
                try:
                    cur.execute("SAVEPOINT match_shape")
                    cur.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {} USING {}::{}").format(
                        table, col, sql.SQL(typ), col, sql.SQL(typ)))
                    cur.execute("RELEASE SAVEPOINT match_shape")
                except psycopg2.Error as exc:
                    cur.execute("ROLLBACK TO SAVEPOINT match_shape")
                    message = " ".join((exc.pgerror or str(exc)).split())
                    raise PresError(
                        f"pres file {path}: column {schema}.{name}.{column} is {old} but store now gives {typ}, and "
                        f"the rows cannot be converted ({message}); drop table {schema}.{name} and delete its row in "
                        f"etl_control.pres_watermark to rebuild it from store (pres.dim_product loses its history)"
                    ) from None
                changes.append(f"{schema}.{name}.{column}: {old} -> {typ}")
            if not_null and not unique:
                cur.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(table, col))
    return changes


def _file_fingerprint(store_types: str, text: str) -> str:
    """What a pres file's tables were last matched to: its text and the store's column types."""
    return hashlib.sha256(f"{store_types}\n{text}".encode()).hexdigest()


# the start of each file's transaction (params: name), portable; its end is the dialect's pres_advance
PRES_BUILD = [
    "DROP TABLE IF EXISTS pres_build",
    "CREATE TEMPORARY TABLE pres_build AS SELECT COALESCE((SELECT value FROM etl_control.pres_watermark "
    "WHERE name = %(name)s), CAST('1900-01-01 00:00:00+00' AS TIMESTAMP WITH TIME ZONE)) AS since",
]


def watermark_name(path: Path) -> str:
    """The ``etl_control.pres_watermark`` name of a pres file: its stem without the number prefix."""
    return re.sub(r"^\d+_", "", path.stem)


def _run_statements(cur, statements: list[str]) -> None:
    """Execute a file's statements; a CreateIfMissing (Redshift) runs only when its table is missing."""
    for statement in statements:
        if isinstance(statement, redshift.CreateIfMissing):
            schema, _, name = statement.table.partition(".")
            cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                        [schema, name])
            if cur.fetchone()[0]:
                continue
        cur.execute(statement)


def file_dependencies(texts: dict[str, tuple[Path, str]]) -> dict[str, set[str]]:
    """Which earlier pres files each file must wait for: ``{file name: {file names}}``.

    ``texts``: ``{file name: (path, SQL)}`` of every pres file. A file waits for every file
    before it (in name order) that writes a pres table it names, or that names a pres table it
    writes; files with nothing in common run at the same time. Raises PresError naming a file
    that cannot be parsed.
    """
    tables = {name: file_tables(path, text) for name, (path, text) in texts.items()}
    order = sorted(texts)
    waits = {}
    for i, name in enumerate(order):
        named, written = tables[name]
        waits[name] = {earlier for earlier in order[:i]
                       if tables[earlier][1] & named or written & tables[earlier][0]}
    return waits


def run_pres(settings: WarehouseSettings, sql_dir: str | Path, completed_dir: str | Path, sequence: int,
             schemas: list[str] = ("pres",), connections: int = 2) -> list[dict]:
    """Run every pres file whose step marker is missing; returns one dict per file, in file order.

    Each dict: ``{"file", "seconds", "skipped"}``. Creates the ``pres`` schema; each file
    runs in one transaction with its watermark bookkeeping (the dialect's ``pres_begin``,
    ``PRES_BUILD``, the file, the dialect's ``pres_advance``; see the module docstring).
    Files that share no pres table (:func:`file_dependencies`) run at the same time on up to
    ``connections`` warehouse sessions (threads; each file waits for the earlier files it
    depends on). On PostgreSQL the stale planner statistics of the tables the files name in
    ``schemas`` are refreshed (:func:`refresh_statistics`): the store schemas' once before
    the first file, pres tables' before each file that names them. Raises PresError naming
    the first file that failed and the database message; files that finished stay committed
    with their markers, files depending on a failed one do not start.
    """
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    files = pres_files(sql_dir)
    texts = {path.name: (path, path.read_text(encoding="utf-8")) for path in files}
    store_schemas = [s for s in schemas if s != "pres"]
    with warehouse.connection(settings) as conn:
        dialect = dialect_of(conn)
        store_types = shapes = None
        with conn.cursor() as cur:
            cur.execute("CREATE SCHEMA IF NOT EXISTS pres")
        conn.commit()
        if dialect.matches_pres_shapes:
            with conn.cursor() as cur:
                cur.execute(_STORE_TYPES_SQL, [store_schemas])
                store_types = cur.fetchone()[0]
                cur.execute("SELECT file_name, fingerprint FROM etl_control.pres_shape")
                shapes = dict(cur.fetchall())
            conn.commit()
    results = {}
    pending = {}
    for name, (path, _) in texts.items():
        if step_marker(completed_dir, sequence, "pres", name).exists():
            results[name] = {"file": name, "seconds": 0.0, "skipped": True}
        else:
            pending[name] = path
    if not pending:
        return [results[name] for name in sorted(texts)]
    waits = file_dependencies({name: texts[name] for name in pending})
    named = {name: {t for t in file_tables(*texts[name])[0] if t.partition(".")[0] in schemas} for name in pending}
    _save_parse_cache()
    if dialect.refreshes_statistics and store_schemas:
        # store does not change while pres runs: its stale tables are analysed once, before any file
        with warehouse.connection(settings) as conn:
            refresh_statistics(conn, store_schemas, tables=set().union(*named.values()))
    def build(name: str) -> dict:
        path, text = texts[name]
        pres_tables = {t for t in named[name] if t.startswith("pres.")}  # earlier files may have just written them
        return _run_file(session(), dialect, path, text, completed_dir, sequence, pres_tables, store_types, shapes)

    failure = None
    running = {}
    with warehouse.thread_sessions(settings) as session, ThreadPoolExecutor(
            max_workers=max(1, connections), thread_name_prefix="pres") as pool:
        while pending or running:
            if failure is None:
                for name in sorted(pending):
                    if not (waits[name] & (set(pending) | set(running.values()))):
                        running[pool.submit(build, name)] = name
                        del pending[name]
            if not running:
                break  # a failure left files that wait for it
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                try:
                    results[name] = future.result()
                except PresError as exc:
                    failure = failure or exc
    if failure is not None:
        raise failure
    return [results[name] for name in sorted(texts)]


def _run_file(conn, dialect, path: Path, text: str, completed_dir, sequence: int, named: set[str],
              store_types: str | None, shapes: dict | None) -> dict:
    """Run one pres file in one transaction on ``conn``; writes its marker and returns its result dict.

    ``named``: the pres tables of the file whose statistics are refreshed first (PostgreSQL).
    Raises PresError naming the file and the database message (the transaction rolled back).
    """
    marker = step_marker(completed_dir, sequence, "pres", path.name)
    statements = dialect.translate_file(path, text)
    try:
        if dialect.refreshes_statistics:
            refresh_statistics(conn, ["pres"], tables=named)
        started = time.monotonic()
        with conn.cursor() as cur:
            fingerprint = _file_fingerprint(store_types, text) if dialect.matches_pres_shapes else None
            if fingerprint is not None and shapes.get(path.name) != fingerprint:
                for change in match_shapes(cur, path, text):
                    log.warning("pres %s: %s (matched to the store's column types)", path.name, change)
            params = {"name": watermark_name(path)}
            for statement in dialect.pres_begin:
                cur.execute(statement)
            for statement in PRES_BUILD:
                cur.execute(statement, params)
            _run_statements(cur, statements)
            for statement in dialect.pres_advance:
                cur.execute(statement, params)
            if dialect.counts_row_writes(conn):
                # this file's write counters reach the shared statistics as it commits: the reports
                # step reads them to see which pres tables changed (etl.reports.input_fingerprint)
                cur.execute("SELECT pg_stat_force_next_flush()")
            if fingerprint is not None and shapes.get(path.name) != fingerprint:
                cur.execute("INSERT INTO etl_control.pres_shape (file_name, fingerprint) VALUES (%s, %s) "
                            "ON CONFLICT (file_name) DO UPDATE SET fingerprint = excluded.fingerprint, "
                            "updated_datetime = now()", [path.name, fingerprint])
        conn.commit()
    except psycopg2.Error as exc:
        conn.rollback()
        message = " ".join((exc.pgerror or str(exc)).split())
        raise PresError(f"pres file {path} failed: {message}", transient=is_transient_postgres(exc)) from None
    seconds = round(time.monotonic() - started, 3)
    write_json_atomic(marker, {"file": path.name, "execution_sequence": sequence, "seconds": seconds})
    log.info("pres %s done in %.2f s", path.name, seconds)
    return {"file": path.name, "seconds": seconds, "skipped": False}
