"""Data-quality checks: recorded per run, warn or fail by configuration, messages name table and count."""

from __future__ import annotations

import json


def checks(project, sequence: int) -> dict:
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT check_name, table_name, problem_count, status FROM etl_control.quality_check "
                "WHERE execution_sequence = %s", [sequence])
    result = {(c, t): (n, s) for c, t, n, s in cur.fetchall()}
    conn.close()
    return result


def test_quality_checks_warn_and_fail(project):
    project.populate("--scale", "0.001", "--seed", "81")
    logs = project.root / "logs"
    logs.mkdir()
    (logs / "access.log").write_text(
        '8.8.8.8 - ghost [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "curl/8"\n'
        '10.0.0.1 - - [10/Oct/2025:13:55:37 +0000] "GET / HTTP/1.1" 200 1 "-" "curl/8"\n'
    )
    proc = project.run()
    found = checks(project, 1)
    assert found[("count_mismatch", "store_mysql.order_lines")] == (0, "ok")
    conn = project.pg()  # with hard-delete detection on, the store step's counts are reused, not taken again
    cur = conn.cursor()
    cur.execute("SELECT details FROM etl_control.quality_check WHERE execution_sequence = 1 "
                "AND check_name = 'count_mismatch' AND table_name = 'store_mysql.order_lines'")
    lines = project.mysql()
    mcur = lines.cursor()
    mcur.execute("SELECT COUNT(*) FROM order_lines")
    (n,) = mcur.fetchone()
    lines.close()
    assert cur.fetchone()[0] == f"source {n}, store {n} (counted in the store step)"
    conn.close()
    assert found[("duplicate_keys", "store_weblog.access")] == (0, "ok")
    assert found[("duplicate_keys", "pres.dim_product (current)")] == (0, "ok")
    # the unknown user "ghost" is a login without a customer; the anonymous request is not counted
    assert found[("unknown_members", "pres.fact_weblog_access.customer_key")] == (1, "warn")
    assert found[("unknown_members", "pres.fact_weblog_access.country_key")] == (1, "warn")  # 10.0.0.1
    assert "quality warn: unknown_members: 1 (pres.fact_weblog_access.customer_key)" in proc.stderr
    summary = json.loads((project.output(1) / "RunJob.json").read_text())
    assert {(c["check_name"], c["table_name"]) for c in summary["quality"]} == {
        ("unknown_members", "pres.fact_weblog_access.customer_key"),
        ("unknown_members", "pres.fact_weblog_access.country_key"),
    }

    # a hard delete the pipeline is told not to follow: the count check, set to fail, stops the run
    project.write_cfg(dw_etl={"detect_hard_deletes": "false"}, quality={"count_mismatch": "fail"})
    conn = project.mysql()
    conn.cursor().execute("DELETE FROM companies ORDER BY company_id DESC LIMIT 2")
    conn.close()
    proc = project.run(expect=30)
    assert "data-quality checks failed: count_mismatch store_mysql.companies: 2 (source 8, store 10)" in proc.stderr
    assert checks(project, 2)[("count_mismatch", "store_mysql.companies")] == (2, "fail")
    assert not (project.output(2) / "RunJob.json").exists()

    # a wrong level is a configuration error
    project.write_cfg(quality={"unknown_members": "loud"})
    proc = project.run(expect=35)
    assert f"[quality] unknown_members = 'loud' (set in {project.cfg_path}) must be one of warn, fail, off" in proc.stderr


TABLES = ("companies", "customers", "products", "product_prices", "order_headers", "order_lines")
LAG = 600  # safety_lag_seconds: the sample's rows are at least an hour old, populate --changes stamps now


def count_findings(project, sequence: int) -> dict:
    """``{table: (problem_count, details)}`` of the sequence's count_mismatch checks, from its quality.json."""
    payload = json.loads((project.output(sequence) / "quality.json").read_text())
    return {c["table_name"].removeprefix("store_mysql."): (c["problem_count"], c["details"])
            for c in payload["checks"] if c["check_name"] == "count_mismatch"}


def window_end(project, sequence: int, table: str):
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT window_end FROM etl_control.extract_window WHERE execution_sequence = %s AND table_name = %s",
                [sequence, table])
    (end,) = cur.fetchone()
    conn.close()
    return end


def expected_details(project, sequence: int, how: str) -> dict:
    """The count check's details as the source says they must read: the rows below the window end on both sides,
    and, left out of store's, the rows existing before it that the writer changed after it."""
    conn = project.mysql()
    cur = conn.cursor()
    result = {}
    for table in TABLES:
        end = window_end(project, sequence, table)
        cur.execute(f"SELECT COALESCE(SUM(updated_datetime < %s), 0), "
                    f"COALESCE(SUM(updated_datetime >= %s AND created_datetime < %s), 0) FROM {table}", [end, end, end])
        below, changed = (int(v) for v in cur.fetchone())
        note = f"; {changed} store row{'s' if changed > 1 else ''} changed in the source after the window end not counted"
        result[table] = (0, f"source {below}, store {below}{how}{note if changed else ''}")
    conn.close()
    return result


