"""Metadata changes (etl.metadata_change): a changed table is extracted in full, and a change between a
failed run and its resume loses no rows (real MariaDB and PostgreSQL, the whole job).

The fingerprint rules themselves: tests/unit/test_metadata_change.py. What the store step does
with the recorded ``metadata_changes`` (reconciling store with the source) is not tested here.
"""

from __future__ import annotations

import yaml

from tests.support.oracle import assert_store_equals_source, source_rows

SCALE = "0.002"  # 500 orders, 100 customers

REFUSE_STORE = """
CREATE FUNCTION public.refuse_store() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'store refused by the test'; END$$;
CREATE TRIGGER refuse_store BEFORE INSERT OR UPDATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_store();
"""


def set_metadata(project, table: str, **fields) -> None:
    """Change ``fields`` of ``table`` in the project's extract_config/mysql_tables.yaml."""
    path = project.root / "extract_config" / "mysql_tables.yaml"
    doc = yaml.safe_load(path.read_text())
    doc[table].update(fields)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def recorded(project, sequence: int, table: str) -> dict:
    """What etl_control holds for (sequence, table): the window, the extract's rows and its metadata changes."""
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT w.window_start, w.window_end, r.extracted_rows, r.metadata_changes, w.metadata_changes, "
                "r.metadata_fingerprint = w.metadata_fingerprint FROM etl_control.extract_window w "
                "JOIN etl_control.table_run r USING (execution_sequence, table_name) "
                "WHERE execution_sequence = %s AND table_name = %s", [sequence, table])
    row = cur.fetchone()
    conn.close()
    assert row is not None, f"nothing recorded for {table} in sequence {sequence}"
    keys = ("window_start", "window_end", "extracted_rows", "metadata_changes", "window_changes", "same_fingerprint")
    return dict(zip(keys, row))


def source_count(project, table: str, where: str = "1 = 1") -> int:
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute(f"SELECT count(*) FROM `{table}` WHERE {where}")
    (count,) = cur.fetchone()
    conn.close()
    return count


def warnings_about(proc, table: str) -> list[str]:
    return [line for line in proc.stderr.splitlines() if f"table {table}: metadata changed" in line]


def test_a_landing_table_changed_between_a_failed_run_and_its_resume_loses_no_rows(project, variant):
    """The reported loss: landing ran, store failed, landing_table changed, resume. Now the resume
    redoes the table's chain under the new metadata, in full, and store equals source."""
    project.populate("--scale", SCALE, "--seed", "71")
    project.run()
    project.populate("--changes", "10", "--seed", "72")  # rows sequence 2 extracts and lands, then store fails
    admin = project.pg()
    admin.autocommit = True
    admin.cursor().execute(REFUSE_STORE.format(table="store_mysql.customers"))
    failed = project.run(expect=None)
    assert failed.returncode != 0 and "store refused by the test" in failed.stderr
    out = project.output(2)
    assert (out / "mysql_customers.landing.json").exists() and not (out / "mysql_customers.store.json").exists()
    changed_before = recorded(project, 2, "customers")["extracted_rows"]
    assert changed_before > 0  # the rows the old landing table holds and store never got
    admin.cursor().execute("DROP TRIGGER refuse_store ON store_mysql.customers")
    admin.close()

    set_metadata(project, "customers", landing_table="landing.mysql_customers_v2")
    src = project.mysql()
    cur = src.cursor()  # and rows changed after the failed run's window
    cur.execute("UPDATE customers SET address_line_1 = CONCAT('moved ', customer_document_no), "
                "updated_datetime = UTC_TIMESTAMP() ORDER BY customer_document_no LIMIT 3")
    src.commit()
    src.close()
    resumed = project.run()
    assert "execution sequence 2 (latest known 2)" in resumed.stderr
    redo, extract = warnings_about(resumed, "customers")  # RunJob redoes the chain, its extract reads it all
    assert ('metadata changed since sequence 2 extracted it (landing_table: "landing.mysql_customers" -> '
            '"landing.mysql_customers_v2"); redoing its extract, landing and store of sequence 2') in redo
    assert ('metadata changed since store last committed it (sequence 1): landing_table: "landing.mysql_customers" '
            '-> "landing.mysql_customers_v2"; extracting the whole table') in extract
    assert warnings_about(resumed, "products") == []  # unchanged tables keep what they did
    assert (out / "RunJob.json").exists()
    assert_store_equals_source(project)
    # a whole-table extract (the committed fingerprint is sequence 1's), landed in the new landing table
    run = recorded(project, 2, "customers")
    assert run["window_start"] is None and run["metadata_changes"] == ["landing_table"] == run["window_changes"]
    assert run["extracted_rows"] == source_count(project, "customers") > changed_before
    pg = project.pg()
    cur = pg.cursor()
    cur.execute("SELECT count(*) FROM landing.mysql_customers_v2 WHERE execution_sequence = 2")
    assert cur.fetchone()[0] == run["extracted_rows"]
    cur.execute("SELECT table_name, execution_sequence FROM etl_control.committed_metadata "
                "WHERE fingerprint -> 'fields' ->> 'landing_table' = 'landing.mysql_customers_v2'")
    assert cur.fetchall() == [("customers", 2)]
    pg.close()


