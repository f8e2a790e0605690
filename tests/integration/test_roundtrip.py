"""Hard values survive MySQL -> CSV staging -> COPY -> store exactly; metadata options behave.

Uses a purpose-built source table (not the sample generator) so every hard value is
present in every run: NULL vs empty string, quotes, commas, tabs, CR/LF, backslashes,
the strings 'NULL' and '\\N', non-ASCII and 4-byte UTF-8, decimals to the last digit,
datetimes with microseconds, extreme integers.
"""

from __future__ import annotations

import json

from tests.support.oracle import assert_store_equals_source, source_rows, store_rows

HARD = [
    None, "", " ", "NULL", "\\N", "\\", "a\\nb", 'say "hi"', "'single'", "a,b,c", "tab\there", "line\nbreak",
    "cr\r\nlf", "\r", "Zoë Ødegaard", "東京", "🚚📦", "trailing  ", '"', '""', "x" * 300,
]

DDL = """CREATE TABLE hard_values (
    id INT NOT NULL,
    txt TEXT NULL,
    vc VARCHAR(400) NULL,
    amount DECIMAL(20,6) NULL,
    small_amount DECIMAL(10,2) NULL,
    big BIGINT NULL,
    ubig BIGINT UNSIGNED NULL,
    flag TINYINT(1) NULL,
    ratio DOUBLE NULL,
    d DATE NULL,
    dt DATETIME(6) NULL,
    updated_datetime DATETIME(6) NOT NULL,
    PRIMARY KEY (id))"""


