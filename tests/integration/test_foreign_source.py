"""A foreign source, built by hand: the six tables of the design with their names and keys,
but types, NULLs and values neither ``populate orders`` variant uses.

The whole job runs on it three times; store, the star schema and the five reports are
compared with an oracle computed here in Python from the rows this test inserted and the
log lines it wrote (nothing is read back from the pipeline to compute an expectation).

Types (different from populate/orders.py TABLE_DDL and STRINGS_DDL):
company ids BIGINT UNSIGNED (up to 2^64-1: numeric order differs from text order: 9 < 10);
order_no VARCHAR(40) utf8mb4_bin holding unicode, quotes, commas, backslashes, 'NULL', '\\N'
and case variants (SO-1 / so-1); order_line_no SMALLINT; order_date DATETIME with a time;
quantity DECIMAL(12,3) NULL; unit_price DOUBLE NULL; line_total DECIMAL(38,10) NULL;
is_deleted BOOLEAN NULL (with 2 = true), BIT(1) NULL, TINYINT UNSIGNED; updated_datetime
TIMESTAMP(3); product codes VARCHAR utf8mb4_bin ('B-1', 'a-1', 'b-1', 'Ä-1'); usernames
utf8mb4_bin ('Bob' and 'bob'); NULL names, countries, usernames, dates of birth.

Interpretations the oracle follows (docs/reports.md "Rules"):
* a line counts when it and its header are live (is_deleted 0, false or NULL); a line
  without a header in the source is not a sale (there is no order for it);
* NULL quantities / line totals are left out of sums (SQL SUM); a product whose every
  counted quantity (or amount) is NULL has an unknown total: it is shown as NULL and ranks
  after every product with a known total (it is not "the most");
* amounts are rounded to the cent half away from zero (PostgreSQL's numeric round);
* text ties (product codes, devices, countries) in byte order (warehouse C.UTF-8),
  supplier ids numerically.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import iptocc

from populate.weblog import IpPool
from tests.support.databases import mysql_connect
from tests.support.paths import REPO
from tests.support.useragents import AGENTS

NOW = datetime.now(timezone.utc)
TODAY = NOW.date()
LY = TODAY.year - 1  # "last year": the previous calendar year (UTC)
PERIOD = (date(LY, 1, 1), date(LY, 12, 31))  # every report's period_start, period_end
TY = TODAY.year
OLD = TODAY.year - 2
MAX = 18446744073709551615  # BIGINT UNSIGNED maximum
D = Decimal

DDL = {
    "companies": """CREATE TABLE companies (
        company_id BIGINT UNSIGNED NOT NULL,
        company_name VARCHAR(150) NULL,
        country VARCHAR(2) CHARACTER SET ascii NULL,
        is_supplier BOOLEAN NULL,
        created_datetime DATETIME(3) NOT NULL,
        updated_datetime TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        is_deleted TINYINT UNSIGNED NULL,
        PRIMARY KEY (company_id),
        KEY ix_upd (updated_datetime))""",
    "customers": """CREATE TABLE customers (
        customer_document_no VARCHAR(32) COLLATE utf8mb4_bin NOT NULL,
        customer_full_name VARCHAR(200) NULL,
        username VARCHAR(64) COLLATE utf8mb4_bin NULL,
        date_of_birth DATE NULL,
        address_line_1 TEXT NULL,
        address_line_2 VARCHAR(200) NULL,
        address_line_3 VARCHAR(200) NULL,
        city VARCHAR(100) NULL,
        state VARCHAR(100) NULL,
        country CHAR(2) NULL,
        post_code VARCHAR(12) NULL,
        created_datetime DATETIME(3) NOT NULL,
        updated_datetime TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        is_deleted BIT(1) NULL,
        PRIMARY KEY (customer_document_no),
        UNIQUE KEY uq_username (username),
        KEY ix_upd (updated_datetime))""",
    "products": """CREATE TABLE products (
        product_code VARCHAR(24) COLLATE utf8mb4_bin NOT NULL,
        supplier_id BIGINT UNSIGNED NOT NULL,
        product_name VARCHAR(200) NULL,
        default_price DECIMAL(14,4) NULL,
        created_datetime DATETIME(3) NOT NULL,
        updated_datetime TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        is_deleted BOOLEAN NULL,
        PRIMARY KEY (product_code, supplier_id),
        KEY ix_upd (updated_datetime))""",
    "product_prices": """CREATE TABLE product_prices (
        product_code VARCHAR(24) COLLATE utf8mb4_bin NOT NULL,
        selling_company_id BIGINT UNSIGNED NOT NULL,
        price DOUBLE NULL,
        created_datetime DATETIME(3) NOT NULL,
        updated_datetime TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        is_deleted BIT(1) NULL,
        PRIMARY KEY (product_code, selling_company_id),
        KEY ix_upd (updated_datetime))""",
    "order_headers": """CREATE TABLE order_headers (
        order_no VARCHAR(40) COLLATE utf8mb4_bin NOT NULL,
        order_date DATETIME NOT NULL,
        company_id BIGINT UNSIGNED NULL,
        customer_document_no VARCHAR(32) COLLATE utf8mb4_bin NULL,
        total DECIMAL(38,10) NULL,
        created_datetime DATETIME(3) NOT NULL,
        updated_datetime TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        is_deleted BIT(1) NULL,
        PRIMARY KEY (order_no),
        KEY ix_upd (updated_datetime))""",
    "order_lines": """CREATE TABLE order_lines (
        order_no VARCHAR(40) COLLATE utf8mb4_bin NOT NULL,
        order_line_no SMALLINT NOT NULL,
        order_date DATETIME NOT NULL,
        product_code VARCHAR(24) COLLATE utf8mb4_bin NOT NULL,
        supplier_id BIGINT UNSIGNED NOT NULL,
        unit_price DOUBLE NULL,
        quantity DECIMAL(12,3) NULL,
        line_total DECIMAL(38,10) NULL,
        created_datetime DATETIME(3) NOT NULL,
        updated_datetime TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        is_deleted BOOLEAN NULL,
        PRIMARY KEY (order_no, order_line_no),
        KEY ix_upd (updated_datetime))""",
}
COLUMNS = {
    table: [line.split()[0] for line in ddl.splitlines()[1:] if line.split()[0] not in ("PRIMARY", "UNIQUE", "KEY")]
    for table, ddl in DDL.items()
}
KEYS = {"companies": ["company_id"], "customers": ["customer_document_no"], "products": ["product_code", "supplier_id"],
        "product_prices": ["product_code", "selling_company_id"], "order_headers": ["order_no"],
        "order_lines": ["order_no", "order_line_no"]}
BIT_COLUMNS = {("customers", "is_deleted"), ("product_prices", "is_deleted"), ("order_headers", "is_deleted")}

HARD = ['O\'Brien & "Sons", Ltd.', "Line\nBreak", "CR\r\nLF", "Tab\tSep", "NULL", "\\N", "Back\\slash",
        "  padded  ", "東京商事", "Emoji 🚚📦", 'Quote "" doubled', "", "a,b,c"]


def ts(year, month, day, h=0, m=0, s=0, ms=0):
    return datetime(year, month, day, h, m, s, ms * 1000)


class Source:
    """The rows this test puts into the source, as Python values (the oracle's input)."""

    def __init__(self):
        self.rows = {t: {} for t in DDL}  # table -> {key tuple: {column: value}}

    def add(self, table, **values):
        row = {c: values.get(c) for c in COLUMNS[table]}
        stamp = values.get("updated_datetime") or ts(OLD, 3, 1, 12, 0, 0, 123)
        row["updated_datetime"] = stamp
        row["created_datetime"] = values.get("created_datetime") or stamp
        key = tuple(row[k] for k in KEYS[table])
        assert key not in self.rows[table], (table, key)
        self.rows[table][key] = row
        return row

    def insert_all(self, conn):
        cur = conn.cursor()
        for table, ddl in DDL.items():
            cur.execute(ddl + " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci")
            cols = COLUMNS[table]
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
            cur.executemany(sql, [tuple(r[c] for c in cols) for r in self.rows[table].values()])
        cur.close()


def build_source(unknown_totals: bool = False) -> Source:
    """The source rows; ``unknown_totals``: last year holds products whose every quantity and
    amount is NULL (else NULLs there only beside known values)."""
    src = Source()
    rng = random.Random(20240229)
    # companies: ids in BIGINT UNSIGNED, numeric order 5 < 9 < 10 < 42 < MAX (text order differs)
    src.add("companies", company_id=9, company_name="Nine Supplies 🚚", country="DE", is_supplier=1, is_deleted=0)
    src.add("companies", company_id=10, company_name='Ten, "Quoted" & Co\nLtd', country="US", is_supplier=1,
            is_deleted=None)
    src.add("companies", company_id=MAX, company_name=None, country=None, is_supplier=None, is_deleted=0)
    src.add("companies", company_id=5, company_name="Seller Five (soft-deleted)", country="GB", is_supplier=0,
            is_deleted=1)
    src.add("companies", company_id=42, company_name="O'Seller \\N", country="JP", is_supplier=0, is_deleted=0)
    for i in range(12):
        src.add("companies", company_id=1000 + i, company_name=rng.choice(HARD + [None]),
                country=rng.choice(["FR", "IT", None, "DE"]), is_supplier=i % 2, is_deleted=rng.choice([0, 1, None]),
                updated_datetime=ts(OLD, 1 + i, 2, 3, 4, 5, i))
    # customers (document numbers and usernames utf8mb4_bin: case variants are distinct)
    cust = [
        ("CUST-001", "Bob Builder", "Bob", date(1980, 2, 29), "DE", 0),
        ("cust-001", "bob lower", "bob", None, "DE", None),
        ("CUST-002", None, "alice", date(1999, 12, 31), "JP", 0),
        ("CUST-003", 'Émile "E" Zola, Jr.\r\nLine2', "emile.z", date(1970, 1, 1), "US", 1),  # soft-deleted
        ("CUST-004", "😀 Smiley", None, None, "DE", 0),
        ("CUST-005", "No Country", "nocountry", None, None, 0),
        ("CUST-006", "Tab\tName", "carol_99", date(2001, 7, 4), "GB", 0),
        ("CUST-007", "Dave", "dave", date(1960, 5, 5), "DE", 0),
        ("CUST-008", "NULL", "", None, "", 0),  # the empty username, the empty country
    ]
    for no, name, user, dob, country, deleted in cust:
        src.add("customers", customer_document_no=no, customer_full_name=name, username=user, date_of_birth=dob,
                address_line_1=rng.choice(HARD), address_line_2=rng.choice([None, "", "Apt. 5"]), address_line_3=None,
                city=rng.choice(["Zürich", "São Paulo", None, "İstanbul"]), state=rng.choice([None, "Bayern"]),
                country=country, post_code=rng.choice([None, "8001", "  "]), is_deleted=deleted)
    for i in range(15):
        src.add("customers", customer_document_no=f"C-F{i:02d}", customer_full_name=rng.choice(HARD + [None]),
                username=rng.choice([None, f"filler{i}", f"Filler{i}"]), date_of_birth=rng.choice([None, date(1990, 1, 1 + i)]),
                address_line_1=None, address_line_2=None, address_line_3=rng.choice(HARD), city=None, state=None,
                country=rng.choice(["FR", "IT", None, "US", "JP"]), post_code=None, is_deleted=rng.choice([0, 1, None]),
                updated_datetime=ts(OLD, 2, 1 + i, 1, 2, 3, 999))
    # products: one code under three suppliers, codes that sort differently in byte and in
    # linguistic order, a soft-deleted product, a product with no known quantities
    for code, supplier, name, price, deleted in [
        ("B-1", 9, "Bolt nine", D("1.5000"), 0), ("B-1", 10, "Bolt ten", D("2.0000"), None),
        ("B-1", MAX, None, None, 0), ("a-1", 9, "alpha", D("0.0001"), 0), ("Ä-1", 10, "Umlaut ä, \"x\"", D("3"), 0),
        ("Z", 9, "Zed (soft-deleted)", D("9.99"), 1), ("nul", 10, "no quantity", D("0"), 0),
        ("b-1", 9, "lower b\nnewline", D("7.25"), 2),
    ]:
        src.add("products", product_code=code, supplier_id=supplier, product_name=name, default_price=price,
                is_deleted=deleted)
    for i in range(12):
        src.add("products", product_code=f"F-{i:02d}", supplier_id=rng.choice([9, 10, MAX]),
                product_name=rng.choice(HARD + [None]), default_price=D(rng.randrange(1, 10**6)) / 100,
                is_deleted=rng.choice([0, 1, None]), updated_datetime=ts(OLD, 4, 1 + i, 0, 0, 0, 1))
    for code in sorted({c for c, _ in src.rows["products"]}):
        for seller in (5, 42, MAX):
            if rng.random() < 0.6:
                src.add("product_prices", product_code=code, selling_company_id=seller,
                        price=rng.choice([None, 0.1, 1e-7, 12345.678, 1 / 3]), is_deleted=rng.choice([0, 1, None]))

    # orders: (order_no, header date, seller, customer, header is_deleted, [(line date, product, qty, total, is_deleted)])
    y = LY
    designed = [
        ("SO-1", ts(y, 3, 10, 9, 30), 42, "CUST-001", 0, [
            (None, ("B-1", 9), D("5"), D("300"), 0),
            (None, ("GHOST", 9), D("4"), D("250"), 0),  # a product the source does not have
            (None, ("B-1", 9), None, D("0"), 0),  # no quantity beside known ones
        ]),
        ("so-1", ts(y, 3, 10, 18, 0), 5, "cust-001", None, [
            (None, ("B-1", 10), D("5"), D("300"), 0),
            (None, ("b-1", 9), D("3"), D("300"), None),
            (None, ("b-1", 9), D("100"), D("1000"), 1),  # soft-deleted line
        ]),
        ("Ω/ü#1", ts(y, 1, 1, 0, 0, 0), 42, "CUST-001", 0, [
            (None, ("a-1", 9), D("1"), D("0.0000000001"), 0),  # the first moment of last year
        ]),
        ('ord,"quoted"', ts(TY, 1, 1, 0, 30), MAX, "CUST-007", 0, [
            (ts(y, 12, 31, 23, 59, 59), ("a-1", 9), D("2"), D("299.9999999999"), None),  # line date counts, not header's
            (ts(y if unknown_totals else TY, 12 if unknown_totals else 1, 31 if unknown_totals else 1, 23, 59, 59),
             ("nul", 10), None, None, 0),  # no quantity, no amount
            (ts(y, 12, 31, 23, 59, 59), ("Ä-1", 10), D("100"), D("1000"), 2),  # is_deleted = 2 is true
        ]),
        ("NULL", ts(y, 6, 15, 12, 0), 42, "CUST-004", None, [
            (None, ("B-1", MAX), D("2.5"), D("100"), 0),
            (None, ("Ä-1", 10), D("1.5"), D("300"), 0),
        ]),
        ("\\N", ts(y, 6, 30, 23, 59, 59), 9, "CUST-007", 0, [
            (None, ("B-1", MAX), D("2.5"), D("200"), 0),
        ]),
        ("🚚-42", ts(y, 8, 1, 1, 1, 1), 42, "CUST-003", 0, [  # a soft-deleted customer's order counts
            (None, ("Z", 9), D("7.125"), D("500.005"), 0),  # a soft-deleted product counts; .005 rounds up
        ]),
        ("o'brien\\1", ts(y, 8, 2), 42, "CUST-002", 0, [
            (None, ("B-1", MAX), D("1"), None, 0),  # no amount
            (None, ("B-1", 12345), D("1"), D("120"), 0),  # neither the product nor the supplier exists
        ]),
        ("DELETED-HDR", ts(y, 3, 3), 42, "CUST-001", 1, [  # a soft-deleted header: its lines do not count
            (None, ("a-1", 9), D("100"), D("1000"), 0),
        ]),
        ("HDR-LY-LINE-TY", ts(y, 12, 31, 22, 0), 42, "CUST-001", 0, [
            (ts(TY, 1, 1, 0, 0, 0), ("a-1", 9), D("100"), D("1000"), 0),  # this year by the line's date
        ]),
        ("OLD-1", ts(OLD, 12, 31, 23, 59, 59), 42, "CUST-001", 0, [
            (None, ("B-1", 9), D("100"), D("1000"), 0),
        ]),
        ("TY-1", ts(TY, 1, 2, 8, 0), 42, "cust-001", 0, [
            (None, ("B-1", 10), D("100"), D("7000"), 0),
        ]),
        ("ORPHAN-CUST", ts(y, 5, 5, 5, 5, 5), 77, "NOPE-9", 0, [  # unknown customer and seller
            (None, ("F-00", src_supplier(src, "F-00")), D("0.25"), D("1.25"), 0),
        ]),
        ("NO-CUSTOMER", ts(y, 5, 6), None, None, 0, [  # NULL seller and customer
            (None, ("F-01", src_supplier(src, "F-01")), D("0.5"), D("2.5"), 0),
        ]),
    ]
    for order_no, hdate, seller, customer, hdel, lines in designed:
        add_order(src, order_no, hdate, seller, customer, hdel, lines)
    # a line whose header does not exist: no sale
    src.add("order_lines", order_no="NO-HEADER", order_line_no=1, order_date=ts(y, 4, 4), product_code="B-1",
            supplier_id=10, unit_price=10.0, quantity=D("100"), line_total=D("1000"), is_deleted=0)
    # filler orders: small amounts on filler products, all years, every customer
    customers = list(k[0] for k in src.rows["customers"]) + ["NOPE-9"]
    fillers = [k for k in src.rows["products"] if k[0].startswith("F-")]
    for n in range(55):
        year = rng.choice([OLD, LY, LY, TY])
        moment = datetime(year, 1, 1) + timedelta(seconds=rng.randrange(360 * 86400))
        lines = []
        nulls = [None] if unknown_totals or year != LY else []
        for _ in range(rng.randint(1, 3)):
            qty = rng.choice(nulls + [D(rng.randrange(1, 500)) / 1000])
            lines.append((None, rng.choice(fillers), qty, rng.choice(nulls + [D(rng.randrange(1, 500)) / 100]),
                          rng.choice([0, 0, 0, None, 1])))
        add_order(src, f"F/{n}", moment, rng.choice([5, 42, MAX, None]), rng.choice(customers), rng.choice([0, 0, None, 1]),
                  lines)
    return src


def src_supplier(src, code):
    return next(s for c, s in src.rows["products"] if c == code)


def add_order(src, order_no, hdate, seller, customer, hdel, lines):
    total = sum((t for *_, t, _ in lines if t is not None), D(0))
    stamp = hdate + timedelta(hours=1, milliseconds=7) if hdate.year < TY else ts(TY, 1, 3)
    src.add("order_headers", order_no=order_no, order_date=hdate, company_id=seller, customer_document_no=customer,
            total=total, is_deleted=hdel, updated_datetime=stamp)
    for no, (ldate, (code, supplier), qty, amount, deleted) in enumerate(lines, 1):
        unit = None if qty in (None, 0) or amount is None else float(amount / qty)
        src.add("order_lines", order_no=order_no, order_line_no=no, order_date=ldate or hdate, product_code=code,
                supplier_id=supplier, unit_price=unit, quantity=qty, line_total=amount, is_deleted=deleted,
                updated_datetime=stamp)


# ---------------------------------------------------------------------------------------------
# access log with known answers


def build_log(pool: IpPool) -> tuple[list[bytes], list[tuple]]:
    """Lines and their truth [(utc, username, country, device)] (unparseable lines have no truth)."""
    agent_of = defaultdict(list)
    for agent, device, _ in AGENTS:
        agent_of[device].append(agent)
    lines, truth = [], []

    def line(utc, user, ip, country, device, offset="+0000", bad_stamp=None):
        sign = 1 if offset[0] == "+" else -1
        local = utc + sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:]))
        stamp = bad_stamp or local.strftime("%d/%b/%Y:%H:%M:%S ") + offset
        agent = agent_of[device][len(lines) % len(agent_of[device])]
        n = len(lines)
        lines.append(f'{ip} - {user} [{stamp}] "GET /p/{n}?q=a,b HTTP/1.1" 200 {n * 7} "-" "{agent}"\n'.encode())
        truth.append((datetime(1900, 1, 1) if bad_stamp else utc, user, country, device))

    def ip(country):
        return pool.by_country[country][len(lines) % len(pool.by_country[country])]

    y = LY
    mid = datetime(y, 6, 1, 12)
    # DE: 4 users (Bob, bob, dave, BOB - a username no customer has), 6 logins
    for i, (user, device) in enumerate([("Bob", "Windows"), ("Bob", "iPhone"), ("bob", "Windows"), ("dave", "iPhone"),
                                        ("dave", "Android"), ("BOB", "Macintosh")]):
        line(mid + timedelta(days=i * 20), user, ip("DE"), "DE", device, offset=["+0200", "-0700", "+0530"][i % 3])
    # US: 4 users, 5 logins (one over IPv6)
    for i, (user, device) in enumerate([("alice", "Windows"), ("emile.z", "iPhone"), ("emile.z", "Macintosh"),
                                        ("carol_99", "Android"), ("nocountry", "Windows")]):
        line(mid + timedelta(days=i * 11, hours=3), user, ip("US"), "US", device)
    line(mid + timedelta(days=70), "alice", "2001:4860:4860::8888", iptocc.country_code("2001:4860:4860::8888") or "",
         "iPhone", offset="-1100")
    # GB and JP: 1 user, 2 logins each (tie broken by code)
    line(datetime(y, 2, 1), "carol_99", ip("GB"), "GB", "iPad")
    line(datetime(y, 2, 2), "carol_99", ip("GB"), "GB", "Windows")
    line(datetime(y, 2, 3), "alice", ip("JP"), "JP", "iPad", offset="+0900")
    line(datetime(y, 2, 4), "alice", ip("JP"), "JP", "Other")  # a bot agent with a username is still a login
    # private address: logins without a country
    for i in range(2):
        line(datetime(y, 9, 1 + i), "Bob", f"10.0.0.{i + 1}", "", "Macintosh")
    line(datetime(y, 9, 5), "dave", "192.168.1.20", "", "Android")
    # anonymous requests (bots and people) from FR: never logins
    for i in range(5):
        line(datetime(y, 10, 1 + i), "-", ip("FR"), "FR", ["Other", "Windows"][i % 2])
    # year boundaries: the UTC moment decides, whatever the local offset says
    line(datetime(y, 12, 31, 23, 30), "dave", ip("AU"), "AU", "Other", offset="+0900")  # local: next year; counts
    line(datetime(TY, 1, 1, 0, 30), "Bob", ip("AU"), "AU", "iPhone", offset="-0700")  # local: last year; does not
    line(datetime(y, 1, 1, 0, 0, 0), "carol_99", ip("AU"), "AU", "iPhone", offset="+0530")  # counts
    line(datetime(y - 1, 12, 31, 23, 59, 59), "alice", ip("AU"), "AU", "iPhone", offset="-1100")  # does not
    # other years: JP would win if the year filter were wrong
    for i, user in enumerate(["Bob", "bob", "dave", "alice", "carol_99", "nocountry", "emile.z", "ghost"]):
        line(datetime(TY, 1, 5 + i), user, ip("JP"), "JP", "iPad")
        line(datetime(OLD, 5, 5 + i), user, ip("JP"), "JP", "iPad")
    # an unreadable date (kept, 1900-01-01) and a broken line (rejected)
    line(datetime(1900, 1, 1), "Bob", ip("DE"), "DE", "Windows", bad_stamp="31/Feb/2025:10:00:00 +0000")
    lines.append(b"this is not an access log line\n")
    return lines, truth


