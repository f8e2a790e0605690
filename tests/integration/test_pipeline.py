"""End-to-end runs of the main job against real MariaDB and PostgreSQL."""

from __future__ import annotations

import json
import time

from tests.support.oracle import assert_store_equals_source, norm, store_rows

SCALE = "0.002"  # 500 orders, ~2,000 lines, 100 customers


def landing_counts(project, sequence: int) -> dict[str, int]:
    conn = project.pg()
    cur = conn.cursor()
    counts = {}
    for table, entry in project.metadata().items():
        cur.execute(f"SELECT count(*) FROM {entry['landing_table']} WHERE execution_sequence = %s", [sequence])
        counts[table] = cur.fetchone()[0]
    conn.close()
    return counts


REPORT_COLUMNS = (
    "order_no, order_line_no, order_date, product_code, supplier_id, product_name, supplier_name, supplier_country, "
    "seller_company_id, seller_company_name, seller_country, customer_document_no, customer_full_name, "
    "customer_username, customer_country, unit_price, quantity, line_total"
)
EXPECTED_REPORT_SQL = """
SELECT l.order_no, l.order_line_no, l.order_date, l.product_code, l.supplier_id, p.product_name,
       s.company_name, s.country, h.company_id, se.company_name, se.country, h.customer_document_no,
       c.customer_full_name, c.username, c.country, l.unit_price, l.quantity, l.line_total
FROM order_lines l
JOIN order_headers h ON h.order_no = l.order_no AND h.is_deleted = 0
LEFT JOIN products p ON p.product_code = l.product_code AND p.supplier_id = l.supplier_id
LEFT JOIN companies s ON s.company_id = l.supplier_id
LEFT JOIN companies se ON se.company_id = h.company_id
LEFT JOIN customers c ON c.customer_document_no = h.customer_document_no
WHERE l.is_deleted = 0
"""


def assert_report_order_lines_matches_source(project) -> None:
    """pres.report_order_lines equals the same join computed on the MySQL source."""
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute(EXPECTED_REPORT_SQL)
    expected = sorted(tuple(norm(v) for v in row) for row in cur.fetchall())
    conn.close()
    pg = project.pg()
    cur = pg.cursor()
    cur.execute(f"SELECT {REPORT_COLUMNS} FROM pres.report_order_lines")
    actual = sorted(tuple(norm(v) for v in row) for row in cur.fetchall())
    pg.close()
    assert len(expected) > 0
    assert actual == expected, f"{len(actual)} vs {len(expected)}: {sorted(set(expected) - set(actual))[:2]}"


def store_snapshot(project) -> dict[str, list]:
    """All store rows including the etl columns (to prove a run touched nothing)."""
    return {
        t: store_rows(project, t, extra=("etl_created_datetime", "etl_updated_datetime"))
        for t in project.metadata()
    }


