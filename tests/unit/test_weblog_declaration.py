"""The access-log source declared in extract_config/weblog.yaml: loading and validation (no database)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from etl.errors import ConfigError
from etl.metadata import load_metadata, load_weblog_source
from etl.weblog.enrich import COLUMNS
from tests.support.paths import REPO

DECLARATION = REPO / "extract_config" / "weblog.yaml"
ORDERS = {
    "columns": ["order_no", "total", "updated_datetime"],
    "where_clause": "",
    "is_incremental": True,
    "watermark_column": "updated_datetime",
    "landing_table": "landing.mysql_orders",
    "store_table": "store_mysql.orders",
    "unique_columns": ["order_no"],
}


def shipped() -> dict:
    """The project's weblog declaration as parsed YAML (a new dict each call)."""
    return yaml.safe_load(DECLARATION.read_text())


def folder(tmp_path, weblog: dict | None, tables: dict | None = None) -> Path:
    """A config folder with ``weblog.yaml`` (unless None) and ``tables.yaml`` (MySQL tables, default: orders)."""
    if weblog is not None:
        (tmp_path / "weblog.yaml").write_text(yaml.safe_dump(weblog, sort_keys=False))
    (tmp_path / "tables.yaml").write_text(yaml.safe_dump({"orders": ORDERS} if tables is None else tables))
    return tmp_path


def refused(tmp_path, weblog: dict, tables: dict | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_weblog_source(folder(tmp_path, weblog, tables))
    return str(info.value)


def changed(**fields) -> dict:
    """The shipped declaration with some fields replaced (KeyError: removed)."""
    doc = shipped()
    for key, value in fields.items():
        if value is KeyError:
            del doc["access"][key]
        else:
            doc["access"][key] = value
    return doc


def with_columns(edit) -> dict:
    """The shipped declaration with ``edit(columns)`` applied to its column -> type mapping."""
    doc = shipped()
    edit(doc["access"]["columns"])
    return doc


def test_the_shipped_declaration_is_what_the_loader_writes():
    meta, types = load_weblog_source(REPO / "extract_config")
    assert meta.columns == COLUMNS and tuple(types) == COLUMNS
    assert (str(meta.landing_table), str(meta.store_table), meta.unique_columns) == (
        "landing.weblog_access", "store_weblog.access", ("access_key",))
    assert (meta.name, meta.is_incremental, meta.watermark_column, meta.where_clause) == ("access", False, None, "")
    assert meta.source_file.endswith("weblog.yaml")
    assert types["country"] == "varchar(2)" and types["request_timestamp_converted"] == "timestamp(0)"
    assert types["status_code"] == "smallint" and types["request_timestamp_has_issue"] == "boolean"


def test_the_mysql_tables_are_the_same_with_or_without_the_declaration(tmp_path):
    with_declaration = load_metadata(REPO / "extract_config")
    assert "access" not in with_declaration
    without = tmp_path / "without"
    without.mkdir()
    shutil.copy(REPO / "extract_config" / "mysql_tables.yaml", without)
    assert load_metadata(without).keys() == with_declaration.keys()
    assert [m.columns for m in load_metadata(without).values()] == [m.columns for m in with_declaration.values()]


def test_a_deleted_declaration_is_a_clear_error(tmp_path):
    path = folder(tmp_path, None)
    assert list(load_metadata(path)) == ["orders"]  # the MySQL tables still load
    with pytest.raises(ConfigError, match="no weblog source declared in .*restore extract_config/weblog.yaml"):
        load_weblog_source(path)


def test_a_wrong_declaration_also_stops_the_mysql_loader(tmp_path):
    path = folder(tmp_path, with_columns(lambda c: c.pop("referer")))
    with pytest.raises(ConfigError, match="column 'referer' is missing"):
        load_metadata(path)


def test_a_misspelled_column_names_file_entry_and_field(tmp_path):
    def misspell(columns):
        columns["devise_type"] = columns.pop("device_type")

    message = refused(tmp_path, with_columns(misspell))
    assert "weblog.yaml: weblog source 'access', field 'columns': 'devise_type' is not a column the access-log " \
           "loader writes (did you mean 'device_type'?)" in message
    assert "weblog.yaml: weblog source 'access', field 'columns': column 'device_type' is missing" in message


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda c: c.pop("referer"), "field 'columns': column 'referer' is missing (the access-log loader writes it"),
        (lambda c: c.update(extra_column="text"), "field 'columns': 'extra_column' is not a column the access-log loader writes"),
        (lambda c: c.update({"bad-name": "text"}), "field 'columns': 'bad-name' is not an identifier"),
        (lambda c: c.update(status_code="int"), "field 'columns': column 'status_code': type 'int' is not smallint, integer or bigint"),
        (lambda c: c.update(country="bigint"), "column 'country': type 'bigint' is not text or varchar(n) (the loader writes string values)"),
        (lambda c: c.update(country="varchar"), "column 'country': type 'varchar' is not text or varchar(n)"),
        (lambda c: c.update(request_timestamp_converted="timestamptz"), "column 'request_timestamp_converted': type 'timestamptz' is not timestamp"),
        (lambda c: c.update(request_timestamp_has_issue="text"), "column 'request_timestamp_has_issue': type 'text' is not boolean"),
        (lambda c: c.update(line_no=None), "column 'line_no': type None is not smallint, integer or bigint"),
    ],
)
def test_misdeclared_columns_are_refused(tmp_path, edit, expected):
    message = refused(tmp_path, with_columns(edit))
    assert expected in message
    assert "weblog.yaml: weblog source 'access'" in message


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"unique_columns": ["nope"]}, "field 'unique_columns': 'nope' is not in 'columns'"),
        ({"unique_columns": ["line_no"]}, "field 'unique_columns': must be [access_key]"),
        ({"unique_columns": []}, "field 'unique_columns': expected a non-empty list"),
        ({"columns": list(COLUMNS)}, "field 'columns': expected a mapping of column name -> warehouse type"),
        ({"landing_table": "weblog_access"}, "field 'landing_table': 'weblog_access' must be schema.table"),
        ({"store_table": "landing.weblog_access"}, "field 'store_table': landing.weblog_access is also the landing table"),
        ({"store_table": KeyError}, "field 'store_table' is missing"),
        ({"where_clause": ""}, "unknown field 'where_clause' (allowed: source, columns, landing_table, store_table, unique_columns)"),
    ],
)
def test_misdeclared_fields_are_refused(tmp_path, fields, expected):
    message = refused(tmp_path, changed(**fields))
    assert expected in message
    assert "weblog.yaml: weblog source 'access'" in message


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"landing_table": "landing.mysql_orders"},
         "weblog source 'access', field 'landing_table': landing.mysql_orders is also the landing_table of table 'orders'"),
        ({"store_table": "store_mysql.orders"},
         "weblog source 'access', field 'store_table': store_mysql.orders is also the store_table of table 'orders'"),
        ({"store_table": "landing.mysql_orders"},
         "weblog source 'access', field 'store_table': landing.mysql_orders is also the landing_table of table 'orders'"),
    ],
)
def test_tables_of_a_mysql_table_are_refused(tmp_path, fields, expected):
    message = refused(tmp_path, changed(**fields))
    assert expected in message
    assert "weblog.yaml" in message and "tables.yaml" in message


