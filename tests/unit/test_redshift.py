"""The Redshift flavour's generated statements, asserted as exact text (no cluster is reachable here;
their semantics on PostgreSQL: tests/integration/test_redshift.py)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from etl import redshift, warehouse_sql
from etl.dialects import RedshiftDialect
from etl.errors import ConfigError
from etl.domain import TableMeta
from tests.support.paths import REPO
from tests.support.sqltext import META, TYPES, as_text


@pytest.mark.parametrize(
    "pg, rs",
    [("varchar(20)", "VARCHAR(80)"), ("varchar(20000)", "VARCHAR(65535)"), ("text", "VARCHAR(65535)"),
     ("numeric(20,4)", "NUMERIC(20,4)"), ("timestamp(6)", "TIMESTAMP"), ("timestamptz(0)", "TIMESTAMPTZ"),
     ("smallint", "SMALLINT"), ("double precision", "DOUBLE PRECISION"), ("interval", "VARCHAR(32)"),
     ("boolean", "BOOLEAN"),
     # the source types of docs/source-types.md
     ("bytea", "VARBYTE(1024000)"), ("jsonb", "VARCHAR(65535)"), ("bit(1)", "VARCHAR(1)"), ("bit(64)", "VARCHAR(64)"),
     ("real", "REAL"), ("numeric(20,0)", "NUMERIC(20,0)"), ("numeric(38,10)", "NUMERIC(38,10)"),
     ("timestamptz(6)", "TIMESTAMPTZ"), ("uuid", "CHAR(36)"), ("inet", "VARCHAR(45)")],
)
def test_type_mapping(pg, rs):
    assert redshift.redshift_type("t", "c", pg) == rs
    assert warehouse_sql.type_problem("c", rs) is None  # Redshift's forms pass the DDL's type grammar too


def test_unmappable_type_names_table_and_column():
    with pytest.raises(ConfigError, match="table 't', column 'c': numeric\\(65,2\\) exceeds"):
        redshift.redshift_type("t", "c", "numeric(65,2)")


def test_decimal_65_30_is_refused_with_what_to_do():
    with pytest.raises(ConfigError) as raised:
        redshift.redshift_type("t", "c", "numeric(65,30)")
    assert str(raised.value) == (
        "table 't', column 'c': numeric(65,30) exceeds Redshift's NUMERIC(38); exclude the column from the table's "
        "columns in extract_config, or extract a view that casts it to DECIMAL(38,s) (if its values fit) or to CHAR")
    with pytest.raises(ConfigError, match="type 'tsvector' has no Redshift mapping; exclude the column"):
        redshift.redshift_type("t", "c", "tsvector")


def test_store_ddl_of_every_source_type():
    """The Redshift store DDL of a table with a column of each MySQL type (pg_type, then redshift_type)."""
    from etl.domain import SourceColumn
    from etl.sqlgen import pg_type

    source = {
        "id": SourceColumn("id", "bigint", "bigint(20) unsigned"),
        "bin": SourceColumn("bin", "varbinary", "varbinary(16)", char_length=16),
        "blb": SourceColumn("blb", "longblob", "longblob"),
        "bit1": SourceColumn("bit1", "bit", "bit(1)", numeric_precision=1),
        "bit64": SourceColumn("bit64", "bit", "bit(64)", numeric_precision=64),
        "doc": SourceColumn("doc", "json", "longtext"),
        "en": SourceColumn("en", "enum", "enum('a','b')"),
        "st": SourceColumn("st", "set", "set('x','y')"),
        "tm": SourceColumn("tm", "time", "time(6)", datetime_precision=6),
        "yr": SourceColumn("yr", "year", "year(4)"),
        "fl": SourceColumn("fl", "float", "float"),
        "db": SourceColumn("db", "double", "double"),
        "amount": SourceColumn("amount", "decimal", "decimal(38,30)", numeric_precision=38, numeric_scale=30),
        "dt6": SourceColumn("dt6", "datetime", "datetime(6)", datetime_precision=6),
        "ts6": SourceColumn("ts6", "timestamp", "timestamp(6)", datetime_precision=6),
        "flag": SourceColumn("flag", "tinyint", "tinyint(1)"),
        "uid": SourceColumn("uid", "uuid", "uuid"),
        "ip": SourceColumn("ip", "inet6", "inet6"),
    }
    meta = TableMeta(**{**META.__dict__, "columns": tuple(source), "unique_columns": ("id",), "watermark_column": "dt6"})
    types = {c: pg_type("t", col) for c, col in source.items()}
    assert as_text(redshift.store_ddl(meta, types)[1]) == (
        'CREATE TABLE IF NOT EXISTS "store_mysql"."order_lines" ("id" NUMERIC(20,0) NOT NULL, '
        '"bin" VARBYTE(1024000), "blb" VARBYTE(1024000), "bit1" VARCHAR(1), "bit64" VARCHAR(64), '
        '"doc" VARCHAR(65535), "en" VARCHAR(65535), "st" VARCHAR(65535), "tm" VARCHAR(32), "yr" SMALLINT, '
        '"fl" REAL, "db" DOUBLE PRECISION, "amount" NUMERIC(38,30), "dt6" TIMESTAMP, "ts6" TIMESTAMPTZ, '
        '"flag" SMALLINT, "uid" CHAR(36), "ip" VARCHAR(45), '
        '"etl_created_datetime" TIMESTAMP NOT NULL, "etl_updated_datetime" TIMESTAMP NOT NULL, '
        '"etl_deleted_datetime" TIMESTAMP, "etl_execution_sequence" INTEGER, PRIMARY KEY ("id")) '
        'DISTKEY ("id") SORTKEY ("id")'
    )
    landing = as_text(redshift.landing_ddl(meta, types)[1])
    assert '"bin" VARBYTE(1024000), "blb" VARBYTE(1024000), "bit1" VARCHAR(1), "bit64" VARCHAR(64)' in landing


def test_landing_and_store_ddl():
    landing = [as_text(s) for s in redshift.landing_ddl(META, TYPES)]
    assert landing == [
        'CREATE SCHEMA IF NOT EXISTS "landing"',
        'CREATE TABLE IF NOT EXISTS "landing"."mysql_order_lines" (execution_sequence INTEGER NOT NULL, '
        '"order_no" VARCHAR(80), "order_line_no" INTEGER, "quantity" INTEGER, "updated_datetime" TIMESTAMP, '
        "landing_row_id BIGINT IDENTITY(1, 1), etl_loaded_datetime TIMESTAMP DEFAULT GETDATE()) "
        "DISTSTYLE EVEN SORTKEY (execution_sequence)",
    ]
    store = [as_text(s) for s in redshift.store_ddl(META, TYPES)]
    assert store[1] == (
        'CREATE TABLE IF NOT EXISTS "store_mysql"."order_lines" ("order_no" VARCHAR(80) NOT NULL, '
        '"order_line_no" INTEGER NOT NULL, "quantity" INTEGER, "updated_datetime" TIMESTAMP, '
        '"etl_created_datetime" TIMESTAMP NOT NULL, "etl_updated_datetime" TIMESTAMP NOT NULL, '
        '"etl_deleted_datetime" TIMESTAMP, "etl_execution_sequence" INTEGER, '
        'PRIMARY KEY ("order_no", "order_line_no")) DISTKEY ("order_no") SORTKEY ("order_no", "order_line_no")'
    )
    custom = as_text(redshift.store_ddl(META, TYPES, distkey="order_line_no", sortkey=("updated_datetime",))[1])
    assert custom.endswith('DISTKEY ("order_line_no") SORTKEY ("updated_datetime")')


def test_copy_from_s3():
    assert as_text(redshift.copy_sql(META)) == (
        'COPY "landing"."mysql_order_lines" ("execution_sequence", "order_no", "order_line_no", "quantity", '
        '"updated_datetime") FROM %s IAM_ROLE %s FORMAT AS CSV GZIP IGNOREHEADER 1 EMPTYASNULL '
        "TIMEFORMAT 'auto' DATEFORMAT 'auto' COMPUPDATE OFF STATUPDATE OFF"
    )


def test_upsert_statements():
    create, update, insert, drop = [as_text(s) for s in redshift.upsert_statements(META)]
    assert create == (
        'CREATE TEMP TABLE "etl_batch" AS SELECT "order_no", "order_line_no", "quantity", "updated_datetime", '
        '"execution_sequence" FROM (SELECT "order_no", "order_line_no", "quantity", "updated_datetime", '
        '"execution_sequence", ROW_NUMBER() OVER (PARTITION BY "order_no", "order_line_no" ORDER BY '
        '"updated_datetime" DESC NULLS LAST, landing_row_id DESC) AS etl_rn FROM "landing"."mysql_order_lines" WHERE '
        'execution_sequence = %s AND "order_no" IS NOT NULL AND "order_line_no" IS NOT NULL) AS ranked WHERE etl_rn = 1'
    )
    t = '"store_mysql"."order_lines"'
    # changed values or a tombstone, and only a newer version: a later sequence, or the same with a watermark not older
    assert update == (
        f'UPDATE {t} SET "quantity" = b."quantity", "updated_datetime" = b."updated_datetime", '
        'etl_updated_datetime = GETDATE(), etl_execution_sequence = b.execution_sequence, etl_deleted_datetime = NULL '
        f'FROM "etl_batch" AS b WHERE {t}."order_no" = b."order_no" AND '
        f'{t}."order_line_no" = b."order_line_no" AND (NOT ({t}."quantity" = b."quantity" OR ({t}."quantity" IS NULL '
        f'AND b."quantity" IS NULL)) OR NOT ({t}."updated_datetime" = b."updated_datetime" OR ({t}."updated_datetime" '
        f'IS NULL AND b."updated_datetime" IS NULL)) OR {t}."etl_deleted_datetime" IS NOT NULL) AND '
        f'(b."execution_sequence" > {t}.etl_execution_sequence OR ((b."execution_sequence" = {t}.etl_execution_sequence '
        f'OR {t}.etl_execution_sequence IS NULL) AND ({t}."updated_datetime" IS NULL OR b."updated_datetime" IS NULL '
        f'OR b."updated_datetime" >= {t}."updated_datetime")))'
    )
    assert insert == (
        f'INSERT INTO {t} ("order_no", "order_line_no", "quantity", "updated_datetime", etl_created_datetime, '
        'etl_updated_datetime, etl_execution_sequence) SELECT b."order_no", b."order_line_no", b."quantity", '
        'b."updated_datetime", GETDATE(), GETDATE(), b.execution_sequence FROM "etl_batch" AS b LEFT JOIN '
        f'{t} AS s ON s."order_no" = b."order_no" AND s."order_line_no" = b."order_line_no" WHERE s."order_no" IS NULL'
    )
    assert drop == 'DROP TABLE "etl_batch"'


def test_upsert_of_a_key_only_table_only_revives_tombstones():
    keys_only = TableMeta(**{**META.__dict__, "columns": ("order_no",), "unique_columns": ("order_no",),
                             "watermark_column": None, "is_incremental": False})
    create, update, insert, _ = [as_text(s) for s in redshift.upsert_statements(keys_only)]
    t = '"store_mysql"."order_lines"'
    assert update == (
        f'UPDATE {t} SET etl_updated_datetime = GETDATE(), etl_execution_sequence = b.execution_sequence, '
        f'etl_deleted_datetime = NULL FROM "etl_batch" AS b WHERE {t}."order_no" = b."order_no" AND '
        f'({t}."etl_deleted_datetime" IS NOT NULL) AND (b."execution_sequence" > {t}.etl_execution_sequence OR '
        f'((b."execution_sequence" = {t}.etl_execution_sequence OR {t}.etl_execution_sequence IS NULL)))'
    )
    assert insert.startswith(f'INSERT INTO {t}')
    assert "ORDER BY landing_row_id DESC" in create


# --- the Redshift flavour wired into the steps (recorded statements, no cluster) ------------

ROLE = "arn:aws:iam::123456789012:role/etl-copy"


class RecordingCursor:
    """Records every statement (as text) and params; answers the few queries the steps read."""

    def __init__(self, log, rows, extracted=None):
        self.log, self.rows, self.rowcount, self._result = log, rows, -1, None
        self.extracted = rows if extracted is None else extracted  # the extract's rows in etl_control.table_run

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, statement, params=None):
        text = statement if isinstance(statement, str) else as_text(statement)
        self.log.append((text, params))
        self.rowcount, self._result = -1, None
        if text.startswith("SELECT a.attname"):
            self._result = [(c, "x") for c in META.columns]
        elif text == "SELECT pg_last_copy_count()":
            self._result = [(self.rows,)]
        elif text.startswith("SELECT count(*) FROM"):
            self._result = [(0,)]
        elif text.startswith("SELECT column_types"):  # etl_control.table_run, as the extract recorded it
            self._result = [(json.dumps(TYPES), self.extracted, 1) + (None,) * 14]
        elif text.startswith("SELECT window_start"):
            self._result = [(datetime(2024, 1, 1), datetime(2024, 1, 2), datetime(2024, 1, 2, 0, 0, 5))]
        elif text.startswith("UPDATE \"store_mysql\""):
            self.rowcount = 2
        elif text.startswith("INSERT INTO \"store_mysql\""):
            self.rowcount = 3
        elif text.startswith("DELETE FROM \"landing\""):
            self.rowcount = 0

    def fetchone(self):
        return self._result[0]

    def fetchall(self):
        return self._result

    def close(self):
        pass


class RecordingConnection:
    flavor = "redshift"

    def __init__(self, rows=0):
        self.log, self.rows, self.commits, self.extracted = [], rows, 0, None

    def cursor(self):
        return RecordingCursor(self.log, self.rows, self.extracted)

    def commit(self):
        self.commits += 1

    def rollback(self):
        pass

    def close(self):
        pass


def redshift_context(tmp_path):
    from etl.config import EtlSettings, MySQLSettings, WarehouseSettings
    from etl.context import Context

    return Context(
        source=MySQLSettings(host="127.0.0.1", port=3306, user="etl", database="b2b"),
        warehouse=WarehouseSettings(flavor="redshift", host="example.redshift.amazonaws.com", port=5439, user="etl",
                                    database="dw", password="s3cret", iam_role=ROLE),
        etl=EtlSettings(extract_config_dir="x", sql_dir=str(REPO / "sql"),
                        output_dir=str(tmp_path / "output"), completed_dir=str(tmp_path / "completed"),
                        reports_dir=str(tmp_path / "reports"), staging_uri="s3://dw-bucket/staging",
                        s3_endpoint_url="", lookback_seconds=300, safety_lag_seconds=2, batch_rows=10000,
                        landing_keep_sequences=7, detect_hard_deletes=False),
    )


@pytest.fixture()
def recorded(monkeypatch):
    from etl import warehouse

    conn = RecordingConnection(rows=1234)
    monkeypatch.setattr(warehouse, "connect", lambda settings, database=None: conn)
    return conn


def test_landing_load_copies_from_s3_with_the_iam_role(recorded, tmp_path):
    from etl.landing import load_landing

    result = load_landing(redshift_context(tmp_path), META, 3)
    statements = [text for text, _ in recorded.log]
    landing = '"landing"."mysql_order_lines"'
    assert statements[0].startswith("SELECT column_types, extracted_rows, staged_parts")
    assert recorded.log[0][1] == [3, "order_lines"]
    assert statements[1] == "LOCK etl_control.run"
    assert statements[2:4] == [as_text(s) for s in redshift.landing_ddl(META, TYPES)]
    assert statements[4].startswith("SELECT a.attname")
    assert statements[5:] == [
        f"DELETE FROM {landing} WHERE execution_sequence = %s",
        as_text(redshift.copy_sql(META)),
        "SELECT pg_last_copy_count()",
        f"DELETE FROM {landing} WHERE execution_sequence < %s",
        "UPDATE etl_control.table_run SET landed_rows = %s, landed_streamed = %s "
        "WHERE execution_sequence = %s AND table_name = %s",
        "INSERT INTO etl_control.step_log (execution_sequence, step, table_name, row_count, seconds, details) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
    ]
    copy_params = recorded.log[6][1]
    assert copy_params == ["s3://dw-bucket/staging/mysql/order_lines/execution_sequence=3/part-", ROLE]
    assert recorded.log[8][1] == [3 - 7 + 1]
    assert recorded.log[9][1] == [1234, False, 3, "order_lines"]
    assert result["rows"] == 1234


def test_landing_load_checks_the_copied_row_count(recorded, tmp_path):
    from etl.errors import LoadError
    from etl.landing import load_landing

    recorded.extracted = 1300
    with pytest.raises(LoadError, match="held 1300 rows at extract but COPY loaded 1234"):
        load_landing(redshift_context(tmp_path), META, 3)


def test_store_upsert_runs_the_redshift_statements_and_advances_the_watermark(recorded, tmp_path):
    from etl.store import upsert_store

    result = upsert_store(redshift_context(tmp_path), META, 3)
    statements = [text for text, _ in recorded.log]
    assert statements[0].startswith("SELECT window_start, window_end, source_clock FROM etl_control.extract_window")
    assert statements[1].startswith("SELECT column_types, extracted_rows, staged_parts")
    assert statements[2] == "LOCK etl_control.run"
    assert statements[3:5] == [as_text(s) for s in redshift.store_ddl(META, TYPES)]
    upsert = [as_text(s) for s in redshift.upsert_statements(META)]
    start = statements.index(upsert[0])
    assert statements[start:start + 4] == upsert
    assert recorded.log[start][1] == [3]
    assert statements[start + 4:start + 7] == RedshiftDialect.advance_watermark
    assert recorded.log[start + 5][1] == {"table": "order_lines", "column": "updated_datetime",
                                          "value": datetime(2024, 1, 2), "seq": 3}
    assert statements[-1].startswith("INSERT INTO etl_control.step_log")
    assert (result["inserted"], result["updated"]) == (3, 2)
    assert not any("ON CONFLICT" in s or "pg_advisory" in s for s in statements)


def test_preflight_refuses_hard_delete_detection_on_redshift(tmp_path):
    import dataclasses

    from etl.context import preflight

    ctx = redshift_context(tmp_path)
    ctx = dataclasses.replace(ctx, etl=dataclasses.replace(ctx.etl, detect_hard_deletes=True))
    with pytest.raises(ConfigError, match="detect_hard_deletes is not available with \\[warehouse\\] flavor = redshift"):
        preflight(ctx)


def test_preflight_refuses_a_decimal_redshift_cannot_hold(tmp_path, monkeypatch):
    """decimal(65,30) maps to PostgreSQL's numeric(65,30) but to no Redshift type: refused before any task."""
    import contextlib
    import types as pytypes

    from etl import context
    from etl.domain import SourceColumn

    columns = {"order_no": SourceColumn("order_no", "varchar", "varchar(20)", char_length=20),
               "order_line_no": SourceColumn("order_line_no", "int", "int(11)"),
               "quantity": SourceColumn("quantity", "decimal", "decimal(65,30)", numeric_precision=65, numeric_scale=30),
               "updated_datetime": SourceColumn("updated_datetime", "datetime", "datetime", datetime_precision=0)}
    monkeypatch.setattr(context, "load_metadata", lambda folder: {META.name: META})
    monkeypatch.setattr(context, "open_staging", lambda uri, endpoint: pytypes.SimpleNamespace(check=lambda: None))
    monkeypatch.setattr(context.source_mysql, "connection", lambda settings: contextlib.nullcontext())
    monkeypatch.setattr(context.source_mysql, "read_column_types", lambda conn, db, tables: {META.name: columns})
    monkeypatch.setattr(context, "source_problems", lambda tables, found, db: [])
    # the source's key of the table; the source accepts the where_clause (no server here)
    monkeypatch.setattr(context.source_mysql, "read_unique_keys",
                        lambda conn, db, tables: {META.name: {"PRIMARY": META.unique_columns}})
    monkeypatch.setattr(context.source_mysql, "refusal", lambda conn, query, params: None)
    with pytest.raises(ConfigError, match="table 'order_lines', column 'quantity': numeric\\(65,30\\) exceeds "
                                          "Redshift's NUMERIC\\(38\\); exclude the column"):
        context.preflight(redshift_context(tmp_path))
    columns["quantity"] = SourceColumn("quantity", "decimal", "decimal(38,30)", numeric_precision=38, numeric_scale=30)
    assert list(context.preflight(redshift_context(tmp_path))) == [META.name]


