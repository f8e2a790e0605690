"""Unit tests of SQL generation: exact statements, quoting, type mapping."""

from __future__ import annotations

from datetime import datetime

import pytest

from etl.errors import ConfigError
from etl.domain import QualifiedName, SourceColumn, TableMeta, Window
from etl.sqlgen import (
    build_extract_query,
    mysql_ident,
    pg_type,
    range_fingerprint_params,
    range_fingerprint_query,
    source_changed_keys_query,
    source_count_query,
    staged_line_select,
)
from etl.warehouse_sql import (
    bulk_load_store_sql,
    landing_conversion_sql,
    landing_copy_sql,
    landing_ddl,
    landing_partition_name,
    landing_partition_sql,
    partition_sequence,
    store_keys_below_end_sql,
    type_problem,
    type_sql,
    upsert_sql,
)
from tests.support.sqltext import META, as_text


def test_extract_query_incremental_window():
    start, end, clock = datetime(2024, 1, 1), datetime(2024, 1, 2, 3, 4, 5), datetime(2024, 1, 2, 3, 4, 7)
    include_nulls = TableMeta(**{**META.__dict__, "null_watermark_policy": "include"})
    query, params = build_extract_query(include_nulls, "shop", Window(start, end, clock))
    assert query == (
        "SELECT `order_no`, `order_line_no`, `quantity`, `updated_datetime` FROM `shop`.`order_lines` "
        "WHERE ((`updated_datetime` >= %s AND `updated_datetime` < %s) OR (`updated_datetime` > %s) "
        "OR (`updated_datetime` IS NULL)) AND (is_test = 0)"
    )
    assert params == [start, end, clock]


def test_extract_query_first_run_and_full():
    query, params = build_extract_query(META, "shop", Window(None, datetime(2024, 1, 2)))
    assert "WHERE ((`updated_datetime` < %s)) AND (is_test = 0)" in query  # policy fail/exclude: no NULL rows
    assert len(params) == 1
    full = TableMeta(**{**META.__dict__, "is_incremental": False, "where_clause": ""})
    query, params = build_extract_query(full, "shop", Window(None, None))
    assert query.endswith("FROM `shop`.`order_lines`") and params == []


def test_mysql_ident_rejects_injection():
    assert mysql_ident("a_b1") == "`a_b1`"
    with pytest.raises(ConfigError):
        mysql_ident("a`; DROP TABLE x; --")


def test_copy_sql():
    assert as_text(landing_copy_sql(META)) == (
        'COPY "landing"."mysql_order_lines" ("execution_sequence", "order_no", "order_line_no", "quantity", '
        '"updated_datetime") FROM STDIN WITH (FORMAT csv, HEADER true)'
    )


def test_upsert_sql_shape():
    """Newest version per key in the batch; only changed rows or tombstones are updated, and only by a newer
    version: a later execution sequence, or the same one with a watermark not older."""
    text = as_text(upsert_sql(META))
    assert text == (
        'WITH batch AS (SELECT DISTINCT ON ("order_no", "order_line_no") "order_no", "order_line_no", "quantity", '
        '"updated_datetime", execution_sequence FROM "landing"."mysql_order_lines" WHERE execution_sequence = %s AND '
        '"order_no" IS NOT NULL AND "order_line_no" IS NOT NULL ORDER BY "order_no", "order_line_no", '
        '"updated_datetime" DESC NULLS LAST, landing_row_id DESC), merged AS (INSERT INTO "store_mysql"."order_lines" '
        'AS s ("order_no", "order_line_no", "quantity", "updated_datetime", etl_created_datetime, etl_updated_datetime, '
        'etl_execution_sequence) SELECT "order_no", "order_line_no", "quantity", "updated_datetime", now(), now(), '
        'execution_sequence FROM batch ON CONFLICT ("order_no", "order_line_no") DO UPDATE SET "quantity" = '
        'EXCLUDED."quantity", "updated_datetime" = EXCLUDED."updated_datetime", etl_updated_datetime = '
        'EXCLUDED.etl_updated_datetime, etl_execution_sequence = EXCLUDED.etl_execution_sequence, '
        'etl_deleted_datetime = NULL WHERE ((s."quantity", s."updated_datetime") IS DISTINCT FROM (EXCLUDED."quantity", '
        'EXCLUDED."updated_datetime") OR s.etl_deleted_datetime IS NOT NULL) AND (EXCLUDED."etl_execution_sequence" > '
        's.etl_execution_sequence OR ((EXCLUDED."etl_execution_sequence" = s.etl_execution_sequence OR '
        's.etl_execution_sequence IS NULL) AND (s."updated_datetime" IS NULL OR EXCLUDED."updated_datetime" IS NULL OR '
        'EXCLUDED."updated_datetime" >= s."updated_datetime"))) RETURNING (s.xmax = 0) AS inserted) SELECT count(*) '
        "FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged"
    )


