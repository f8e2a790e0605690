"""Hard deletes as tombstones, the delete guard and corrections, on both source variants.

Each test compares store with the source row for row (live rows) and checks the tombstones
key by key: a source row that was hard-deleted stays in store with ``etl_deleted_datetime``
set and its last seen values; pres reads live rows only.
"""

from __future__ import annotations

import json

from tests.support.oracle import assert_store_equals_source, norm, source_rows, store_rows

SCALE = "0.002"


def _keys(rows, width):
    return sorted(row[:width] for row in rows)


def _store_snapshot(project, table):
    """Every store row of ``table`` with the pipeline's own columns (to prove a refused step changed nothing)."""
    return store_rows(project, table, extra=("etl_updated_datetime", "etl_deleted_datetime", "etl_execution_sequence")) + \
        store_rows(project, table, extra=("etl_updated_datetime", "etl_deleted_datetime", "etl_execution_sequence"),
                   tombstones=True)


def test_hard_deletes_become_tombstones_and_come_back_to_life(project, variant):
    project.populate("--scale", SCALE, "--seed", "31")
    project.run()
    conn = project.mysql()
    cur = conn.cursor()
    # the newest live orders' lines (a soft-deleted line or header never reaches the report tables)
    chosen = ("FROM order_lines WHERE is_deleted = 0 AND order_no IN (SELECT order_no FROM order_headers WHERE "
              "is_deleted = 0) ORDER BY order_no DESC, order_line_no LIMIT 7")
    cur.execute("SELECT * " + chosen)
    deleted_lines = cur.fetchall()
    columns = [d[0] for d in cur.description]
    before = {r[:2]: r for r in store_rows(project, "order_lines")}
    cur.execute("DELETE " + chosen)
    conn.commit()
    project.run()
    assert_store_equals_source(project)
    tombstones = store_rows(project, "order_lines", tombstones=True)
    expected = sorted((norm(r[columns.index("order_no")]), norm(r[columns.index("order_line_no")])) for r in deleted_lines)
    assert _keys(tombstones, 2) == expected
    assert all(before[t[:2]] == t for t in tombstones)  # the last seen values are kept
    summary = json.loads((project.output(2) / "RunJob.json").read_text())
    assert {r["table"]: r["deleted"] for r in summary["tables"]}["order_lines"] == 7
    # pres reads live rows only
    pg = project.pg()
    pcur = pg.cursor()
    for table in ("report_order_lines", "fact_order_line"):
        pcur.execute(f"SELECT count(*) FROM pres.{table} AS p JOIN store_mysql.order_lines AS s "
                     "USING (order_no, order_line_no) WHERE s.etl_deleted_datetime IS NOT NULL")
        assert pcur.fetchone()[0] == 0, table
    # a no-op run leaves the tombstones as they are
    pcur.execute("SELECT order_no, order_line_no, etl_deleted_datetime, etl_updated_datetime FROM store_mysql.order_lines "
                 "WHERE etl_deleted_datetime IS NOT NULL ORDER BY 1, 2")
    stamped = pcur.fetchall()
    pg.commit()
    project.run()
    pcur.execute("SELECT order_no, order_line_no, etl_deleted_datetime, etl_updated_datetime FROM store_mysql.order_lines "
                 "WHERE etl_deleted_datetime IS NOT NULL ORDER BY 1, 2")
    assert pcur.fetchall() == stamped
    pg.commit()
    # two of the deleted lines come back (same keys, a new quantity): live again, with the new values
    marks = ", ".join(["%s"] * len(columns))
    cur.execute("SELECT UTC_TIMESTAMP(6)")
    (now,) = cur.fetchone()
    for row in deleted_lines[:2]:
        values = list(row)
        values[columns.index("quantity")] = 999
        values[columns.index("updated_datetime")] = now
        cur.execute(f"INSERT INTO order_lines ({', '.join(columns)}) VALUES ({marks})", values)
    conn.commit()
    conn.close()
    project.run()
    assert_store_equals_source(project)
    assert len(store_rows(project, "order_lines", tombstones=True)) == 5
    pcur.execute("SELECT count(*) FROM pres.report_order_lines WHERE quantity = 999")
    assert pcur.fetchone()[0] == 2
    pg.close()


