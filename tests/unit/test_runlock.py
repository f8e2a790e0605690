"""The warehouse run lock's protocol (etl.runlock) as exact statements on a fake connection (Redshift has no
server here; PostgreSQL's semantics: tests/integration/test_run_lock.py), and its identities and messages."""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timezone

import pytest

from etl import control, runlock, shutdown
from etl.dialects import PostgresDialect, RedshiftDialect
from tests.support.fakes import FakeConnection

SCHEMA_DONE = ("pg_catalog.pg_attribute", [(len(control.SCHEMA_COLUMNS),)])
LOCKS = [("pg_advisory_xact_lock", [("",)]), ("pg_advisory_lock_shared", [("",)]), ("pg_advisory_unlock", [(True,)])]
ME = runlock.Holder("luigid http://sched:8082/", "host-b", 4242, None, "luigi RunJob --workers 2")
STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def texts(conn) -> list[str]:
    return [text for text, _ in conn.statements if "pg_catalog.pg_attribute" not in text]


def test_postgres_first_holder_clears_dead_rows_and_joins_shared():
    conn = FakeConnection([SCHEMA_DONE, *LOCKS, ("pg_try_advisory_lock", [(True,)])])
    lock = runlock.acquire(conn, ME, "root@db:5432/dw")
    assert texts(conn) == [
        "SET tcp_keepalives_idle = 60", "SET tcp_keepalives_interval = 10", "SET tcp_keepalives_count = 6",
        "SELECT pg_advisory_xact_lock(hashtext('luigi_dw_etl.run_lock.join'))",
        "SELECT pg_try_advisory_lock(hashtext('luigi_dw_etl.run_lock'))",
        "DELETE FROM etl_control.run_holder",
        "SELECT pg_advisory_lock_shared(hashtext('luigi_dw_etl.run_lock'))",
        "SELECT pg_advisory_unlock(hashtext('luigi_dw_etl.run_lock'))",
        "INSERT INTO etl_control.run_holder (run_identity, host, process_id, command_line) "
        "VALUES (%(identity)s, %(host)s, %(pid)s, %(command)s)",
    ]
    assert conn.ran("INSERT INTO etl_control.run_holder")[0] == {
        "identity": ME.identity, "host": "host-b", "pid": 4242, "command": "luigi RunJob --workers 2", "stale": 180}
    assert conn.commits == 3  # the schema check, the session settings, the join
    assert lock.owner_pid == os.getpid() and lock._heartbeat is None  # no heartbeat on PostgreSQL


def test_postgres_process_of_the_same_run_joins_without_clearing():
    holder = ("luigid http://sched:8082/", "host-a", 11, STARTED, "luigi RunJob")
    conn = FakeConnection([SCHEMA_DONE, *LOCKS, ("pg_try_advisory_lock", [(False,)]), ("FROM etl_control.run_holder", [holder])])
    runlock.acquire(conn, ME, "root@db:5432/dw")
    assert "DELETE FROM etl_control.run_holder" not in texts(conn)
    assert "SELECT pg_advisory_unlock(hashtext('luigi_dw_etl.run_lock'))" not in texts(conn)
    assert texts(conn)[-3:] == [PostgresDialect.run_holders, PostgresDialect.run_lock_share[0],
                                PostgresDialect.run_holder_insert[0]]


def test_postgres_another_run_is_refused_naming_its_holder_and_nothing_is_recorded():
    holder = ("local host-a:11:1767323045.000", "host-a", 11, STARTED, "luigi RunJob --local-scheduler")
    conn = FakeConnection([SCHEMA_DONE, *LOCKS, ("pg_try_advisory_lock", [(False,)]), ("FROM etl_control.run_holder", [holder])])
    with pytest.raises(runlock.RunLockTaken) as refused:
        runlock.acquire(conn, ME, "root@db:5432/dw")
    assert str(refused.value) == (
        "warehouse root@db:5432/dw is already being loaded by another run: pid 11 on host host-a since "
        "2026-01-02 03:04:05 UTC (luigi RunJob --local-scheduler; scheduler local host-a:11:1767323045.000); "
        "wait for it to finish or stop it (kill -TERM <pid> on that host; the rerun resumes its sequence), then run "
        "RunJob again; a dead run's lock is released when its connection closes")
    assert refused.value.holder.pid == 11
    assert not conn.ran("INSERT INTO etl_control.run_holder") and not conn.ran("pg_advisory_lock_shared")


