"""What a failed run shows the user (etl.error_report), with the real ``luigi RunJob`` command.

An expected failure (a preflight refusal, a task's EltError) prints one line with the problem
and what to do; the same line, ``dw_etl: FAILED: ...``, is the last line of the run's
output, after Luigi's execution summary, with ``--workers 1`` and ``--workers 2`` (the task
then fails in a forked worker process) and against luigid. Its traceback is only in the
run's log file (``var/log/dw_etl-*.log``, mode 0600), unless ``DW_ETL_DEBUG=1``. An
unexpected exception (a bug) keeps its traceback and gets a last line too.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
import yaml

from tests.support.paths import REPO
from tests.support.project import REFUSED, SUMMARY_END, TASK_FAILED, run_job

def the_log_file(project) -> Path:
    """The run's one log file (var/log under the project folder, the default [dw_etl] log_dir); checks its mode."""
    [path] = sorted((project.root / "var" / "log").glob("dw_etl-*.log"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    return path


def add_columns(project, table: str, *columns: str) -> tuple[Path, int]:
    """Append ``columns`` to ``table``'s columns in mysql_tables.yaml; returns the file and the field's line."""
    path = project.root / "extract_config" / "mysql_tables.yaml"
    doc = yaml.safe_load(path.read_text())
    doc[table]["columns"] += list(columns)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
    lines = path.read_text().splitlines()
    start = lines.index(f"{table}:")
    return path, next(i for i in range(start, len(lines)) if lines[i].strip().startswith("columns:")) + 1


def broken_pres_file(project) -> Path:
    """A copy of sql/ with a pres file the warehouse refuses (it reads a table that does not exist); returns it."""
    sql_dir = project.root / "sql"
    shutil.copytree(REPO / "sql", sql_dir)
    path = sql_dir / "pres" / "005_broken.sql"
    path.write_text("CREATE TABLE pres.broken AS SELECT * FROM store_mysql.no_such_table;\n")
    project.write_cfg(dw_etl={"sql_dir": str(sql_dir)})
    return path


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_preflight_refusal_is_one_line_repeated_last_and_its_traceback_is_in_the_log_file(project, workers):
    project.populate("--scale", "0.001")
    path, line = add_columns(project, "customers", "no_such_column")
    out = run_job(project, "--workers", workers, expect=REFUSED)
    log = the_log_file(project)
    problem = (f"line {line} of {path}: table 'customers', field 'columns': column 'no_such_column' does not exist "
               f"in {project.source_db}.customers")
    assert out[-1] == f"dw_etl: FAILED: RunJob cannot start: table metadata does not match the source: {problem} " \
                      f"(details: {log})"
    assert out[-2] == SUMMARY_END  # after Luigi's execution summary
    assert "WARNING: Will not run RunJob() or any dependencies: table metadata does not match the source:" in out
    assert sum(problem in line for line in out) == 2  # once where it happened, once last
    assert not any("Traceback" in line for line in out)
    logged = log.read_text()
    assert "Traceback (most recent call last):" in logged
    assert f"etl.errors.ConfigError: table metadata does not match the source:\n  {problem}\n" in logged
    assert not project.output(1).exists()


def test_several_problems_are_listed_once_and_counted_last(project):
    project.populate("--scale", "0.001")
    path, line = add_columns(project, "customers", "no_such_a", "no_such_b", "no_such_c")
    out = run_job(project, expect=REFUSED)
    log = the_log_file(project)
    assert out[-1] == ("dw_etl: FAILED: RunJob cannot start: table metadata does not match the source "
                       f"(3 problems listed above; details: {log})")
    for column in ("no_such_a", "no_such_b", "no_such_c"):
        said = [text for text in out if f"column '{column}' does not exist in {project.source_db}.customers" in text]
        assert said == [f"  line {line} of {path}: table 'customers', field 'columns': column '{column}' does not "
                        f"exist in {project.source_db}.customers"]
    assert not any("Traceback" in line for line in out)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_failing_task_is_one_line_repeated_last_and_its_traceback_is_in_the_log_file(project, workers):
    project.populate("--scale", "0.001")
    pres_file = broken_pres_file(project)
    out = run_job(project, "--workers", workers, expect=TASK_FAILED)
    log = the_log_file(project)
    message = f'pres file {pres_file} failed: ERROR: relation "store_mysql.no_such_table" does not exist'
    assert out[-1].startswith(f"dw_etl: FAILED: BuildPres(execution_sequence=1): {message} LINE 1: ")
    assert out[-1].endswith(f" (details: {log})")
    assert out[-2] == SUMMARY_END
    failed = [line for line in out if line.startswith("ERROR: [pid ") and " failed    BuildPres(" in line]
    assert len(failed) == 1 and f"BuildPres(execution_sequence=1): {message}" in failed[0]
    assert not any("Traceback" in line for line in out)
    logged = log.read_text()
    assert "Traceback (most recent call last):" in logged and f"etl.errors.PresError: {message}" in logged
    assert (project.output(1) / "mysql_order_lines.store.json").exists()  # the chains before pres were loaded


def test_the_debug_switch_keeps_the_traceback_on_the_terminal(project):
    project.populate("--scale", "0.001")
    add_columns(project, "customers", "no_such_column")
    out = run_job(project, expect=REFUSED, env=project.env(DW_ETL_DEBUG="1"))
    log = the_log_file(project)
    assert "Traceback (most recent call last):" in out
    assert any(line.startswith("etl.errors.ConfigError: table metadata does not match the source:") for line in out)
    assert out[-1].startswith("dw_etl: FAILED: RunJob cannot start: table metadata does not match the source: line ")
    assert out[-1].endswith(f" (traceback above and in {log})")


def test_an_unexpected_error_keeps_its_traceback_and_gets_the_last_line(project):
    project.populate("--scale", "0.001")
    out = run_job(project, "--workers", "2", expect=TASK_FAILED, module="tests.support.buggy_job")
    log = the_log_file(project)
    assert "Traceback (most recent call last):" in out and "KeyError: 'planted_bug'" in out
    assert out[-1] == (f"dw_etl: FAILED: CheckQuality(execution_sequence=1): unexpected error KeyError: 'planted_bug'; "
                       f"see the traceback above (also in {log}) and please report it")


def test_against_luigid_the_failing_task_is_the_last_line(project, luigid):
    project.populate("--scale", "0.001")
    pres_file = broken_pres_file(project)
    out = run_job(project, "--scheduler-url", f"http://127.0.0.1:{luigid}/", "--workers", "2", expect=TASK_FAILED)
    log = the_log_file(project)
    assert out[-1].startswith(f'dw_etl: FAILED: BuildPres(execution_sequence=1): pres file {pres_file} failed: ERROR: '
                              'relation "store_mysql.no_such_table" does not exist')
    assert out[-1].endswith(f" (details: {log})")
    assert not any("Traceback" in line for line in out)


def test_a_successful_run_prints_no_failure_and_writes_no_log_file(project):
    project.populate("--scale", "0.001")
    out = run_job(project, expect=0)
    assert out[-1] == SUMMARY_END and not any(line.startswith("dw_etl: FAILED") for line in out)
    assert not (project.root / "var" / "log").exists()
    assert os.path.exists(project.output(1) / "RunJob.json")