def test_a_null_key_row_cannot_hide_a_delete(project, variant):
    """The count trigger counts complete keys only: a source row with a NULL key (never in store)
    no longer balances a hard delete."""
    project.populate("--scale", SCALE, "--seed", "32")
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute("CREATE TABLE tags (code VARCHAR(10) NULL, label VARCHAR(20), UNIQUE KEY (code))")
    cur.executemany("INSERT INTO tags VALUES (%s, %s)", [("a", "one"), ("b", "two"), ("c", "three"), (None, "nokey"),
                                                         ("d", "four"), ("e", "five")])
    conn.commit()
    project.add_table("tags", ["code", "label"], ["code"], is_incremental=False, watermark_column="")
    project.run()
    assert len(store_rows(project, "tags")) == 5
    cur.execute("DELETE FROM tags WHERE code = 'b'")
    conn.commit()
    conn.close()
    project.run()
    live = store_rows(project, "tags")
    assert live == sorted(r for r in source_rows(project, "tags") if r[0] != "<NULL>")
    assert store_rows(project, "tags", tombstones=True) == [("'b'", "'two'")]


def test_a_truncated_source_table_trips_the_delete_guard(project, variant):
    project.populate("--scale", SCALE, "--seed", "33")
    project.run()
    conn = project.mysql()
    cur = conn.cursor()
    # changes since the last run, not extracted yet when the table is truncated
    cur.execute("UPDATE order_lines SET quantity = quantity + 1000, updated_datetime = UTC_TIMESTAMP(6) "
                "ORDER BY order_no, order_line_no LIMIT 3")
    cur.execute("CREATE TABLE keep_lines AS SELECT * FROM order_lines")
    cur.execute("SELECT count(*) FROM order_lines")
    total = cur.fetchone()[0]
    cur.execute("TRUNCATE TABLE order_lines")
    conn.commit()
    before = _store_snapshot(project, "order_lines")
    pg = project.pg()
    pcur = pg.cursor()
    pcur.execute("SELECT watermark_value FROM etl_control.watermark WHERE table_name = 'order_lines'")
    watermark = pcur.fetchone()
    pg.commit()
    failed = project.run(expect=30)
    assert (f"table 'order_lines': this run would mark {total} of {total} live rows (100%) of store_mysql.order_lines "
            "as deleted, more than [dw_etl] max_delete_fraction = 0.5; nothing was applied") in failed.stderr
    assert "--dw-etl-allow-deletes order_lines" in failed.stderr
    assert _store_snapshot(project, "order_lines") == before  # nothing applied
    pcur.execute("SELECT watermark_value FROM etl_control.watermark WHERE table_name = 'order_lines'")
    assert pcur.fetchone() == watermark
    pg.commit()
    # the operator restores the source: the resumed run extracts the same window again (the changes made
    # before the truncation included), finishes, and nothing was lost
    cur.execute("INSERT INTO order_lines SELECT * FROM keep_lines")
    conn.commit()
    project.run()
    assert_store_equals_source(project)
    assert len([r for r in store_rows(project, "order_lines") if int(r[6]) >= 1000]) == 3
    assert store_rows(project, "order_lines", tombstones=True) == []
    # a mass delete that is meant: allowed for one run on the command line
    cur.execute("DELETE FROM order_lines WHERE order_no IN (SELECT order_no FROM (SELECT DISTINCT order_no FROM "
                "order_lines ORDER BY order_no LIMIT 1000) AS o) ")
    conn.commit()
    cur.execute("SELECT count(*) FROM order_lines")
    left = cur.fetchone()[0]
    conn.close()
    project.run(expect=30)
    project.run("--dw-etl-allow-deletes", "order_lines")
    assert_store_equals_source(project)
    assert len(store_rows(project, "order_lines", tombstones=True)) == total - left
    # the guard counts live rows: the next run, with no new delete, needs no permission
    project.run()
    pg.close()


