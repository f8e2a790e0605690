"""Landing loads streamed beside the extract: the take-over, reruns and a failing COPY (the byte pipe:
tests/unit/test_streamed_landing.py)."""

from __future__ import annotations

import json

from etl.config import EtlSettings, MySQLSettings, WarehouseSettings
from etl.context import Context
from etl.landing import StreamedLanding
from etl.metadata import load_metadata
from tests.support.databases import PG
from tests.support.oracle import assert_store_equals_source


def test_extract_streams_landing_and_the_landing_step_takes_it_over(project, variant):
    """On each source variant: the streamed load, its take-over and its etl_control.table_run row."""
    project.populate("--scale", "0.02", "--seed", "31")
    project.run()
    out = project.output(1)
    pg = project.pg()
    cur = pg.cursor()
    streamed = []
    for table, entry in project.metadata().items():
        extract = json.loads((out / f"mysql_{table}.extract.json").read_text())
        landing = json.loads((out / f"mysql_{table}.landing.json").read_text())
        staged = (project.root / "staging" / "mysql" / table / "execution_sequence=1" / "part-00000.csv").stat().st_size
        cur.execute(f"SELECT count(*) FROM {entry['landing_table']} WHERE execution_sequence = 1")
        assert cur.fetchone()[0] == extract["rows"] == landing["rows"], table
        cur.execute("SELECT step, row_count, details->>'load_id', details->>'streamed_load' FROM etl_control.step_log "
                    "WHERE execution_sequence = 1 AND table_name = %s AND step LIKE 'landing%%' ORDER BY step", [table])
        logged = cur.fetchall()
        # the chain's channel: the extract's row in etl_control.table_run, completed by the landing step
        cur.execute("SELECT column_types, extracted_rows, streamed_load_id, streamed_rows, landed_rows, landed_streamed "
                    "FROM etl_control.table_run WHERE execution_sequence = 1 AND table_name = %s", [table])
        types, rows, load_id, streamed_rows, landed, landed_streamed = cur.fetchone()
        assert (types, rows, landed) == (extract["pg_types"], extract["rows"], extract["rows"]), table
        if staged <= StreamedLanding.START_BYTES:  # small: the landing step COPYs the file
            assert extract["landing"] is None and "streamed" not in landing, table
            assert [(step, rows) for step, rows, _, _ in logged] == [("landing", extract["rows"])]
            assert (load_id, streamed_rows, landed_streamed) == (None, None, False), table
            continue
        assert (load_id, streamed_rows, landed_streamed) == (extract["landing"]["load_id"], extract["rows"], True)
        streamed.append(table)
        assert extract["landing"]["rows"] == extract["rows"] and landing["streamed"] is True
        (step1, rows1, _, taken), (step2, rows2, load_id, _) = logged
        assert (step1, step2) == ("landing", "landing_streamed") and rows1 == rows2 == extract["rows"]
        assert taken == load_id == extract["landing"]["load_id"]
    assert "order_lines" in streamed and "companies" not in streamed
    assert_store_equals_source(project)

    # deleting the landing marker reruns the step: it COPYs the staging file again (same rows)
    (out / "mysql_order_lines.landing.json").unlink()
    project.run()
    rerun = json.loads((out / "mysql_order_lines.landing.json").read_text())
    assert "streamed" not in rerun
    extracted = json.loads((out / "mysql_order_lines.extract.json").read_text())["rows"]
    assert rerun["rows"] == rerun["replaced_rows"] == extracted
    cur.execute("SELECT count(*) FROM landing.mysql_order_lines WHERE execution_sequence = 1")
    assert cur.fetchone()[0] == rerun["rows"]
    cur.execute("SELECT landed_rows, landed_streamed FROM etl_control.table_run "
                "WHERE execution_sequence = 1 AND table_name = 'order_lines'")
    assert cur.fetchone() == (extracted, False)
    pg.close()
    assert_store_equals_source(project)


def test_a_failing_streamed_copy_leaves_landing_untouched_and_the_extract_goes_on(project, caplog):
    project.populate("--scale", "0.001", "--seed", "32")
    project.write_cfg(dw_etl={"stream_landing": "false"})
    project.run()  # landing tables exist; sequence 1 loaded the ordinary way
    out = project.output(1)
    assert "landing" not in json.loads((out / "mysql_companies.landing.json").read_text())
    meta = load_metadata(project.root / "extract_config")["companies"]
    extract = json.loads((out / "mysql_companies.extract.json").read_text())
    ctx = Context(
        source=MySQLSettings(host="127.0.0.1", port=3306, user="root", database=project.source_db),
        warehouse=WarehouseSettings(flavor="postgres", host=PG["host"], port=PG["port"], user=PG["user"],
                                    database=project.warehouse_db),
        etl=EtlSettings(extract_config_dir="", sql_dir="", output_dir="", completed_dir="", reports_dir="",
                        staging_uri="", s3_endpoint_url="", lookback_seconds=300, safety_lag_seconds=0,
                        batch_rows=100, landing_keep_sequences=7, detect_hard_deletes=True),
    )
    streamed = StreamedLanding(ctx, meta, 1, extract["pg_types"])
    header = ",".join(["execution_sequence", *meta.columns]).encode() + b"\n"
    streamed.sink(header + b"1,not-a-number\n")  # COPY rejects the line; the sink keeps accepting bytes
    for _ in range(300):  # past START_BYTES: the COPY starts
        streamed.sink(b"1,2,3\n" * 1000)
    assert streamed.finish(300_001) is False
    streamed.close()
    assert "landing load streamed beside the extract failed" in caplog.text
    pg = project.pg()
    cur = pg.cursor()
    cur.execute("SELECT count(*) FROM landing.mysql_companies WHERE execution_sequence = 1")
    assert cur.fetchone()[0] == extract["rows"]  # rolled back: sequence 1's rows are still the loaded ones
    cur.execute("SELECT count(*) FROM etl_control.step_log WHERE step = 'landing_streamed'")
    assert cur.fetchone()[0] == 0
    pg.close()


def test_a_large_access_log_is_copied_into_landing_while_it_is_parsed(project):
    project.populate("--scale", "0.001")
    (project.root / "logs").mkdir()
    agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
    lines = [f'8.8.{i % 200}.{i % 250} - user{i % 50} [10/Oct/2025:13:{i // 60 % 60:02d}:{i % 60:02d} +0000] '
             f'"GET /page/{i}?q={"x" * 40} HTTP/1.1" 200 {i} "https://example.com/from/{i}" "{agent}"\n' for i in range(6000)]
    (project.root / "logs" / "access.log").write_text("".join(lines))
    project.run()
    out = project.output(1)
    extract = json.loads((out / "weblog_access.extract.json").read_text())
    landing = json.loads((out / "weblog_access.landing.json").read_text())
    assert (project.root / "staging" / "weblog" / "access" / "execution_sequence=1" / "part-00000.csv").stat().st_size \
        > StreamedLanding.START_BYTES
    assert extract["landing"]["rows"] == landing["rows"] == 6000 and landing["streamed"] is True
    pg = project.pg()
    cur = pg.cursor()
    cur.execute("SELECT count(*), count(DISTINCT access_key) FROM store_weblog.access")
    assert cur.fetchone() == (6000, 6000)
    pg.close()
