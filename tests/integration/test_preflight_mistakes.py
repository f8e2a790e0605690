"""Metadata mistakes preflight refuses on the real source before any data moves.

Each mistake (a where_clause that breaks out of the extract's parentheses or holds a comment, one
the source refuses, unique_columns that hold no source key, colliding tables) stops RunJob with a
non-zero exit and a message naming file, line, table and field; no execution sequence is opened
and a store loaded by an earlier good run is unchanged. ``unique_check: distinct_count`` passes a
truly unique column that is no key and refuses one that is not unique. The parsing cases without a
database: tests/unit/test_preflight_mistakes.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from etl.config import EtlSettings, MySQLSettings, WarehouseSettings
from etl.context import Context, preflight
from etl.errors import ConfigError
from tests.support.databases import PG
from tests.support.oracle import norm

REFUSED = 35  # [retcode] scheduling_error: RunJob could not start


def tables_yaml(project) -> Path:
    return project.root / "extract_config" / "mysql_tables.yaml"


def edit_metadata(project, table: str, **changes) -> None:
    """Change fields of one entry of the shipped mysql_tables.yaml (fields stay in their order)."""
    path = tables_yaml(project)
    doc = yaml.safe_load(path.read_text())
    doc[table].update(changes)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))


def line_of(path: Path, table: str, field: str) -> int:
    """The 1-based line of ``field`` in ``table``'s entry of ``path``."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{table}:"))
    return next(i for i in range(start + 1, len(lines)) if lines[i].strip().startswith(f"{field}:")) + 1


def expect_named(text: str, project, table: str, field: str) -> None:
    """The message names the file, the field's line, the table and the field."""
    path = tables_yaml(project)
    assert f"line {line_of(path, table, field)} of {path}: table {table!r}, field {field!r}: " in text, text[-3000:]


def warehouse_state(project) -> dict:
    """Every row of every table in the warehouse's landing, store and control schemas (sorted text forms)."""
    pg = project.pg()
    cur = pg.cursor()
    cur.execute("SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema IN ('landing', 'store_mysql', 'store_weblog', 'etl_control') ORDER BY 1, 2")
    state = {}
    for schema, table in cur.fetchall():
        cur.execute(f'SELECT * FROM "{schema}"."{table}"')
        state[f"{schema}.{table}"] = sorted(tuple(norm(v) for v in row) for row in cur.fetchall())
    pg.close()
    return state


def assert_nothing_moved(project, before: dict, sequence: int) -> None:
    """No execution sequence ``sequence`` was opened or staged, and the warehouse holds what it held."""
    assert not project.output(sequence).exists()
    assert not list((project.root / "staging").rglob(f"execution_sequence={sequence}"))
    assert warehouse_state(project) == before


def context_of(project) -> Context:
    """The project's configuration as a Context, for calling preflight in this process."""
    return Context(
        source=MySQLSettings(host="127.0.0.1", port=3306, user="root", database=project.source_db),
        warehouse=WarehouseSettings(flavor="postgres", host=PG["host"], port=PG["port"], user=PG["user"],
                                    database=project.warehouse_db),
        etl=EtlSettings(extract_config_dir=str(project.root / "extract_config"), sql_dir="", output_dir="",
                        completed_dir=str(project.root / "completed"), reports_dir="", staging_uri=str(project.root / "staging"),
                        s3_endpoint_url="", lookback_seconds=300, safety_lag_seconds=0, batch_rows=100,
                        landing_keep_sequences=7, detect_hard_deletes=True),
    )


def refused_by_preflight(project) -> str:
    with pytest.raises(ConfigError) as info:
        preflight(context_of(project))
    return str(info.value)


def test_the_shipped_metadata_passes_preflight(project, variant):
    """Every shipped table's unique_columns is its source's primary key, on both variants."""
    project.populate("--scale", "0.001")
    tables = preflight(context_of(project))
    assert sorted(tables) == ["companies", "customers", "order_headers", "order_lines", "product_prices", "products"]
    conn = project.mysql()
    cur = conn.cursor()
    for name, meta in tables.items():
        cur.execute("SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
                    "AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX", [project.source_db, name])
        assert tuple(r[0] for r in cur.fetchall()) == meta.unique_columns, name
    conn.close()


