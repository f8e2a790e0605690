"""Schema drift: widened source types follow automatically, new metadata columns are backfilled,
narrowing is a clear error, source columns outside the metadata are reported and ignored."""

from __future__ import annotations

import yaml

from tests.support.catalog import column_type
from tests.support.oracle import assert_store_equals_source


def test_widening_new_columns_and_narrowing(project):
    project.populate("--scale", "0.001", "--seed", "41")
    project.run()
    src = project.mysql()
    cur = src.cursor()
    # widen two columns and use the new room; add a source column the metadata does not list
    cur.execute("ALTER TABLE customers MODIFY city VARCHAR(300) NOT NULL")
    cur.execute("ALTER TABLE products MODIFY default_price DECIMAL(14,2) NOT NULL")
    cur.execute("ALTER TABLE customers ADD COLUMN loyalty_tier VARCHAR(10) NULL")
    cur.execute("UPDATE customers SET loyalty_tier = 'gold'")
    cur.execute("UPDATE customers SET city = REPEAT('x', 250), updated_datetime = UTC_TIMESTAMP() LIMIT 1")
    cur.execute("UPDATE products SET default_price = 123456789012.34, updated_datetime = UTC_TIMESTAMP() LIMIT 1")
    proc = project.run()
    assert "source columns not in the metadata, not extracted: loyalty_tier" in proc.stderr
    assert "column city widened from character varying(100) to varchar(300)" in proc.stderr
    assert_store_equals_source(project)
    for schema, table in (("landing", "mysql_customers"), ("store_mysql", "customers")):
        assert column_type(project, schema, table, "city") == "character varying(300)"
    assert column_type(project, "store_mysql", "products", "default_price") == "numeric(14,2)"
    # pres columns follow the store's types, keeping their rows, and hold the new values
    assert "pres.dim_customer.city: character varying(100) -> character varying(300)" in proc.stderr
    assert column_type(project, "pres", "dim_customer", "city") == "character varying(300)"
    assert column_type(project, "pres", "dim_product", "default_price") == "numeric(14,2)"
    conn = project.pg()
    pcur = conn.cursor()
    pcur.execute("SELECT count(*) FROM pres.dim_customer WHERE city = repeat('x', 250)")
    assert pcur.fetchone()[0] == 1
    pcur.execute("SELECT count(*), count(*) FILTER (WHERE NOT is_current) FROM pres.dim_product "
                 "WHERE (product_code, supplier_id) IN (SELECT product_code, supplier_id FROM store_mysql.products "
                 "WHERE default_price = 123456789012.34)")
    assert pcur.fetchone() == (2, 1)  # SCD type 2: the old version closed, the new one current
    conn.close()

    # the metadata now lists the new column: added to landing and store, and filled for every row
    path = project.root / "extract_config" / "mysql_tables.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["customers"]["columns"].append("loyalty_tier")
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = project.run()
    assert "loyalty_tier new in the metadata; extracting the whole table once" in proc.stderr
    assert_store_equals_source(project)
    conn = project.pg()
    pcur = conn.cursor()
    pcur.execute("SELECT count(*) FILTER (WHERE loyalty_tier = 'gold'), count(*) FROM store_mysql.customers")
    gold, total = pcur.fetchone()
    assert gold == total > 0
    conn.close()

    # narrowing is refused with the table, column and both types named
    cur.execute("UPDATE customers SET city = LEFT(city, 100)")
    cur.execute("ALTER TABLE customers MODIFY city VARCHAR(150) NOT NULL")
    cur.execute("UPDATE customers SET updated_datetime = UTC_TIMESTAMP() LIMIT 1")
    src.close()
    proc = project.run(expect=30)
    assert ("table 'customers': column 'city' is character varying(300) in landing.mysql_customers but the source "
            "now gives varchar(150)") in proc.stderr