def test_first_load_of_an_empty_store_builds_the_indexes_after_the_insert():
    batch = as_text(upsert_sql(META)).split("WITH batch AS (", 1)[1].split("), merged AS", 1)[0]
    bulk = bulk_load_store_sql(META)
    assert [as_text(s) for s in bulk.drop_indexes] == [
        'DROP INDEX IF EXISTS "store_mysql"."order_lines_uk"',
        'DROP INDEX IF EXISTS "store_mysql"."order_lines_etl_updated_idx"',
    ]
    target = ('INSERT INTO "store_mysql"."order_lines" ("order_no", "order_line_no", "quantity", "updated_datetime", '
              'etl_created_datetime, etl_updated_datetime, etl_execution_sequence) SELECT "order_no", "order_line_no", '
              '"quantity", "updated_datetime", now(), now(), execution_sequence FROM ')
    assert as_text(bulk.insert) == target + (
        '"landing"."mysql_order_lines" WHERE execution_sequence = %s AND "order_no" IS NOT NULL AND '
        '"order_line_no" IS NOT NULL')
    assert as_text(bulk.insert_deduplicated) == target + f"({batch}) AS batch"
    assert as_text(bulk.create_unique_index) == (
        'CREATE UNIQUE INDEX IF NOT EXISTS "order_lines_uk" ON "store_mysql"."order_lines" ("order_no", "order_line_no")')
    assert as_text(bulk.create_updated_index) == (
        'CREATE INDEX IF NOT EXISTS "order_lines_etl_updated_idx" ON "store_mysql"."order_lines" (etl_updated_datetime)')


def test_landing_is_partitioned_by_execution_sequence_without_an_index():
    ddl = [as_text(s) for s in landing_ddl(META, {c: "text" for c in META.columns})]
    assert ddl[1].startswith('CREATE TABLE IF NOT EXISTS "landing"."mysql_order_lines" (execution_sequence integer NOT NULL, ')
    assert ddl[1].endswith(") PARTITION BY LIST (execution_sequence)")
    assert len(ddl) == 2  # no index: a sequence is its partition
    assert as_text(landing_partition_sql(META, 12)) == (
        'CREATE TABLE IF NOT EXISTS "landing"."mysql_order_lines_s12" PARTITION OF "landing"."mysql_order_lines" '
        "FOR VALUES IN (12)")


def test_landing_partition_bounds_and_the_conversion_of_an_unpartitioned_table():
    assert partition_sequence("FOR VALUES IN (12)") == 12
    assert partition_sequence("FOR VALUES IN (1, 2)") is None and partition_sequence(None) is None
    rename, copy, drop = landing_conversion_sql(META, QualifiedName("landing", "old"), ["execution_sequence", "order_no"])
    assert as_text(rename) == 'ALTER TABLE "landing"."mysql_order_lines" RENAME TO "old"'
    assert as_text(copy) == ('INSERT INTO "landing"."mysql_order_lines" ("execution_sequence", "order_no") '
                             'OVERRIDING SYSTEM VALUE SELECT "execution_sequence", "order_no" FROM "landing"."old"')
    assert as_text(drop) == 'DROP TABLE "landing"."old"'


def test_landing_partition_names_fit_postgres_identifiers_and_stay_unique():
    long = [TableMeta(**{**META.__dict__, "landing_table": QualifiedName("landing", "t" * 60 + tail)}) for tail in "ab"]
    names = [landing_partition_name(m, 123456).table for m in long]
    assert all(len(n.encode()) <= 63 and n.endswith("_s123456") for n in names)
    assert names[0] != names[1]