def test_first_run_changes_and_noop_run(project, variant):
    """The whole job on each source variant (tests.support.project.VARIANTS)."""
    project.populate("--scale", SCALE, "--seed", "7")
    first = project.run()
    assert "Run summary, execution sequence 1" in first.stderr
    compared = assert_store_equals_source(project)
    assert compared > 2500
    assert_report_order_lines_matches_source(project)
    summary = json.loads((project.output(1) / "RunJob.json").read_text())
    by_table = {r["table"]: r for r in summary["tables"]}
    assert by_table["order_lines"]["extracted"] == by_table["order_lines"]["inserted"] > 1000

    # a day of changes: updates, soft deletes and new orders
    project.populate("--changes", "5", "--seed", "8")
    project.run()
    assert_store_equals_source(project)
    assert_report_order_lines_matches_source(project)
    counts = landing_counts(project, 2)
    full = {t: len(store_rows(project, t)) for t in project.metadata()}
    assert 0 < counts["order_lines"] < full["order_lines"] / 2, (counts, full)
    assert sum(counts.values()) < sum(full.values()) / 4
    # every landing row of sequence 2 lies inside its recorded window
    conn = project.pg()
    cur = conn.cursor()
    for table, entry in project.metadata().items():
        cur.execute(
            f"SELECT count(*) FROM {entry['landing_table']} l JOIN etl_control.extract_window w "
            "ON w.execution_sequence = l.execution_sequence AND w.table_name = %s "
            "WHERE l.execution_sequence = 2 AND NOT (l.updated_datetime >= w.window_start AND l.updated_datetime < w.window_end)",
            [table],
        )
        assert cur.fetchone()[0] == 0, table

    # no source change: only the look-back overlap is extracted, store is untouched
    before = store_snapshot(project)
    cur.execute("SELECT table_name, window_end FROM etl_control.extract_window WHERE execution_sequence = 2")
    ends = dict(cur.fetchall())
    project.run()
    assert store_snapshot(project) == before
    for table, entry in project.metadata().items():
        cur.execute(
            f"SELECT count(*), min(updated_datetime) FROM {entry['landing_table']} WHERE execution_sequence = 3"
        )
        n, oldest = cur.fetchone()
        if n:
            assert oldest >= ends[table].replace(microsecond=0) - __import__("datetime").timedelta(seconds=300)
    summary = json.loads((project.output(3) / "RunJob.json").read_text())
    assert summary["totals"]["inserted"] == summary["totals"]["updated"] == 0
    conn.close()
    # reports: recomputed after the changes, reused (same bytes) when their inputs did not move
    assert json.loads((project.output(2) / "reports.json").read_text())["reused_previous"] is False
    assert json.loads((project.output(3) / "reports.json").read_text())["reused_previous"] is True
    written = sorted((project.root / "reports" / "2").glob("*.csv"))
    assert len(written) == 5
    for path in written:
        assert (project.root / "reports" / "3" / path.name).read_bytes() == path.read_bytes()


def test_rerun_by_deleting_a_store_marker(project):
    project.populate("--scale", SCALE, "--seed", "11")
    project.run()
    out = project.output(1)
    marker = out / "mysql_customers.store.json"
    others = {p.name: p.stat().st_mtime_ns for p in out.glob("mysql_*.json") if p != marker}
    before = store_snapshot(project)
    marker.unlink()
    proc = project.run()
    assert marker.exists()
    assert "execution sequence 1" in proc.stderr  # resumed, not a new sequence
    assert "UpsertStoreTable(table=customers, execution_sequence=1)" in proc.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("mysql_*.json") if p != marker} == others
    assert store_snapshot(project) == before
    assert not project.output(2).exists()
    # and the next run is a new sequence again
    project.run()
    assert (project.output(2) / "RunJob.json").exists()


def test_failed_run_resumes_under_the_same_sequence(project):
    project.populate("--scale", SCALE, "--seed", "12")
    # sabotage one store table so its upsert fails: a CHECK no real row satisfies
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("CREATE SCHEMA store_mysql")
    cur.execute(
        "CREATE TABLE store_mysql.order_lines (order_no varchar(20) NOT NULL, order_line_no integer NOT NULL, "
        "order_date date, product_code varchar(20), supplier_id integer, unit_price numeric(10,2), "
        "quantity integer CONSTRAINT sabotage CHECK (quantity < 0), line_total numeric(20,4), "
        "created_datetime timestamp(0), updated_datetime timestamp(0), is_deleted smallint, "
        "etl_created_datetime timestamptz NOT NULL, etl_updated_datetime timestamptz NOT NULL)"
    )
    failed = project.run(expect=30)
    assert "upsert into store_mysql.order_lines failed" in failed.stderr
    assert "sabotage" in failed.stderr
    assert not (project.output(1) / "mysql_order_lines.store.json").exists()
    assert (project.output(1) / "mysql_order_headers.store.json").exists()
    cur.execute("SELECT count(*) FROM store_mysql.order_lines")
    assert cur.fetchone()[0] == 0  # nothing partial committed
    cur.execute("SELECT count(*) FROM etl_control.watermark WHERE table_name = 'order_lines'")
    assert cur.fetchone()[0] == 0  # watermark did not move

    time.sleep(1.1)  # the resumed run must reuse the recorded window, not a new one
    cur.execute("SELECT table_name, window_start, window_end FROM etl_control.extract_window ORDER BY 1")
    windows = cur.fetchall()
    cur.execute("ALTER TABLE store_mysql.order_lines DROP CONSTRAINT sabotage")
    resumed = project.run()
    assert "execution sequence 1" in resumed.stderr
    assert "ExtractMySQLTable" not in resumed.stderr.split("Luigi Execution Summary")[-1].split("ran successfully")[-1]
    cur.execute("SELECT table_name, window_start, window_end FROM etl_control.extract_window ORDER BY 1")
    assert cur.fetchall() == windows
    assert_store_equals_source(project)
    conn.close()


