"""One run at a time per warehouse (etl.runlock), luigid scale-out, and how a run's processes end (etl.shutdown).

A run is made slow without a big source: the ``companies`` extract's ``where_clause`` sleeps
per row in MySQL (``SLEEP(s) = 0`` is true, so every row is still extracted and store must
still equal source).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml

from tests.support.databases import pg_connect
from tests.support.oracle import assert_store_equals_source
from tests.support.project import Project

SLOW_TABLE = "companies"  # 10 rows at the scales used here


def slow_down(project: Project, seconds_per_row: float) -> None:
    """Make the slow table's extract take ``seconds_per_row`` per source row (MySQL SLEEP in its where_clause)."""
    path = project.root / "extract_config" / "mysql_tables.yaml"
    doc = yaml.safe_load(path.read_text())
    doc[SLOW_TABLE]["where_clause"] = f"SLEEP({seconds_per_row}) = 0"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def start(project: Project, *args: str, name: str = "job") -> subprocess.Popen:
    """Start ``luigi RunJob`` in the project folder (``--local-scheduler`` unless ``--scheduler-url``); output to <name>.log."""
    luigi = Path(sys.executable).with_name("luigi")
    cmd = [str(luigi), "RunJob", "--module", "luigi_dw_etl", *args]
    if "--scheduler-url" not in args:
        cmd.append("--local-scheduler")
    log = open(project.root / f"{name}.log", "w")
    proc = subprocess.Popen(cmd, cwd=project.root, env=project.env(), stdout=log, stderr=subprocess.STDOUT)
    proc.log_path = project.root / f"{name}.log"
    return proc


def output_of(proc: subprocess.Popen) -> str:
    return proc.log_path.read_text()


def finish(proc: subprocess.Popen, timeout: float = 180) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def holders(project: Project) -> list[tuple]:
    """(run_identity, host, process_id) of every etl_control.run_holder row ([] before the table exists)."""
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT to_regclass('etl_control.run_holder') IS NOT NULL")
    rows = []
    if cur.fetchone()[0]:
        cur.execute("SELECT run_identity, host, process_id FROM etl_control.run_holder ORDER BY started_datetime")
        rows = cur.fetchall()
    conn.close()
    return rows