def test_a_writer_changing_rows_during_the_run_is_no_count_finding(project, variant):
    """Rows updated and added after the window end (the safety lag leaves them to the next run) are in neither
    count; their older versions in store are left out: no finding, with hard-delete detection on (the store
    step counts) and off (the quality step counts)."""
    project.populate("--scale", "0.001", "--seed", "85")
    project.write_cfg(dw_etl={"safety_lag_seconds": LAG})
    project.run()
    project.populate("--changes", "20", "--seed", "86")  # at once: every change after the next window end
    project.run()
    summary = json.loads((project.output(2) / "RunJob.json").read_text())
    assert sum(r["inserted"] + r["updated"] for r in summary["tables"] if r["table"] != "weblog_access") == 0
    found = count_findings(project, 2)
    assert found == expected_details(project, 2, " (counted in the store step)")
    assert sum(int(d.split("; ")[1].split()[0]) for _, d in found.values() if "; " in d) >= 20  # the writer's rows
    assert not [c for c in summary.get("quality", []) if c["check_name"] == "count_mismatch"]

    project.write_cfg(dw_etl={"safety_lag_seconds": LAG, "detect_hard_deletes": "false"},
                      quality={"count_mismatch": "fail"})
    project.populate("--changes", "20", "--seed", "87")
    project.run()
    assert count_findings(project, 3) == expected_details(project, 3, "")


def test_a_row_missing_from_store_is_still_found(project, variant):
    """A row deleted from store by hand, and a late commit below the committed watermark (no window reads it
    again), are each one row short in store, counted in the store step and in the quality step; a concurrent
    writer's rows beside them change nothing."""
    project.populate("--scale", "0.001", "--seed", "88")
    project.write_cfg(dw_etl={"safety_lag_seconds": LAG})
    project.run()
    project.populate("--changes", "20", "--seed", "89")  # the writer
    conn = project.mysql()
    cur = conn.cursor()
    # a late commit: one more line of an order, stamped two days ago
    cur.execute("CREATE TEMPORARY TABLE late AS SELECT * FROM order_lines ORDER BY order_no, order_line_no LIMIT 1")
    cur.execute("UPDATE late SET order_line_no = 9999, updated_datetime = UTC_TIMESTAMP() - INTERVAL 2 DAY")
    cur.execute("INSERT INTO order_lines SELECT * FROM late")
    conn.commit()
    cur.execute("SELECT MIN(company_id) FROM companies WHERE updated_datetime < UTC_TIMESTAMP() - INTERVAL 1 HOUR")
    (lost,) = cur.fetchone()  # a company the writer left alone
    conn.close()
    pg = project.pg()
    pg.cursor().execute("DELETE FROM store_mysql.companies WHERE company_id = %s", [lost])
    pg.commit()
    pg.close()
    proc = project.run()
    assert "quality warn: count_mismatch: 1 (store_mysql.companies)" in proc.stderr
    assert "quality warn: count_mismatch: 1 (store_mysql.order_lines)" in proc.stderr
    project.write_cfg(dw_etl={"safety_lag_seconds": LAG, "detect_hard_deletes": "false"})
    project.run()
    for sequence, how in ((2, " (counted in the store step)"), (3, "")):
        expected = expected_details(project, sequence, how)
        for table in ("companies", "order_lines"):
            n = int(expected[table][1].split(",")[0].split()[1])
            expected[table] = (1, expected[table][1].replace(f"store {n}", f"store {n - 1}", 1))
        assert count_findings(project, sequence) == expected


def test_null_key_rows_are_no_count_finding(project, variant):
    """Source rows with a NULL key (never merged into store) are counted on neither side, incremental or full,
    with hard-delete detection on and off."""
    project.populate("--scale", "0.001", "--seed", "90")
    conn = project.mysql()
    cur = conn.cursor()
    for table in ("tags", "labels"):
        cur.execute(f"CREATE TABLE {table} (code VARCHAR(10) NULL, label VARCHAR(20), updated_datetime DATETIME NOT NULL, "
                    "UNIQUE KEY (code), KEY (updated_datetime))")
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, '2024-05-01 10:00:00')",
                        [("a", "one"), (None, "nokey"), ("b", "two"), (None, "nokey either"), ("c", "three")])
    conn.commit()
    conn.close()
    project.add_table("tags", ["code", "label", "updated_datetime"], ["code"])
    project.add_table("labels", ["code", "label"], ["code"], is_incremental=False, watermark_column="")
    project.run()
    project.write_cfg(dw_etl={"detect_hard_deletes": "false"})
    project.run()
    for sequence, how in ((1, " (counted in the store step)"), (2, "")):
        found = count_findings(project, sequence)
        assert (found["tags"], found["labels"]) == ((0, f"source 3, store 3{how}"), (0, f"source 3, store 3{how}"))