def test_parallel_workers(project, variant):
    project.populate("--scale", SCALE, "--seed", "13")
    project.run("--workers", "3")
    assert_store_equals_source(project)
    project.populate("--changes", "3", "--seed", "14")
    project.run("--workers", "3")
    assert_store_equals_source(project)
    assert_report_order_lines_matches_source(project)
    # dimension-only changes must reach the report rows that reference them
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute("SELECT MIN(company_id) FROM companies")  # company 1, a supplier: 1 or CO00001
    first_company = cur.fetchone()[0]
    cur.execute("UPDATE companies SET company_name = 'Renamed Supplier', updated_datetime = UTC_TIMESTAMP() "
                "WHERE company_id = %s", [first_company])
    cur.execute("UPDATE products SET product_name = 'Renamed Product', updated_datetime = UTC_TIMESTAMP() "
                "WHERE (product_code, supplier_id) = (SELECT product_code, supplier_id FROM order_lines LIMIT 1)")
    cur.execute("UPDATE customers SET customer_full_name = 'Renamed Customer', updated_datetime = UTC_TIMESTAMP() "
                "WHERE customer_document_no = (SELECT customer_document_no FROM order_headers LIMIT 1)")
    conn.close()
    project.run("--workers", "3")
    assert_report_order_lines_matches_source(project)
    pg = project.pg()
    cur = pg.cursor()
    cur.execute("SELECT count(*) FILTER (WHERE supplier_name = 'Renamed Supplier'), "
                "count(*) FILTER (WHERE product_name = 'Renamed Product'), "
                "count(*) FILTER (WHERE customer_full_name = 'Renamed Customer') FROM pres.report_order_lines")
    assert all(n > 0 for n in cur.fetchone())
    pg.close()


def test_large_extracts_are_staged_in_parts_and_loaded_by_parallel_copies(project):
    """Beyond parallel_copy_min_rows an extract alternates its batches between two files; both COPYs load them."""
    project.populate("--scale", SCALE, "--seed", "23")
    project.write_cfg(dw_etl={"batch_rows": 200, "parallel_copy_min_rows": 300, "parallel_copies": 2})
    project.run("--workers", "2")
    extract = json.loads((project.output(1) / "mysql_order_lines.extract.json").read_text())
    assert extract["parts"] == 2
    folder = project.root / "staging" / "mysql" / "order_lines" / "execution_sequence=1"
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["part-00000.csv", "part-00001.csv"]
    lines = [len((folder / f).read_text().splitlines()) - 1 for f in files]  # no embedded newlines in this table
    assert sum(lines) == extract["rows"] and min(lines) > 0
    small = json.loads((project.output(1) / "mysql_companies.extract.json").read_text())
    assert small["parts"] == 1 and small["rows"] <= 300
    assert landing_counts(project, 1)["order_lines"] == extract["rows"]
    assert_store_equals_source(project)
    conn = project.pg()  # both COPYs went through the partitioned table into sequence 1's partition
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM landing.mysql_order_lines_s1")
    assert cur.fetchone()[0] == extract["rows"]
    conn.close()