def setup_hard_table(project) -> int:
    project.populate("--scale", "0.001")
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute(DDL)
    rows = []
    for i, text in enumerate(HARD):
        rows.append((
            i, text, text if text is None or len(text) <= 400 else text[:400],
            None if i % 5 == 0 else f"{(-1) ** i * 12345678901234.123456 / (i + 1):.6f}",
            None if i % 4 == 0 else f"{i * 1.01:.2f}",
            [None, 0, -9223372036854775808, 9223372036854775807][i % 4],
            [None, 0, 18446744073709551615][i % 3],
            [None, 0, 1][i % 3],
            None if i % 6 == 0 else 1 / (i + 3),
            None if i % 7 == 0 else f"19{i + 10}-0{1 + i % 9}-1{i % 10}",
            None if i % 3 == 0 else f"2024-02-29 23:59:{i % 60:02d}.{i * 37 % 1000000:06d}",
            f"2024-01-01 00:00:{i:02d}.123456",
        ))
    cur.executemany("INSERT INTO hard_values VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
    conn.close()
    project.add_table("hard_values", ["id", "txt", "vc", "amount", "small_amount", "big", "ubig", "flag", "ratio", "d",
                                      "dt", "updated_datetime"], ["id"])
    return len(rows)


def test_hard_values_round_trip_exactly(project):
    n = setup_hard_table(project)
    project.run()
    src = source_rows(project, "hard_values")
    assert len(src) == n
    assert src == store_rows(project, "hard_values")
    assert_store_equals_source(project)
    # NULL and empty string stay distinct in store
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT count(*) FILTER (WHERE txt IS NULL), count(*) FILTER (WHERE txt = '') FROM store_mysql.hard_values")
    assert cur.fetchone() == (1, 1)
    cur.execute("SELECT data_type FROM information_schema.columns WHERE table_schema = 'store_mysql' "
                "AND table_name = 'hard_values' AND column_name IN ('ubig', 'dt') ORDER BY column_name")
    assert [r[0] for r in cur.fetchall()] == ["timestamp without time zone", "numeric"]
    conn.close()


def test_metadata_options(project):
    """where_clause filters, full extracts re-read everything, NULL keys are counted not merged."""
    project.populate("--scale", "0.001")
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute("CREATE TABLE regions (code VARCHAR(5) NULL, name VARCHAR(50) NOT NULL, active TINYINT(1) NOT NULL)")
    cur.executemany("INSERT INTO regions VALUES (%s, %s, %s)",
                    [("EU", "Europe", 1), ("AM", "Americas", 1), ("XX", "Closed", 0), (None, "No code", 1)])
    conn.close()
    project.add_table("regions", ["code", "name"], ["code"], where_clause="active = 1", is_incremental=False,
                      watermark_column=None, unique_check="distinct_count")  # no key: preflight counts
    proc = project.run()
    assert "1 landing rows of sequence 1 have a NULL in code" in proc.stderr
    pg = project.pg()
    cur = pg.cursor()
    cur.execute("SELECT code, name FROM store_mysql.regions ORDER BY code")
    assert cur.fetchall() == [("AM", "Americas"), ("EU", "Europe")]
    cur.execute("SELECT count(*) FROM landing.mysql_regions WHERE execution_sequence = 1")
    assert cur.fetchone()[0] == 3
    m = project.mysql()
    m.cursor().execute("UPDATE regions SET name = 'Europa' WHERE code = 'EU'")
    m.close()
    project.run()
    cur.execute("SELECT count(*) FROM landing.mysql_regions WHERE execution_sequence = 2")
    assert cur.fetchone()[0] == 3  # full extract every run
    cur.execute("SELECT name FROM store_mysql.regions WHERE code = 'EU'")
    assert cur.fetchone()[0] == "Europa"
    pg.close()


def test_zero_dates_are_staged_as_null_and_counted(project):
    project.populate("--scale", "0.001")
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute("SET SESSION sql_mode = ''")
    cur.execute("CREATE TABLE odd_dates (id INT PRIMARY KEY, d DATE NULL, dt DATETIME NULL, updated_datetime DATETIME NOT NULL)")
    cur.executemany("INSERT INTO odd_dates VALUES (%s, %s, %s, %s)", [
        (1, "0000-00-00", "0000-00-00 00:00:00", "2024-01-01 00:00:00"),
        (2, "2024-02-00", "2024-00-05 10:00:00", "2024-01-01 00:00:00"),
        (3, "2024-02-29", "2024-02-29 12:34:56", "2024-01-01 00:00:00"),
        (4, "0000-05-05", "2023-02-30 08:00:00", "2024-01-01 00:00:00"),  # year 0; an impossible day
        (5, None, None, "2024-01-01 00:00:00"),
    ])
    conn.close()
    project.add_table("odd_dates", ["id", "d", "dt", "updated_datetime"], ["id"])
    proc = project.run()
    assert "table odd_dates, column d: 3 zero or partial dates (e.g. 0000-00-00) staged as NULL" in proc.stderr
    assert "table odd_dates, column dt: 3 zero or partial dates" in proc.stderr
    pg = project.pg()
    cur = pg.cursor()
    cur.execute("SELECT id, d::text, dt::text FROM store_mysql.odd_dates ORDER BY id")
    assert cur.fetchall() == [(1, None, None), (2, None, None), (3, "2024-02-29", "2024-02-29 12:34:56"),
                              (4, None, None), (5, None, None)]
    pg.close()
    # mysql-connector itself reads these values as NULL, so store equals source
    assert_store_equals_source(project)
    summary = json.loads((project.output(1) / "RunJob.json").read_text())
    assert summary["totals"]["invalid_dates"] == 6


def test_hard_deletes_in_the_source_leave_store_as_tombstones(project):
    project.populate("--scale", "0.002", "--seed", "21")
    project.run()
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute("DELETE FROM order_lines ORDER BY order_no DESC, order_line_no LIMIT 7")
    cur.execute("DELETE FROM product_prices ORDER BY product_code LIMIT 3")
    cur.execute("UPDATE customers SET customer_full_name = 'Still here', updated_datetime = UTC_TIMESTAMP() LIMIT 2")
    conn.close()
    project.run()
    assert_store_equals_source(project)
    summary = json.loads((project.output(2) / "RunJob.json").read_text())
    deleted = {r["table"]: r["deleted"] for r in summary["tables"] if r["table"] != "weblog_access"}
    assert deleted == {"companies": 0, "customers": 0, "order_headers": 0, "order_lines": 7,
                       "product_prices": 3, "products": 0}
    assert len(store_rows(project, "order_lines", tombstones=True)) == 7
    assert len(store_rows(project, "product_prices", tombstones=True)) == 3
    # the counts were taken beside the extract, in the source as it was after the deletes
    conn = project.mysql()
    cur = conn.cursor()
    for table in ("order_lines", "product_prices"):
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        extract = json.loads((project.output(2) / f"mysql_{table}.extract.json").read_text())
        assert extract["source_counts"][0] == cur.fetchone()[0]
    conn.close()
    # with the check switched off, hard deletes stay in store
    project.write_cfg(dw_etl={"detect_hard_deletes": "false"})
    conn = project.mysql()
    conn.cursor().execute("DELETE FROM companies WHERE company_id = 2")
    conn.close()
    project.run()
    pg = project.pg()
    cur = pg.cursor()
    cur.execute("SELECT count(*) FROM store_mysql.companies WHERE company_id = 2")
    assert cur.fetchone()[0] == 1
    pg.close()


def test_rows_with_null_or_future_watermarks_are_not_lost(project):
    project.populate("--scale", "0.001")
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute("CREATE TABLE events (id INT PRIMARY KEY, v VARCHAR(20), updated_datetime DATETIME NULL, KEY (updated_datetime))")
    cur.executemany("INSERT INTO events VALUES (%s, %s, %s)", [
        (1, "normal", "2024-05-01 10:00:00"), (2, "no watermark", None), (3, "future", "2099-01-01 00:00:00"),
    ])
    columns = ["id", "v", "updated_datetime"]
    # default policy: fail, naming the keys
    project.add_table("events", columns, ["id"])
    proc = project.run(expect=30)
    assert "table 'events': 1 rows have a NULL updated_datetime (id = 2); fix them in the source" in proc.stderr
    # exclude: skipped and counted
    project.add_table("events", columns, ["id"], null_watermark_policy="exclude")
    proc = project.run()
    assert "1 rows have a NULL updated_datetime; skipped (policy exclude)" in proc.stderr
    pg = project.pg()
    pcur = pg.cursor()
    pcur.execute("SELECT id FROM store_mysql.events ORDER BY id")
    assert [r[0] for r in pcur.fetchall()] == [1, 3]
    pg.close()
    # include: read by every extract
    project.add_table("events", columns, ["id"], null_watermark_policy="include")
    for folder in ("output", "completed"):  # start over: a fresh warehouse and sequence numbering
        (project.root / folder).rename(project.root / f"{folder}-before")
    pg = project.pg()
    pg.cursor().execute("DROP SCHEMA store_mysql CASCADE; DROP SCHEMA landing CASCADE; DROP SCHEMA etl_control CASCADE; "
                        "DROP SCHEMA IF EXISTS pres CASCADE")
    pg.close()
    proc = project.run()
    assert "table events: 1 rows have a NULL updated_datetime; read by every extract" in proc.stderr
    assert "table events: 1 rows have a updated_datetime later than the source clock" in proc.stderr
    assert_store_equals_source(project)
    # changes to such rows arrive too, while normal rows are not re-read
    cur.execute("UPDATE events SET v = 'changed' WHERE id IN (2, 3)")
    conn.close()
    project.run()
    assert_store_equals_source(project)
    pg = project.pg()
    pcur = pg.cursor()
    pcur.execute("SELECT id FROM landing.mysql_events WHERE execution_sequence = 2 ORDER BY id")
    assert [r[0] for r in pcur.fetchall()] == [2, 3]
    pg.close()


def test_first_load_with_a_key_that_is_not_unique_keeps_the_newest_version(project):
    """The first load inserts unsorted and builds the unique index; a repeated key makes it deduplicate instead."""
    project.populate("--scale", "0.001")
    m = project.mysql()
    cur = m.cursor()
    # sku is a unique key of the source (preflight refuses one that is not), but a NUL character is removed
    # from text on the way (etl.staging_format): 'A', 'A\0' and '\0A' are one key in the batch
    cur.execute("CREATE TABLE price_events (id INT NOT NULL PRIMARY KEY, sku VARCHAR(10) COLLATE utf8mb4_bin NOT NULL "
                "UNIQUE, price INT, updated_datetime DATETIME NOT NULL)")
    cur.executemany("INSERT INTO price_events VALUES (%s, %s, %s, %s)", [
        (1, "A", 10, "2024-01-01 00:00:00"), (2, "A\x00", 12, "2024-03-01 00:00:00"),
        (3, "\x00A", 11, "2024-02-01 00:00:00"), (4, "B", 5, "2024-01-01 00:00:00"),
    ])
    m.close()
    project.add_table("price_events", ["sku", "price", "updated_datetime"], ["sku"])
    proc = project.run()
    assert "the batch holds a key more than once; inserting its newest versions" in proc.stderr
    pg = project.pg()
    cur = pg.cursor()
    cur.execute("SELECT sku, price FROM store_mysql.price_events ORDER BY sku")
    assert cur.fetchall() == [("A", 12), ("B", 5)]
    cur.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'store_mysql' AND tablename = 'price_events' "
                "ORDER BY indexname")
    assert [r[0] for r in cur.fetchall()] == ["price_events_etl_updated_idx", "price_events_uk"]
    pg.close()
