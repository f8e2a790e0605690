"""Landing tables: one partition per execution sequence, purged by dropping, and the conversion
of a landing table of an earlier version (one table with a sequence index)."""

from __future__ import annotations

import json

from tests.support.oracle import assert_store_equals_source


def _partitions(cur, table: str) -> list[tuple[str, str]]:
    cur.execute("SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass ORDER BY c.relname", [table])
    return cur.fetchall()


def test_each_sequence_lands_in_its_own_partition_and_old_ones_are_dropped(project):
    project.populate("--scale", "0.002", "--seed", "41")
    project.write_cfg(dw_etl={"landing_keep_sequences": "2"})
    pg = project.pg()
    cur = pg.cursor()
    for sequence in (1, 2, 3):
        if sequence > 1:
            project.populate("--changes", "5", "--seed", str(40 + sequence))
        project.run()
        extracted = json.loads((project.output(sequence) / "mysql_order_lines.extract.json").read_text())["rows"]
        cur.execute("SELECT count(*) FROM landing.mysql_order_lines_s%s", [sequence])
        assert cur.fetchone()[0] == extracted
    pg.commit()
    assert _partitions(cur, "landing.mysql_order_lines") == [
        ("mysql_order_lines_s2", "FOR VALUES IN (2)"), ("mysql_order_lines_s3", "FOR VALUES IN (3)")]
    cur.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'landing'")
    assert cur.fetchone()[0] == 0
    # (a reload, by deleting the landing marker, truncates the partition: test_streamed_landing's rerun)
    pg.close()
    assert_store_equals_source(project)


def test_an_unpartitioned_landing_table_is_converted_keeping_its_rows(project):
    project.populate("--scale", "0.001", "--seed", "42")
    project.run()
    pg = project.pg()
    pg.autocommit = True
    cur = pg.cursor()
    # turn sequence 1's landing table into the earlier layout: one table, a sequence index, two sequences
    cur.execute("CREATE TABLE landing.old (LIKE landing.mysql_companies INCLUDING DEFAULTS INCLUDING IDENTITY)")
    cur.execute("INSERT INTO landing.old OVERRIDING SYSTEM VALUE SELECT * FROM landing.mysql_companies")
    cur.execute("UPDATE landing.old SET execution_sequence = 0")  # an older sequence, kept by the purge
    cur.execute("INSERT INTO landing.old OVERRIDING SYSTEM VALUE SELECT * FROM landing.mysql_companies")
    cur.execute("SELECT count(*), max(landing_row_id) FROM landing.old")
    old_rows, old_max_id = cur.fetchone()
    cur.execute("DROP TABLE landing.mysql_companies")
    cur.execute("ALTER TABLE landing.old RENAME TO mysql_companies")
    cur.execute("CREATE INDEX mysql_companies_seq_idx ON landing.mysql_companies (execution_sequence)")
    project.populate("--changes", "5", "--seed", "43")
    proc = project.run()
    assert f"landing landing.mysql_companies: converted to one partition per execution sequence ({old_rows} rows kept)" \
        in proc.stderr
    assert [name for name, _ in _partitions(cur, "landing.mysql_companies")] == [
        "mysql_companies_s0", "mysql_companies_s1", "mysql_companies_s2"]
    cur.execute("SELECT count(*), max(landing_row_id) FILTER (WHERE execution_sequence < 2) FROM landing.mysql_companies")
    rows, max_id = cur.fetchone()
    extracted = json.loads((project.output(2) / "mysql_companies.extract.json").read_text())["rows"]
    assert (rows, max_id) == (old_rows + extracted, old_max_id)
    pg.close()
    assert_store_equals_source(project)