def test_pres_runner_translates_every_file(recorded, tmp_path):
    from etl import pres

    ctx = redshift_context(tmp_path)
    results = pres.run_pres(ctx.warehouse, ctx.etl.sql_dir, ctx.etl.completed_dir, 1, connections=1)  # one statement order
    expected, created, names = ["CREATE SCHEMA IF NOT EXISTS pres"], [], []
    for path in pres.pres_files(ctx.etl.sql_dir):
        expected += pres.PRES_BUILD  # the file's since, from its watermark row
        for statement in redshift.translate_file(path, path.read_text(encoding="utf-8")):
            if isinstance(statement, redshift.CreateIfMissing):  # run after its table was found missing
                expected.append("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s")
                created.append(statement.table)
            expected.append(statement)
        expected += RedshiftDialect.pres_advance  # in the file's transaction
        names.append(pres.watermark_name(path))
    assert [text for text, _ in recorded.log] == expected
    assert created == ["pres.report_order_lines", "pres.report_weblog_access", "pres.dim_company", "pres.dim_customer",
                       "pres.dim_product", "pres.fact_order_line"]
    assert [params["name"] for text, params in recorded.log if text == RedshiftDialect.pres_advance[1]] == names
    assert names[:3] == ["report_order_lines", "report_weblog_access", "dim_date"]
    assert len(results) == len(pres.pres_files(ctx.etl.sql_dir)) and recorded.commits == len(results) + 1


