"""The Redshift flavour's generated statements, asserted as exact text (no cluster is reachable here)."""

from __future__ import annotations

import pytest

from etl import redshift
from etl.errors import ConfigError
from etl.metadata import TableMeta
from test_sqlgen import META, as_text

TYPES = {"order_no": "varchar(20)", "order_line_no": "integer", "quantity": "integer", "updated_datetime": "timestamp(0)"}


@pytest.mark.parametrize(
    "pg, rs",
    [("varchar(20)", "VARCHAR(80)"), ("varchar(20000)", "VARCHAR(65535)"), ("text", "VARCHAR(65535)"),
     ("numeric(20,4)", "NUMERIC(20,4)"), ("timestamp(6)", "TIMESTAMP"), ("timestamptz(0)", "TIMESTAMPTZ"),
     ("smallint", "SMALLINT"), ("double precision", "DOUBLE PRECISION"), ("interval", "VARCHAR(32)"),
     ("boolean", "BOOLEAN")],
)
def test_type_mapping(pg, rs):
    assert redshift.redshift_type("t", "c", pg) == rs


def test_unmappable_type_names_table_and_column():
    with pytest.raises(ConfigError, match="table 't', column 'c': numeric\\(65,2\\) exceeds"):
        redshift.redshift_type("t", "c", "numeric(65,2)")


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
        "etl_created_datetime TIMESTAMP NOT NULL, etl_updated_datetime TIMESTAMP NOT NULL, "
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
        'CREATE TEMP TABLE "etl_batch" AS SELECT "order_no", "order_line_no", "quantity", "updated_datetime" FROM '
        '(SELECT "order_no", "order_line_no", "quantity", "updated_datetime", ROW_NUMBER() OVER (PARTITION BY '
        '"order_no", "order_line_no" ORDER BY "updated_datetime" DESC NULLS LAST, landing_row_id DESC) AS etl_rn '
        'FROM "landing"."mysql_order_lines" WHERE execution_sequence = %s AND "order_no" IS NOT NULL AND '
        '"order_line_no" IS NOT NULL) AS ranked WHERE etl_rn = 1'
    )
    t = '"store_mysql"."order_lines"'
    assert update == (
        f'UPDATE {t} SET "quantity" = b."quantity", "updated_datetime" = b."updated_datetime", '
        f'etl_updated_datetime = GETDATE() FROM "etl_batch" AS b WHERE {t}."order_no" = b."order_no" AND '
        f'{t}."order_line_no" = b."order_line_no" AND (NOT ({t}."quantity" = b."quantity" OR ({t}."quantity" IS NULL '
        f'AND b."quantity" IS NULL)) OR NOT ({t}."updated_datetime" = b."updated_datetime" OR ({t}."updated_datetime" '
        f'IS NULL AND b."updated_datetime" IS NULL))) AND ({t}."updated_datetime" IS NULL OR b."updated_datetime" IS NULL '
        f'OR b."updated_datetime" >= {t}."updated_datetime")'
    )
    assert insert == (
        f'INSERT INTO {t} ("order_no", "order_line_no", "quantity", "updated_datetime", etl_created_datetime, '
        'etl_updated_datetime) SELECT b."order_no", b."order_line_no", b."quantity", b."updated_datetime", GETDATE(), '
        f'GETDATE() FROM "etl_batch" AS b LEFT JOIN {t} AS s ON s."order_no" = b."order_no" AND '
        's."order_line_no" = b."order_line_no" WHERE s."order_no" IS NULL'
    )
    assert drop == 'DROP TABLE "etl_batch"'


def test_upsert_key_only_table_has_no_update():
    keys_only = TableMeta(**{**META.__dict__, "columns": ("order_no",), "unique_columns": ("order_no",),
                             "watermark_column": None, "is_incremental": False})
    statements = [as_text(s) for s in redshift.upsert_statements(keys_only)]
    assert len(statements) == 3 and statements[1].startswith('INSERT INTO "store_mysql"."order_lines"')
    assert "ORDER BY landing_row_id DESC" in statements[0]


@pytest.mark.integration
def test_upsert_semantics_on_postgres(services):
    """Run the Redshift upsert on PostgreSQL (with a GETDATE() shim): newest wins, NULL-safe, idempotent."""
    import uuid

    from conftest import pg_connect
    from etl import sqlgen

    name = "t_rs_" + uuid.uuid4().hex[:8]
    admin = pg_connect("postgres")
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    conn = pg_connect(name)
    try:
        cur = conn.cursor()
        cur.execute("CREATE FUNCTION getdate() RETURNS timestamp LANGUAGE sql AS 'SELECT clock_timestamp()::timestamp'")
        for statement in sqlgen.landing_ddl(META, TYPES) + sqlgen.store_ddl(META, TYPES):
            cur.execute(statement)

        def land(seq, rows):
            cur.executemany(
                "INSERT INTO landing.mysql_order_lines (execution_sequence, order_no, order_line_no, quantity, "
                "updated_datetime) VALUES (%s, %s, %s, %s, %s)", [(seq, *r) for r in rows])

        def upsert(seq):
            counts = []
            for statement in redshift.upsert_statements(META):
                cur.execute(statement, [seq] if "%s" in as_text(statement) else None)
                counts.append(cur.rowcount)
            cur.execute("SELECT order_no, order_line_no, quantity, updated_datetime::text FROM store_mysql.order_lines ORDER BY 1, 2")
            return counts[1], counts[2], cur.fetchall()

        land(1, [("A", 1, 5, "2024-01-01 10:00:00"), ("A", 1, 7, "2024-01-01 11:00:00"), ("B", 1, None, "2024-01-01 10:00:00"),
                 (None, 1, 9, "2024-01-01 10:00:00")])
        updated, inserted, rows = upsert(1)
        assert (updated, inserted) == (0, 2)
        assert rows == [("A", 1, 7, "2024-01-01 11:00:00"), ("B", 1, None, "2024-01-01 10:00:00")]
        cur.execute("SELECT etl_updated_datetime FROM store_mysql.order_lines ORDER BY 1")
        stamps = cur.fetchall()
        assert upsert(1)[:2] == (0, 0)  # replay: nothing changes
        cur.execute("SELECT etl_updated_datetime FROM store_mysql.order_lines ORDER BY 1")
        assert cur.fetchall() == stamps
        land(2, [("B", 1, 3, "2024-01-02 10:00:00"), ("A", 1, 1, "2023-12-31 00:00:00"), ("C", 2, 1, "2024-01-02 10:00:00")])
        updated, inserted, rows = upsert(2)
        assert (updated, inserted) == (1, 1)  # B changed (NULL -> 3); A's older version is ignored
        assert rows == [("A", 1, 7, "2024-01-01 11:00:00"), ("B", 1, 3, "2024-01-02 10:00:00"), ("C", 2, 1, "2024-01-02 10:00:00")]
    finally:
        conn.close()
        admin.cursor().execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()
