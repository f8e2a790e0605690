"""The pres star schema: SCD2 products, SCD1 customers, facts keyed to the right dimension rows.

Runs on both source variants (tests.support.project.VARIANTS): the sample's integer company ids and NOT NULL
names, and the strings variant's varchar company ids, bigint order numbers and NULL attributes.
"""

from __future__ import annotations


def one(cur, query, params=None):
    cur.execute(query, params)
    return cur.fetchone()


# fact table -> (dimension key column, dimension table)
FACT_KEYS = {
    "fact_order_line": [("order_date_key", "dim_date", "date_key"), ("product_key", "dim_product", "product_key"),
                        ("supplier_company_key", "dim_company", "company_key"),
                        ("seller_company_key", "dim_company", "company_key"),
                        ("customer_key", "dim_customer", "customer_key")],
    "fact_weblog_access": [("request_date_key", "dim_date", "date_key"), ("device_key", "dim_device", "device_key"),
                           ("country_key", "dim_country", "country_key"),
                           ("customer_key", "dim_customer", "customer_key")],
}
# dimension -> (store table, natural key, NULL-able attributes compared with store)
DIMENSIONS = {
    "dim_company": ("companies", "company_id", ("company_name", "country")),
    "dim_customer": ("customers", "customer_document_no", ("customer_full_name", "username", "city", "country",
                                                          "date_of_birth")),
}


def assert_star_consistent(cur) -> None:
    """Every fact key is found in its dimension; dimensions equal store (natural keys, NULLs kept)."""
    for fact, keys in FACT_KEYS.items():
        for column, dim, dim_key in keys:
            assert one(cur, f"SELECT count(*) FROM pres.{fact} f LEFT JOIN pres.{dim} d ON d.{dim_key} = f.{column} "
                            f"WHERE d.{dim_key} IS NULL") == (0,), (fact, column)
    for dim, (table, natural, attributes) in DIMENSIONS.items():
        cols = ", ".join((natural, *attributes))
        cur.execute(f"SELECT {cols} FROM store_mysql.{table} EXCEPT ALL SELECT {cols} FROM pres.{dim} "
                    f"WHERE {natural} IS NOT NULL")
        assert cur.fetchall() == [], dim
        assert one(cur, f"SELECT count(*) FROM pres.{dim}") == (one(cur, f"SELECT count(*) FROM store_mysql.{table}")[0] + 1,)
    cur.execute("SELECT product_code, supplier_id, product_name, default_price FROM store_mysql.products "
                "EXCEPT ALL SELECT product_code, supplier_id, product_name, default_price FROM pres.dim_product "
                "WHERE is_current")
    assert cur.fetchall() == []


def pres_rows(cur, table: str, order: str) -> list[tuple]:
    """Every row of a pres table without its etl_updated_datetime, in ``order``."""
    cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = 'pres' AND table_name = %s "
                "AND column_name <> 'etl_updated_datetime' ORDER BY ordinal_position", [table])
    columns = ", ".join(name for (name,) in cur.fetchall())
    cur.execute(f"SELECT {columns} FROM pres.{table} ORDER BY {order}")
    return cur.fetchall()


def assert_merged_equals_full_build(project, cur) -> None:
    """The incrementally merged report table and fact equal a full build of them from the same store."""
    merged = {t: pres_rows(cur, t, "order_no, order_line_no") for t in ("report_order_lines", "fact_order_line")}
    cur.execute("DELETE FROM etl_control.pres_watermark WHERE name IN ('report_order_lines', 'fact_order_line')")
    cur.connection.commit()
    project.run()  # a new sequence: those two files build in full, the others find nothing changed
    for table, rows in merged.items():
        assert pres_rows(cur, table, "order_no, order_line_no") == rows, table