def test_pres_runner_keeps_an_existing_table_on_redshift():
    from etl import pres

    class Found(RecordingCursor):
        def execute(self, statement, params=None):
            super().execute(statement, params)
            if statement.startswith("SELECT count(*) FROM information_schema.tables"):
                self._result = [(1 if params == ["pres", "dim_company"] else 0,)]

    log = []
    path = SQL_DIR / "pres" / "031_dim_company.sql"
    statements = redshift.translate_file(path, path.read_text(encoding="utf-8"))
    pres._run_statements(Found(log, 0), statements)
    ran = [text for text, _ in log]
    assert not any(text.startswith("CREATE TABLE pres.dim_company") for text in ran)
    assert ran[-1] == "DROP TABLE tmp_company_changes" and len(ran) == len(statements)  # check instead of CTAS


# --- translation of the sql/ files -----------------------------------------------------------

SQL_DIR = REPO / "sql"
SQL_FILES = sorted(SQL_DIR.glob("pres/*.sql")) + sorted(SQL_DIR.glob("reports/*.sql"))
# PostgreSQL-only spellings that must not reach Redshift
POSTGRES_ONLY = ["ON CONFLICT", "NOW()", "CURRENT_TIMESTAMP", "COLLATE", "GENERATE_SERIES", "TO_REGCLASS", "::",
                 "CREATE INDEX", "IS DISTINCT FROM", "ON COMMIT", "INFINITY", " TEXT", "DECIMAL,", "DECIMAL)",
                 "JSONB", "RETURNING", "DISTINCT ON", "TEMPORARY VIEW"]


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: p.name)
def test_every_sql_file_translates_to_redshift_spellings(path):
    import sqlglot

    statements = redshift.translate_file(path, path.read_text(encoding="utf-8"))
    assert statements
    for statement in statements:
        upper = statement.upper()
        assert not [word for word in POSTGRES_ONLY if word in upper], statement
        assert "IDENTITY(1, 1)" not in upper or "GENERATED BY DEFAULT AS IDENTITY(1, 1)" in upper
        sqlglot.parse_one(statement, read="redshift")  # the output is valid Redshift syntax for sqlglot too