# ---------------------------------------------------------------------------------------------
# the oracle


def live(flag) -> bool:
    return flag is None or int(flag) == 0


def cents(value):
    return None if value is None else value.quantize(D("0.01"), rounding=ROUND_HALF_UP)


def nsum(values):
    known = [v for v in values if v is not None]
    return sum(known, D(0)) if known else None


def sales(src: Source) -> list[dict]:
    """Live order lines of last year, with the customer's country, the product's and the supplier's name."""
    out = []
    for line in src.rows["order_lines"].values():
        header = src.rows["order_headers"].get((line["order_no"],))
        if header is None or not live(line["is_deleted"]) or not live(header["is_deleted"]):
            continue
        if line["order_date"].year != LY:
            continue
        customer = src.rows["customers"].get((header["customer_document_no"],))
        product = src.rows["products"].get((line["product_code"], line["supplier_id"]))
        supplier = src.rows["companies"].get((line["supplier_id"],))
        out.append({**line, "customer_country": customer["country"] if customer else None,
                    "product_name": product["product_name"] if product else None,
                    "supplier_name": supplier["company_name"] if supplier else None})
    return out


def desc_nulls_last(value):
    return (1, 0) if value is None else (0, -value)


def product_totals(rows):
    grouped = defaultdict(list)
    for r in rows:
        grouped[(r["product_code"], r["supplier_id"])].append(r)
    return [(code, sup, rs[0]["product_name"], rs[0]["supplier_name"], nsum(r["quantity"] for r in rs),
             nsum(r["line_total"] for r in rs)) for (code, sup), rs in grouped.items()]


