"""A row whose transaction commits after an extract, with an older watermark, still lands."""

from __future__ import annotations

import time

from tests.support.oracle import assert_store_equals_source


def test_late_committing_row_lands_on_the_next_run(project):
    project.populate("--scale", "0.001", "--seed", "71")
    project.write_cfg(dw_etl={"lookback_seconds": 60, "safety_lag_seconds": 1})
    project.run()
    late = project.mysql()
    late.autocommit = False
    cur = late.cursor()
    cur.execute("SELECT customer_document_no FROM customers ORDER BY 1 LIMIT 1")
    (key,) = cur.fetchone()
    # the long transaction stamps the row now, then stays open across a whole run
    cur.execute("UPDATE customers SET city = 'Late Commit', updated_datetime = UTC_TIMESTAMP() "
                "WHERE customer_document_no = %s", [key])
    time.sleep(2.2)  # the next window's end (source clock - 1 s lag) is now past the row's watermark
    project.run()
    pg = project.pg()
    pcur = pg.cursor()
    pcur.execute("SELECT window_end FROM etl_control.extract_window WHERE execution_sequence = 2 AND table_name = 'customers'")
    (window_end,) = pcur.fetchone()
    pcur.execute("SELECT city FROM store_mysql.customers WHERE customer_document_no = %s", [key])
    assert pcur.fetchone()[0] != "Late Commit"  # not committed yet: invisible to that extract
    late.commit()
    late.close()
    src = project.mysql()
    scur = src.cursor()
    scur.execute("SELECT updated_datetime FROM customers WHERE customer_document_no = %s", [key])
    (stamp,) = scur.fetchone()
    src.close()
    assert stamp < window_end  # the row is older than the end of the window that missed it
    project.run()  # the look-back overlap reaches back before that end
    pcur.execute("SELECT city FROM store_mysql.customers WHERE customer_document_no = %s", [key])
    assert pcur.fetchone()[0] == "Late Commit"
    pg.close()
    assert_store_equals_source(project)