def test_dimension_file_translation_exactly():
    path = SQL_DIR / "pres" / "031_dim_company.sql"
    t = "pres.dim_company"
    same = "NOT (dim.{0} = changes.{0} OR (dim.{0} IS NULL AND changes.{0} IS NULL))"
    assert redshift.translate_file(path, path.read_text(encoding="utf-8")) == [
        f"CREATE TABLE {t} AS SELECT 0 AS company_key, companies.company_id, companies.company_name, "
        "companies.country, companies.is_supplier, companies.is_deleted, SYSDATE AS etl_updated_datetime "
        "FROM store_mysql.companies AS companies LIMIT 0",
        f"INSERT INTO {t} (company_key, company_id, company_name, etl_updated_datetime) "
        f"SELECT -1, NULL, 'Unknown', SYSDATE WHERE NOT EXISTS(SELECT 1 FROM {t} WHERE company_key = -1)",
        "DROP TABLE IF EXISTS tmp_company_changes",
        "CREATE TEMPORARY TABLE tmp_company_changes AS SELECT company_id, company_name, country, is_supplier, "
        "is_deleted FROM store_mysql.companies WHERE etl_updated_datetime >= (SELECT since FROM pres_build) "
        "AND etl_deleted_datetime IS NULL",
        f"UPDATE {t} AS dim SET company_name = changes.company_name, country = changes.country, "
        "is_supplier = changes.is_supplier, is_deleted = changes.is_deleted, etl_updated_datetime = SYSDATE "
        "FROM tmp_company_changes AS changes WHERE dim.company_id = changes.company_id AND ("
        + " OR ".join(same.format(c) for c in ("company_name", "country", "is_supplier", "is_deleted")) + ")",
        f"INSERT INTO {t} (company_key, company_id, company_name, country, is_supplier, is_deleted, "
        f"etl_updated_datetime) SELECT (SELECT GREATEST(MAX(dim.company_key), 0) FROM {t} AS dim) + ROW_NUMBER() "
        "OVER (ORDER BY changes.company_id) AS company_key, changes.company_id, changes.company_name, "
        "changes.country, changes.is_supplier, changes.is_deleted, "
        f"SYSDATE FROM tmp_company_changes AS changes WHERE NOT EXISTS(SELECT 1 FROM {t} AS dim "
        "WHERE dim.company_id = changes.company_id)",
        "DROP TABLE tmp_company_changes",
    ]


def test_report_translation_drops_the_collation_and_keeps_the_order():
    path = SQL_DIR / "reports" / "sql_top_5_most_used_devices.sql"
    (statement,) = redshift.translate_file(path, path.read_text(encoding="utf-8"))
    assert statement.endswith("ORDER BY by_device.request_count DESC, by_device.device LIMIT 5")


def test_a_file_using_what_redshift_lacks_is_refused_with_the_alternative(tmp_path):
    path = tmp_path / "050_custom.sql"
    path.write_text("-- on conflict in a comment is fine\ninsert into t (k) values (1) on conflict (k) do nothing;\n")
    with pytest.raises(ConfigError, match="050_custom.sql: ON CONFLICT does not exist on Redshift; write it as UPDATE"):
        redshift.translate_file(path, path.read_text())
