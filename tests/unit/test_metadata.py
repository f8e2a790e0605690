"""Unit tests of table metadata loading and validation (no database)."""

from __future__ import annotations

import pytest
import yaml

from etl.errors import ConfigError
from etl.metadata import check_against_source, load_metadata

GOOD = {
    "columns": ["order_no", "total", "updated_datetime"],
    "where_clause": "",
    "is_incremental": True,
    "watermark_column": "updated_datetime",
    "landing_table": "landing.mysql_orders",
    "store_table": "store_mysql.orders",
    "unique_columns": ["order_no"],
}


def write(tmp_path, entries: dict, name: str = "tables.yaml"):
    (tmp_path / name).write_text(yaml.safe_dump(entries))
    return tmp_path


def problem(tmp_path, **changes) -> str:
    entry = {**GOOD, **changes}
    for key, value in list(entry.items()):
        if value is KeyError:
            del entry[key]
    with pytest.raises(ConfigError) as info:
        load_metadata(write(tmp_path, {"orders": entry}))
    return str(info.value)


def test_repo_metadata_is_valid():
    tables = load_metadata("extract_config")
    assert sorted(tables) == ["companies", "customers", "order_headers", "order_lines", "product_prices", "products"]
    assert tables["order_lines"].unique_columns == ("order_no", "order_line_no")
    assert str(tables["order_lines"].store_table) == "store_mysql.order_lines"


def test_good_entry(tmp_path):
    meta = load_metadata(write(tmp_path, {"orders": GOOD}))["orders"]
    assert meta.columns == ("order_no", "total", "updated_datetime")
    assert meta.value_columns == ("total", "updated_datetime")
    assert meta.source_file.endswith("tables.yaml")


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"columns": ["order_no", "bad-name", "updated_datetime"]}, "field 'columns': 'bad-name' is not an identifier"),
        ({"unique_columns": ["nope"]}, "field 'unique_columns': 'nope' is not in 'columns'"),
        ({"watermark_column": "nope"}, "field 'watermark_column': 'nope' is not in 'columns'"),
        ({"watermark_column": None}, "field 'watermark_column': required when is_incremental is true"),
        ({"is_incremental": "yes"}, "field 'is_incremental': expected true or false"),
        ({"landing_table": "mysql_orders"}, "field 'landing_table': 'mysql_orders' must be schema.table"),
        ({"store_table": "store.x; drop"}, "field 'store_table'"),
        ({"where_clause": "1=1; DROP TABLE x"}, "field 'where_clause': must be one boolean expression"),
        ({"unique_columns": KeyError}, "field 'unique_columns' is missing"),
        ({"extra_field": 1}, "unknown field 'extra_field'"),
        ({"columns": []}, "field 'columns': expected a non-empty list"),
        ({"columns": ["order_no", "order_no", "updated_datetime"]}, "a column is listed twice"),
        ({"null_watermark_policy": "ignore"}, "field 'null_watermark_policy': 'ignore' is not one of fail, include, exclude"),
    ],
)
def test_invalid_entries_name_file_table_and_field(tmp_path, changes, expected):
    message = problem(tmp_path, **changes)
    assert expected in message
    assert "tables.yaml: table 'orders'" in message


def test_table_name_must_be_identifier(tmp_path):
    with pytest.raises(ConfigError, match="the table name is not an identifier"):
        load_metadata(write(tmp_path, {"orders`; --": GOOD}))


def test_table_defined_twice_across_files(tmp_path):
    write(tmp_path, {"orders": GOOD}, "a.yaml")
    write(tmp_path, {"orders": GOOD}, "b.yaml")
    with pytest.raises(ConfigError, match="table 'orders' is already defined in .*a.yaml"):
        load_metadata(tmp_path)


def test_shared_target_table_is_rejected(tmp_path):
    other = {**GOOD, "landing_table": "landing.mysql_other"}
    write(tmp_path, {"orders": GOOD, "orders2": other})
    with pytest.raises(ConfigError, match="store_mysql.orders is also used by 'orders'"):
        load_metadata(tmp_path)


def test_missing_folder_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="is not a folder"):
        load_metadata(tmp_path / "missing")
    (tmp_path / "x.yaml").write_text("orders: [unclosed")
    with pytest.raises(ConfigError, match="x.yaml: not valid YAML"):
        load_metadata(tmp_path)


def test_check_against_source_lists_every_problem(tmp_path):
    tables = load_metadata(write(tmp_path, {"orders": GOOD, "lines": {**GOOD, "landing_table": "landing.l", "store_table": "store.l"}}))
    with pytest.raises(ConfigError) as info:
        check_against_source(tables, {"orders": {"order_no": 1, "updated_datetime": 1}}, "shop")
    text = str(info.value)
    assert "table 'lines': no such table in source database 'shop'" in text
    assert "table 'orders', field 'columns': column 'total' does not exist in shop.orders" in text


def test_a_table_or_field_given_twice_in_one_file_is_refused_naming_file_lines_table_and_field(tmp_path):
    # PyYAML keeps the last of two equal keys without a word: the first definition would vanish
    (tmp_path / "tables.yaml").write_text(
        "orders:\n"
        "  columns: [order_no, total, updated_datetime]\n"
        "  where_clause: \"\"\n"
        "  where_clause: \"total > 0\"\n"
        "  is_incremental: true\n"
        "  watermark_column: updated_datetime\n"
        "  landing_table: landing.mysql_orders\n"
        "  store_table: store_mysql.orders\n"
        "  unique_columns: [order_no]\n"
        "orders:\n"
        "  columns: [order_no]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_metadata(tmp_path)
    message = str(info.value)
    path = tmp_path / "tables.yaml"
    assert (f"{path}, line 4: table 'orders': field 'where_clause' is given twice (also on line 3); keep one"
            in message)
    assert f"{path}, line 10: table 'orders' is given twice (also on line 1); keep one" in message


def test_a_weblog_column_given_twice_is_refused(tmp_path):
    import shutil

    shutil.copy("extract_config/weblog.yaml", tmp_path / "weblog.yaml")
    write(tmp_path, {"orders": GOOD})
    text = (tmp_path / "weblog.yaml").read_text()
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("status_code:"))
    lines.insert(at + 1, lines[at])  # the same column again, on the next line
    (tmp_path / "weblog.yaml").write_text("".join(lines))
    with pytest.raises(ConfigError) as info:
        load_metadata(tmp_path)
    assert (f"{tmp_path / 'weblog.yaml'}, line {at + 2}: table 'access': field 'columns': key 'status_code' is "
            f"given twice (also on line {at + 1})") in str(info.value)


def test_the_shipped_metadata_repeats_no_key():
    from pathlib import Path

    from etl.metadata import _repeated_keys

    for path in sorted(Path("extract_config").glob("*.yaml")):
        assert _repeated_keys(path, yaml.compose(path.read_text())) == [], path
