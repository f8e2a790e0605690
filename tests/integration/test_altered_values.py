"""Values PostgreSQL cannot store never block a table.

* A NUL character (PostgreSQL text cannot hold one) is removed from the staged value; the
  row is counted per table and column as "altered" in the extract marker and the run
  summary, with the keys of the first such rows.
* When landing cannot load a staging file (a data error: SQLSTATE class 22/23, a missing
  file), the landing step discards the extract, so the plain rerun after the fix extracts
  the same recorded window again - no marker is deleted by hand.

The staged-line parser and write_lines itself: tests/unit/test_altered_values.py.
"""

from __future__ import annotations

import json

from tests.support.oracle import norm, source_rows, store_rows

NOTES_DDL = """CREATE TABLE notes (
    id INT NOT NULL PRIMARY KEY,
    txt TEXT NULL,
    vc VARCHAR(40) NULL,
    amount DECIMAL(10,2) NULL,
    updated_datetime DATETIME(6) NOT NULL)"""


def _without_nul(value):
    if isinstance(value, (bytes, bytearray)):
        value = value.decode()
    return value.replace("\x00", "") if isinstance(value, str) else value


def _source_rows_without_nul(project, table: str) -> list[tuple]:
    """The source rows of ``table`` as store should hold them: every NUL character removed."""
    columns = project.metadata()[table]["columns"]
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute(f"SELECT {', '.join('`%s`' % c for c in columns)} FROM `{table}`")
    rows = sorted(tuple(norm(_without_nul(v)) for v in row) for row in cur.fetchall())
    conn.close()
    return rows


def _setup_notes(project, rows) -> None:
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute(NOTES_DDL)
    cur.executemany("INSERT INTO notes VALUES (%s, %s, %s, %s, %s)", rows)
    conn.close()
    project.add_table("notes", ["id", "txt", "vc", "amount", "updated_datetime"], ["id"])


def _summary(project, sequence: int) -> dict:
    return json.loads((project.output(sequence) / "RunJob.json").read_text())


def test_nul_characters_are_removed_counted_and_named_and_nothing_else_changes(project):
    project.populate("--scale", "0.001", "--seed", "3")
    nul = "\x00"
    _setup_notes(project, [
        (1, "plain", "plain", "1.00", "2024-01-01 00:00:00"),
        (2, f"a{nul}b", "clean", "2.00", "2024-01-01 00:00:01"),
        (3, 'quote " and, comma', None, None, "2024-01-01 00:00:02"),
        (5, "", f"{nul}x{nul}", "5.00", "2024-01-01 00:00:03"),
        (7, f"{nul}", f"y{nul}", "7.00", "2024-01-01 00:00:04"),
        (8, None, "", "8.00", "2024-01-01 00:00:05"),
    ])
    conn = project.mysql()
    cur = conn.cursor()
    # a NUL in a sample table too (composite key), injected as the issue describes it
    cur.execute("SELECT product_code, supplier_id FROM products ORDER BY product_code, supplier_id LIMIT 1")
    code, supplier = cur.fetchone()
    cur.execute("UPDATE products SET product_name = CONCAT('a', CHAR(0), 'b') WHERE product_code = %s AND supplier_id = %s",
                [code, supplier])
    conn.close()

    proc = project.run()

    # store holds the values without their NUL characters; everything else exactly as the source
    assert store_rows(project, "notes") == _source_rows_without_nul(project, "notes")
    pg = project.pg()
    cur = pg.cursor()
    cur.execute("SELECT id, txt, vc FROM store_mysql.notes WHERE id IN (2, 5, 7) ORDER BY id")
    assert cur.fetchall() == [(2, "ab", "clean"), (5, "", "x"), (7, "", "y")]
    cur.execute("SELECT product_name FROM store_mysql.products WHERE product_code = %s AND supplier_id = %s",
                [code, supplier])
    assert cur.fetchone() == ("ab",)
    cur.execute("SELECT count(*) FROM pres.report_order_lines")
    assert cur.fetchone()[0] > 0  # pres, quality and reports ran
    pg.close()
    assert store_rows(project, "products") == _source_rows_without_nul(project, "products")
    for table in ("companies", "customers", "product_prices", "order_headers", "order_lines"):
        assert store_rows(project, table) == source_rows(project, table), table

    # the extract marker counts exactly the injected rows, per column, and names their keys
    marker = json.loads((project.output(1) / "mysql_notes.extract.json").read_text())
    assert marker["altered_rows"] == 3
    assert marker["altered_values"] == {"txt": 2, "vc": 2}
    assert sorted(marker["altered_keys"]) == ["id=2", "id=5", "id=7"]
    products = json.loads((project.output(1) / "mysql_products.extract.json").read_text())
    assert (products["altered_rows"], products["altered_values"]) == (1, {"product_name": 1})
    assert products["altered_keys"] == [f"product_code={code}, supplier_id={supplier}"]
    summary = _summary(project, 1)
    altered = {r["table"]: r["altered_rows"] for r in summary["tables"]}
    assert altered == {"companies": 0, "customers": 0, "products": 1, "product_prices": 0, "order_headers": 0,
                       "order_lines": 0, "notes": 3, "weblog_access": None}
    assert summary["totals"]["altered_rows"] == 4
    assert len([w for w in summary["warnings"] if w.startswith("altered values:")]) == 2  # (the other: no logs here)
    assert "WARNING altered values: table notes: 3 rows stored without the NUL characters" in proc.stderr
    assert "(rows per column: txt 2, vc 2); keys: id=" in proc.stderr
    assert f"table products: 1 row stored without the NUL characters PostgreSQL cannot hold (rows per column: " \
           f"product_name 1); keys: product_code={code}, supplier_id={supplier}" in proc.stderr
    header = next(line for line in proc.stderr.splitlines() if line.lstrip().startswith("table ") and "altered" in line)
    assert "bad dates altered rejected" in " ".join(header.split())

    # a new NUL row inside the next window's tail: hashed in Python from the staged line, it must
    # fingerprint like MySQL's hash of the same row, so the run after does not read the overlap again
    conn = project.mysql()
    conn.cursor().execute("INSERT INTO notes VALUES (9, CONCAT('late', CHAR(0)), 'v', 9.00, "
                          "UTC_TIMESTAMP(6) - INTERVAL 1 SECOND)")
    conn.close()
    project.run()
    assert json.loads((project.output(2) / "mysql_notes.extract.json").read_text())["altered_keys"] == ["id=9"]
    third = project.run()
    assert "extract notes: look-back overlap" in third.stderr
    assert "unchanged since the previous extract" in third.stderr.split("extract notes: look-back overlap")[1][:200]
    assert store_rows(project, "notes") == _source_rows_without_nul(project, "notes")
    assert _summary(project, 3)["totals"]["altered_rows"] == 0


