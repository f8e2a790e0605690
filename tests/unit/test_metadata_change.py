"""Metadata fingerprints, what counts as a change, and what a change makes the run redo (no database).

The fingerprint covers the fields that decide a store table's rows; changed_fields names
the ones that differ. The extract compares with the committed fingerprint; a resumed
sequence redoes the tables whose recorded fingerprint differs (markers, then records).
Whole runs against MariaDB and PostgreSQL: tests/integration/test_metadata_change.py.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest

import luigi_dw_etl as job
from etl import control, metadata_change, warehouse
from etl.config import EtlSettings, MySQLSettings, WarehouseSettings
from etl.context import Context
from etl.domain import QualifiedName, TableMeta, Window
from tests.support.fakes import FakeConnection

META = TableMeta(
    name="orders", columns=("order_no", "status", "updated_datetime"), where_clause="", is_incremental=True,
    watermark_column="updated_datetime", landing_table=QualifiedName("landing", "mysql_orders"),
    store_table=QualifiedName("store_mysql", "orders"), unique_columns=("order_no",), source_file="orders.yaml",
)


def changed(**fields) -> TableMeta:
    return dataclasses.replace(META, **fields)


# --- fingerprint and changed_fields -----------------------------------------------------------

def test_the_fingerprint_holds_the_seven_fields_as_json_values_and_a_short_hash_of_their_canonical_json():
    fp = metadata_change.fingerprint(META)
    assert fp["fields"] == {
        "columns": ["order_no", "status", "updated_datetime"], "where_clause": "", "unique_columns": ["order_no"],
        "landing_table": "landing.mysql_orders", "store_table": "store_mysql.orders",
        "watermark_column": "updated_datetime", "is_incremental": True,
    }
    assert json.loads(json.dumps(fp)) == fp  # stored as JSON in etl_control and read back equal
    assert metadata_change.canonical_json(fp["fields"]) == (
        '{"columns":["order_no","status","updated_datetime"],"is_incremental":true,"landing_table":'
        '"landing.mysql_orders","store_table":"store_mysql.orders","unique_columns":["order_no"],'
        '"watermark_column":"updated_datetime","where_clause":""}')
    assert len(fp["hash"]) == 12 and int(fp["hash"], 16) >= 0
    assert metadata_change.fingerprint(META) == fp  # deterministic


@pytest.mark.parametrize("fields, expected", [
    ({"landing_table": QualifiedName("landing", "orders_v2")}, ["landing_table"]),
    ({"store_table": QualifiedName("store_mysql", "orders_v2")}, ["store_table"]),
    ({"where_clause": "status <> 'void'"}, ["where_clause"]),
    ({"columns": ("order_no", "status", "updated_datetime", "note")}, ["columns"]),
    ({"unique_columns": ("order_no", "status")}, ["unique_columns"]),
    ({"watermark_column": "created_datetime"}, ["watermark_column"]),
    ({"is_incremental": False, "watermark_column": None}, ["watermark_column", "is_incremental"]),
    ({"where_clause": "status <> 'void'", "store_table": QualifiedName("s", "o")}, ["where_clause", "store_table"]),
])
def test_each_changed_field_is_named_in_field_order_and_changes_the_hash(fields, expected):
    old, new = metadata_change.fingerprint(META), metadata_change.fingerprint(changed(**fields))
    assert metadata_change.changed_fields(old, new) == expected
    assert metadata_change.changed_fields(new, old) == expected
    assert new["hash"] != old["hash"]


@pytest.mark.parametrize("fields", [
    {"columns": ("updated_datetime", "status", "order_no")},  # order changes nothing in store
    {"where_clause": "  \n"},  # surrounding white space only
    {"source_file": "elsewhere.yaml"},  # not a field that decides the rows
    {"null_watermark_policy": "include"},
])
def test_what_changes_nothing_in_store_is_no_change(fields):
    old, new = metadata_change.fingerprint(META), metadata_change.fingerprint(changed(**fields))
    assert metadata_change.changed_fields(old, new) == []
    assert new == old


def test_a_field_missing_from_an_older_fingerprint_is_not_a_change():
    new = metadata_change.fingerprint(changed(store_table=QualifiedName("store_mysql", "orders_v2")))
    old = metadata_change.fingerprint(META)
    del old["fields"]["columns"]
    assert metadata_change.changed_fields(old, new) == ["store_table"]


def test_the_changes_are_described_field_old_new():
    old = metadata_change.fingerprint(META)
    new = metadata_change.fingerprint(changed(where_clause="status <> 'void'",
                                              landing_table=QualifiedName("landing", "orders_v2")))
    assert metadata_change.describe_changes(old, new) == (
        'where_clause: "" -> "status <> \'void\'"; landing_table: "landing.mysql_orders" -> "landing.orders_v2"')


# --- at extract: the committed fingerprint ----------------------------------------------------

COMMITTED = "FROM etl_control.committed_metadata"


def test_without_a_committed_fingerprint_nothing_changed_and_nothing_is_logged(caplog):
    conn = FakeConnection([(COMMITTED, [])])
    with caplog.at_level(logging.WARNING):
        assert metadata_change.changes_since_commit(conn, META) == []
    assert caplog.records == []
    assert conn.ran(COMMITTED) == [["orders"]]


def test_a_change_since_the_commit_is_named_in_one_warning(caplog):
    committed = json.dumps(metadata_change.fingerprint(META))  # Redshift hands json columns back as text
    conn = FakeConnection([(COMMITTED, [(committed, 4)])])
    with caplog.at_level(logging.WARNING):
        changes = metadata_change.changes_since_commit(conn, changed(where_clause="status <> 'void'"))
    assert changes == ["where_clause"]
    assert [r.getMessage() for r in caplog.records] == [
        "table orders: metadata changed since store last committed it (sequence 4): "
        "where_clause: \"\" -> \"status <> 'void'\"; extracting the whole table"]


def test_an_unchanged_table_is_not_warned_about(caplog):
    conn = FakeConnection([(COMMITTED, [(metadata_change.fingerprint(META), 4)])])
    with caplog.at_level(logging.WARNING):
        assert metadata_change.changes_since_commit(conn, META) == []
    assert caplog.records == []


def test_the_committed_fingerprint_is_the_extracts_copied_in_the_upsert_transaction():
    conn = FakeConnection()
    control.record_committed_metadata(conn, META, 7)
    assert [text for text, _ in conn.statements] == [
        "DELETE FROM etl_control.committed_metadata WHERE table_name = %s",
        "INSERT INTO etl_control.committed_metadata (table_name, fingerprint, execution_sequence) "
        "SELECT table_name, metadata_fingerprint, execution_sequence FROM etl_control.table_run "
        "WHERE execution_sequence = %s AND table_name = %s AND metadata_fingerprint IS NOT NULL",
    ]
    assert [params for _, params in conn.statements] == [["orders"], [7, "orders"]]
    assert conn.commits == 0


def test_the_extract_records_its_fingerprint_and_changes_in_table_run_and_reads_them_back():
    fp = metadata_change.fingerprint(META)
    conn = FakeConnection()
    control.record_extract(conn, control.TableRun(7, "orders", {"order_no": "text"}, 3, 1,
                                                  metadata_fingerprint=fp, metadata_changes=("where_clause",)))
    (insert,) = conn.ran("INSERT INTO etl_control.table_run")
    assert insert[-3:] == [json.dumps(fp), '["where_clause"]', None]
    conn = FakeConnection()
    control.record_extract(conn, control.TableRun(7, "orders", {"order_no": "text"}, 3, 1))  # the access logs
    (insert,) = conn.ran("INSERT INTO etl_control.table_run")
    assert insert[-3:] == [None, None, None]
    row = ('{"order_no": "text"}', 3, 1) + (None,) * 10 + (json.dumps(fp), '["where_clause"]', None, None)
    run = control.table_run(FakeConnection([("FROM etl_control.table_run", [row])]), 7, "orders")
    assert (run.metadata_fingerprint, run.metadata_changes, run.changed_keys) == (fp, ("where_clause",), ())
    run = control.table_run(FakeConnection([("FROM etl_control.table_run", [row[:-4] + (None,) * 4])]), 7, "orders")
    assert (run.metadata_fingerprint, run.metadata_changes) == (None, ())


def test_the_source_keys_changed_after_the_window_end_go_through_table_run():
    conn = FakeConnection()
    keys = (("A-1", "2"), ("A-1", "10"))
    control.record_extract(conn, control.TableRun(7, "orders", {"order_no": "text"}, 3, 1, (5, 4), changed_keys=keys))
    (insert,) = conn.ran("INSERT INTO etl_control.table_run")
    assert insert[5:7] == [5, 4] and insert[-1] == '[["A-1", "2"], ["A-1", "10"]]'
    row = ('{"order_no": "text"}', 3, 1, 5, 4) + (None,) * 10 + ([["A-1", "2"], ["A-1", "10"]], None)  # jsonb: parsed
    run = control.table_run(FakeConnection([("FROM etl_control.table_run", [row])]), 7, "orders")
    assert (run.source_counts, run.changed_keys) == ((5, 4), keys)


def test_a_window_is_recorded_with_its_fingerprint_in_the_same_commit():
    fp = metadata_change.fingerprint(META)
    conn = FakeConnection([("SELECT window_start", [(None, None, None)])])
    control.record_window(conn, 7, "orders", False, None, Window(None, None), fingerprint=fp,
                          changes=["store_table"])
    texts = [text for text, _ in conn.statements]
    update = next(i for i, t in enumerate(texts) if t.startswith("UPDATE etl_control.extract_window"))
    assert texts[update - 1].startswith("INSERT INTO etl_control.extract_window")
    assert "metadata_fingerprint IS NULL" in texts[update]  # the first recorded window keeps its own
    assert conn.statements[update][1] == [json.dumps(fp), '["store_table"]', 7, "orders"]
    assert conn.commits == 1


# --- on resume: redoing the changed tables of the sequence --------------------------------------

def context(tmp_path: Path) -> Context:
    return Context(
        source=MySQLSettings(host="127.0.0.1", port=3306, user="etl", database="b2b"),
        warehouse=WarehouseSettings(flavor="postgres", host="dw.example", port=5432, user="etl", database="dw"),
        etl=EtlSettings(extract_config_dir=str(tmp_path / "extract_config"), sql_dir="sql",
                        output_dir=str(tmp_path / "output"), completed_dir=str(tmp_path / "completed"),
                        reports_dir=str(tmp_path / "reports"), staging_uri=str(tmp_path / "staging"),
                        s3_endpoint_url="", lookback_seconds=300, safety_lag_seconds=2, batch_rows=10000,
                        landing_keep_sequences=7, detect_hard_deletes=False),
    )


def resumed(monkeypatch, tmp_path, recorded: dict, current: dict, committed=()):
    """A sequence 3 with every marker written and ``recorded`` fingerprints in etl_control, ``committed``
    the committed fingerprint's row (none by default); ``current`` is the metadata now. Returns
    (context, connection, output folder, completed folder)."""
    ctx = context(tmp_path)
    output, completed = Path(ctx.etl.output_dir) / "3", Path(ctx.etl.completed_dir) / "3"
    for table in current:
        for step in ("extract", "landing", "store"):
            (output / f"mysql_{table}.{step}.json").parent.mkdir(parents=True, exist_ok=True)
            (output / f"mysql_{table}.{step}.json").write_text("{}")
    for name in ("pres.json", "quality.json", "weblog_access.store.json"):
        (output / name).write_text("{}")
    (completed / "pres").mkdir(parents=True)
    (completed / "pres" / "010_dim.sql").write_text("")
    rows = {"extract_window": [(t, fps[0]) for t, fps in recorded.items()],
            "table_run": [(t, json.dumps(fps[-1])) for t, fps in recorded.items()]}
    conn = FakeConnection([
        ("pg_catalog.pg_attribute", [(len(control.SCHEMA_COLUMNS),)]),
        ("FROM etl_control.extract_window", rows["extract_window"]),
        ("FROM etl_control.table_run", rows["table_run"]),
        (COMMITTED, list(committed)),
    ])
    monkeypatch.setattr(warehouse, "connect", lambda settings, database=None: conn)
    monkeypatch.setattr(metadata_change, "load_metadata", lambda folder: current)
    return ctx, conn, output, completed


def test_a_resumed_sequence_redoes_only_the_tables_whose_metadata_changed(monkeypatch, tmp_path, caplog):
    customers = changed(name="customers", landing_table=QualifiedName("landing", "mysql_customers"),
                        store_table=QualifiedName("store_mysql", "customers"))
    old = metadata_change.fingerprint(META)
    now = changed(landing_table=QualifiedName("landing", "orders_v2"))
    ctx, conn, output, completed = resumed(
        monkeypatch, tmp_path, recorded={"orders": [old], "customers": [metadata_change.fingerprint(customers)],
                                         "dropped": [old]},
        current={"orders": now, "customers": customers})
    with caplog.at_level(logging.WARNING):
        assert metadata_change.redo_changed_tables(ctx, 3) == ["orders"]
    assert [r.getMessage() for r in caplog.records] == [
        'table orders: metadata changed since sequence 3 extracted it (landing_table: "landing.mysql_orders" -> '
        '"landing.orders_v2"); redoing its extract, landing and store of sequence 3 and the steps after them '
        "(6 markers deleted)"]
    assert sorted(p.name for p in output.iterdir()) == [
        "mysql_customers.extract.json", "mysql_customers.landing.json", "mysql_customers.store.json",
        "weblog_access.store.json"]
    assert list((completed / "pres").iterdir()) == []
    deletes = [(text.split()[2], params) for text, params in conn.statements if text.startswith("DELETE")]
    assert deletes == [("etl_control.extract_window", [3, "orders"]), ("etl_control.table_run", [3, "orders"]),
                       ("etl_control.extract_tail", [3, "orders"])]
    # no committed fingerprint yet: the one the sequence extracted under stands for it (a full extract follows)
    assert conn.ran("INSERT INTO etl_control.committed_metadata") == [["orders", json.dumps(old), 3]]
    assert conn.commits >= 2  # the deletes are committed


def test_an_extract_that_ran_under_other_metadata_than_its_window_is_redone(monkeypatch, tmp_path):
    """The window recorded under the old metadata, the extract (table_run) under the new one: redone too."""
    old, new = metadata_change.fingerprint(META), metadata_change.fingerprint(changed(where_clause="status <> 'x'"))
    ctx, conn, output, _ = resumed(monkeypatch, tmp_path, recorded={"orders": [new, old]},
                                   current={"orders": changed(where_clause="status <> 'x'")}, committed=[(old, 2)])
    assert metadata_change.redo_changed_tables(ctx, 3) == ["orders"]
    assert not (output / "mysql_orders.extract.json").exists()
    assert conn.ran("INSERT INTO etl_control.committed_metadata") == []  # sequence 2's commit stays the reference


def test_nothing_is_redone_when_nothing_changed_or_nothing_was_recorded(monkeypatch, tmp_path):
    ctx, conn, output, completed = resumed(monkeypatch, tmp_path, recorded={}, current={"orders": META})
    assert metadata_change.redo_changed_tables(ctx, 3) == []
    assert len(list(output.iterdir())) == 6 and len(list((completed / "pres").iterdir())) == 1
    assert not [text for text, _ in conn.statements if text.startswith("DELETE")]


def test_the_marker_names_are_the_luigi_tasks_targets(monkeypatch, tmp_path):
    ctx = context(tmp_path)
    monkeypatch.setattr(job, "etl_settings", lambda: ctx.etl)
    tasks = [job.ExtractMySQLTable(table="orders", execution_sequence=3),
             job.LoadLandingTable(table="orders", execution_sequence=3),
             job.UpsertStoreTable(table="orders", execution_sequence=3)]
    assert metadata_change.chain_markers(ctx.etl.output_dir, 3, "orders") == [Path(t.output().path) for t in tasks]
    downstream = [job.BuildPres(execution_sequence=3), job.CheckQuality(execution_sequence=3),
                  job.BuildReports(execution_sequence=3)]
    expected = [Path(ctx.etl.output_dir) / "3" / name for name in metadata_change.DOWNSTREAM_MARKERS]
    assert [Path(t.output().path) for t in downstream] == expected[:3]
    assert expected[3].name == "RunJob.json"