def expected_reports(src: Source, truth: list[tuple]) -> dict[str, list[tuple]]:
    rows = sales(src)
    monthly = []
    for month in range(1, 13):
        ms = [r for r in rows if r["order_date"].month == month]
        monthly.append((f"{LY}-{month:02d}", len({r["order_no"] for r in ms}), nsum(r["quantity"] for r in ms) or D(0),
                        cents(nsum(r["line_total"] for r in ms) or D(0))) + PERIOD)
    top = sorted(product_totals(rows), key=lambda t: (desc_nulls_last(t[5]), t[0], t[1]))[:10]
    revenue = [(i, c, s, n, sn, q, cents(a)) + PERIOD for i, (c, s, n, sn, q, a) in enumerate(top, 1)]

    logins = [t for t in truth if t[1] != "-" and t[0].year == LY]
    by_device = defaultdict(list)
    for _, user, _, device in logins:
        by_device[device].append(user)
    devices = sorted(((d, len(u), len(set(u))) + PERIOD for d, u in by_device.items()), key=lambda t: (-t[1], t[0]))[:5]
    by_country = defaultdict(list)
    for _, user, country, _ in logins:
        if country:
            by_country[country].append(user)
    ranked = sorted(((c, len(set(u)), len(u)) for c, u in by_country.items()), key=lambda t: (-t[1], -t[2], t[0]))
    countries = [(i, c, n_users, n_requests) + PERIOD for i, (c, n_users, n_requests) in enumerate(ranked[:10], 1)]
    popular = []
    if ranked:
        country = ranked[0][0]
        mine = product_totals([r for r in rows if r["customer_country"] == country])
        mine = sorted(mine, key=lambda t: (desc_nulls_last(t[4]), desc_nulls_last(t[5]), t[0], t[1]))[:10]
        popular = [(country, i, c, s, n, sn, q, cents(a)) + PERIOD for i, (c, s, n, sn, q, a) in enumerate(mine, 1)]
    return {"sql_monthly_sales": monthly, "sql_top_10_revenue_products": revenue,
            "sql_top_5_most_used_devices": devices, "sql_top_login_countries": countries,
            "sql_most_popular_products_from_country_with_most_logins": popular}


