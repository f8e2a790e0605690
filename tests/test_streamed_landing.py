"""Landing loads streamed beside the extract: the byte pipe, the take-over, reruns and a failing COPY."""

from __future__ import annotations

import json
import threading
import time

import pytest

from conftest import PG, assert_store_equals_source
from etl.config import EtlSettings, MySQLSettings, WarehouseSettings
from etl.metadata import load_metadata
from etl.staging import BytePipe
from etl.steps import Context, StreamedLanding


def test_byte_pipe_bounds_memory_and_hands_over_every_byte():
    pipe = BytePipe(limit_bytes=10)
    pipe.write(b"0123456789")  # full now: the next write waits for the reader
    second = threading.Thread(target=pipe.write, args=(b"abc",))
    second.start()
    time.sleep(0.2)
    assert second.is_alive()
    assert pipe.read(4) == b"0123"  # a read smaller than a chunk keeps the rest
    second.join(timeout=5)
    assert not second.is_alive()
    pipe.close()
    assert pipe.read(100) == b"456789abc"
    assert pipe.read(100) == b""


def test_byte_pipe_abort_reaches_the_reader_and_discard_frees_the_writer():
    pipe = BytePipe(limit_bytes=4)
    pipe.abort(RuntimeError("extract failed"))
    with pytest.raises(RuntimeError, match="extract failed"):
        pipe.read(1)
    pipe = BytePipe(limit_bytes=4)
    pipe.write(b"full")
    writer = threading.Thread(target=pipe.write, args=(b"more",))
    writer.start()
    pipe.discard()  # the reader gave up: the blocked writer returns, later writes are dropped
    writer.join(timeout=5)
    assert not writer.is_alive()
    pipe.write(b"dropped")
    pipe.close()
    assert pipe.read(100) == b""


@pytest.mark.integration
def test_extract_streams_landing_and_the_landing_step_takes_it_over(project):
    project.populate("--scale", "0.002", "--seed", "31")
    project.run()
    out = project.output(1)
    pg = project.pg()
    cur = pg.cursor()
    for table, entry in project.metadata().items():
        extract = json.loads((out / f"mysql_{table}.extract.json").read_text())
        landing = json.loads((out / f"mysql_{table}.landing.json").read_text())
        assert extract["landing"]["rows"] == extract["rows"] == landing["rows"], table
        assert landing["streamed"] is True
        cur.execute(f"SELECT count(*) FROM {entry['landing_table']} WHERE execution_sequence = 1")
        assert cur.fetchone()[0] == extract["rows"]
        cur.execute("SELECT step, row_count, details->>'load_id', details->>'streamed_load' FROM etl_control.step_log "
                    "WHERE execution_sequence = 1 AND table_name = %s AND step LIKE 'landing%%' ORDER BY step", [table])
        (step1, rows1, _, taken), (step2, rows2, load_id, _) = cur.fetchall()
        assert (step1, step2) == ("landing", "landing_streamed") and rows1 == rows2 == extract["rows"]
        assert taken == load_id == extract["landing"]["load_id"]
    assert_store_equals_source(project)

    # deleting the landing marker reruns the step: it COPYs the staging file again (same rows)
    (out / "mysql_customers.landing.json").unlink()
    project.run()
    rerun = json.loads((out / "mysql_customers.landing.json").read_text())
    assert "streamed" not in rerun
    assert rerun["rows"] == rerun["replaced_rows"] == json.loads((out / "mysql_customers.extract.json").read_text())["rows"]
    cur.execute("SELECT count(*) FROM landing.mysql_customers WHERE execution_sequence = 1")
    assert cur.fetchone()[0] == rerun["rows"]
    pg.close()
    assert_store_equals_source(project)


@pytest.mark.integration
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
    streamed.start()
    header = ",".join(["execution_sequence", *meta.columns]).encode() + b"\n"
    streamed.sink(header + b"1,not-a-number\n")  # COPY rejects the line; the sink keeps accepting bytes
    for _ in range(100):
        streamed.sink(b"1,2,3\n" * 1000)
    assert streamed.finish(1001) is False
    streamed.close()
    assert "landing load streamed beside the extract failed" in caplog.text
    pg = project.pg()
    cur = pg.cursor()
    cur.execute("SELECT count(*) FROM landing.mysql_companies WHERE execution_sequence = 1")
    assert cur.fetchone()[0] == extract["rows"]  # rolled back: sequence 1's rows are still the loaded ones
    cur.execute("SELECT count(*) FROM etl_control.step_log WHERE step = 'landing_streamed'")
    assert cur.fetchone()[0] == 0
    pg.close()