def test_postgres_a_live_lock_without_holder_rows_is_refused():
    conn = FakeConnection([SCHEMA_DONE, *LOCKS, ("pg_try_advisory_lock", [(False,)]), ("FROM etl_control.run_holder", [])])
    with pytest.raises(runlock.RunLockTaken, match="a process without a holder row in etl_control.run_holder"):
        runlock.acquire(conn, ME, "w")


def test_redshift_takes_the_lock_with_lock_table_rows_and_a_heartbeat(monkeypatch):
    started = []
    monkeypatch.setattr(runlock.RunLock, "start_heartbeat", lambda self: started.append(self))
    conn = FakeConnection([SCHEMA_DONE, ("FROM etl_control.run_holder", [])], flavor="redshift")
    lock = runlock.acquire(conn, ME, "rs")
    assert texts(conn) == [
        "LOCK etl_control.run_holder",
        "DELETE FROM etl_control.run_holder WHERE heartbeat_datetime < DATEADD(second, -%(stale)s, GETDATE())",
        "SELECT run_identity, host, process_id, started_datetime, command_line FROM etl_control.run_holder "
        "ORDER BY started_datetime, host, process_id",
        "INSERT INTO etl_control.run_holder (run_identity, host, process_id, command_line) "
        "VALUES (%(identity)s, %(host)s, %(pid)s, %(command)s)",
    ]
    assert conn.ran("DATEADD")[0]["stale"] == runlock.STALE_SECONDS == 180
    assert started == [lock]


def test_redshift_refusal_says_when_a_dead_run_expires():
    holder = ("local a:1:2.000", "a", 1, datetime(2026, 1, 2, 3, 4, 5), None)  # Redshift TIMESTAMP: naive UTC
    conn = FakeConnection([SCHEMA_DONE, ("FROM etl_control.run_holder", [holder])], flavor="redshift")
    with pytest.raises(runlock.RunLockTaken) as refused:
        runlock.acquire(conn, ME, "rs")
    assert "pid 1 on host a since 2026-01-02 03:04:05 UTC (scheduler local a:1:2.000)" in str(refused.value)
    assert str(refused.value).endswith("a dead run's lock expires 180 s after its last heartbeat")
    assert not conn.ran("INSERT")


def test_redshift_heartbeat_and_release_statements(monkeypatch):
    conn = FakeConnection(flavor="redshift")
    lock = runlock.RunLock(conn, ME, "rs")
    monkeypatch.setattr(runlock, "HEARTBEAT_SECONDS", 0.01)
    lock.start_heartbeat()
    deadline = time.monotonic() + 5
    while not conn.ran("UPDATE etl_control.run_holder") and time.monotonic() < deadline:
        time.sleep(0.01)
    lock.release()
    statements = texts(conn)
    assert "UPDATE etl_control.run_holder SET heartbeat_datetime = GETDATE() WHERE run_identity = %(identity)s " \
           "AND host = %(host)s AND process_id = %(pid)s" in statements
    assert statements[-2:] == ["LOCK etl_control.run_holder", "DELETE FROM etl_control.run_holder WHERE run_identity = "
                               "%(identity)s AND host = %(host)s AND process_id = %(pid)s"]
    assert conn.closed and not lock._heartbeat.is_alive()
    lock.release()  # once only
    assert statements == texts(conn)


def test_release_in_another_process_does_nothing():
    conn = FakeConnection()
    lock = runlock.RunLock(conn, ME, "w")
    lock.owner_pid = os.getpid() + 1  # as in a forked worker
    lock.release()
    assert conn.statements == [] and not conn.closed