def test_upsert_of_a_key_only_table_only_revives_tombstones():
    keys_only = TableMeta(**{**META.__dict__, "columns": ("order_no",), "unique_columns": ("order_no",),
                             "watermark_column": None, "is_incremental": False})
    assert ('ON CONFLICT ("order_no") DO UPDATE SET etl_updated_datetime = EXCLUDED.etl_updated_datetime, '
            'etl_execution_sequence = EXCLUDED.etl_execution_sequence, etl_deleted_datetime = NULL WHERE '
            '(s.etl_deleted_datetime IS NOT NULL) AND (EXCLUDED."etl_execution_sequence" > s.etl_execution_sequence OR '
            '((EXCLUDED."etl_execution_sequence" = s.etl_execution_sequence OR s.etl_execution_sequence IS NULL))) '
            'RETURNING') in as_text(upsert_sql(keys_only))


@pytest.mark.parametrize(
    "data_type, column_type, extra, expected",
    [
        ("int", "int(11)", {}, "integer"),
        ("int", "int(10) unsigned", {}, "bigint"),
        ("bigint", "bigint(20) unsigned", {}, "numeric(20,0)"),
        ("tinyint", "tinyint(1)", {}, "smallint"),
        ("decimal", "decimal(20,4)", {"numeric_precision": 20, "numeric_scale": 4}, "numeric(20,4)"),
        ("varchar", "varchar(200)", {"char_length": 200}, "varchar(200)"),
        ("char", "char(2)", {"char_length": 2}, "varchar(2)"),
        ("datetime", "datetime(6)", {"datetime_precision": 6}, "timestamp(6)"),
        ("datetime", "datetime", {"datetime_precision": 0}, "timestamp(0)"),
        ("timestamp", "timestamp", {"datetime_precision": 0}, "timestamptz(0)"),
        ("date", "date", {}, "date"),
        ("longtext", "longtext", {}, "text"),
        ("enum", "enum('a','b')", {}, "text"),
        ("double", "double", {}, "double precision"),
        # the rest of docs/source-types.md
        ("binary", "binary(4)", {"char_length": 4}, "bytea"),
        ("varbinary", "varbinary(300)", {"char_length": 300}, "bytea"),
        ("tinyblob", "tinyblob", {}, "bytea"),
        ("blob", "blob", {}, "bytea"),
        ("mediumblob", "mediumblob", {}, "bytea"),
        ("longblob", "longblob", {}, "bytea"),
        ("bit", "bit(1)", {"numeric_precision": 1}, "bit(1)"),
        ("bit", "bit(64)", {"numeric_precision": 64}, "bit(64)"),
        ("bit", "bit(5)", {}, "bit(5)"),  # precision missing: read from the column type
        ("json", "json", {}, "jsonb"),
        ("json", "longtext", {}, "jsonb"),  # MariaDB's JSON as etl.source_mysql describes it
        ("set", "set('x','y')", {}, "text"),
        ("time", "time(6)", {"datetime_precision": 6}, "interval"),
        ("year", "year(4)", {}, "smallint"),
        ("float", "float", {}, "real"),
        ("float", "float unsigned", {}, "real"),
        ("decimal", "decimal(65,30)", {"numeric_precision": 65, "numeric_scale": 30}, "numeric(65,30)"),
        ("timestamp", "timestamp(6)", {"datetime_precision": 6}, "timestamptz(6)"),
        ("tinyint", "tinyint(3) unsigned", {}, "smallint"),
        ("smallint", "smallint(5) unsigned", {}, "integer"),
        ("mediumint", "mediumint(8) unsigned", {}, "integer"),
        ("uuid", "uuid", {}, "uuid"),
        ("inet4", "inet4", {}, "inet"),
        ("inet6", "inet6", {}, "inet"),
    ],
)
def test_pg_type(data_type, column_type, extra, expected):
    assert pg_type("t", SourceColumn("c", data_type, column_type, **extra)) == expected
    assert type_problem("c", expected) is None  # the DDL's type grammar accepts every type pg_type gives


@pytest.mark.parametrize("text", [
    "integer); CREATE TABLE public.x (y int", "text; DROP TABLE store_mysql.orders", "varchar(10) DEFAULT now()",
    "numeric(20,0)--", "timestamp(7)", "bit(n)", "", None, 5, "integer\n",
])
def test_type_grammar_refuses_anything_else(text):
    problem = type_problem("company_id", text)
    assert problem.startswith(f"column 'company_id': {repr(text)[:80]}")
    assert "is not a column type the pipeline writes" in problem
    with pytest.raises(ConfigError, match="is not a column type the pipeline writes"):
        type_sql("company_id", text)