# ---------------------------------------------------------------------------------------------
# comparisons


def canon(table, column, value):
    """One comparable form of a source (mysql-connector) or store (psycopg2) value."""
    if value is None:
        return None
    if (table, column) in BIT_COLUMNS:
        if isinstance(value, (bytes, bytearray)):
            return int.from_bytes(value, "big")
        if isinstance(value, str):
            return int(value, 2)
        return int(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    if isinstance(value, (bytes, bytearray)):
        return value.decode()
    if isinstance(value, Decimal):
        return ("D", str(value))  # exact digits: 1.50 is not 1.5
    if isinstance(value, int) and not isinstance(value, bool):
        return ("D", str(value))  # bigint unsigned lands as numeric(20,0): compare digits
    if isinstance(value, float):
        return ("F", value.hex())
    return (type(value).__name__, value)


def source_table(project, table):
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute(f"SELECT {', '.join(COLUMNS[table])} FROM {table}")
    rows = sorted((tuple(canon(table, c, v) for c, v in zip(COLUMNS[table], r)) for r in cur.fetchall()), key=repr)
    conn.close()
    return rows


def store_table(project, table):
    """The live store rows of ``table`` (tombstones left out), canonical and sorted."""
    conn = project.pg()
    cur = conn.cursor()
    cur.execute(f"SELECT {', '.join(COLUMNS[table])} FROM store_mysql.{table} WHERE etl_deleted_datetime IS NULL")
    rows = sorted((tuple(canon(table, c, v) for c, v in zip(COLUMNS[table], r)) for r in cur.fetchall()), key=repr)
    conn.close()
    return rows


def assert_store_equals_source(project):
    for table in DDL:
        src, dst = source_table(project, table), store_table(project, table)
        missing = [r for r in src if r not in dst][:3]
        extra = [r for r in dst if r not in src][:3]
        assert src == dst, f"{table}: {len(src)} source vs {len(dst)} store rows; missing {missing}; extra {extra}"


def snapshot(project, schema, drop=()):
    """Every row of every table of ``schema`` as sorted JSON text (columns in ``drop`` left out)."""
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE' "
                "ORDER BY 1", [schema])
    tables = [t for (t,) in cur.fetchall()]
    result = {}
    minus = "".join(f" - '{c}'" for c in drop)
    for table in tables:
        cur.execute(f'SELECT (to_jsonb(t){minus})::text FROM {schema}."{table}" AS t ORDER BY 1')
        result[table] = [r for (r,) in cur.fetchall()]
    conn.close()
    return result


