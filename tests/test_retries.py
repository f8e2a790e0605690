"""Transient faults are retried with backoff, other errors are not; a run survives killed connections."""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest

from etl.errors import EltError, LoadError
from etl.retries import with_retries
from tests.support.oracle import assert_store_equals_source


def flaky(failures: list):
    calls = []

    def work():
        calls.append(time.monotonic())
        if failures:
            raise failures.pop(0)
        return "done"

    return work, calls


def test_transient_faults_are_retried_with_backoff():
    work, calls = flaky([LoadError("dropped", transient=True), psycopg2.OperationalError("server closed the connection")])
    assert with_retries("step", work, attempts=3, delay_seconds=0.05) == "done"
    assert len(calls) == 3
    assert calls[2] - calls[1] >= 0.09  # the second wait is doubled


def test_logic_errors_are_not_retried():
    work, calls = flaky([LoadError("value too long for type character varying(5)")])
    with pytest.raises(LoadError):
        with_retries("step", work, attempts=3, delay_seconds=0.01)
    assert len(calls) == 1


def test_retries_end():
    work, calls = flaky([EltError("gone", transient=True)] * 5)
    with pytest.raises(EltError):
        with_retries("step", work, attempts=2, delay_seconds=0.01)
    assert len(calls) == 3


@pytest.mark.integration
def test_run_survives_killed_warehouse_connections(project):
    project.populate("--scale", "0.01", "--seed", "61")
    project.write_cfg(dw_etl={"retry_count": 5, "retry_delay_seconds": 0.2})
    admin = project.pg()
    kills = []
    stop = threading.Event()

    def killer():
        cur = admin.cursor()
        while not stop.is_set():  # wait for the first task, then kill the pipeline's sessions repeatedly
            cur.execute("SELECT to_regclass('etl_control.run') IS NOT NULL")
            if cur.fetchone()[0]:
                break
            time.sleep(0.02)
        deadline = time.monotonic() + 3
        while not stop.is_set() and time.monotonic() < deadline:
            cur.execute("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND application_name = 'luigi_dw_etl' AND pid <> pg_backend_pid()")
            kills.append(cur.fetchone()[0])
            time.sleep(0.25)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        proc = project.run()
    finally:
        stop.set()
        thread.join()
        admin.close()
    assert sum(kills) >= 1, "no session was killed: the run was too quick for this test"
    assert "transient fault" in proc.stderr
    assert_store_equals_source(project)
