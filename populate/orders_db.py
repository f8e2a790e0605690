"""Write the sample order database: create tables, bulk-load generated rows, apply daily changes."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlglot import exp

from etl import source_mysql
from etl.config import MySQLSettings
from populate.orders import SAMPLE, TABLE_OPTIONS, TABLES, VARIANTS, Generator, OrderContext, Sizes, Variant, utc_now

log = logging.getLogger(__name__)

INSERT_BATCH_ROWS = 5_000


def quoted(name: str) -> str:
    """Quote any name for MySQL (backticks, a backtick doubled) with sqlglot: the ``--database`` a user
    gives, and the tables' own names. ``'a`b'`` -> ```a``b```. Raises nothing."""
    return exp.to_identifier(name, quoted=True).sql(dialect="mysql")


def _insert(conn, table: str, rows, variant: Variant = SAMPLE) -> int:
    """Bulk-insert generated ``rows`` (tuples in COLUMNS order) in multi-row INSERT batches; returns the count.

    Columns are named (the variant's physical order may differ); the variant's extra columns
    get their values from ``variant.extras``.
    """
    columns = variant.insert_columns(table)
    marks = ", ".join(["%s"] * len(columns))
    statement = f"INSERT INTO {quoted(table)} ({', '.join(quoted(c) for c in columns)}) VALUES ({marks})"
    cur = conn.cursor()
    batch, count = [], 0
    for row in rows:
        batch.append(variant.full_row(table, row))
        if len(batch) >= INSERT_BATCH_ROWS:
            cur.executemany(statement, batch)
            count += len(batch)
            batch = []
    if batch:
        cur.executemany(statement, batch)
        count += len(batch)
    conn.commit()
    cur.close()
    return count


def source_is_empty(settings: MySQLSettings) -> bool:
    """True when the source database is missing or holds no order_headers rows."""
    with source_mysql.connection(settings, database=False) as conn:
        cur = conn.cursor()
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'order_headers'",
            [settings.database],
        )
        if cur.fetchone()[0] == 0:
            return True
        cur.execute(f"SELECT EXISTS (SELECT 1 FROM {quoted(settings.database)}.order_headers)")
        return not cur.fetchone()[0]


def detect_variant(conn, database: str) -> Variant:
    """The variant whose schema ``database`` holds: strings when order_headers.order_no is numeric."""
    cur = conn.cursor()
    cur.execute("SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                "AND TABLE_NAME = 'order_headers' AND COLUMN_NAME = 'order_no'", [database])
    row = cur.fetchone()
    cur.close()
    if row is None:
        raise RuntimeError(f"{database} has no order_headers.order_no; run python -m populate orders first")
    data_type = row[0].decode() if isinstance(row[0], (bytes, bytearray)) else row[0]
    return VARIANTS["strings"] if data_type.lower() == "bigint" else SAMPLE


def create_and_fill(settings: MySQLSettings, scale: float, seed: int, recreate: bool,
                    variant: Variant = SAMPLE) -> dict[str, int]:
    """Create the database and the six tables of ``variant`` (dropping them when ``recreate``) and fill them.

    Returns ``{table: rows inserted}``. Raises SourceError when MySQL is unreachable and
    RuntimeError when the tables exist and ``recreate`` is false.
    """
    sizes = Sizes.for_scale(scale)
    with source_mysql.connection(settings, database=False) as conn:
        cur = conn.cursor()
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {quoted(settings.database)} "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        cur.execute(f"USE {quoted(settings.database)}")
        conn.autocommit = False
        cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", [settings.database])
        existing = {r[0] for r in cur.fetchall()} & set(TABLES)
        if existing and not recreate:
            raise RuntimeError(
                f"tables {', '.join(sorted(existing))} already exist in {settings.database}; "
                "use --recreate to drop and refill them, or --changes PCT to change them"
            )
        for table in TABLES:
            cur.execute(f"DROP TABLE IF EXISTS {quoted(table)}")
            cur.execute(variant.ddl[table] + TABLE_OPTIONS)
        gen = Generator(seed, utc_now(variant.microseconds), variant)
        counts = {}
        started = time.monotonic()
        companies = gen.companies(sizes.companies)
        counts["companies"] = _insert(conn, "companies", companies, variant)
        customers = gen.customers(sizes.customers)
        counts["customers"] = _insert(conn, "customers", customers, variant)
        supplier_ids = [c[0] for c in companies if c[3]]
        products = gen.products(sizes.products, supplier_ids)
        counts["products"] = _insert(conn, "products", products, variant)
        company_ids = [c[0] for c in companies]
        prices = gen.product_prices(sizes.product_prices, products, company_ids)
        counts["product_prices"] = _insert(conn, "product_prices", prices, variant)
        ctx = OrderContext(
            company_ids=company_ids,
            customer_nos=[c[0] for c in customers],
            products=[(p[0], p[1], p[3]) for p in products],
            prices={(p[0], p[1]): p[2] for p in prices},
        )
        counts["order_headers"], counts["order_lines"] = _insert_orders(conn, gen.orders(1, sizes.orders, ctx), variant)
        log.info("filled %s in %.1f s: %s", settings.database, time.monotonic() - started, counts)
        cur.close()
        return counts


def _insert_orders(conn, orders, variant: Variant = SAMPLE) -> tuple[int, int]:
    headers, lines = [], []
    n_headers = n_lines = 0
    for header, header_lines in orders:
        headers.append(header)
        lines.extend(header_lines)
        if len(lines) >= 4 * INSERT_BATCH_ROWS:
            n_headers += _insert(conn, "order_headers", headers, variant)
            n_lines += _insert(conn, "order_lines", lines, variant)
            headers, lines = [], []
    n_headers += _insert(conn, "order_headers", headers, variant)
    n_lines += _insert(conn, "order_lines", lines, variant)
    return n_headers, n_lines


def apply_changes(settings: MySQLSettings, pct: float, seed: int, variant: Variant | None = None) -> dict[str, int]:
    """Simulate a day of activity touching about ``pct`` percent of the rows.

    The variant is read from the source's schema (see :func:`detect_variant`); a given
    ``variant`` that differs raises RuntimeError.

    Updates names/addresses/prices/quantities, soft-deletes customers and orders
    (``pct``/10 percent), and adds ``pct`` percent new orders dated today; every changed
    row gets ``updated_datetime = UTC_TIMESTAMP()``. Row choice is deterministic per seed
    (a CRC32 of the key and the seed). Returns ``{change: rows affected}``.
    """
    threshold = int(pct * 100)  # out of 10,000
    del_threshold = max(1, int(pct * 10)) if pct > 0 else 0
    counts = {}
    with source_mysql.connection(settings) as conn:
        found = detect_variant(conn, settings.database)
        if variant is not None and variant.name != found.name:
            raise RuntimeError(f"{settings.database} holds the {found.name} variant, not {variant.name}")
        variant = found
        now_sql = variant.now_sql
        conn.autocommit = False
        cur = conn.cursor()

        def pick(key_sql: str, salt: str, limit: int) -> str:
            return f"CRC32(CONCAT({key_sql}, ':{int(seed)}:{salt}')) % 10000 < {limit}"

        def run(name: str, statement: str) -> None:
            cur.execute(statement)
            counts[name] = cur.rowcount

        run("companies_renamed", f"UPDATE companies SET company_name = CONCAT(SUBSTRING_INDEX(company_name, ' #', 1), ' #{seed}'), "
            f"updated_datetime = {now_sql} WHERE {pick('company_id', 'c', threshold)}")
        run("customers_moved", f"UPDATE customers SET address_line_1 = CONCAT(CRC32(CONCAT(customer_document_no, '{seed}')) % 999, ' Changed Road'), "
            f"city = 'Nouvelle-Ville', updated_datetime = {now_sql} WHERE {pick('customer_document_no', 'm', threshold)}")
        run("customers_deleted", f"UPDATE customers SET is_deleted = 1, updated_datetime = {now_sql} "
            f"WHERE is_deleted = 0 AND {pick('customer_document_no', 'd', del_threshold)}")
        run("products_repriced", f"UPDATE products SET default_price = ROUND(default_price * 1.05, 2), updated_datetime = {now_sql} "
            f"WHERE default_price < 9000000 AND {pick('CONCAT(product_code, supplier_id)', 'p', threshold)}")
        run("prices_changed", f"UPDATE product_prices SET price = GREATEST(0.01, ROUND(price * 0.97, 2)), updated_datetime = {now_sql} "
            f"WHERE {pick('CONCAT(product_code, selling_company_id)', 'q', threshold)}")
        # the keys take the source's own types (VARCHAR or BIGINT order numbers)
        cur.execute(f"CREATE TEMPORARY TABLE changed_lines (PRIMARY KEY (order_no, order_line_no)) "
                    f"SELECT order_no, order_line_no FROM order_lines "
                    f"WHERE is_deleted = 0 AND {pick('CONCAT(order_no, order_line_no)', 'l', threshold)}")
        run("lines_requantified", f"UPDATE order_lines l JOIN changed_lines c USING (order_no, order_line_no) "
            # the total first, from the new quantity spelt out: MariaDB's multi-table UPDATE reads the old
            # l.quantity in later assignments (line_total stayed price x old quantity before)
            f"SET l.line_total = l.unit_price * (l.quantity + 1), l.quantity = l.quantity + 1, l.updated_datetime = {now_sql}")
        cur.execute(f"UPDATE order_headers h JOIN (SELECT order_no, SUM(line_total) AS total FROM order_lines "
                    f"WHERE order_no IN (SELECT order_no FROM changed_lines) GROUP BY order_no) s USING (order_no) "
                    f"SET h.total = s.total, h.updated_datetime = {now_sql}")
        cur.execute("DROP TEMPORARY TABLE changed_lines")
        run("orders_deleted", f"UPDATE order_headers SET is_deleted = 1, updated_datetime = {now_sql} "
            f"WHERE is_deleted = 0 AND {pick('order_no', 'x', del_threshold)}")
        cur.execute(f"UPDATE order_lines l JOIN order_headers h USING (order_no) SET l.is_deleted = 1, l.updated_datetime = {now_sql} "
                    f"WHERE h.is_deleted = 1 AND l.is_deleted = 0")
        conn.commit()

        cur.execute(f"SELECT COUNT(*), COALESCE(MAX({variant.order_index_sql}), 0) FROM order_headers")
        n_orders, max_no = cur.fetchone()
        max_no = int(max_no)
        cur.execute(f"SELECT {now_sql}")
        now = cur.fetchone()[0]
        if not variant.microseconds:
            now = now.replace(microsecond=0)
        new_orders = int(n_orders * pct / 100)
        if new_orders:
            cur.execute("SELECT company_id FROM companies WHERE is_deleted = 0 ORDER BY company_id")
            company_ids = [r[0] for r in cur.fetchall()]
            cur.execute("SELECT customer_document_no FROM customers WHERE is_deleted = 0 ORDER BY 1")
            customer_nos = [r[0] for r in cur.fetchall()]
            cur.execute("SELECT product_code, supplier_id, default_price FROM products WHERE is_deleted = 0 ORDER BY 1, 2")
            products = [tuple(r) for r in cur.fetchall()]
            cur.execute("SELECT product_code, selling_company_id, price FROM product_prices WHERE is_deleted = 0")
            prices = {(r[0], r[1]): r[2] for r in cur.fetchall()}
            gen = Generator(seed * 7919 + max_no, now, variant)
            ctx = OrderContext(company_ids, customer_nos, products, prices)
            today = now.date()
            counts["orders_added"], counts["lines_added"] = _insert_orders(
                conn, gen.orders(max_no + 1, new_orders, ctx, order_dates=(today - timedelta(days=1), today), fresh=True),
                variant,
            )
        conn.commit()
        cur.close()
    log.info("applied %.2f%% changes to %s: %s", pct, settings.database, counts)
    return counts