def test_one_declaration_only_and_known_sources(tmp_path):
    doc = shipped()
    doc["access2"] = {**doc["access"], "landing_table": "landing.weblog_b", "store_table": "store_weblog.b"}
    assert "weblog source 'access2': a weblog source is already declared in" in refused(tmp_path, doc)
    message = refused(tmp_path, shipped(), {"orders": {**ORDERS, "source": "oracle"}})
    assert "tables.yaml: table 'orders', field 'source': 'oracle' is not one of mysql, weblog" in message


def test_a_mysql_entry_may_say_source_mysql(tmp_path):
    path = folder(tmp_path, shipped(), {"orders": {**ORDERS, "source": "mysql"}})
    assert load_metadata(path)["orders"].columns == ("order_no", "total", "updated_datetime")


def test_types_within_their_kind_are_accepted_and_spelled_in_lower_case(tmp_path):
    def widen(columns):
        columns.update(country="TEXT", status_code="integer", device="varchar(40)", request_timestamp_converted="timestamp")

    meta, types = load_weblog_source(folder(tmp_path, with_columns(widen)))
    assert (types["country"], types["status_code"], types["device"]) == ("text", "integer", "varchar(40)")
    assert types["request_timestamp_converted"] == "timestamp"
    types["country"] = "changed"  # the caller's copy: the cached declaration stays
    assert load_weblog_source(tmp_path)[1]["country"] == "text"


def test_columns_in_another_order_are_staged_in_that_order():
    import polars as pl

    from etl.weblog.enrich import enrich_block
    from etl.weblog.parse import parse_block

    class Countries:
        def countries(self, addresses):
            return {a: "US" for a in addresses}

    line = '8.8.8.8 - bob [10/Oct/2025:13:55:36 -0700] "GET /a HTTP/1.1" 200 12 "-" "curl/8.5.0"'
    parsed, _ = parse_block(pl.Series([line, line], dtype=pl.String))
    staged = enrich_block(parsed, 7, "f1", "/logs/access.log", 10, Countries())
    assert staged.columns == ["execution_sequence", *COLUMNS]
    assert staged.row(1, named=True)["access_key"] == "f1:12"
    order = tuple(reversed(COLUMNS))
    reordered = enrich_block(parsed, 7, "f1", "/logs/access.log", 10, Countries(), order)
    assert reordered.columns == ["execution_sequence", *order]
    assert reordered.select(staged.columns).equals(staged)
