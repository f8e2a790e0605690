"""Every report equals an independent computation over the source tables and known log lines.

Runs on both source variants (tests.support.project.VARIANTS): on the strings variant company ids are
strings, totals DECIMAL(65,30) and some names, countries and usernames NULL.
"""

from __future__ import annotations

import html
import random
import re
import subprocess
import sys
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from populate.weblog import IpPool
from tests.support.paths import REPO
from tests.support.useragents import AGENTS

TODAY = datetime.now(timezone.utc).date()
LAST_YEAR = TODAY.year - 1
OFFSETS = ["+0000", "-0700", "+0530", "+0900", "-1100", "+1400"]
PERIOD = (date(LAST_YEAR, 1, 1), date(LAST_YEAR, 12, 31))  # every report's period_start, period_end
NAMED_DEVICES = {"Windows", "Macintosh", "iPhone", "Android", "iPad"}
SAMPLE_LINE = re.compile(r'\S+ \S+ (\S+) \[([^\]]+)\] "(?:[^"\\]|\\.)*" \d{3} (?:\d+|-) "[^"]*" "([^"]*)"')
"""A line of ``populate weblog``: username, timestamp, user agent."""


def in_last_year(moment) -> bool:
    return moment.year == LAST_YEAR


def make_log(users: list[tuple[str, str]], seed: int) -> tuple[bytes, list[tuple]]:
    """Log lines with known answers; returns (file bytes, [(utc datetime, username, country, device)])."""
    rng = random.Random(seed)
    pool = IpPool(rng, {c for _, c in users if c}, per_country=3)
    start = datetime(LAST_YEAR - 1, 6, 1)
    span = int((datetime.combine(TODAY, datetime.min.time()) - start).total_seconds())
    lines, truth = [], []
    for i in range(3000):
        utc = start + timedelta(seconds=rng.randrange(span))
        if i < 40:  # crowd the year boundaries: local time in one year, UTC in the other
            utc = datetime(LAST_YEAR + rng.choice((0, 1)), 1, 1) + timedelta(minutes=rng.randrange(-900, 900))
        offset = rng.choice(OFFSETS)
        sign = 1 if offset[0] == "+" else -1
        local = utc + sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:]))
        agent, device, _ = rng.choice(AGENTS)
        if rng.random() < 0.7:
            user, home = rng.choice(users)
            country = home if rng.random() < 0.8 else rng.choice(sorted(pool.by_country))
            ip = pool.home(rng, country)
            if not pool.by_country.get(country):
                country = None  # the pool had no address there: look it up below
        else:
            user, ip, country = "-", f"10.1.{rng.randrange(255)}.{rng.randrange(1, 255)}", ""
        if country is None:
            import iptocc
            country = iptocc.country_code(ip) or ""
        if rng.random() < 0.05:
            ip, country = f"192.168.{rng.randrange(255)}.1", ""
        stamp = local.strftime("%d/%b/%Y:%H:%M:%S ") + offset
        lines.append(f'{ip} - {user} [{stamp}] "GET /x/{i} HTTP/1.1" 200 {i} "-" "{agent}"\n'.encode())
        truth.append((utc, user, country, device))
    return b"".join(lines), truth


def run_sql_file(project, name: str) -> tuple[list[str], list[tuple]]:
    conn = project.pg()
    cur = conn.cursor()
    cur.execute((REPO / "sql" / "reports" / f"{name}.sql").read_text())
    columns = [d[0] for d in cur.description]
    rows = cur.fetchall()
    conn.close()
    return columns, rows


def source_sales(project) -> list[dict]:
    """Live order lines of last year from the MySQL source, with customer country, product and supplier name."""
    conn = project.mysql()
    cur = conn.cursor(dictionary=True)
    cur.execute(
        "SELECT l.order_no, l.order_date, l.product_code, l.supplier_id, l.quantity, l.line_total, "
        "c.country AS customer_country, p.product_name, s.company_name AS supplier_name FROM order_lines l "
        "JOIN order_headers h ON h.order_no = l.order_no "
        "LEFT JOIN customers c ON c.customer_document_no = h.customer_document_no "
        "LEFT JOIN products p ON p.product_code = l.product_code AND p.supplier_id = l.supplier_id "
        "LEFT JOIN companies s ON s.company_id = l.supplier_id "
        "WHERE COALESCE(l.is_deleted, 0) = 0 AND COALESCE(h.is_deleted, 0) = 0"
    )
    rows = [r for r in cur.fetchall() if r["order_date"].year == LAST_YEAR]
    conn.close()
    return rows