def run_report(project, name):
    conn = project.pg()
    cur = conn.cursor()
    cur.execute((REPO / "sql" / "reports" / f"{name}.sql").read_text())
    columns = [d[0] for d in cur.description]
    rows = cur.fetchall()
    conn.close()
    return columns, rows


REPORT_COLUMNS = {
    "sql_monthly_sales": ["year_month", "order_count", "total_quantity", "total_amount", "period_start", "period_end"],
    "sql_top_10_revenue_products": ["rank", "product_code", "supplier_id", "product_name", "supplier_name",
                                    "total_quantity", "total_amount", "period_start", "period_end"],
    "sql_top_5_most_used_devices": ["device", "request_count", "user_count", "period_start", "period_end"],
    "sql_top_login_countries": ["rank", "country", "user_count", "request_count", "period_start", "period_end"],
    "sql_most_popular_products_from_country_with_most_logins": ["country", "rank", "product_code", "supplier_id",
                                                                 "product_name", "supplier_name", "total_quantity",
                                                                 "total_amount", "period_start", "period_end"],
}


def report_diffs(project, expected) -> list[str]:
    """Every report compared with the oracle; returns the differences (empty: all equal)."""
    diffs = []
    for name, want in expected.items():
        columns, got = run_report(project, name)
        assert columns == REPORT_COLUMNS[name], (name, columns)
        got = [tuple(int(v) if isinstance(v, Decimal) and c in ("supplier_id",) else v for c, v in zip(columns, r))
               for r in got]
        if got != want:
            diffs.append(f"{name}:\n  expected {want}\n  actual   {got}")
    return diffs