def test_a_corrected_future_dated_row_is_stored_and_an_old_batch_never_wins(project, variant):
    project.populate("--scale", SCALE, "--seed", "34")
    project.run()
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute("SELECT customer_document_no FROM customers ORDER BY customer_document_no LIMIT 1")
    (key,) = cur.fetchone()
    cur.execute("UPDATE customers SET customer_full_name = 'Future', updated_datetime = UTC_TIMESTAMP() + INTERVAL 30 DAY "
                "WHERE customer_document_no = %s", [key])
    conn.commit()
    project.run()
    assert_store_equals_source(project)
    # corrected: the watermark goes backwards, to now; the later extract wins
    cur.execute("UPDATE customers SET customer_full_name = 'Corrected', updated_datetime = UTC_TIMESTAMP() "
                "WHERE customer_document_no = %s", [key])
    conn.commit()
    conn.close()
    project.run()
    assert_store_equals_source(project)
    name = [r for r in store_rows(project, "customers") if r[0] == norm(key)][0][1]
    assert name == "'Corrected'"
    # replaying sequence 2's store step (its landing batch holds the future-dated version) changes nothing
    before = _store_snapshot(project, "customers")
    (project.output(2) / "mysql_customers.store.json").unlink()
    project.run("--table", "customers", "--execution-sequence", "2", task="UpsertStoreTable")
    assert _store_snapshot(project, "customers") == before


def _set_field(project, table, **fields):
    """Rewrite one table's entry in the project's extract_config/mysql_tables.yaml."""
    import yaml

    path = project.root / "extract_config" / "mysql_tables.yaml"
    entries = yaml.safe_load(path.read_text())
    entries[table].update(fields)
    path.write_text(yaml.safe_dump(entries))


def test_a_mistaken_where_clause_is_guarded_and_reverting_it_restores_store(project, variant):
    project.populate("--scale", SCALE, "--seed", "35")
    project.run()
    everything = store_rows(project, "companies")
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute("SELECT count(*), sum(is_supplier = 1) FROM companies")
    total, suppliers = (int(v) for v in cur.fetchone())
    conn.close()
    # a guard below what the mistake drops (the sample has few non-suppliers; the default is 0.5)
    project.write_cfg(dw_etl={"max_delete_fraction": "0.2"})
    assert total - suppliers > 0.2 * total
    _set_field(project, "companies", where_clause="is_supplier = 1")
    failed = project.run(expect=30)
    assert f"this run would mark {total - suppliers} of {total} live rows" in failed.stderr
    assert store_rows(project, "companies") == everything and not store_rows(project, "companies", tombstones=True)
    # allowed once: the rows the where_clause no longer selects become tombstones
    project.run("--dw-etl-allow-deletes", "companies")
    assert len(store_rows(project, "companies")) == suppliers
    assert len(store_rows(project, "companies", tombstones=True)) == total - suppliers
    # reverting the YAML brings every row back to life, without hand-written SQL
    _set_field(project, "companies", where_clause="")
    done = project.run()
    assert "where_clause" in done.stderr
    assert store_rows(project, "companies") == everything
    assert not store_rows(project, "companies", tombstones=True)
    assert_store_equals_source(project)


def test_changed_unique_columns_set_the_old_store_table_aside(project, variant):
    project.populate("--scale", SCALE, "--seed", "36")
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute("CREATE TABLE tags (id INT PRIMARY KEY, code VARCHAR(10) NOT NULL, label VARCHAR(20), "
                "updated_datetime DATETIME(6) NOT NULL, UNIQUE KEY (code), KEY (updated_datetime))")
    cur.executemany("INSERT INTO tags VALUES (%s, %s, %s, UTC_TIMESTAMP(6) - INTERVAL 1 HOUR)",
                    [(i, f"c{i}", f"label {i}") for i in range(1, 9)])
    conn.commit()
    project.add_table("tags", ["id", "code", "label", "updated_datetime"], ["id"])
    project.run()
    first = store_rows(project, "tags")
    project.add_table("tags", ["id", "code", "label", "updated_datetime"], ["code"])
    cur.execute("UPDATE tags SET label = 'changed', updated_datetime = UTC_TIMESTAMP(6) WHERE id = 3")
    cur.execute("DELETE FROM tags WHERE id = 5")  # hard-deleted just before the re-key: kept as a tombstone
    conn.commit()
    conn.close()
    done = project.run()
    assert "kept as store_mysql.tags_before_s2" in done.stderr
    assert_store_equals_source(project)
    pg = project.pg()
    pcur = pg.cursor()
    pcur.execute('SELECT id, code, label FROM store_mysql.tags_before_s2 ORDER BY id')
    assert [tuple(norm(v) for v in r) for r in pcur.fetchall()] == [r[:3] for r in first]
    pg.close()
    # the row deleted before the re-key is a tombstone in the new table, with its last values
    assert store_rows(project, "tags", tombstones=True) == [first[4]]
    project.run()  # the next run is incremental on the new key
    assert_store_equals_source(project)