def test_a_new_store_table_is_filled_in_one_run(project, variant):
    """product_prices: no pres file reads it (renaming a table pres reads is refused, see below)."""
    project.populate("--scale", SCALE, "--seed", "73")
    project.run()
    set_metadata(project, "product_prices", store_table="store_mysql.product_prices_v2")
    second = project.run()
    (warning,) = warnings_about(second, "product_prices")
    assert ('table product_prices: metadata changed since store last committed it (sequence 1): store_table: '
            '"store_mysql.product_prices" -> "store_mysql.product_prices_v2"; extracting the whole table') in warning
    assert [t for t in project.metadata() if warnings_about(second, t)] == ["product_prices"]
    assert_store_equals_source(project)  # store_mysql.product_prices_v2 included: the YAML names it now
    run = recorded(project, 2, "product_prices")
    assert run["window_start"] is None and run["window_end"] is not None
    assert run["metadata_changes"] == ["store_table"] and run["same_fingerprint"]
    assert len(source_rows(project, "product_prices")) == run["extracted_rows"] > 0
    assert recorded(project, 2, "customers")["metadata_changes"] is None  # unchanged: incremental, no changes

    # committed under the new metadata: the next run is incremental again
    project.populate("--changes", "5", "--seed", "74")
    third = project.run()
    assert warnings_about(third, "product_prices") == []
    run = recorded(project, 3, "product_prices")
    assert run["window_start"] is not None and run["metadata_changes"] is None
    assert run["extracted_rows"] < source_count(project, "product_prices")
    assert_store_equals_source(project)


def test_a_new_store_table_that_pres_still_reads_under_its_old_name_is_refused(project, variant):
    project.populate("--scale", SCALE, "--seed", "75")
    project.run()
    set_metadata(project, "companies", store_table="store_mysql.companies_v2")
    refused = project.run(expect=35)
    assert ("table 'companies', field 'store_table': it is now store_mysql.companies_v2, but the pres files "
            "010_report_order_lines.sql, 031_dim_company.sql, 035_dim_country.sql read store_mysql.companies; keep "
            "store_table: store_mysql.companies") in refused.stderr
    assert not project.output(2).exists()  # refused before the sequence opened
    pg = project.pg()
    cur = pg.cursor()
    cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'companies_v2'")
    assert cur.fetchone()[0] == 0
    pg.close()


def test_a_where_clause_added_then_removed_extracts_the_whole_table_each_time(project, variant):
    """Rows older than the window come back when the where_clause is removed (reconciling store after
    the narrowing is the store step's part, not asserted here)."""
    clause = "MOD(CRC32(customer_document_no), 3) <> 0"
    project.populate("--scale", SCALE, "--seed", "75")
    project.run()
    everyone = source_count(project, "customers")
    set_metadata(project, "customers", where_clause=clause)
    narrowed = project.run(expect=None)  # the store step may refuse or reconcile; the extract is what is checked
    (warning,) = warnings_about(narrowed, "customers")
    assert f'where_clause: "" -> "{clause}"; extracting the whole table' in warning
    run = recorded(project, 2, "customers")
    assert run["window_start"] is None and run["metadata_changes"] == ["where_clause"]
    assert run["extracted_rows"] == source_count(project, "customers", clause) < everyone

    set_metadata(project, "customers", where_clause="")
    completed = (project.output(2) / "RunJob.json").exists()
    reverted = project.run(expect=None)
    # after a failed sequence 2 (say a quality check), RunJob first redoes its customers chain
    assert len(warnings_about(reverted, "customers")) == (1 if completed else 2)
    assert f'where_clause: "{clause}" -> ""; extracting the whole table' in warnings_about(reverted, "customers")[-1]
    sequence = 3 if completed else 2
    run = recorded(project, sequence, "customers")
    assert run["window_start"] is None and run["metadata_changes"] == ["where_clause"]
    assert run["extracted_rows"] == everyone  # every row, the ones the where_clause left out too


def test_a_new_watermark_column_is_taken_over_with_a_whole_table_extract(project, variant):
    """Before fingerprints, a new watermark_column stopped the run until etl_control.watermark was reset."""
    project.populate("--scale", SCALE, "--seed", "76")
    project.run()
    set_metadata(project, "companies", watermark_column="created_datetime")
    second = project.run()
    (warning,) = warnings_about(second, "companies")
    assert 'watermark_column: "updated_datetime" -> "created_datetime"; extracting the whole table' in warning
    run = recorded(project, 2, "companies")
    assert run["window_start"] is None and run["metadata_changes"] == ["watermark_column"]
    assert run["extracted_rows"] == source_count(project, "companies")
    pg = project.pg()
    cur = pg.cursor()
    cur.execute("SELECT watermark_column, watermark_value = %s, execution_sequence FROM etl_control.watermark "
                "WHERE table_name = 'companies'", [run["window_end"]])
    assert cur.fetchone() == ("created_datetime", True, 2)
    pg.close()
    assert_store_equals_source(project)

    project.populate("--changes", "5", "--seed", "77")  # new orders; companies renamed (created_datetime unchanged)
    third = project.run()
    assert warnings_about(third, "companies") == []
    run = recorded(project, 3, "companies")
    assert run["window_start"] is not None and run["metadata_changes"] is None