@pytest.mark.parametrize("data_type", ["geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
                                       "multipolygon", "geometrycollection", "geomcollection"])
def test_pg_type_refuses_spatial_types_naming_table_column_type_and_what_to_do(data_type):
    with pytest.raises(ConfigError) as raised:
        pg_type("t", SourceColumn("c", data_type, data_type))
    assert str(raised.value) == (
        f"table 't', column 'c': MySQL type '{data_type}' is a spatial type, which is not extracted (its text forms "
        "round coordinates); exclude the column from the table's columns in extract_config, or extract a view that "
        "converts it, e.g. ST_AsBinary(col) AS col_wkb (exact, lands as bytea) or ST_AsText(col) AS col_wkt, with "
        "ST_SRID(col) AS col_srid"
    )


def test_pg_type_unsupported_names_table_and_column():
    with pytest.raises(ConfigError, match="table 't', column 'c': MySQL type 'vector\\(3\\)' is not supported; "
                                          "exclude the column from the table's columns in extract_config"):
        pg_type("t", SourceColumn("c", "vector", "vector(3)"))


@pytest.mark.parametrize(
    "old, new, change",
    [
        ("character varying(50)", "varchar(200)", "widen"),
        ("character varying(200)", "varchar(50)", "incompatible"),
        ("character varying(20)", "text", "widen"),
        ("numeric(10,2)", "numeric(12,2)", "widen"),
        ("numeric(10,2)", "numeric(10,4)", "incompatible"),  # fewer integer digits
        ("numeric(12,2)", "numeric(14,4)", "widen"),
        ("smallint", "integer", "widen"),
        ("integer", "bigint", "widen"),
        ("bigint", "integer", "incompatible"),
        ("bigint", "numeric(20,0)", "widen"),
        ("timestamp(0) without time zone", "timestamp(6)", "widen"),
        ("timestamp(6) without time zone", "timestamp(0)", "incompatible"),
        ("timestamp(0) with time zone", "timestamptz(0)", "same"),
        ("timestamp without time zone", "timestamp(6)", "same"),
        ("integer", "varchar(10)", "incompatible"),
        ("date", "date", "same"),
        ("real", "double precision", "widen"),  # MySQL float -> double
        ("double precision", "real", "incompatible"),
        ("text", "jsonb", "widen"),  # json staged as text before it became jsonb
        ("character varying(200)", "jsonb", "widen"),  # a MariaDB varchar with a json_valid check
        ("jsonb", "text", "incompatible"),
        ("jsonb", "jsonb", "same"),
        ("bytea", "bytea", "same"),  # binary(4) -> varbinary(10) -> blob
        ("bit(5)", "bit(5)", "same"),
        ("bit(5)", "bit(8)", "incompatible"),  # PostgreSQL would pad every value on the right
        ("bit(8)", "bit(5)", "incompatible"),
        ("interval", "interval", "same"),  # time -> time(6)
        ("numeric(20,0)", "numeric(65,30)", "widen"),
        ("numeric(65,30)", "numeric(20,0)", "incompatible"),
        ("uuid", "text", "incompatible"),
    ],
)
def test_type_change(old, new, change):
    from etl.warehouse_sql import type_change

    assert type_change(old, new) == change


def source_types() -> dict[str, SourceColumn]:
    """MySQL column types of META's columns (a new dict each call)."""
    return {
        "order_no": SourceColumn("order_no", "varchar", "varchar(20)", char_length=20),
        "order_line_no": SourceColumn("order_line_no", "int", "int(11)"),
        "quantity": SourceColumn("quantity", "decimal", "decimal(10,2)", numeric_precision=10, numeric_scale=2),
        "updated_datetime": SourceColumn("updated_datetime", "datetime", "datetime", datetime_precision=0),
    }


