"""Which execution sequence RunJob runs: the latest known one while it is incomplete, else the next.

The latest known sequence is the higher of the output folder's and etl_control.run's
(``etl.context.warehouse_latest_sequence``: 0 before the control schema exists; on
Redshift the schema is created there, before any worker starts). A sequence is complete
when its RunJob.json exists and BuildReports (hence every step below it) is complete.
The configuration, preflight and warehouse are fakes here; whole runs that resume a failed
sequence: tests/integration/test_pipeline.py.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import luigi
import pytest

import luigi_dw_etl as job
from etl import context, control, warehouse
from etl.dialects import RedshiftDialect
from etl.config import EtlSettings, MySQLSettings, WarehouseSettings
from etl.context import Context
from etl.errors import ConfigError, WarehouseError
from tests.support.fakes import FakeConnection

RUN_TABLE = "WHERE n.nspname = 'etl_control' AND c.relname = 'run'"  # pg_catalog: what the role cannot use shows too
READABLE = [("etl", True, True)]  # (current_user, USAGE on etl_control, SELECT on etl_control.run)
LATEST = "max(execution_sequence)"


def settings(tmp_path: Path, flavor: str = "postgres") -> Context:
    return Context(
        source=MySQLSettings(host="127.0.0.1", port=3306, user="etl", database="b2b"),
        warehouse=WarehouseSettings(flavor=flavor, host="dw.example", port=5432, user="etl", database="dw"),
        etl=EtlSettings(extract_config_dir="extract_config", sql_dir="sql", output_dir=str(tmp_path / "output"),
                        completed_dir=str(tmp_path / "completed"), reports_dir=str(tmp_path / "reports"),
                        staging_uri=str(tmp_path / "staging"), s3_endpoint_url="", lookback_seconds=300,
                        safety_lag_seconds=2, batch_rows=10000, landing_keep_sequences=7, detect_hard_deletes=False),
    )


def connected(monkeypatch, conn: FakeConnection) -> FakeConnection:
    monkeypatch.setattr(warehouse, "connect", lambda settings, database=None: conn)
    return conn


# --- etl.context.warehouse_latest_sequence ---------------------------------------------------

def test_the_warehouse_knows_no_sequence_before_the_control_schema_exists(monkeypatch, tmp_path):
    conn = connected(monkeypatch, FakeConnection([(RUN_TABLE, [])]))
    assert context.warehouse_latest_sequence(settings(tmp_path)) == 0
    assert conn.ran(LATEST) == [] and conn.closed


def test_the_warehouse_latest_sequence_is_the_highest_recorded_run(monkeypatch, tmp_path):
    conn = connected(monkeypatch, FakeConnection([(RUN_TABLE, READABLE), (LATEST, [(41,)])]))
    assert context.warehouse_latest_sequence(settings(tmp_path)) == 41
    assert not [text for text, _ in conn.statements if text.startswith("CREATE")]  # PostgreSQL: each task creates it


def test_a_control_schema_the_role_cannot_use_is_refused_not_read_as_no_sequence(monkeypatch, tmp_path):
    """information_schema would hide etl_control.run from this role: the latest sequence would read as 0."""
    conn = connected(monkeypatch, FakeConnection([(RUN_TABLE, [("etl", False, True)])]))
    with pytest.raises(WarehouseError) as info:
        context.warehouse_latest_sequence(settings(tmp_path))
    assert str(info.value) == (
        "warehouse etl@dw.example:5432/dw: the role etl lacks privileges the job needs (checked before any sequence "
        "opens):\n  USAGE on schema etl_control (it exists, but this role cannot use it: the runs recorded in "
        "etl_control.run are invisible to it, so the job would take the latest sequence as 0)\n  run as the owner of "
        'these objects or a superuser: GRANT USAGE ON SCHEMA "etl_control" TO "etl"; or set [warehouse] user to a '
        "role that has them")
    assert conn.ran(LATEST) == []


def test_on_redshift_the_control_schema_is_created_before_the_sequence_is_read(monkeypatch, tmp_path):
    conn = FakeConnection([("pg_catalog.pg_attribute", [(0,)]), (RUN_TABLE, READABLE), (LATEST, [(0,)])], flavor="redshift")
    connected(monkeypatch, conn)
    assert context.warehouse_latest_sequence(settings(tmp_path, "redshift")) == 0
    texts = [text for text, _ in conn.statements]
    ddl = [texts.index(statement) for statement in RedshiftDialect().control_ddl(control.CONTROL_TABLES)]
    assert ddl == sorted(ddl) and max(ddl) < next(i for i, t in enumerate(texts) if RUN_TABLE in t)
    assert conn.commits >= 1  # committed before any worker starts


# --- RunJob.execution_sequence ----------------------------------------------------------------

@pytest.fixture
def run_job(monkeypatch, tmp_path):
    """RunJob with faked configuration, preflight and warehouse; ``state`` says what is known and complete."""
    ctx = settings(tmp_path)
    state = SimpleNamespace(warehouse=0, reports_complete=set(), preflight_error=None)

    def preflight(c):
        if state.preflight_error:
            raise state.preflight_error
        return {}

    monkeypatch.setattr(job, "load_context", lambda: ctx)
    monkeypatch.setattr(job, "etl_settings", lambda: ctx.etl)
    monkeypatch.setattr(job.quality, "levels", lambda: {})
    monkeypatch.setattr(job, "preflight", preflight)
    monkeypatch.setattr(job, "preflight_environment", lambda c, rejects, metas: None)  # tests/integration/test_preflight_environment.py
    monkeypatch.setattr(job, "warehouse_latest_sequence", lambda c: state.warehouse)
    monkeypatch.setattr(job.BuildReports, "complete", lambda task: task.execution_sequence in state.reports_complete)
    monkeypatch.setattr(job.metadata_change, "redo_changed_tables", lambda c, seq: [])  # tests/unit/test_metadata_change.py
    luigi.task_register.Register.clear_instance_cache()  # a new RunJob resolves its sequence again
    yield state, Path(ctx.etl.output_dir)
    luigi.task_register.Register.clear_instance_cache()


def finished(output: Path, sequence: int) -> None:
    (output / str(sequence)).mkdir(parents=True)
    (output / str(sequence) / "RunJob.json").write_text("{}")


def test_the_first_run_is_sequence_1(run_job):
    assert job.RunJob().execution_sequence == 1


def test_an_incomplete_sequence_is_resumed(run_job):
    state, output = run_job
    finished(output, 1)
    state.reports_complete = {1}
    (output / "2").mkdir()  # sequence 2 failed half-way
    state.warehouse = 2
    assert job.RunJob().execution_sequence == 2


def test_after_a_complete_sequence_the_next_one_runs(run_job):
    state, output = run_job
    finished(output, 5)
    state.reports_complete, state.warehouse = {5}, 5
    assert job.RunJob().execution_sequence == 6


def test_a_deleted_step_marker_reruns_the_sequence_it_belongs_to(run_job):
    state, output = run_job
    finished(output, 5)  # RunJob.json is there, but a step below BuildReports lost its marker
    state.reports_complete, state.warehouse = set(), 5
    assert job.RunJob().execution_sequence == 5


def test_the_warehouse_sequence_counts_when_the_output_folder_was_lost(run_job):
    """A wiped output folder does not restart at 1: the warehouse's latest sequence is resumed."""
    state, _ = run_job
    state.warehouse = 7
    assert job.RunJob().execution_sequence == 7


def test_a_later_sequence_on_disk_wins_over_the_warehouse(run_job):
    state, output = run_job
    finished(output, 9)
    state.reports_complete, state.warehouse = {9}, 3
    assert job.RunJob().execution_sequence == 10


def test_bad_configuration_stops_runjob_before_a_sequence_is_chosen(run_job):
    state, _ = run_job
    state.preflight_error = ConfigError("table 'orders': no such table in source database 'b2b'")
    state.warehouse = 4
    with pytest.raises(ConfigError, match="no such table"):
        job.RunJob().execution_sequence  # noqa: B018 - the property resolves the sequence