def test_the_control_schema_defines_the_holder_table_once():
    ddl = PostgresDialect().control_ddl({"run_holder": control.CONTROL_TABLES["run_holder"]})
    assert ddl[1] == (
        "CREATE TABLE IF NOT EXISTS etl_control.run_holder (\n    run_identity text NOT NULL,\n    host text NOT NULL,\n"
        "    process_id integer NOT NULL,\n    command_line text,\n    started_datetime timestamptz NOT NULL DEFAULT now(),\n"
        "    heartbeat_datetime timestamptz NOT NULL DEFAULT now(),\n    PRIMARY KEY (run_identity, host, process_id))")
    assert "heartbeat_datetime TIMESTAMP NOT NULL DEFAULT GETDATE()" in RedshiftDialect().control_ddl(
        {"run_holder": control.CONTROL_TABLES["run_holder"]})[1]


@pytest.mark.parametrize("local, url, host, port, expected", [
    (True, "", "localhost", 8082, "local m1:77:12.500"),
    (False, "http://sched.example:8082", "localhost", 8082, "luigid http://sched.example:8082/"),
    (False, "", "sched.example", 9000, "luigid http://sched.example:9000/"),
    # the same loopback URL on two machines names two schedulers
    (False, "http://127.0.0.1:8082/", "x", 1, "luigid http://127.0.0.1:8082/ on m1"),
    (False, "", "localhost", 8082, "luigid http://localhost:8082/ on m1"),
])
def test_scheduler_identity(local, url, host, port, expected):
    assert runlock.scheduler_identity(local, url, host, port, host="m1", pid=77, started=12.5) == expected


def test_command_line_masks_secrets():
    argv = ["/venv/bin/luigi", "RunJob", "--warehouse-password", "s3cr3t", "--mysql-password=pw2",
            "--ipinfo-token", "tok", "--workers", "2", "--dw_etl-output-dir", "a b"]
    assert runlock.command_line(argv) == (
        "luigi RunJob --warehouse-password '***' '--mysql-password=***' --ipinfo-token '***' --workers 2 "
        "--dw_etl-output-dir 'a b'")


def test_terminated_is_a_keyboard_interrupt_and_exits_143():
    """Luigi re-raises KeyboardInterrupt where it swallows other errors; SystemExit gives the exit code."""
    error = shutdown.RunTerminated()
    assert isinstance(error, KeyboardInterrupt) and isinstance(error, SystemExit) and error.code == 143


def test_a_forked_child_dies_with_its_parent_and_terminates_on_sigterm(tmp_path):
    """In a real fork: the child set PR_SET_PDEATHSIG = SIGKILL, and SIGTERM raises RunTerminated there."""
    report = tmp_path / "child.txt"
    pid = os.fork()
    if pid == 0:  # the child: install as a main process would, then fork a grandchild and inspect it
        code = 1
        try:
            shutdown.install()
            grandchild = os.fork()
            if grandchild == 0:
                try:
                    os.kill(os.getpid(), signal.SIGTERM)
                    os._exit(3)
                except shutdown.RunTerminated as exc:
                    report.write_text(str(exc.code))
                    os._exit(0)
            _, status = os.waitpid(grandchild, 0)
            code = os.waitstatus_to_exitcode(status)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert report.read_text() == "143"


def test_the_parent_death_signal_is_set_in_a_forked_child(tmp_path):
    report = tmp_path / "pdeathsig.txt"
    pid = os.fork()
    if pid == 0:
        try:
            shutdown.install()
            grandchild = os.fork()
            if grandchild == 0:
                import ctypes

                value = ctypes.c_int(-1)
                ctypes.CDLL(None).prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
                report.write_text(str(value.value))
                os._exit(0)
            os.waitpid(grandchild, 0)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert report.read_text() == str(int(signal.SIGKILL))