TRIGGER = """
CREATE FUNCTION landing.refuse_bad() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.txt LIKE '%bad%' THEN
        RAISE EXCEPTION 'value % cannot be stored', NEW.txt USING ERRCODE = '22023';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_bad BEFORE INSERT ON landing.mysql_notes FOR EACH ROW EXECUTE FUNCTION landing.refuse_bad();
"""


def test_a_value_landing_cannot_load_fails_clearly_and_the_rerun_after_the_fix_needs_no_marker_deleted(project):
    project.populate("--scale", "0.001", "--seed", "4")
    _setup_notes(project, [(1, "fine", "v", "1.00", "2024-01-01 00:00:00")])
    project.run()
    # the warehouse now refuses a value, as it refuses a NUL, a too long or an out-of-range one
    pg = project.pg()
    cur = pg.cursor()
    cur.execute(TRIGGER)
    conn = project.mysql()
    cur_src = conn.cursor()
    cur_src.execute("INSERT INTO notes VALUES (2, 'a bad value', 'v', 2.00, UTC_TIMESTAMP(6) - INTERVAL 1 SECOND)")
    cur_src.execute("UPDATE companies SET company_name = 'Renamed', updated_datetime = UTC_TIMESTAMP(6) "
                    "ORDER BY company_id LIMIT 1")
    out = project.output(2)

    failed = project.run(expect=30)
    assert "table 'notes': COPY of" in failed.stderr
    assert "into landing.mysql_notes failed" in failed.stderr
    assert "value a bad value cannot be stored" in failed.stderr
    assert "COPY mysql_notes, line 2" in failed.stderr  # PostgreSQL's context names the line
    assert "the next run extracts notes again, same window" in failed.stderr
    assert not (out / "mysql_notes.extract.json").exists()  # discarded by the landing step
    assert (out / "mysql_companies.store.json").exists()  # the other tables went on
    cur.execute("SELECT table_name, window_start, window_end FROM etl_control.extract_window "
                "WHERE execution_sequence = 2 ORDER BY 1")
    windows = cur.fetchall()

    # not fixed yet: the rerun extracts again and fails the same clear way (never on a stale file)
    again = project.run(expect=30)
    assert "execution sequence 2" in again.stderr
    assert "extract notes window" in again.stderr
    assert "value a bad value cannot be stored" in again.stderr

    # fixed in the source (same watermark, so the resumed window holds it): the plain rerun succeeds
    cur_src.execute("UPDATE notes SET txt = 'a fixed value' WHERE id = 2")
    conn.close()
    resumed = project.run()
    assert "execution sequence 2" in resumed.stderr
    assert (out / "RunJob.json").exists()
    cur.execute("SELECT table_name, window_start, window_end FROM etl_control.extract_window "
                "WHERE execution_sequence = 2 ORDER BY 1")
    assert cur.fetchall() == windows  # the same recorded windows were reused
    for table in project.metadata():
        assert store_rows(project, table) == source_rows(project, table), table
    pg.close()


def test_a_corrupted_staging_file_is_extracted_again_by_the_rerun(project):
    project.populate("--scale", "0.001", "--seed", "5")
    _setup_notes(project, [(1, "one", "v", "1.00", "2024-01-01 00:00:00"), (2, "two", "w", "2.00", "2024-01-01 00:00:01")])
    project.run()
    out = project.output(1)
    # reopen the landing step of sequence 1 and break its staging file (a value no longer a number)
    for step in ("landing", "store"):
        (out / f"mysql_notes.{step}.json").unlink()
    part = project.root / "staging" / "mysql" / "notes" / "execution_sequence=1" / "part-00000.csv"
    part.write_bytes(part.read_bytes().replace(b'"one","v",1.00', b'"one","v",one'))

    failed = project.run(expect=30)
    assert "invalid input syntax for type numeric" in failed.stderr
    assert "the next run extracts notes again" in failed.stderr
    assert not (out / "mysql_notes.extract.json").exists()

    project.run()
    assert b",one" not in part.read_bytes()  # staged again by the re-extract
    assert json.loads((out / "mysql_notes.extract.json").read_text())["rows"] == 2
    for table in project.metadata():
        assert store_rows(project, table) == source_rows(project, table), table
    # a missing staging file is extracted again as well
    for step in ("landing", "store"):
        (out / f"mysql_notes.{step}.json").unlink()
    part.unlink()
    missing = project.run(expect=30)
    assert "cannot be read" in missing.stderr and "the next run extracts notes again" in missing.stderr
    project.run()
    assert part.exists()
    assert store_rows(project, "notes") == source_rows(project, "notes")