def wait_for(condition, what: str, timeout: float = 60, procs=()):
    """Poll ``condition()`` every 0.1 s until truthy (returned); AssertionError after ``timeout`` s or
    when one of ``procs`` exits first (its output in the message)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"exited {proc.returncode} before {what}:\n{output_of(proc)[-4000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def step_counts(project: Project) -> dict[tuple, int]:
    """(execution_sequence, step, table) -> rows in etl_control.step_log (landing_streamed not counted)."""
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT execution_sequence, step, table_name, count(*) FROM etl_control.step_log "
                "WHERE step <> 'landing_streamed' GROUP BY 1, 2, 3")
    counts = {(seq, step, table): n for seq, step, table, n in cur.fetchall()}
    conn.close()
    return counts


def assert_each_step_once(project: Project, sequence: int = 1) -> None:
    """step_log: exactly one landing and one store row per table of ``sequence`` (MySQL tables and the access log)."""
    tables = [*project.metadata(), "access"]  # the access log's table_name is "access"
    expected = {(sequence, step, t): 1 for t in tables for step in ("landing", "store")}
    found = step_counts(project)
    assert {k: v for k, v in found.items() if k[1] in ("landing", "store")} == expected


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (a /proc scan)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_second_runjob_with_another_command_line_exits_already_running(project, variant):
    project.populate("--scale", "0.002", "--seed", "3")
    slow_down(project, 0.4)
    first = start(project, "--workers", "2", name="first")
    try:
        (identity, host, pid), = wait_for(lambda: holders(project), "the first run's lock", procs=[first])
        assert pid == first.pid and identity.startswith(f"local {host}:{first.pid}:")
        started = time.monotonic()
        second = project.run(expect=10, timeout=60)  # no --workers: another command line
        assert time.monotonic() - started < 30
        assert first.poll() is None  # refused while the first one was running
        refusal = [line for line in second.stderr.splitlines() if "already being loaded by another run" in line]
        assert len(refusal) == 1, second.stderr[-3000:]
        assert second.stderr.splitlines()[-1] == refusal[0]  # the run's last line (etl.error_report)
        assert refusal[0].startswith("dw_etl: FAILED: RunJob cannot start: warehouse ")
        assert f"pid {first.pid} on host {host} since " in refusal[0]
        assert "(luigi RunJob --module luigi_dw_etl --workers 2 --local-scheduler; scheduler local " in refusal[0]
        assert "wait for it to finish or stop it" in refusal[0]
        assert "Traceback" not in second.stderr
        assert holders(project) == [(identity, host, pid)]  # the refused run left no holder row
        assert finish(first) == 0, output_of(first)[-4000:]
    finally:
        if first.poll() is None:
            first.kill()
    assert holders(project) == []  # released at exit
    assert_each_step_once(project)  # nothing was landed or upserted twice
    assert assert_store_equals_source(project) > 0
    assert sorted(p.name for p in (project.root / "output").iterdir()) == ["1"]


def second_project(first: Project, root: Path) -> Project:
    """Another project on the same source database with its own, new warehouse database."""
    root.mkdir()
    other = Project(root=root, source_db=first.source_db, warehouse_db=f"t_dw_{uuid.uuid4().hex[:10]}",
                    variant=first.variant)
    shutil.copytree(first.root / "extract_config", root / "extract_config")
    conn = pg_connect("postgres")
    conn.cursor().execute(f'CREATE DATABASE "{other.warehouse_db}"')
    conn.close()
    return other


def test_pipelines_on_two_warehouses_with_the_same_command_line_run_side_by_side(project, tmp_path):
    project.populate("--scale", "0.002", "--seed", "4")
    slow_down(project, 0.3)
    other = second_project(project, tmp_path / "other")
    # one luigi pid folder for both: with luigi's pid lock on, the same command line would refuse the second
    for p in (project, other):
        p.write_cfg(core={"lock_pid_dir": str(tmp_path / "shared-pid")})
    try:
        first = start(project, "--workers", "2", name="first")
        wait_for(lambda: holders(project), "the first run's lock", procs=[first])
        second = start(other, "--workers", "2", name="second")
        wait_for(lambda: holders(other), "the second run's lock", procs=[second])
        assert first.poll() is None  # both hold their warehouse's lock at once
        assert finish(first) == 0, output_of(first)[-4000:]
        assert finish(second) == 0, output_of(second)[-4000:]
        for p in (project, other):
            assert_each_step_once(p)
            assert assert_store_equals_source(p) > 0
    finally:
        conn = pg_connect("postgres")
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{other.warehouse_db}" WITH (FORCE)')
        conn.close()


def test_runjob_processes_against_one_luigid_share_one_run(project, luigid):
    project.populate("--scale", "0.002", "--seed", "5")
    slow_down(project, 0.3)
    url = f"http://127.0.0.1:{luigid}/"
    # --worker-keep-alive: a process with nothing runnable waits for the other's tasks instead of leaving
    args = ("--scheduler-url", url, "--workers", "2", "--worker-keep-alive")
    one, two = start(project, *args, name="one"), start(project, *args, name="two")
    try:
        rows = wait_for(lambda: len(holders(project)) == 2 and holders(project), "both processes' locks",
                        procs=[one, two])
        assert sorted(pid for _, _, pid in rows) == sorted([one.pid, two.pid])
        assert {identity for identity, _, _ in rows} == {f"luigid {url} on {rows[0][1]}"}
        local = project.run(expect=10, timeout=60)  # a --local-scheduler run is another run
        assert "already being loaded by another run" in local.stderr
        assert f"scheduler luigid {url} on " in local.stderr
        assert any(f"pid {pid} on host " in local.stderr for pid in (one.pid, two.pid))
        codes = {proc: finish(proc) for proc in (one, two)}
    finally:
        for proc in (one, two):
            if proc.poll() is None:
                proc.kill()
    # luigi's exit code per process: the tasks the other process ran count as "run by another worker"
    # (already_running, 10) or "not granted run permission" (not_run, 25) there (docs/operations.md); the run's
    # completion is the RunJob marker and etl_control.run, written once
    assert set(codes.values()) <= {0, 10, 25}, [output_of(proc)[-3000:] for proc in (one, two)]
    assert len([proc for proc in (one, two) if " done      RunJob()" in output_of(proc)]) == 1
    assert (project.output(1) / "RunJob.json").exists()
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT execution_sequence FROM etl_control.run WHERE completed_datetime IS NOT NULL")
    assert cur.fetchall() == [(1,)]
    conn.close()
    assert_each_step_once(project)  # the scheduler gave each task to one worker
    assert assert_store_equals_source(project) > 0
    ran = [proc for proc in (one, two) if "Worker Worker(" in output_of(proc) and " done      " in output_of(proc)]
    assert len(ran) == 2  # both processes ran tasks of the run


def test_sigkill_of_the_parent_leaves_no_worker_process(project):
    project.populate("--scale", "0.002", "--seed", "6")
    slow_down(project, 0.5)
    job = start(project, "--workers", "2", name="killed")
    workers = wait_for(lambda: children_of(job.pid), "a worker process", procs=[job])
    wait_for(lambda: list((project.root / "staging").rglob("*.tmp-*")), "a staging file being written", procs=[job])
    job.send_signal(signal.SIGKILL)
    job.wait(10)
    wait_for(lambda: not any(alive(pid) for pid in workers), "the workers to end", timeout=10)
    assert holders(project)  # the dead run's row stays until the next run takes the lock
    rerun = project.run("--workers", "2", timeout=180)  # the lock went with the parent's connection
    assert "already being loaded" not in rerun.stderr
    assert not list((project.root / "staging").rglob("*.tmp-*"))
    assert assert_store_equals_source(project) > 0
    assert holders(project) == []


def test_sigterm_ends_the_run_cleanly_and_the_rerun_resumes(project, variant):
    project.populate("--scale", "0.002", "--seed", "7")
    slow_down(project, 0.5)
    job = start(project, "--workers", "2", name="terminated")
    workers = wait_for(lambda: children_of(job.pid), "a worker process", procs=[job])
    wait_for(lambda: list((project.root / "staging").rglob("*.tmp-*")), "a staging file being written", procs=[job])
    job.send_signal(signal.SIGTERM)
    code = finish(job, timeout=60)
    log = output_of(job)
    assert code == 143, log[-6000:]
    stopping = [line for line in log.splitlines() if "SIGTERM: stopping" in line]
    assert len(stopping) == 1 and "execution sequence 1" in stopping[0] and "exit code 143" in stopping[0], log[-3000:]
    assert not any(alive(pid) for pid in workers)
    assert not list((project.root / "staging").rglob("*.tmp-*"))  # partial staging files removed
    assert not list((project.root / "output").rglob("*.tmp"))  # no half-written marker
    assert not (project.output(1) / "RunJob.json").exists()
    assert holders(project) == []  # released at exit
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
    assert cur.fetchone()[0] == 0  # every connection of the run closed (their transactions rolled back)
    conn.close()
    project.run("--workers", "2", timeout=180)
    assert sorted(p.name for p in (project.root / "output").iterdir()) == ["1"]  # resumed, not a new sequence
    assert (project.output(1) / "RunJob.json").exists()
    # (a step stopped between its commit and its marker runs again on the rerun: steps are idempotent)
    assert assert_store_equals_source(project) > 0


def test_the_refusal_names_no_password_given_on_the_command_line(project):
    """The holder's command line is shown with secrets masked."""
    project.populate("--scale", "0.001", "--seed", "8")
    slow_down(project, 0.3)
    secret = "Pw-" + uuid.uuid4().hex[:8]
    first = start(project, "--warehouse-password", secret, name="first")
    try:
        wait_for(lambda: holders(project), "the first run's lock", procs=[first])
        second = project.run(expect=10, timeout=60)
        assert "--warehouse-password '***'" in second.stderr or "--warehouse-password ***" in second.stderr
        assert secret not in second.stderr
    finally:
        assert finish(first) == 0, output_of(first)[-4000:]
    assert secret not in output_of(first)
    assert os.path.exists(project.output(1) / "RunJob.json")
