"""The look-back overlap is verified by fingerprint instead of re-read, and a change inside it is still found."""

from __future__ import annotations

import json
import time

import pytest

from conftest import assert_store_equals_source

pytestmark = pytest.mark.integration


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