def top_products(sales: list[dict], key) -> list[tuple]:
    grouped = defaultdict(lambda: [0, Decimal(0), None, None])
    for r in sales:
        g = grouped[(r["product_code"], r["supplier_id"])]
        g[0] += r["quantity"]
        g[1] += r["line_total"]
        g[2], g[3] = r["product_name"], r["supplier_name"]
    items = [(code, sup, name, supplier, qty, amount) for (code, sup), (qty, amount, name, supplier) in grouped.items()]
    return sorted(items, key=key)[:10]


def test_reports_match_an_independent_computation(project, variant):
    project.populate("--scale", "0.004", "--seed", "31")
    conn = project.mysql()
    cur = conn.cursor()
    # customers without a username never log in; without a country they log in from anywhere
    cur.execute("SELECT username, country FROM customers WHERE username IS NOT NULL ORDER BY username")
    users = cur.fetchall()
    conn.close()
    data, truth = make_log(users, seed=5)
    (project.root / "logs").mkdir()
    (project.root / "logs" / "access.log").write_bytes(data)
    project.run()

    # every report file also runs as it is with psql -f
    for path in sorted((REPO / "sql" / "reports").glob("*.sql")):
        proc = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "root", "-d", project.warehouse_db, "-v", "ON_ERROR_STOP=1",
                               "-f", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr

    sales = source_sales(project)
    assert len(sales) > 300

    # monthly sales: 12 rows, empty months as 0
    expected = []
    for month in range(1, 13):
        rows = [r for r in sales if r["order_date"].month == month]
        expected.append((f"{LAST_YEAR}-{month:02d}", len({r["order_no"] for r in rows}),
                         sum(r["quantity"] for r in rows), sum((r["line_total"] for r in rows), Decimal(0)).quantize(Decimal("0.01")))
                        + PERIOD)
    columns, rows = run_sql_file(project, "sql_monthly_sales")
    assert columns == ["year_month", "order_count", "total_quantity", "total_amount", "period_start", "period_end"]
    assert rows == expected

    # top 10 revenue products
    top = top_products(sales, key=lambda t: (-t[5], t[0], t[1]))
    columns, rows = run_sql_file(project, "sql_top_10_revenue_products")
    assert columns == ["rank", "product_code", "supplier_id", "product_name", "supplier_name", "total_quantity",
                       "total_amount", "period_start", "period_end"]
    assert rows == [(i, c, s, n, sn, q, a.quantize(Decimal("0.01"))) + PERIOD for i, (c, s, n, sn, q, a) in enumerate(top, 1)]
    revenue = rows

    logins = [t for t in truth if t[1] != "-" and in_last_year(t[0])]
    assert len(logins) > 500

    # devices
    by_device = defaultdict(list)
    for _, user, _, device in logins:
        by_device[device].append(user)
    expected = sorted(((d, len(u), len(set(u))) + PERIOD for d, u in by_device.items()), key=lambda t: (-t[1], t[0]))[:5]
    columns, rows = run_sql_file(project, "sql_top_5_most_used_devices")
    assert columns == ["device", "request_count", "user_count", "period_start", "period_end"]
    assert rows == expected

    # countries
    by_country = defaultdict(list)
    for _, user, country, _ in logins:
        if country:
            by_country[country].append(user)
    ranked = sorted(((c, len(set(u)), len(u)) for c, u in by_country.items()), key=lambda t: (-t[1], -t[2], t[0]))
    columns, rows = run_sql_file(project, "sql_top_login_countries")
    assert columns == ["rank", "country", "user_count", "request_count", "period_start", "period_end"]
    assert rows == [(i, c, users_, requests) + PERIOD for i, (c, users_, requests) in enumerate(ranked[:10], 1)]

    # the top country's customers' top products by quantity
    country = ranked[0][0]
    top = top_products([r for r in sales if r["customer_country"] == country], key=lambda t: (-t[4], -t[5], t[0], t[1]))
    columns, rows = run_sql_file(project, "sql_most_popular_products_from_country_with_most_logins")
    assert columns == ["country", "rank", "product_code", "supplier_id", "product_name", "supplier_name", "total_quantity",
                       "total_amount", "period_start", "period_end"]
    assert rows == [(country, i, c, s, n, sn, q, a.quantize(Decimal("0.01"))) + PERIOD
                    for i, (c, s, n, sn, q, a) in enumerate(top, 1)]
    assert len(rows) > 0

    # the runner wrote CSV, charts and the dashboard of this sequence, with step markers
    folder = project.root / "reports" / "1"
    for name in ("sql_monthly_sales", "sql_top_5_most_used_devices", "sql_top_login_countries",
                 "sql_top_10_revenue_products", "sql_most_popular_products_from_country_with_most_logins"):
        assert (folder / f"{name}.csv").read_text().count("\n") > 1
        assert (folder / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (project.root / "completed" / "1" / "reports" / name).exists()
        assert f"{name}.png" in (folder / "dashboard.html").read_text()
    monthly_csv = (folder / "sql_monthly_sales.csv").read_text().splitlines()
    assert monthly_csv[0] == "year_month,order_count,total_quantity,total_amount,period_start,period_end"
    assert len(monthly_csv) == 13 and monthly_csv[1].endswith(f",{LAST_YEAR}-01-01,{LAST_YEAR}-12-31")
    # the dashboard: the period and the top country in words, the first product's name beside its code
    page = (folder / "dashboard.html").read_text()
    assert f"<h1>Sales {LAST_YEAR}</h1>" in page and "Execution sequence 1." in page
    assert f"Top 10 products bought by customers in {country}, the country with most logged-in users" in page
    named = next(r for r in revenue if r[3])  # the strings variant has NULL names
    name = html.escape(" ".join(named[3].split()), quote=False)  # as a browser shows it: whitespace runs as one space
    assert re.search(rf"<td>{re.escape(name)}</td>\s*<td>{re.escape(named[1])}</td>", page), (name, named)
    assert f"<td>{revenue[0][6]:,.2f}</td>" in page


def test_devices_of_logins_in_the_sample_logs(project):
    """``populate weblog``'s logs through the job: crawlers and scripts carry no username, and the
    devices-of-logins report's top 5 are the five named devices, as counted from the log lines."""
    project.populate("--scale", "0.004", "--seed", "31")
    sample = subprocess.run(
        [sys.executable, "-m", "populate", "weblog", "--lines", "6000", "--seed", "3", "--start", f"{LAST_YEAR}-01-01",
         "--end", TODAY.isoformat(), "--utc-offset", "-0700", "--output", "logs/access.log"],
        cwd=project.root, env=project.env(), capture_output=True, text=True, timeout=300,
    )
    assert sample.returncode == 0, sample.stderr
    table = {agent: (device, device_type) for agent, device, device_type in AGENTS}
    by_device, types, bot_logins = defaultdict(list), defaultdict(int), 0
    for line in (project.root / "logs" / "access.log").read_text().splitlines():
        user, stamp, agent = SAMPLE_LINE.fullmatch(line).groups()
        device, device_type = table[agent]
        types[device_type] += 1
        bot_logins += user != "-" and device_type in ("bot", "other")
        if user != "-" and datetime.strptime(stamp, "%d/%b/%Y:%H:%M:%S %z").astimezone(timezone.utc).year == LAST_YEAR:
            by_device[device].append(user)
    assert bot_logins == 0
    assert types["bot"] > 1000 and sum(len(users) for users in by_device.values()) > 1500
    expected = sorted(((d, len(u), len(set(u))) + PERIOD for d, u in by_device.items()), key=lambda t: (-t[1], t[0]))[:5]
    project.run()

    columns, rows = run_sql_file(project, "sql_top_5_most_used_devices")
    assert columns == ["device", "request_count", "user_count", "period_start", "period_end"]
    assert rows == expected
    assert {row[0] for row in rows} == NAMED_DEVICES  # no "Other", no "Spider"
    # the star schema classifies the same way: device types of every request, and no bot logs in
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT d.device_type, count(*), count(*) FILTER (WHERE f.is_login) FROM pres.fact_weblog_access f "
                "JOIN pres.dim_device d ON d.device_key = f.device_key GROUP BY 1 ORDER BY 1")
    found = cur.fetchall()
    conn.close()
    assert [(t, n) for t, n, _ in found] == sorted(types.items())
    assert [(t, logins) for t, _, logins in found if t in ("bot", "other")] == [("bot", 0), ("other", 0)]