def test_staged_line_select_formats_by_type_and_flags_invalid_dates():
    types = source_types()
    select, dates = staged_line_select(META, types, 42)
    assert select == (
        "CONCAT_WS(',', '42', "
        """IFNULL(CONCAT('"', REPLACE(CONVERT(`order_no` USING utf8mb4), '"', '""'), '"'), ''), """
        "IFNULL(`order_line_no`, ''), IFNULL(`quantity`, ''), "
        "IFNULL(IF(TO_DAYS(`updated_datetime`) >= 366, `updated_datetime`, NULL), '')), "
        "NULLIF(CONCAT_WS(',', IF(IFNULL(TO_DAYS(`updated_datetime`) < 366, `updated_datetime` IS NOT NULL), '0', NULL)), '')"
    )
    assert dates == ["updated_datetime"]
    types["quantity"] = SourceColumn("quantity", "point", "point")
    with pytest.raises(ConfigError, match="table 'order_lines', column 'quantity': MySQL type 'point' is a spatial"):
        staged_line_select(META, types, 42)


TYPED = TableMeta(**{**META.__dict__, "columns": ("order_no", "b", "flag", "ratio", "yr", "tm", "doc", "uid")})


def typed_columns() -> dict[str, SourceColumn]:
    return {**source_types(), "b": SourceColumn("b", "blob", "blob"), "flag": SourceColumn("flag", "bit", "bit(5)", numeric_precision=5),
            "ratio": SourceColumn("ratio", "float", "float"), "yr": SourceColumn("yr", "year", "year(4)"),
            "tm": SourceColumn("tm", "time", "time(6)", datetime_precision=6), "doc": SourceColumn("doc", "json", "longtext"),
            "uid": SourceColumn("uid", "uuid", "uuid")}


def test_staged_line_select_formats_binary_bit_float_year_time_json_uuid():
    select, dates = staged_line_select(TYPED, typed_columns(), 7)
    assert select == (
        "CONCAT_WS(',', '7', "
        """IFNULL(CONCAT('"', REPLACE(CONVERT(`order_no` USING utf8mb4), '"', '""'), '"'), ''), """
        "IFNULL(CONCAT(X'5C78', HEX(`b`)), ''), "  # \\x + hex: PostgreSQL's bytea input; NULL stays empty
        "IFNULL(LPAD(BIN(`flag`), 5, '0'), ''), "  # the n digits of bit(n)
        "IFNULL(`ratio` + 0e0, ''), "  # a FLOAT as the double it equals (MySQL writes FLOAT with 6 digits)
        "IFNULL(`yr` + 0, ''), "
        "IFNULL(`tm`, ''), "
        """IFNULL(CONCAT('"', REPLACE(CONVERT(`doc` USING utf8mb4), '"', '""'), '"'), ''), """
        "IFNULL(CONCAT(`uid`), ''))"  # IFNULL(uuid, '') would be NULL: '' is no uuid
    )
    assert dates == []


def test_staged_binary_is_bare_quoted_hex_for_redshift_and_the_row_hash_follows():
    from etl.sqlgen import row_fingerprint_sql

    from etl.dialects import RedshiftDialect

    rs = RedshiftDialect.binary_staging
    select, _ = staged_line_select(TYPED, typed_columns(), 7, rs)
    assert """IFNULL(CONCAT('"', HEX(`b`), '"'), '')""" in select  # VARBYTE reads hex; "" keeps an empty value
    assert "X'5C78'" not in select
    assert """IFNULL(CONCAT('"', HEX(`b`), '"'), '')""" in row_fingerprint_sql(TYPED, typed_columns(), rs)
    assert "X'5C78'" in row_fingerprint_sql(TYPED, typed_columns())
    assert """IFNULL(CONCAT('"', HEX(`b`), '"'), '')""" in range_fingerprint_query(TYPED, "shop", typed_columns(), 1, rs)


def test_widening_to_jsonb_converts_with_using():
    from etl.warehouse_sql import widen_column_sql

    table = QualifiedName("store_mysql", "docs")
    assert as_text(widen_column_sql(table, "doc", "jsonb")) == (
        'ALTER TABLE "store_mysql"."docs" ALTER COLUMN "doc" TYPE jsonb USING "doc"::jsonb')
    assert as_text(widen_column_sql(table, "ratio", "double precision")) == (
        'ALTER TABLE "store_mysql"."docs" ALTER COLUMN "ratio" TYPE double precision')


