"""The Redshift flavour's statements run on PostgreSQL (with a GETDATE() shim): the semantics of the
upsert and of the etl_control statements (their exact text: tests/unit/test_redshift.py)."""

from __future__ import annotations

from datetime import datetime

from etl import redshift
from tests.support.sqltext import META, TYPES, as_text


def test_upsert_semantics_on_postgres(services):
    """Run the Redshift upsert on PostgreSQL (with a GETDATE() shim): newest wins, NULL-safe, idempotent."""
    import uuid

    from tests.support.databases import pg_connect
    from etl import warehouse_sql

    name = "t_rs_" + uuid.uuid4().hex[:8]
    admin = pg_connect("postgres")
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    conn = pg_connect(name)
    try:
        cur = conn.cursor()
        cur.execute("CREATE FUNCTION getdate() RETURNS timestamp LANGUAGE sql AS 'SELECT clock_timestamp()::timestamp'")
        for statement in warehouse_sql.landing_ddl(META, TYPES) + warehouse_sql.store_ddl(META, TYPES):
            cur.execute(statement)

        def land(seq, rows):
            cur.execute(warehouse_sql.landing_partition_sql(META, seq))
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
        # B changed (NULL -> 3); A's watermark went backwards, but a later sequence read the source later: a correction
        assert (updated, inserted) == (2, 1)
        assert rows == [("A", 1, 1, "2023-12-31 00:00:00"), ("B", 1, 3, "2024-01-02 10:00:00"), ("C", 2, 1, "2024-01-02 10:00:00")]
        assert upsert(1)[:2] == (0, 0)  # a replayed older batch never overwrites a newer version
        assert upsert(2)[2] == rows
        # a tombstone comes back to life when its key arrives again, even with the same values
        cur.execute("UPDATE store_mysql.order_lines SET etl_deleted_datetime = now(), etl_execution_sequence = 2 "
                    "WHERE order_no = 'C'")
        land(3, [("C", 2, 1, "2024-01-02 10:00:00")])
        assert upsert(3)[:2] == (1, 0)
        cur.execute("SELECT count(*) FROM store_mysql.order_lines WHERE etl_deleted_datetime IS NOT NULL")
        assert cur.fetchone()[0] == 0
    finally:
        conn.close()
        admin.cursor().execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


def test_control_statements_on_postgres(services):
    """The Redshift etl_control statements (LOCK, UPDATE, INSERT ... WHERE NOT EXISTS) keep PostgreSQL's semantics."""
    import uuid

    from tests.support.databases import pg_connect
    from etl import control
    from etl.domain import Window

    name = "t_rsc_" + uuid.uuid4().hex[:8]
    admin = pg_connect("postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    conn = pg_connect(name)
    try:
        conn.autocommit = False
        control.ensure_schema(conn)  # PostgreSQL DDL; then act as Redshift
        conn.cursor().execute("CREATE FUNCTION getdate() RETURNS timestamp LANGUAGE sql AS 'SELECT now()::timestamp'")

        class Shim:
            flavor = "redshift"
            cursor, commit = conn.cursor, conn.commit

        rs = Shim()
        control.open_run(rs, 1)
        control.open_run(rs, 1)
        first = Window(datetime(2024, 1, 1), datetime(2024, 1, 2), datetime(2024, 1, 2, 0, 0, 2))
        assert control.record_window(rs, 1, "orders", True, "updated_datetime", first) == first
        assert control.record_window(rs, 1, "orders", True, "updated_datetime", Window(None, datetime(2025, 1, 1))) == first
        control.advance_watermark(rs, "orders", "updated_datetime", datetime(2024, 1, 2), 1)
        control.advance_watermark(rs, "orders", "updated_datetime", datetime(2023, 1, 1), 2)  # never backwards
        assert control.current_watermark(rs, "orders", "updated_datetime") == datetime(2024, 1, 2)
        control.close_run(rs, 1)
        cur = conn.cursor()
        cur.execute("SELECT execution_sequence, completed_datetime IS NOT NULL FROM etl_control.run")
        assert cur.fetchall() == [(1, True)]
        cur.execute("SELECT execution_sequence FROM etl_control.watermark")
        assert cur.fetchall() == [(2,)]
    finally:
        conn.close()
        admin.cursor().execute(f'DROP DATABASE "{name}"')
        admin.close()
