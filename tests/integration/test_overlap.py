"""The look-back overlap is verified by fingerprint instead of re-read, and a change inside it is still found."""

from __future__ import annotations

import json
import time

from tests.support.oracle import assert_store_equals_source


def _extract(project, sequence: int, table: str) -> dict:
    return json.loads((project.output(sequence) / f"mysql_{table}.extract.json").read_text())


def test_unchanged_overlap_is_not_read_again_and_a_silent_change_in_it_is(project):
    project.populate("--scale", "0.001", "--seed", "5")
    project.run()
    project.populate("--changes", "1", "--seed", "5")
    time.sleep(1.1)  # the changes' second has passed: they are inside the next window
    project.run()
    tables = list(project.metadata())
    changed = {t: _extract(project, 2, t)["rows"] for t in tables}
    assert changed["order_lines"] > 0 and changed["customers"] > 0

    # sequence 3: the overlap [end 2 - 300 s, end 2) holds every change of sequence 2; it is
    # fingerprinted in MySQL, found unchanged, and only [end 2, end 3) is read
    project.run()
    for table in tables:
        second, third = _extract(project, 2, table), _extract(project, 3, table)
        assert third["window_start"] < second["window_end"]  # the window does overlap
        assert third["read_start"] == second["window_end"], table
        assert third["rows"] == 0, table
    pg = project.pg()
    cur = pg.cursor()
    cur.execute("SELECT table_name, tail_rows FROM etl_control.extract_tail WHERE execution_sequence = 3")
    tails = dict(cur.fetchall())
    assert tails["order_lines"] >= changed["order_lines"]  # the next run verifies these rows

    # a value changed without moving the watermark (a late second update stamped in the same
    # second) changes the overlap's fingerprint: that table reads its whole window again
    src = project.mysql()
    scur = src.cursor()
    scur.execute("SELECT customer_document_no FROM customers ORDER BY updated_datetime DESC, 1 LIMIT 1")
    (key,) = scur.fetchone()
    scur.execute("UPDATE customers SET city = 'Silent Change', updated_datetime = updated_datetime "
                 "WHERE customer_document_no = %s", [key])
    src.close()
    project.run()
    fourth = _extract(project, 4, "customers")
    assert fourth["read_start"] == fourth["window_start"] and fourth["rows"] >= 1
    assert all(_extract(project, 4, t)["rows"] == 0 for t in tables if t != "customers")
    cur.execute("SELECT city FROM store_mysql.customers WHERE customer_document_no = %s", [key])
    assert cur.fetchone()[0] == "Silent Change"
    pg.close()
    assert_store_equals_source(project)


def test_changed_look_back_setting_reads_the_overlap(project):
    project.populate("--scale", "0.001", "--seed", "6")
    project.run()
    project.write_cfg(dw_etl={"lookback_seconds": 200})
    project.run()
    # the recorded tail spans 300 s, the new overlap 200 s: nothing to compare, the overlap is read
    for table in project.metadata():
        second = _extract(project, 2, table)
        assert second["read_start"] == second["window_start"], table
    assert_store_equals_source(project)


def test_python_row_hash_equals_mysql_row_hash_for_hard_values(project):
    """The tail is hashed in Python from staged lines, the overlap in MySQL: both must agree on every value."""
    from etl import source_mysql
    from etl.config import MySQLSettings
    from etl.domain import QualifiedName, TableMeta
    from etl.overlap import row_fingerprint
    from etl.sqlgen import row_fingerprint_sql, staged_line_select

    settings = MySQLSettings(host="127.0.0.1", port=3306, user="root", database="mysql")
    with source_mysql.connection(settings) as conn:
        cur = conn.cursor()
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{project.source_db}`")
        cur.execute(f"CREATE TABLE `{project.source_db}`.hard (id INT PRIMARY KEY, name VARCHAR(40) CHARACTER SET "
                    "latin1, note TEXT, amount DECIMAL(12,4), born DATE, updated_datetime DATETIME(3))")
        cur.execute("SET SESSION sql_mode = ''")  # allow a zero date, as old sources hold them
        cur.executemany(
            f"INSERT INTO `{project.source_db}`.hard VALUES (%s, %s, %s, %s, %s, %s)",
            [(1, 'say "hi", twice', "line\nbreak\r\tand \\ back", "-12.3400", "2024-02-29", "2024-01-01 00:00:00.125"),
             (2, "Zoë", "ünïcødé ✓ 🚀", None, "0000-00-00", "2024-01-01 00:00:01"),
             (3, None, "", "0.0000", None, None)])
        types = source_mysql.read_column_types(conn, project.source_db, ["hard"])["hard"]
        meta = TableMeta(name="hard", columns=("id", "name", "note", "amount", "born", "updated_datetime"),
                         where_clause="", is_incremental=True, watermark_column="updated_datetime",
                         landing_table=QualifiedName("landing", "mysql_hard"),
                         store_table=QualifiedName("store_mysql", "hard"), unique_columns=("id",), source_file="t")
        select, _ = staged_line_select(meta, types, 42)
        cur = conn.cursor(raw=True)
        cur.execute(f"SELECT {select}, {row_fingerprint_sql(meta, types)} FROM `{project.source_db}`.hard ORDER BY id")
        rows = cur.fetchall()
    assert len(rows) == 3
    for row in rows:
        line, mysql_hash = bytes(row[0]), int(row[-1])
        assert line.startswith(b"42,")
        assert row_fingerprint(line[3:]) == mysql_hash, line
