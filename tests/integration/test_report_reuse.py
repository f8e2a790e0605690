"""Reports rerun only when the pres tables they read changed (etl.reports.input_fingerprint).

Five reports: three read the order tables (monthly sales, top products, products of the top login
country: it reads both), two only the access-log table (devices, login countries). A change of one
order line reruns the three, and their figures move by exactly that change; new log lines rerun the
three that read the access log; nothing new reruns nothing. Runs on both source variants.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from datetime import datetime, timezone

TODAY = datetime.now(timezone.utc).date()
LAST_YEAR = TODAY.year - 1
ORDER_REPORTS = {"sql_monthly_sales", "sql_top_10_revenue_products",
                 "sql_most_popular_products_from_country_with_most_logins"}
WEBLOG_REPORTS = {"sql_top_5_most_used_devices", "sql_top_login_countries",
                  "sql_most_popular_products_from_country_with_most_logins"}
ALL = ORDER_REPORTS | WEBLOG_REPORTS


def reports_marker(project, sequence: int) -> dict:
    return json.loads((project.output(sequence) / "reports.json").read_text())


def monthly(project, sequence: int) -> dict[str, int]:
    with open(project.root / "reports" / str(sequence) / "sql_monthly_sales.csv", newline="") as handle:
        return {row["year_month"]: int(row["total_quantity"]) for row in csv.DictReader(handle)}


def dashboard(project, sequence: int) -> str:
    """The sequence's dashboard without what every run changes: when it was built, the footnote's sequence."""
    text = (project.root / "reports" / str(sequence) / "dashboard.html").read_text()
    return re.sub(r"Execution sequence \d+\. ", "", re.sub(r"Built [^<]*\.</p>", "</p>", text))


def append_log(project, lines: int, seed: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "populate", "weblog", "--lines", str(lines), "--seed", str(seed),
         "--start", f"{LAST_YEAR}-01-01", "--end", f"{LAST_YEAR}-12-31", "--output", "logs/access.log"],
        cwd=project.root, env=project.env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_reports_rerun_only_when_their_tables_changed(project, variant):
    """On each source variant (tests.support.project.VARIANTS)."""
    project.populate("--scale", "0.003", "--seed", "5")
    append_log(project, 2000, 1)
    project.run()
    assert reports_marker(project, 1)["reused"] == []

    # nothing new: every report reused, byte for byte
    project.run()
    assert set(reports_marker(project, 2)["reused"]) == ALL and reports_marker(project, 2)["reused_previous"] is True
    for name in ALL:
        assert (project.root / "reports" / "2" / f"{name}.csv").read_bytes() == \
            (project.root / "reports" / "1" / f"{name}.csv").read_bytes()
    assert dashboard(project, 2) == dashboard(project, 1)  # its sections reused
    assert "Execution sequence 2. " in (project.root / "reports" / "2" / "dashboard.html").read_text()

    # one order line of last year gets one more unit: the order reports rerun and move by exactly that
    src = project.mysql()
    cur = src.cursor()
    cur.execute("SELECT l.order_no, l.order_line_no, DATE_FORMAT(l.order_date, '%Y-%m') FROM order_lines l "
                "JOIN order_headers h USING (order_no) WHERE l.is_deleted = 0 AND h.is_deleted = 0 "
                "AND YEAR(l.order_date) = %s ORDER BY 1, 2 LIMIT 1", [LAST_YEAR])
    order_no, line_no, month = cur.fetchone()
    cur.execute("UPDATE order_lines SET quantity = quantity + 1, line_total = unit_price * quantity, "
                "updated_datetime = UTC_TIMESTAMP(6) WHERE order_no = %s AND order_line_no = %s", [order_no, line_no])
    src.commit()
    src.close()
    before = monthly(project, 2)
    project.run()
    marker = reports_marker(project, 3)
    assert set(marker["reused"]) == ALL - ORDER_REPORTS and marker["reused_previous"] is False
    after = monthly(project, 3)
    assert after[month] == before[month] + 1
    assert dashboard(project, 3) != dashboard(project, 2)
    assert {m: q for m, q in after.items() if m != month} == {m: q for m, q in before.items() if m != month}

    # new log lines only: the reports reading the access log rerun, the order-only ones are reused
    append_log(project, 500, 2)
    project.run()
    assert set(reports_marker(project, 4)["reused"]) == ALL - WEBLOG_REPORTS
    assert monthly(project, 4) == after
