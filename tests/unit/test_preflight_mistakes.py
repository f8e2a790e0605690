"""Metadata mistakes preflight refuses before any data moves, without a database: a where_clause
that is not one boolean expression, a wrong unique_check, landing/store tables that collide.

Each refusal names file, line, table and field; every problem of a folder comes in one ConfigError.
The checks that need the source (EXPLAIN, keys, distinct counts) are in
tests/integration/test_preflight_mistakes.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from etl import sqlgen
from etl.domain import SourceColumn
from etl.errors import ConfigError
from etl.metadata import heading, key_problems, load_metadata, position
from etl.where_clause import where_clause_problem
from tests.support.paths import REPO
from tests.support.sqltext import META


def entry(name: str = "orders", where_clause: str = '""', landing: str = "landing.mysql_orders",
          store: str = "store_mysql.orders", unique: str = "[order_no]", extra: str = "") -> str:
    """One table's YAML text, eight lines (nine with ``extra``) and a blank one: name on its first,
    where_clause on its third, landing_table on its sixth, store_table on its seventh, unique_columns on
    its eighth, ``extra`` on its ninth. A second entry after one without ``extra`` starts on line 10."""
    return (f"{name}:\n"
            "  columns: [order_no, total, updated_datetime]\n"
            f"  where_clause: {where_clause}\n"
            "  is_incremental: true\n"
            "  watermark_column: updated_datetime\n"
            f"  landing_table: {landing}\n"
            f"  store_table: {store}\n"
            f"  unique_columns: {unique}\n"
            + (f"  {extra}\n" if extra else "")
            + "\n")


def refused(folder: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_metadata(folder)
    return str(info.value)


def quoted(clause: str) -> str:
    """``clause`` as a YAML double-quoted scalar."""
    return '"' + clause.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- where_clause: exactly one boolean expression -------------------------------------------------

@pytest.mark.parametrize("clause, expected", [
    ("is_supplier = 1) OR (1=1", "a ')' closes one it did not open"),  # the break-out past the watermark window
    ("1 = 1)) OR ((1 = 1", "a ')' closes one it did not open"),
    ("a = (1", "1 '(' is not closed"),
    ("a = 1 -- rest", "it holds a comment"),
    ("a = 1 # rest", "it holds a comment"),
    ("a = 1 /* note */", "it holds a comment"),
    ("a /*! OR 1=1 */", "it holds a comment"),  # MySQL executes /*! ... */
    ("a = 1; DROP TABLE t", "it holds ';'"),
    ("a = 1;", "it holds ';'"),
    ("a = 1 UNION SELECT 1", "it is not one expression"),
    ("a = 1 ORDER BY b", "it is not one expression"),
    ("a = 1 LIMIT 1", "it is not one expression"),
    ("a = 1 b = 2", "it is not one expression"),
    ("a = 1 AND", "it is not one expression"),
    ("a IN (SELECT id FROM other)", "it holds a subquery"),
    ("EXISTS (SELECT 1 FROM other)", "it holds a subquery"),
    ("a > (SELECT max(b) FROM other)", "it holds a subquery"),
    ("is_supplier", "it is a bare column (is_supplier), not a boolean expression"),
    ("a + 1", "it is a value (a + 1), not a boolean expression"),
    ("1", "it is a bare number (1), not a boolean expression"),
    ("'x'", "it is a bare string ('x'), not a boolean expression"),
    ("a = @limit", "session variable"),
    ("a = ?", "placeholder"),
    ("name LIKE '%sale%'", "which the MySQL driver takes for a query parameter"),
    ("name LIKE 'a\\_b'", "it holds a backslash"),
    ("name = 'unclosed", "a string or quoted name is not closed"),
    ("DATE_ADD(created_datetime) > '2024-01-01'", "sqlglot's MySQL dialect cannot read it"),  # sqlglot fails oddly
])
def test_a_clause_that_is_not_one_boolean_expression_is_refused(clause, expected):
    problem = where_clause_problem(clause)
    assert problem is not None and expected in problem


@pytest.mark.parametrize("clause", [
    "", "   ", "is_supplier = 1", "NOT is_deleted", "country IN ('DE', 'FR')", "a BETWEEN 1 AND 2",
    "a IS NOT NULL", "(a = 1) OR (b = 2)", "a = 1 AND b = 2 OR c = 3", "a <=> b", "a XOR b", "TRUE",
    "name LIKE '%x%'", "name LIKE 'a!_b' ESCAPE '!'", "a = 'it''s'", "a = ')'", "a = '--'", "a = ';'",
    "DATE(created_datetime) >= '2024-01-01'", "created_datetime > NOW() - INTERVAL 30 DAY",
    "a REGEXP '^x'", "ISNULL(a)", "JSON_CONTAINS(doc, '1') = 1", "`odd name` = 1", "a = 'x' COLLATE utf8mb4_bin",
    "companies.country = 'DE'", "CAST(a AS CHAR) = 'x'", "a > 1 IS TRUE", "a = 0xff", "a = N'x'",
])
def test_one_boolean_expression_is_accepted(clause):
    assert where_clause_problem(clause) is None


def test_a_break_out_where_clause_is_refused_naming_file_line_table_and_field(tmp_path):
    path = tmp_path / "tables.yaml"
    path.write_text(entry("customers") + entry("companies", where_clause=quoted("is_supplier = 1) OR (1=1"),
                                               landing="landing.mysql_companies", store="store_mysql.companies"))
    message = refused(tmp_path)
    # companies starts on line 10: its where_clause is on line 12
    assert (f"line 12 of {path}: table 'companies', field 'where_clause': must be one boolean expression, and "
            "'is_supplier = 1) OR (1=1' is not: its parentheses are unbalanced") in message
    assert "Accepted: one boolean expression over the table's own columns" in message
    assert "customers" not in message  # the good entry is not blamed


def test_the_where_clause_is_stored_as_written(tmp_path):
    (tmp_path / "tables.yaml").write_text(entry(where_clause=quoted("  total > 0 AND order_no <> 'x'  ")))
    assert load_metadata(tmp_path)["orders"].where_clause == "total > 0 AND order_no <> 'x'"


# --- unique_check ---------------------------------------------------------------------------------

def test_unique_check_defaults_to_the_source_key_and_accepts_distinct_count(tmp_path):
    (tmp_path / "tables.yaml").write_text(
        entry() + entry("lines", landing="landing.l", store="store_mysql.l", extra="unique_check: distinct_count"))
    tables = load_metadata(tmp_path)
    assert tables["orders"].unique_check == "source_key"
    assert tables["lines"].unique_check == "distinct_count"


def test_an_unknown_unique_check_is_refused_with_its_line(tmp_path):
    path = tmp_path / "tables.yaml"
    path.write_text(entry(extra="unique_check: trust_me"))
    message = refused(tmp_path)
    assert (f"line 9 of {path}: table 'orders', field 'unique_check': 'trust_me' is not one of "
            "source_key, distinct_count") in message


KEYS = {"PRIMARY": ("company_id",), "uq_name": ("company_name", "country")}


def companies(unique: tuple[str, ...], check: str = "source_key"):
    import dataclasses

    return dataclasses.replace(META, name="companies", columns=("company_id", "company_name", "country", "updated_datetime"),
                               unique_columns=unique, unique_check=check, source_file="/nowhere/tables.yaml")


@pytest.mark.parametrize("unique", [("company_id",), ("company_name", "country"), ("country", "company_name"),
                                    ("company_id", "country")])
def test_unique_columns_holding_a_source_key_pass(unique):
    assert key_problems(companies(unique), KEYS, "shop") == []


@pytest.mark.parametrize("unique", [("country",), ("company_name",)])
def test_unique_columns_holding_no_source_key_are_refused_naming_the_keys_and_the_override(unique):
    [message] = key_problems(companies(unique), KEYS, "shop")
    assert message.startswith(f"/nowhere/tables.yaml: table 'companies', field 'unique_columns': [{', '.join(unique)}] "
                              "holds no primary or unique key of shop.companies")
    assert "the source's keys: PRIMARY (company_id); uq_name (company_name, country)" in message
    assert "add 'unique_check: distinct_count' to the entry" in message


def test_a_table_without_keys_is_refused_unless_counted():
    [message] = key_problems(companies(("country",)), {}, "shop")
    assert "the source's keys: none" in message
    assert key_problems(companies(("country",), "distinct_count"), {}, "shop") == []  # preflight counts instead


def test_the_distinct_count_compares_text_keys_as_bytes_and_leaves_null_keys_out():
    meta = companies(("company_name", "company_id"), "distinct_count")
    types = {"company_name": SourceColumn("company_name", "varchar", "varchar(150)"),
             "company_id": SourceColumn("company_id", "int", "int(11)")}
    keyed = ("FROM `shop`.`companies` WHERE `company_name` IS NOT NULL AND `company_id` IS NOT NULL "
             "AND (is_test = 0)")
    assert sqlgen.key_count_query(meta, "shop", types) == (
        "SELECT COUNT(*), COUNT(DISTINCT CAST(`company_name` AS BINARY), `company_id`) " + keyed)
    assert sqlgen.repeated_keys_query(meta, "shop", types) == (
        "SELECT CAST(`company_name` AS BINARY), `company_id`, COUNT(*) " + keyed
        + " GROUP BY CAST(`company_name` AS BINARY), `company_id` HAVING COUNT(*) > 1 "
        "ORDER BY COUNT(*) DESC, CAST(`company_name` AS BINARY), `company_id` LIMIT 3")


def test_the_explain_is_the_extract_query_of_a_sample_window():
    query, params = sqlgen.explain_extract_query(META, "shop")
    assert query.startswith("EXPLAIN SELECT `order_no`, `order_line_no`, `quantity`, `updated_datetime` "
                            "FROM `shop`.`order_lines` WHERE ")
    assert query.endswith(" AND (is_test = 0)")
    assert len(params) == query.count("%s") == 3


# --- landing and store tables that collide -------------------------------------------------------

@pytest.mark.parametrize("second, expected", [
    # (the second table's landing, store) -> the problem (the first table: landing.mysql_orders, store_mysql.orders)
    (("landing.mysql_orders", "store_mysql.o2"),
     "line 15 of {path}: table 'o2', field 'landing_table': landing.mysql_orders is also used by 'orders' "
     "(its landing_table, line 6 of {path})"),
    (("landing.o2", "store_mysql.orders"),
     "line 16 of {path}: table 'o2', field 'store_table': store_mysql.orders is also used by 'orders' "
     "(its store_table, line 7 of {path})"),
    (("landing.o2", "landing.mysql_orders"),  # one table's store is another's landing
     "line 16 of {path}: table 'o2', field 'store_table': landing.mysql_orders is also used by 'orders' "
     "(its landing_table, line 6 of {path})"),
    (("store_mysql.orders", "store_mysql.o2"),  # one table's landing is another's store
     "line 15 of {path}: table 'o2', field 'landing_table': store_mysql.orders is also used by 'orders' "
     "(its store_table, line 7 of {path})"),
    (("landing.o2", "landing.o2"),  # a table's store is its own landing
     "line 16 of {path}: table 'o2', field 'store_table': landing.o2 is also its landing_table; landing and "
     "store must be two tables"),
    (("landing.o2", "Store_Mysql.Orders"),  # Redshift folds case: the same table
     "line 16 of {path}: table 'o2', field 'store_table': Store_Mysql.Orders is also used by 'orders'"),
])
def test_colliding_landing_and_store_tables_are_refused_with_file_and_line(tmp_path, second, expected):
    path = tmp_path / "tables.yaml"
    path.write_text(entry() + entry("o2", landing=second[0], store=second[1]))
    assert expected.format(path=path) in refused(tmp_path)


@pytest.mark.parametrize("field, target, line", [
    ("landing_table", "etl_control.orders", 6), ("store_table", "pres.orders", 7),
    ("store_table", "ETL_CONTROL.orders", 7), ("landing_table", "pg_catalog.orders", 6),
])
def test_a_table_in_a_reserved_schema_is_refused(tmp_path, field, target, line):
    path = tmp_path / "tables.yaml"
    path.write_text(entry(landing=target) if field == "landing_table" else entry(store=target))
    message = refused(tmp_path)
    assert (f"line {line} of {path}: table 'orders', field {field!r}: {target} is in the reserved schema "
            f"{target.split('.')[0]!r}") in message
    assert "choose another schema" in message


def shipped_weblog() -> str:
    return (REPO / "extract_config" / "weblog.yaml").read_text()


def weblog_line(text: str, field: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.strip().startswith(f"{field}:"))


@pytest.mark.parametrize("field, target, expected", [
    ("landing_table", "landing.mysql_orders", "is also the landing_table of table 'orders' (line 6 of {path})"),
    ("store_table", "store_mysql.orders", "is also the store_table of table 'orders' (line 7 of {path})"),
    ("store_table", "landing.mysql_orders", "is also the landing_table of table 'orders' (line 6 of {path})"),
    ("store_table", "pres.access", "is in the reserved schema 'pres'"),
])
def test_the_weblog_tables_are_checked_too(tmp_path, field, target, expected):
    path = tmp_path / "tables.yaml"
    path.write_text(entry())
    text = shipped_weblog()
    old = f"{field}: {'landing.weblog_access' if field == 'landing_table' else 'store_weblog.access'}"
    assert old in text
    (tmp_path / "weblog.yaml").write_text(text.replace(old, f"{field}: {target}"))
    message = refused(tmp_path)
    assert (f"line {weblog_line(text, field)} of {tmp_path / 'weblog.yaml'}: weblog source 'access', "
            f"field {field!r}: {target} ") in message
    assert expected.format(path=path) in message


# --- every problem at once ------------------------------------------------------------------------

def test_every_problem_of_a_folder_comes_in_one_error(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(entry(where_clause=quoted("total > 0 -- and more")) + entry("o2", store="store_mysql.orders"))
    b.write_text(entry("o3", landing="pres.o3", store="store_mysql.o3", extra="unique_check: maybe"))
    message = refused(tmp_path)
    problems = message.splitlines()[1:]
    assert message.splitlines()[0] == "invalid table metadata:"
    assert any(p.strip().startswith(f"line 3 of {a}: table 'orders', field 'where_clause'") for p in problems)
    assert any(p.strip().startswith(f"line 15 of {a}: table 'o2', field 'landing_table': landing.mysql_orders is "
                                    "also used by 'orders'") for p in problems)
    assert any(p.strip().startswith(f"line 9 of {b}: table 'o3', field 'unique_check'") for p in problems)
    assert any(p.strip().startswith(f"line 6 of {b}: table 'o3', field 'landing_table': pres.o3 is in the reserved")
               for p in problems)
    assert len(problems) == 5  # o2's store_table collides too


def test_position_and_heading_name_the_field_line(tmp_path):
    (tmp_path / "tables.yaml").write_text(entry("customers", landing="landing.c", store="store_mysql.c") + entry())
    meta = load_metadata(tmp_path)["orders"]
    assert position(meta) == f"line 10 of {tmp_path / 'tables.yaml'}"
    assert heading(meta, "unique_columns") == f"line 17 of {tmp_path / 'tables.yaml'}: table 'orders', field 'unique_columns'"
    assert position(meta, "no_such_field") == position(meta)


def test_the_shipped_metadata_passes_the_load_checks():
    tables = load_metadata(REPO / "extract_config")
    assert all(meta.unique_check == "source_key" and meta.where_clause == "" for meta in tables.values())
    assert yaml.safe_load(shipped_weblog())["access"]["store_table"] == "store_weblog.access"