def assert_star_consistent(project, src: Source, truth):
    conn = project.pg()
    cur = conn.cursor()

    def rows(query, params=None):
        cur.execute(query, params)
        return cur.fetchall()

    for table, key in (("dim_date", "date_key"), ("dim_company", "company_key"), ("dim_customer", "customer_key"),
                       ("dim_product", "product_key"), ("dim_device", "device_key"), ("dim_country", "country_key")):
        assert rows(f"SELECT count(*) FROM pres.{table} WHERE {key} = -1") == [(1,)], table
    # dimensions = store (natural keys, NULL attributes as NULL), plus the unknown member
    for dim, table, cols in (
        ("dim_company", "companies", "company_id, company_name, country, is_supplier, is_deleted"),
        ("dim_customer", "customers", "customer_document_no, customer_full_name, username, date_of_birth, city, state, "
                                      "country, post_code, is_deleted"),
        ("dim_product", "products", "product_code, supplier_id, product_name, default_price, is_deleted"),
    ):
        current = " AND is_current" if dim == "dim_product" else ""
        natural = cols.split(",")[0]
        a = rows(f"SELECT {cols} FROM store_mysql.{table} EXCEPT ALL SELECT {cols} FROM pres.{dim} "
                 f"WHERE {natural} IS NOT NULL{current}")
        b = rows(f"SELECT {cols} FROM pres.{dim} WHERE {natural} IS NOT NULL{current} EXCEPT ALL "
                 f"SELECT {cols} FROM store_mysql.{table}")
        assert a == [] and b == [], (dim, a[:3], b[:3])
    for dim, table in (("dim_company", "companies"), ("dim_customer", "customers")):
        assert rows(f"SELECT count(*) - 1 FROM pres.{dim}") == rows(f"SELECT count(*) FROM store_mysql.{table}"), dim
    assert rows("SELECT count(*) FROM pres.dim_product WHERE is_current") == rows(
        "SELECT count(*) FROM store_mysql.products")
    assert rows("SELECT count(*) FROM pres.dim_company WHERE company_name IS NULL AND company_key <> -1")[0][0] >= 1
    assert rows("SELECT count(*) FROM pres.dim_customer WHERE username IS NULL AND customer_key <> -1")[0][0] >= 1
    assert rows("SELECT count(*) FROM pres.dim_customer WHERE username = ''") == [(1,)]

    # facts: one per live line with a live header; keys found; orphans at -1, the rest not
    want = {}
    for line in src.rows["order_lines"].values():
        header = src.rows["order_headers"].get((line["order_no"],))
        if header is None or not live(line["is_deleted"]) or not live(header["is_deleted"]):
            continue
        product = (line["product_code"], line["supplier_id"])
        want[(line["order_no"], line["order_line_no"])] = (
            int(line["order_date"].strftime("%Y%m%d")),
            product if product in src.rows["products"] else None,
            line["supplier_id"] if (line["supplier_id"],) in src.rows["companies"] else None,
            header["company_id"] if (header["company_id"],) in src.rows["companies"] else None,
            header["customer_document_no"] if (header["customer_document_no"],) in src.rows["customers"] else None,
            line["quantity"], line["line_total"],
        )
    got = {}
    for r in rows(
        "SELECT f.order_no, f.order_line_no, f.order_date_key, "
        "CASE WHEN f.product_key = -1 THEN NULL ELSE p.product_code END, "
        "CASE WHEN f.product_key = -1 THEN NULL ELSE p.supplier_id END, "
        "CASE WHEN f.supplier_company_key = -1 THEN NULL ELSE s.company_id END, "
        "CASE WHEN f.seller_company_key = -1 THEN NULL ELSE c.company_id END, "
        "CASE WHEN f.customer_key = -1 THEN NULL ELSE u.customer_document_no END, f.quantity, f.line_total, "
        "(p.product_key IS NULL OR s.company_key IS NULL OR c.company_key IS NULL OR u.customer_key IS NULL "
        " OR d.date_key IS NULL) AS dangling "
        "FROM pres.fact_order_line f LEFT JOIN pres.dim_product p USING (product_key) "
        "LEFT JOIN pres.dim_company s ON s.company_key = f.supplier_company_key "
        "LEFT JOIN pres.dim_company c ON c.company_key = f.seller_company_key "
        "LEFT JOIN pres.dim_customer u ON u.customer_key = f.customer_key "
        "LEFT JOIN pres.dim_date d ON d.date_key = f.order_date_key"
    ):
        order_no, line_no, date_key, code, sup, supplier, seller, customer, qty, total, dangling = r
        assert not dangling, r
        got[(order_no, line_no)] = (date_key, None if code is None else (code, int(sup)),
                                    None if supplier is None else int(supplier), None if seller is None else int(seller),
                                    customer, qty, total)
    missing = sorted(set(want) - set(got))[:5]
    extra = sorted(set(got) - set(want))[:5]
    wrong = [(k, want[k], got[k]) for k in sorted(set(want) & set(got)) if want[k] != got[k]][:5]
    assert not missing and not extra and not wrong, f"fact_order_line: missing {missing} extra {extra} wrong {wrong}"
    # the designed orphans are there
    assert got[("SO-1", 2)][1] is None and got[("o'brien\\1", 2)][1:3] == (None, None)
    assert got[("ORPHAN-CUST", 1)][3:5] == (None, None) and got[("NO-CUSTOMER", 1)][3:5] == (None, None)

    # weblog facts: one per parsed line; customer by exact (case-sensitive) username, else -1
    users = {r["username"]: r["customer_document_no"] for r in src.rows["customers"].values() if r["username"]}
    want_web = sorted((
        (users.get(user) if user != "-" else None, user != "-", country or None, device,
         -1 if utc.year == 1900 else int(utc.strftime("%Y%m%d")))
        for utc, user, country, device in truth
    ), key=repr)
    got_web = sorted((
        (doc, is_login, code, device, date_key) for doc, is_login, code, device, date_key in rows(
            "SELECT CASE WHEN f.customer_key = -1 THEN NULL ELSE u.customer_document_no END, f.is_login, "
            "CASE WHEN f.country_key = -1 THEN NULL ELSE k.country_code END, v.device, f.request_date_key "
            "FROM pres.fact_weblog_access f JOIN pres.dim_customer u USING (customer_key) "
            "JOIN pres.dim_country k USING (country_key) JOIN pres.dim_device v USING (device_key) "
            "JOIN pres.dim_date d ON d.date_key = f.request_date_key")
    ), key=repr)
    assert got_web == want_web, [x for x in zip(want_web, got_web) if x[0] != x[1]][:5]
    conn.close()


