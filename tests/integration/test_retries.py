"""A run survives warehouse connections killed under it (the retry rule itself: tests/unit/test_retries.py)."""

from __future__ import annotations

import threading
import time

from tests.support.oracle import assert_store_equals_source


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