def test_mistakes_are_refused_before_any_data_moves(project, variant):
    """After a good run, each mistake stops the next run naming file, line, table and field; store and
    etl_control stay as they were although the source changed; the fixed metadata then loads the change."""
    project.populate("--scale", "0.01")
    good = tables_yaml(project).read_text()
    project.run()
    m = project.mysql()
    cur = m.cursor()
    cur.execute("UPDATE companies SET company_name = CONCAT('renamed ', company_id), updated_datetime = UTC_TIMESTAMP()")
    cur.execute("SELECT COUNT(*), COUNT(DISTINCT country) FROM companies")
    rows, countries = cur.fetchone()
    m.close()
    assert rows > countries > 1  # [country] would collapse companies
    before = warehouse_state(project)
    assert len(before["store_mysql.companies"]) == rows and len(before["etl_control.run"]) == 1

    mistakes = [
        # (table, changes, field, what the message says)
        ("companies", {"where_clause": "is_supplier = 1) OR (1=1"}, "where_clause",
         ["must be one boolean expression, and 'is_supplier = 1) OR (1=1' is not: its parentheses are unbalanced",
          "Accepted: one boolean expression"]),
        ("companies", {"where_clause": "is_supplier = 1 -- only suppliers"}, "where_clause",
         ["it holds a comment", "Accepted: one boolean expression"]),
        ("customers", {"where_clause": "no_such_column = 1"}, "where_clause",
         ["the source refuses the extract query with 'no_such_column = 1': Unknown column 'no_such_column'",
          "(MySQL error 1054)", "Accepted: one boolean expression"]),
        ("companies", {"unique_columns": ["country"]}, "unique_columns",
         [f"[country] holds no primary or unique key of {project.source_db}.companies",
          "the source's keys: PRIMARY (company_id)", "add 'unique_check: distinct_count' to the entry"]),
        ("customers", {"store_table": "store_mysql.companies"}, "store_table",
         ["store_mysql.companies is also used by 'companies' (its store_table, line "]),
        ("customers", {"landing_table": "store_mysql.customers"}, "store_table",
         ["store_mysql.customers is also its landing_table; landing and store must be two tables"]),
        ("products", {"store_table": "pres.products"}, "store_table", ["is in the reserved schema 'pres'"]),
        ("products", {"landing_table": "etl_control.products"}, "landing_table",
         ["is in the reserved schema 'etl_control'"]),
    ]
    for table, changes, field, said in mistakes:
        tables_yaml(project).write_text(good)
        edit_metadata(project, table, **changes)
        proc = project.run(expect=REFUSED)
        assert "RunJob cannot start" in proc.stderr
        expect_named(proc.stderr, project, table, field)
        for text in said:
            assert text in proc.stderr, (changes, proc.stderr[-3000:])
        assert_nothing_moved(project, before, 2)

    # the source-side problems of several tables come in one error
    tables_yaml(project).write_text(good)
    edit_metadata(project, "customers", where_clause="no_such_column = 1")
    edit_metadata(project, "companies", unique_columns=["country"])
    proc = project.run(expect=REFUSED)
    expect_named(proc.stderr, project, "customers", "where_clause")
    expect_named(proc.stderr, project, "companies", "unique_columns")
    assert_nothing_moved(project, before, 2)

    tables_yaml(project).write_text(good)
    project.run()  # the change the refused runs did not load
    pg = project.pg()
    cur = pg.cursor()
    cur.execute("SELECT count(*), count(*) FILTER (WHERE company_name = 'renamed ' || company_id) FROM store_mysql.companies")
    assert cur.fetchone() == (rows, rows)
    pg.close()


def test_a_refused_first_run_opens_no_sequence(project, variant):
    """unique_columns [country] on companies would collapse its rows to one per country: refused, nothing created."""
    project.populate("--scale", "0.01")
    edit_metadata(project, "companies", unique_columns=["country"])
    proc = project.run(expect=REFUSED)
    expect_named(proc.stderr, project, "companies", "unique_columns")
    assert not (project.root / "output").exists() or not any((project.root / "output").iterdir())
    # no landing or store table, no sequence opened: only the run lock's etl_control schema exists, every table empty
    state = warehouse_state(project)
    assert state and all(name.startswith("etl_control.") and rows == [] for name, rows in state.items()), state


TAGS_DDL = """CREATE TABLE tags (
    id INT NOT NULL PRIMARY KEY,
    code VARCHAR(10) COLLATE utf8mb4_unicode_ci NULL,
    grp VARCHAR(5) NOT NULL,
    active TINYINT NOT NULL,
    updated_datetime DATETIME NOT NULL)"""
# code is unique but no key; as bytes 'ab' and 'AB' differ (the collation says equal; store keeps both);
# NULL codes are left out of the count (store counts them and does not merge them); grp is shared by rows
TAGS = [(1, "ab", "x", 1), (2, "AB", "x", 1), (3, "cd", "y", 1), (4, None, "y", 0), (5, None, "z", 1), (6, "ef", "z", 0)]


