"""Nothing read back from markers or etl_control is executed as SQL; populate quotes the names it is given."""

from __future__ import annotations

import json
import uuid

from tests.support.databases import mysql_connect
from tests.support.oracle import assert_store_equals_source

INJECTED = 'integer); CREATE TABLE public.injected (x int); CREATE TABLE public.injected2 (y int'


def _tables_named_injected(project) -> list[str]:
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_name LIKE 'injected%'")
    found = [r[0] for r in cur.fetchall()]
    conn.close()
    return found


def test_edited_column_types_are_refused_not_executed(project, variant):
    project.populate("--scale", "0.001", "--seed", "5")
    project.run()
    # the extract marker's copy of the types is never read back: an edit there changes nothing
    marker = project.output(1) / "mysql_companies.extract.json"
    payload = json.loads(marker.read_text())
    payload["pg_types"] = {column: INJECTED for column in payload["pg_types"]}
    marker.write_text(json.dumps(payload))
    (project.output(1) / "mysql_companies.landing.json").unlink()
    project.run()
    assert _tables_named_injected(project) == []
    # the record landing reads them from: edited, it is refused, the extract discarded, the next run recovers
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("UPDATE etl_control.table_run SET column_types = jsonb_set(column_types::jsonb, '{company_id}', %s)::json "
                "WHERE execution_sequence = 1 AND table_name = 'companies'", [json.dumps(INJECTED)])
    assert cur.rowcount == 1
    conn.commit()
    conn.close()
    (project.output(1) / "mysql_companies.landing.json").unlink()
    failed = project.run(expect=30)
    output = failed.stdout + failed.stderr
    assert ("table 'companies': the column types etl_control.table_run holds for sequence 1 are refused "
            "(column 'company_id': 'integer); CREATE TABLE public.injected") in output
    assert "is not a column type the pipeline writes" in output
    assert "the next run extracts companies again" in output
    assert _tables_named_injected(project) == []
    assert not (project.output(1) / "mysql_companies.extract.json").exists()
    project.run()
    assert _tables_named_injected(project) == []
    assert assert_store_equals_source(project) > 0


def test_populate_quotes_the_database_name(project):
    name = f"t_src_{uuid.uuid4().hex[:8]}`; DROP DATABASE `{project.source_db}"
    try:  # the flag (luigi.cfg's [mysql] database is refused with such a name before populate runs)
        project.populate("--scale", "0.0005", "--seed", "3", "--database", name)
        conn = mysql_connect()
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", [name])
        assert cur.fetchone()[0] == 6  # the six tables, in the database of that exact name
        conn.close()
    finally:
        conn = mysql_connect()
        quoted = name.replace("`", "``")
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{quoted}`")
        conn.close()
