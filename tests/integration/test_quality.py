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