def new_order_no(scur, n: int = 1):
    """An order number no generated order has, in the source column's type."""
    scur.execute("SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                 "AND TABLE_NAME = 'order_headers' AND COLUMN_NAME = 'order_no'")
    (data_type,) = scur.fetchone()
    return 99_000_000_000_000 + n if "int" in data_type else f"SCD2-{n}"


def test_star_schema_scd2_scd1_and_fact_keys(project, variant):
    project.populate("--scale", "0.002", "--seed", "17")
    logs = project.root / "logs"
    logs.mkdir()
    src = project.mysql()
    scur = src.cursor()
    scur.execute("SELECT username FROM customers WHERE username IS NOT NULL ORDER BY username LIMIT 1")
    (user,) = scur.fetchone()
    (logs / "access.log").write_text(
        f'8.8.8.8 - {user} [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "curl/8"\n'
        '10.0.0.1 - - [31/Feb/2025:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "-"\n'
    )
    # an order dated tomorrow of the product whose price changes below (it is picked the same way)
    scur.execute("SELECT l.product_code, l.supplier_id FROM order_lines l "
                 "JOIN order_headers h USING (order_no) WHERE l.is_deleted = 0 AND h.is_deleted = 0 "
                 "GROUP BY 1, 2 ORDER BY COUNT(*) DESC, 1, 2 LIMIT 1")
    code, supplier = scur.fetchone()
    scur.execute("SELECT company_id FROM companies ORDER BY company_id LIMIT 1")
    (seller,) = scur.fetchone()
    scur.execute("SELECT customer_document_no FROM customers ORDER BY customer_document_no LIMIT 1")
    (customer,) = scur.fetchone()
    tomorrow = new_order_no(scur, 2)
    scur.execute("INSERT INTO order_headers (order_no, order_date, company_id, customer_document_no, total, "
                 "created_datetime, updated_datetime, is_deleted) VALUES "
                 "(%s, UTC_DATE() + INTERVAL 1 DAY, %s, %s, 10, UTC_TIMESTAMP(), UTC_TIMESTAMP(), 0)",
                 [tomorrow, seller, customer])
    scur.execute("INSERT INTO order_lines (order_no, order_line_no, order_date, product_code, supplier_id, unit_price, "
                 "quantity, line_total, created_datetime, updated_datetime, is_deleted) "
                 "VALUES (%s, 1, UTC_DATE() + INTERVAL 1 DAY, %s, %s, 10, 1, 10, UTC_TIMESTAMP(), UTC_TIMESTAMP(), 0)",
                 [tomorrow, code, supplier])
    project.run()
    pg = project.pg()
    cur = pg.cursor()

    # unknown members
    for table, key in (("dim_date", "date_key"), ("dim_company", "company_key"), ("dim_customer", "customer_key"),
                       ("dim_product", "product_key"), ("dim_device", "device_key"), ("dim_country", "country_key")):
        assert one(cur, f"SELECT count(*) FROM pres.{table} WHERE {key} = -1") == (1,), table

    # one current version per product; facts cover every live line, with every key found
    assert one(cur, "SELECT count(*) FROM pres.dim_product WHERE is_current") == one(cur, "SELECT count(*) FROM store_mysql.products")
    assert one(cur, "SELECT count(*), sum(line_total) FROM pres.fact_order_line") == one(
        cur, "SELECT count(*), sum(line_total) FROM pres.report_order_lines")
    assert one(cur, "SELECT count(*) FROM pres.fact_order_line WHERE -1 IN "
                    "(order_date_key, product_key, supplier_company_key, seller_company_key, customer_key)") == (0,)
    assert one(cur, "SELECT count(*) FROM pres.fact_order_line f JOIN pres.dim_product p USING (product_key) "
                    "JOIN store_mysql.order_lines l USING (order_no, order_line_no) "
                    "WHERE (p.product_code, p.supplier_id) <> (l.product_code, l.supplier_id)") == (0,)
    # weblog facts: the unreadable timestamp and the anonymous request point at unknown members
    assert one(cur, "SELECT count(*), count(*) FILTER (WHERE request_date_key = -1), "
                    "count(*) FILTER (WHERE customer_key = -1), count(*) FILTER (WHERE country_key = -1) "
                    "FROM pres.fact_weblog_access") == (2, 1, 1, 1)
    assert_star_consistent(cur)
    if variant == "strings":  # NULL attributes reached the dimensions as NULL
        for dim, column in (("dim_company", "company_name"), ("dim_customer", "username"),
                            ("dim_customer", "date_of_birth"), ("dim_product", "product_name")):
            assert one(cur, f"SELECT count(*) FROM pres.{dim} WHERE {column} IS NULL")[0] > 0, (dim, column)

    # SCD2: change the price of a product that has orders; add an order for it dated today
    old_key = one(cur, "SELECT product_key FROM pres.dim_product WHERE product_code = %s AND supplier_id = %s", [code, supplier])[0]
    assert one(cur, "SELECT product_key FROM pres.fact_order_line WHERE order_no = %s", [tomorrow]) == (old_key,)
    scur.execute("UPDATE products SET default_price = default_price + 1, updated_datetime = UTC_TIMESTAMP() "
                 "WHERE product_code = %s AND supplier_id = %s", [code, supplier])
    # SCD1: the product's supplier is renamed (its report rows change, its fact rows keep their keys)
    scur.execute("UPDATE companies SET company_name = 'Renamed Supplier', updated_datetime = UTC_TIMESTAMP() "
                 "WHERE company_id = %s", [supplier])
    order_no = new_order_no(scur)
    scur.execute("INSERT INTO order_headers (order_no, order_date, company_id, customer_document_no, total, "
                 "created_datetime, updated_datetime, is_deleted) "
                 "VALUES (%s, UTC_DATE(), %s, %s, 10, UTC_TIMESTAMP(), UTC_TIMESTAMP(), 0)", [order_no, seller, customer])
    scur.execute("INSERT INTO order_lines (order_no, order_line_no, order_date, product_code, supplier_id, unit_price, "
                 "quantity, line_total, created_datetime, updated_datetime, is_deleted) "
                 "VALUES (%s, 1, UTC_DATE(), %s, %s, 10, 1, 10, UTC_TIMESTAMP(), UTC_TIMESTAMP(), 0)",
                 [order_no, code, supplier])
    # SCD1: a customer's name changes
    scur.execute("UPDATE customers SET customer_full_name = 'Renamed Person', updated_datetime = UTC_TIMESTAMP() "
                 "WHERE customer_document_no = %s", [customer])
    customer_key = one(cur, "SELECT customer_key FROM pres.dim_customer WHERE customer_document_no = %s", [customer])[0]
    # headers: one soft-deleted, one moved to another customer, one whose total alone changes
    # (none of them sold by, or with a line of, the supplier renamed above, nor bought by the renamed customer)
    scur.execute("SELECT h.order_no FROM order_headers h WHERE h.is_deleted = 0 AND h.customer_document_no <> %s "
                 "AND h.company_id <> %s AND h.order_no <> %s "
                 "AND EXISTS (SELECT 1 FROM order_lines l WHERE l.order_no = h.order_no AND l.is_deleted = 0) "
                 "AND NOT EXISTS (SELECT 1 FROM order_lines l WHERE l.order_no = h.order_no AND l.supplier_id = %s) "
                 "ORDER BY h.order_no LIMIT 3", [customer, supplier, tomorrow, supplier])
    deleted, moved, retotalled = (row[0] for row in scur.fetchall())
    scur.execute("UPDATE order_headers SET is_deleted = 1, updated_datetime = UTC_TIMESTAMP() WHERE order_no = %s", [deleted])
    scur.execute("UPDATE order_headers SET customer_document_no = %s, updated_datetime = UTC_TIMESTAMP() "
                 "WHERE order_no = %s", [customer, moved])
    scur.execute("UPDATE order_headers SET total = total + 1, updated_datetime = UTC_TIMESTAMP() WHERE order_no = %s",
                 [retotalled])
    untouched = one(cur, "SELECT array_agg(etl_updated_datetime ORDER BY order_line_no) FROM pres.report_order_lines "
                         "WHERE order_no = %s", [retotalled])
    src.close()
    project.run()
    assert one(cur, "SELECT count(*) FROM pres.report_order_lines WHERE order_no = %s", [deleted]) == (0,)
    assert one(cur, "SELECT count(*) FROM pres.fact_order_line WHERE order_no = %s", [deleted]) == (0,)
    assert one(cur, "SELECT DISTINCT customer_document_no, customer_full_name FROM pres.report_order_lines "
                    "WHERE order_no = %s", [moved]) == (customer, "Renamed Person")
    assert one(cur, "SELECT DISTINCT customer_key FROM pres.fact_order_line WHERE order_no = %s", [moved]) == (customer_key,)
    # a header whose total alone changed rewrites none of its rows
    assert one(cur, "SELECT array_agg(etl_updated_datetime ORDER BY order_line_no) FROM pres.report_order_lines "
                    "WHERE order_no = %s", [retotalled]) == untouched

    cur.execute("SELECT product_key, valid_from, valid_to, is_current FROM pres.dim_product "
                "WHERE product_code = %s AND supplier_id = %s ORDER BY valid_from", [code, supplier])
    versions = cur.fetchall()
    assert len(versions) == 2
    (k1, from1, to1, current1), (k2, from2, to2, current2) = versions
    assert k1 == old_key and not current1 and current2 and k2 != old_key
    assert to1 == from2 and str(from1) == "1900-01-01 00:00:00" and str(to2) == "9999-12-31 00:00:00"
    cur.execute("SELECT f.product_key, count(*) FROM pres.fact_order_line f JOIN store_mysql.order_lines l "
                "USING (order_no, order_line_no) WHERE l.product_code = %s AND l.supplier_id = %s "
                "GROUP BY 1", [code, supplier])
    keys = dict(cur.fetchall())
    assert keys[k2] >= 1 and keys[old_key] >= 1  # old orders keep the old version, today's order the new one
    assert one(cur, "SELECT product_key FROM pres.fact_order_line WHERE order_no = %s", [order_no]) == (k2,)
    # tomorrow's order did not change, but the new version covers its date
    assert one(cur, "SELECT product_key FROM pres.fact_order_line WHERE order_no = %s", [tomorrow]) == (k2,)
    cur.execute("SELECT DISTINCT supplier_name FROM pres.report_order_lines WHERE supplier_id = %s", [supplier])
    assert cur.fetchall() == [("Renamed Supplier",)]
    # SCD1 overwrote in place: same key, one row, new name
    assert one(cur, "SELECT customer_key, customer_full_name FROM pres.dim_customer WHERE customer_document_no = %s",
               [customer]) == (customer_key, "Renamed Person")
    assert one(cur, "SELECT count(*) FROM pres.dim_customer WHERE customer_document_no = %s", [customer]) == (1,)
    # keys stay unique and facts complete after the incremental build
    assert one(cur, "SELECT count(*) - count(DISTINCT (order_no, order_line_no)) FROM pres.fact_order_line") == (0,)
    assert one(cur, "SELECT count(*), sum(line_total) FROM pres.fact_order_line") == one(
        cur, "SELECT count(*), sum(line_total) FROM pres.report_order_lines")
    assert_star_consistent(cur)
    # the soft-deleted order comes back to life: its rows return
    src = project.mysql()
    src.cursor().execute("UPDATE order_headers SET is_deleted = 0, updated_datetime = UTC_TIMESTAMP() WHERE order_no = %s",
                         [deleted])
    src.commit()
    src.close()
    project.run()
    assert one(cur, "SELECT count(*) FROM pres.report_order_lines WHERE order_no = %s", [deleted])[0] > 0
    assert one(cur, "SELECT count(*) FROM pres.fact_order_line WHERE order_no = %s", [deleted]) == one(
        cur, "SELECT count(*) FROM pres.report_order_lines WHERE order_no = %s", [deleted])
    assert_merged_equals_full_build(project, cur)
    pg.close()


def test_pres_refreshes_missing_and_stale_planner_statistics(project):
    """Tables changed by more than 10% since their last ANALYZE are analysed before a pres file; others not."""
    from etl.pres import refresh_statistics

    conn = project.pg()
    cur = conn.cursor()
    cur.execute('CREATE SCHEMA store_x; CREATE TABLE store_x."Big" (id int); CREATE TABLE store_x.other (id int); '
                "CREATE SCHEMA elsewhere; CREATE TABLE elsewhere.t (id int)")
    cur.execute('INSERT INTO store_x."Big" SELECT generate_series(1, 1000); INSERT INTO store_x.other VALUES (1); '
                "INSERT INTO elsewhere.t VALUES (1)")
    conn.commit()
    assert refresh_statistics(conn, ["store_x"]) == ['store_x."Big"', "store_x.other"]  # never analysed
    cur.execute("SELECT reltuples FROM pg_class WHERE relname = 'Big'")
    assert cur.fetchone()[0] == 1000
    assert refresh_statistics(conn, ["store_x"]) == []  # fresh
    cur.execute('INSERT INTO store_x."Big" SELECT generate_series(1, 50)')  # 5%: not stale
    conn.commit()
    assert refresh_statistics(conn, ["store_x"]) == []
    cur.execute('INSERT INTO store_x."Big" SELECT generate_series(1, 100)')  # 15% in all: stale
    conn.commit()
    assert refresh_statistics(conn, ["store_x"]) == ['store_x."Big"']
    conn.close()


def test_pres_tables_of_an_earlier_layout_are_matched_to_the_store_types(project):
    """pres tables made by an earlier release (integer ids, NOT NULL names) are altered in place to the
    store's types; the strings variant's varchar ids and NULL names then build (store type changes:
    test_schema_drift)."""
    from tests.support.catalog import column_type

    project.variant = "strings"
    project.populate("--scale", "0.002", "--seed", "5")
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("""CREATE SCHEMA pres;
        CREATE TABLE pres.dim_company (company_key integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            company_id integer UNIQUE, company_name text NOT NULL, country text, is_supplier smallint,
            is_deleted smallint, etl_updated_datetime timestamptz NOT NULL);
        CREATE TABLE pres.fact_order_line (order_no text NOT NULL, order_line_no integer NOT NULL,
            order_date_key integer NOT NULL, product_key integer NOT NULL, supplier_company_key integer NOT NULL,
            seller_company_key integer NOT NULL, customer_key integer NOT NULL, quantity integer,
            unit_price numeric, line_total numeric, etl_updated_datetime timestamptz NOT NULL,
            PRIMARY KEY (order_no, order_line_no))""")
    conn.commit()
    proc = project.run()
    assert "pres.dim_company.company_id: integer -> character varying(20)" in proc.stderr
    assert "pres.fact_order_line.order_no: text -> bigint" in proc.stderr
    assert column_type(project, "pres", "dim_company", "company_id") == "character varying(20)"
    assert column_type(project, "pres", "fact_order_line", "line_total") == "numeric(65,30)"
    assert one(cur, "SELECT count(*) FROM pres.dim_company WHERE company_name IS NULL")[0] > 0
    assert_star_consistent(cur)
    # nothing changed: the next build matches nothing again
    assert "matched to the store's column types" not in project.run().stderr
    conn.close()