def add_tags(project, unique: list[str], **fields) -> None:
    project.add_table("tags", ["id", "code", "grp", "active", "updated_datetime"], unique, **fields)


def test_a_distinct_count_passes_a_unique_column_that_is_no_key_and_refuses_a_shared_one(project, variant):
    project.populate("--scale", "0.001")
    m = project.mysql()
    cur = m.cursor()
    cur.execute(TAGS_DDL)
    cur.executemany("INSERT INTO tags VALUES (%s, %s, %s, %s, '2024-01-01 00:00:00')", TAGS)
    m.close()
    tags_yaml = project.root / "extract_config" / "tags.yaml"

    add_tags(project, ["code"])  # no key holds code: refused, naming the source's key and the override
    message = refused_by_preflight(project)
    assert (f"line {line_of(tags_yaml, 'tags', 'unique_columns')} of {tags_yaml}: table 'tags', field 'unique_columns': "
            f"[code] holds no primary or unique key of {project.source_db}.tags") in message
    assert "the source's keys: PRIMARY (id)" in message and "unique_check: distinct_count" in message

    add_tags(project, ["code"], unique_check="distinct_count")
    project.run()
    pg = project.pg()
    pcur = pg.cursor()
    pcur.execute("SELECT id, code, grp FROM store_mysql.tags ORDER BY id")
    assert pcur.fetchall() == [(t[0], t[1], t[2]) for t in TAGS if t[1] is not None]
    pg.close()
    before = warehouse_state(project)

    add_tags(project, ["grp"], unique_check="distinct_count")  # 6 rows, 3 values
    proc = project.run(expect=REFUSED)
    assert (f"line {line_of(tags_yaml, 'tags', 'unique_columns')} of {tags_yaml}: table 'tags', field 'unique_columns': "
            f"[grp] is not unique in {project.source_db}.tags (unique_check: distinct_count): 6 source rows without a "
            "NULL in it hold 3 distinct values, so 3 of them would collapse into others in store") in proc.stderr
    assert "most shared: grp = 'x' (2 rows); grp = 'y' (2 rows); grp = 'z' (2 rows)" in proc.stderr
    assert "The source's keys: PRIMARY (id)" in proc.stderr
    assert_nothing_moved(project, before, 2)

    # the where_clause applies: among the active rows grp is shared once ('x'), code never
    add_tags(project, ["grp"], unique_check="distinct_count", where_clause="active = 1")
    message = refused_by_preflight(project)
    assert "4 source rows matching where_clause without a NULL in it hold 3 distinct values" in message
    assert "most shared: grp = 'x' (2 rows)." in message
    add_tags(project, ["grp", "code"], unique_check="distinct_count", where_clause="active = 1")
    assert "tags" in preflight(context_of(project))


def test_a_unique_key_other_than_the_primary_key_is_accepted_and_a_view_needs_the_override(project, variant):
    project.populate("--scale", "0.001")
    edit_metadata(project, "customers", unique_columns=["username"])  # UNIQUE KEY uq_customers_username
    assert preflight(context_of(project))["customers"].unique_columns == ("username",)

    m = project.mysql()
    m.cursor().execute("CREATE VIEW supplier_companies AS SELECT company_id, company_name, updated_datetime "
                       "FROM companies WHERE is_supplier = 1")
    m.close()
    project.add_table("supplier_companies", ["company_id", "company_name", "updated_datetime"], ["company_id"])
    message = refused_by_preflight(project)
    assert "table 'supplier_companies', field 'unique_columns': [company_id] holds no primary or unique key" in message
    assert "the source's keys: none" in message
    project.add_table("supplier_companies", ["company_id", "company_name", "updated_datetime"], ["company_id"],
                      unique_check="distinct_count")
    assert "supplier_companies" in preflight(context_of(project))


@pytest.mark.parametrize("clause, said", [
    ("no_such_function(country) = 1", "(MySQL error 1305)"),  # FUNCTION <db>.no_such_function does not exist
    ("company_nam = 'x'", "Unknown column 'company_nam'"),
    ("FIELD(country) = 1", "Incorrect parameter count in the call to native function 'FIELD' (MySQL error 1582)"),
])
def test_the_source_refuses_what_it_cannot_plan_naming_its_message(project, clause, said):
    """sqlglot reads these as one boolean expression; the source's EXPLAIN of the extract query refuses them."""
    project.populate("--scale", "0.001")
    edit_metadata(project, "companies", where_clause=clause)
    message = refused_by_preflight(project)
    expect_named(message, project, "companies", "where_clause")
    assert f"the source refuses the extract query with {clause!r}: " in message and said in message, message