# ---------------------------------------------------------------------------------------------


def make_source(project, unknown_totals=False):
    """Create and fill the source database and write the access log; returns (rows, connection, IP pool, truth)."""
    src = build_source(unknown_totals)
    server = mysql_connect()
    server.cursor().execute(f"CREATE DATABASE `{project.source_db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    server.close()
    conn = project.mysql()
    src.insert_all(conn)
    pool = IpPool(random.Random(11), {"DE", "US", "GB", "JP", "FR", "AU"}, per_country=2)
    lines, truth = build_log(pool)
    (project.root / "logs").mkdir()
    (project.root / "logs" / "access.log").write_bytes(b"".join(lines))
    return src, conn, pool, truth


def test_a_foreign_source_end_to_end(project):
    src, conn, pool, truth = make_source(project)
    logs = project.root / "logs"

    # the design holds what it is meant to test
    expected = expected_reports(src, truth)
    revenue = expected["sql_top_10_revenue_products"]
    assert [(r[1], r[2]) for r in revenue[1:4]] == [("B-1", 9), ("B-1", 10), ("B-1", MAX)]
    assert [r[1] for r in revenue[4:7]] == ["a-1", "b-1", "Ä-1"] and len({r[6] for r in revenue[1:7]}) == 1
    assert expected["sql_most_popular_products_from_country_with_most_logins"][0][0] == "DE"
    devices = expected["sql_top_5_most_used_devices"]
    assert [d for d, *_ in devices] == ["Windows", "iPhone", "Macintosh", "Android", "Other"], devices
    assert devices[0][1] == devices[1][1] and devices[4][1] == sum(
        1 for utc, user, _, device in truth if user != "-" and utc.year == LY and device == "iPad")

    project.run()
    # 1. store = source, row for row (bit, unsigned, double, timestamp(3) compared by value)
    assert_store_equals_source(project)
    # 2. the star schema
    assert_star_consistent(project, src, truth)
    # 3. the reports (run as the files are) = the oracle
    first = report_diffs(project, expected)
    # the runner wrote them too
    folder = project.root / "reports" / "1"
    assert all((folder / f"{name}.csv").exists() for name in REPORT_COLUMNS) and (folder / "dashboard.html").exists()

    # 4. a second run changes nothing
    store_before = snapshot(project, "store_mysql")
    pres_before = snapshot(project, "pres", drop=("etl_updated_datetime",))
    pres_stamps_before = snapshot(project, "pres")
    project.run()
    assert snapshot(project, "store_mysql") == store_before
    assert snapshot(project, "pres", drop=("etl_updated_datetime",)) == pres_before
    restamped = {t: sum(a != b for a, b in zip(rows, snapshot(project, "pres")[t]))
                 for t, rows in pres_stamps_before.items()}
    restamped = {t: n for t, n in restamped.items() if n}

    # a small change: names to NULL, a soft-deleted line, a new line, two more log lines
    cur = conn.cursor()
    cur.execute("UPDATE products SET product_name = NULL, updated_datetime = UTC_TIMESTAMP(3) "
                "WHERE product_code = 'a-1' AND supplier_id = 9")
    src.rows["products"][("a-1", 9)]["product_name"] = None
    cur.execute("UPDATE customers SET customer_full_name = NULL, updated_datetime = UTC_TIMESTAMP(3) "
                "WHERE customer_document_no = 'CUST-001'")
    src.rows["customers"][("CUST-001",)]["customer_full_name"] = None
    cur.execute("UPDATE order_lines SET is_deleted = 1, updated_datetime = UTC_TIMESTAMP(3) "
                "WHERE order_no = 'so-1' AND order_line_no = 1")
    src.rows["order_lines"][("so-1", 1)]["is_deleted"] = 1
    new = src.add("order_lines", order_no="SO-1", order_line_no=4, order_date=ts(LY, 3, 10, 9, 30), product_code="Ä-1",
                  supplier_id=10, unit_price=0.01, quantity=D("0.500"), line_total=D("0.0050000000"), is_deleted=None,
                  updated_datetime=datetime.now(timezone.utc).replace(tzinfo=None))
    cur.execute("INSERT INTO order_lines (order_no, order_line_no, order_date, product_code, supplier_id, unit_price, "
                "quantity, line_total, created_datetime, updated_datetime, is_deleted) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3), NULL)",
                [new[c] for c in ("order_no", "order_line_no", "order_date", "product_code", "supplier_id", "unit_price",
                                  "quantity", "line_total")])
    more = [(datetime(LY, 11, 11, 11), "carol_99", pool.by_country["JP"][0], "JP", "Windows"),
            (datetime(LY, 11, 12, 11), "nocountry", pool.by_country["JP"][1], "JP", "Windows")]
    agent = next(a for a, d, _ in AGENTS if d == "Windows")
    with open(logs / "access.log", "ab") as handle:
        for utc, user, ip, country, device in more:
            handle.write(f'{ip} - {user} [{utc.strftime("%d/%b/%Y:%H:%M:%S")} +0000] "GET /new HTTP/1.1" 200 5 "-" '
                         f'"{agent}"\n'.encode())
            truth.append((utc, user, country, device))
    # and a hard delete: the row stays in store as a tombstone and leaves the facts
    cur.execute("DELETE FROM order_lines WHERE order_no = 'F/3' AND order_line_no = 1")
    del src.rows["order_lines"][("F/3", 1)]
    conn.close()
    project.run()
    assert_store_equals_source(project)
    assert_star_consistent(project, src, truth)
    # SCD2: the renamed product has a closed version (old name) and a current one (NULL name);
    # last year's orders keep the version valid on their order date
    pg = project.pg()
    pcur = pg.cursor()
    pcur.execute("SELECT product_key, product_name, is_current FROM pres.dim_product "
                 "WHERE product_code = 'a-1' AND supplier_id = 9 ORDER BY valid_from")
    versions = pcur.fetchall()
    assert [(name, current) for _, name, current in versions] == [("alpha", False), (None, True)], versions
    pcur.execute("SELECT DISTINCT f.product_key FROM pres.fact_order_line f JOIN store_mysql.order_lines l "
                 "USING (order_no, order_line_no) WHERE l.product_code = 'a-1' AND l.supplier_id = 9")
    assert pcur.fetchall() == [(versions[0][0],)]
    pg.close()
    third = report_diffs(project, expected_reports(src, truth))
    assert not first and not third, "reports differ from the oracle\nrun 1:\n" + "\n".join(first) + "\nrun 3:\n" + \
        "\n".join(third) + f"\n(pres rows re-stamped by the no-op run: {json.dumps(restamped)})"


def test_products_with_unknown_totals_rank_last(project):
    """A product whose every last-year quantity (amount) is NULL is not the top product by quantity
    (revenue): its unknown total ranks after every known one."""
    src, conn, _, truth = make_source(project, unknown_totals=True)
    conn.close()
    expected = expected_reports(src, truth)
    assert any(r[6] is None for r in expected["sql_most_popular_products_from_country_with_most_logins"]) or any(
        t[4] is None for t in product_totals([r for r in sales(src) if r["customer_country"] == "DE"]))
    assert any(t[5] is None for t in product_totals(sales(src)))
    project.run()
    diffs = report_diffs(project, {name: expected[name] for name in (
        "sql_top_10_revenue_products", "sql_most_popular_products_from_country_with_most_logins")})
    assert not diffs, "\n".join(diffs)