def test_range_fingerprint_query_hashes_the_staged_text_of_each_range_in_one_scan():
    types = source_types()
    text = ("CONCAT_WS(',', "
            """IFNULL(CONCAT('"', REPLACE(CONVERT(`order_no` USING utf8mb4), '"', '""'), '"'), ''), """
            "IFNULL(`order_line_no`, ''), IFNULL(`quantity`, ''), "
            "IFNULL(IF(TO_DAYS(`updated_datetime`) >= 366, `updated_datetime`, NULL), ''))")
    inside = "x.wm >= %s AND x.wm < %s"
    assert range_fingerprint_query(META, "shop", types, 2) == (
        f"SELECT COALESCE(SUM({inside}), 0), COALESCE(SUM(IF({inside}, x.h, 0)), 0), "
        f"COALESCE(SUM({inside}), 0), COALESCE(SUM(IF({inside}, x.h, 0)), 0) "
        f"FROM (SELECT `updated_datetime` AS wm, CAST(CONV(LEFT(MD5({text}), 15), 16, 10) AS UNSIGNED) AS h "
        "FROM `shop`.`order_lines` WHERE `updated_datetime` >= %s AND `updated_datetime` < %s "
        "AND (is_test = 0)) AS x"
    )
    a, b, c, d = (datetime(2024, 1, 1, h) for h in (1, 2, 3, 4))
    # each range bounds its count and its sum; the scanned index range is their union
    assert range_fingerprint_params([(c, d), (a, b)]) == [c, d, c, d, a, b, a, b, a, d]


def test_extract_query_flags_the_tail_rows_with_a_last_value():
    start, end, clock, tail = (datetime(2024, 1, d) for d in (1, 3, 4, 2))
    query, params = build_extract_query(META, "shop", Window(start, end, clock), "LINE", tail=(tail, end))
    assert query == (
        "SELECT LINE, (`updated_datetime` >= %s AND `updated_datetime` < %s) FROM `shop`.`order_lines` "
        "WHERE ((`updated_datetime` >= %s AND `updated_datetime` < %s) OR (`updated_datetime` > %s)) AND (is_test = 0)"
    )
    assert params == [tail, end, start, end, clock]


def test_range_count_query_counts_a_watermark_range_with_the_filter():
    from etl.sqlgen import range_count_query

    assert range_count_query(META, "shop") == (
        "SELECT COUNT(*) FROM `shop`.`order_lines` WHERE `updated_datetime` >= %s AND `updated_datetime` < %s "
        "AND (is_test = 0)"
    )


def test_the_count_check_counts_complete_keys_below_the_window_end_and_lists_the_keys_after_it():
    keyed = "`order_no` IS NOT NULL AND `order_line_no` IS NOT NULL"
    assert source_count_query(META, "shop") == f"SELECT COUNT(*) FROM `shop`.`order_lines` WHERE {keyed} AND (is_test = 0)"
    assert source_changed_keys_query(META, "shop") == (
        f"SELECT `order_no`, `order_line_no` FROM `shop`.`order_lines` WHERE {keyed} AND (is_test = 0) "
        "AND (`updated_datetime` >= %s OR `updated_datetime` IS NULL)")
    full = TableMeta(**{**META.__dict__, "is_incremental": False, "where_clause": "", "unique_columns": ("order_no",)})
    assert source_count_query(full, "shop") == "SELECT COUNT(*) FROM `shop`.`order_lines` WHERE `order_no` IS NOT NULL"
    assert source_changed_keys_query(full, "shop") is None


def test_store_rows_changed_after_the_window_end_are_matched_by_key_portably():
    assert as_text(store_keys_below_end_sql(META, 2)) == (
        'SELECT count(*) FROM "store_mysql"."order_lines" WHERE etl_deleted_datetime IS NULL AND "updated_datetime" < %s '
        'AND (("order_no" = %s AND "order_line_no" = %s) OR ("order_no" = %s AND "order_line_no" = %s))')
    single = TableMeta(**{**META.__dict__, "unique_columns": ("order_no",)})
    assert as_text(store_keys_below_end_sql(single, 3)) == (
        'SELECT count(*) FROM "store_mysql"."order_lines" WHERE etl_deleted_datetime IS NULL AND "updated_datetime" < %s '
        'AND "order_no" IN (%s, %s, %s)')
