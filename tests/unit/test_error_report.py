"""etl.error_report: the console line of a failure, the log file with its traceback, the failure lines printed last.

The records come from Luigi's own worker (``luigi.build`` with the local scheduler, in this
process: no database, no network), so the tests follow Luigi's real log messages.
"""

from __future__ import annotations

import io
import logging
import os
import stat
import sys
import traceback

import luigi
import pytest

from etl import error_report
from etl.errors import ConfigError, PresError
from etl.error_report import Report, ReportFilter, debug_enabled, expected_class, failure_line, final_exception

PROBLEMS = ("table metadata does not match the source:\n"
            "  line 3 of m.yaml: a\n  line 7 of m.yaml: b\n  line 9 of m.yaml: c")


class FailingRun(luigi.Task):
    """run() raises: pres (a PresError), bug (a KeyError)."""

    kind = luigi.Parameter()

    def run(self):
        if self.kind == "pres":
            raise PresError("pres file sql/pres/010_x.sql failed: ERROR: relation \"x\" does not exist; fix the file")
        raise KeyError("no_such_key")

    def complete(self):
        return False


class FailingComplete(luigi.Task):
    """complete() raises: config (a multi-line ConfigError), bug (ZeroDivisionError)."""

    kind = luigi.Parameter()

    def complete(self):
        if self.kind == "config":
            raise ConfigError(PROBLEMS)
        return 1 / 0


@pytest.fixture
def console():
    """Luigi's ``luigi-interface`` logger writing to a string (as the terminal would), its filters restored after."""
    logger = logging.getLogger("luigi-interface")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    saved = (logger.filters[:], logger.handlers[:], logger.propagate, logger.level)
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    yield stream
    logger.filters[:], logger.handlers[:], logger.propagate, _ = saved
    logger.setLevel(saved[3])


def report_on(tmp_path, debug=False, secrets=()) -> Report:
    report = Report(str(tmp_path / "log" / "run.log"), "dw_etl run log: luigi RunJob", secrets, debug)
    logging.getLogger("luigi-interface").addFilter(ReportFilter(report, failures=True))
    return report


def build(task) -> None:
    luigi.build([task], local_scheduler=True, workers=1, log_level="INFO")


def test_an_expected_failure_in_run_is_one_console_line_and_its_traceback_goes_to_the_log_file(tmp_path, console):
    report = report_on(tmp_path)
    build(FailingRun(kind="pres"))
    text = console.getvalue()
    assert "Traceback" not in text
    failed = [line for line in text.splitlines() if " failed    FailingRun(kind=pres)" in line]
    assert len(failed) == 1
    assert failed[0].endswith('FailingRun(kind=pres): pres file sql/pres/010_x.sql failed: ERROR: relation "x" '
                              'does not exist; fix the file')
    assert report.failures() == [
        f'FailingRun(kind=pres): pres file sql/pres/010_x.sql failed: ERROR: relation "x" does not exist; fix the file '
        f'(details: {report.log_path})']
    logged = open(report.log_path).read()
    assert logged.startswith("dw_etl run log: luigi RunJob\n")
    assert "Traceback (most recent call last)" in logged
    assert "etl.errors.PresError: pres file sql/pres/010_x.sql" in logged
    assert stat.S_IMODE(os.stat(report.log_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(report.log_path)).st_mode) == 0o700


def test_the_debug_switch_keeps_the_traceback_on_the_terminal(tmp_path, console):
    report = report_on(tmp_path, debug=True)
    build(FailingRun(kind="pres"))
    assert "Traceback (most recent call last)" in console.getvalue()
    assert "etl.errors.PresError: pres file" in console.getvalue()
    assert report.failures()[0].endswith(f"fix the file (traceback above and in {report.log_path})")
    assert "etl.errors.PresError" in open(report.log_path).read()


def test_debug_switch_values():
    assert [debug_enabled({"DW_ETL_DEBUG": v}) for v in ("1", "true", "YES", " on ", "0", "", "no")] == \
        [True, True, True, True, False, False, False]
    assert debug_enabled({}) is False


def test_an_unexpected_error_in_run_keeps_its_traceback_and_gets_a_line(tmp_path, console):
    report = report_on(tmp_path)
    build(FailingRun(kind="bug"))
    assert "Traceback (most recent call last)" in console.getvalue()
    assert "KeyError: 'no_such_key'" in console.getvalue()
    assert report.failures() == [
        f"FailingRun(kind=bug): unexpected error KeyError: 'no_such_key'; see the traceback above (also in "
        f"{report.log_path}) and please report it"]


def test_a_scheduling_error_lists_its_problems_once_and_the_last_line_counts_them(tmp_path, console):
    report = report_on(tmp_path)
    build(FailingComplete(kind="config"))
    text = console.getvalue()
    assert "Traceback" not in text
    assert ("WARNING: Will not run FailingComplete(kind=config) or any dependencies: " + PROBLEMS + "\n") in text
    assert text.count("line 7 of m.yaml: b") == 1
    assert report.failures() == [
        f"FailingComplete(kind=config) cannot start: table metadata does not match the source (3 problems listed "
        f"above; details: {report.log_path})"]
    assert "etl.errors.ConfigError: table metadata does not match the source:" in open(report.log_path).read()


def test_an_unexpected_scheduling_error_keeps_its_traceback(tmp_path, console):
    report = report_on(tmp_path)
    build(FailingComplete(kind="bug"))
    assert "ZeroDivisionError: division by zero" in console.getvalue()
    assert "Traceback (most recent call last)" in console.getvalue()
    assert report.failures() == [
        f"FailingComplete(kind=bug) cannot start: unexpected error ZeroDivisionError: division by zero; see the "
        f"traceback above (also in {report.log_path}) and please report it"]


def test_secrets_are_masked_in_the_log_file(tmp_path, console):
    class LeakyError(ConfigError):
        pass

    class Leaky(luigi.Task):
        def run(self):
            try:
                raise RuntimeError("connect with password hunter2-secret failed")
            except RuntimeError as exc:
                raise LeakyError("cannot connect; fix [mysql] password") from exc

        def complete(self):
            return False

    report = report_on(tmp_path, secrets=["hunter2-secret", "abc"])  # "abc": too short to mask
    build(Leaky())
    logged = open(report.log_path).read()
    assert "RuntimeError: connect with password *** failed" in logged
    assert "hunter2-secret" not in logged + console.getvalue()


def test_a_log_file_that_cannot_be_written_leaves_the_traceback_on_the_terminal(tmp_path, console):
    (tmp_path / "log").write_text("a file where the folder should be")
    report = report_on(tmp_path)
    build(FailingRun(kind="pres"))
    assert "etl.errors.PresError: pres file" in console.getvalue()
    [line] = report.failures()
    assert f"fix the file (traceback above; the log file {report.log_path} could not be written: " in line


def test_failures_of_forked_children_reach_the_parent_in_order_without_duplicates(tmp_path):
    report = Report(str(tmp_path / "run.log"))
    report.add_failure("RunJob cannot start: first")
    pids = []
    for n in range(3):
        pid = os.fork()
        if pid == 0:  # the child: as a --workers N task process
            report.add_failure(f"Task{n}: failed")
            report.add_failure(f"Task{n}: failed")
            os._exit(0)
        os.waitpid(pid, 0)
        pids.append(pid)
    assert report.failures() == ["RunJob cannot start: first", "Task0: failed", "Task1: failed", "Task2: failed"]
    out = io.StringIO()
    report.print_last_lines(out)
    assert out.getvalue().splitlines() == [
        "dw_etl: FAILED: RunJob cannot start: first", "dw_etl: FAILED: Task0: failed",
        "dw_etl: FAILED: Task1: failed", "dw_etl: FAILED: Task2: failed"]


def test_a_worker_process_that_died_gets_a_line(tmp_path):
    report = Report(str(tmp_path / "run.log"))
    record = logging.LogRecord("luigi-interface", logging.INFO, __file__, 1,
                               "Task BuildPres_1_1fe9446a32 died unexpectedly with exit code -9", (), None)
    report.handle(record, failures=True)
    assert report.failures() == ["BuildPres_1_1fe9446a32: its worker process died unexpectedly with exit code -9; "
                                 "see the log above, then run RunJob again to resume the run"]


def test_etl_records_only_move_tracebacks(tmp_path):
    report = Report(str(tmp_path / "run.log"))
    try:
        raise ConfigError("[dw_etl] x = 1 is wrong; set it to 2")
    except ConfigError:
        record = logging.LogRecord("etl.job", logging.ERROR, __file__, 1, "releasing failed", (), sys.exc_info())
    report.handle(record, failures=False)
    assert record.exc_info is None and record.getMessage() == "releasing failed: [dw_etl] x = 1 is wrong; set it to 2"
    assert report.failures() == []
    assert "Traceback" in open(report.log_path).read()


def test_final_exception_of_a_chained_traceback():
    try:
        try:
            {}["k"]
        except KeyError as exc:
            raise ConfigError(PROBLEMS) from exc
    except ConfigError:
        text = traceback.format_exc()
    assert final_exception(text) == ("etl.errors.ConfigError", PROBLEMS)
    assert final_exception("no traceback here") is None
    assert expected_class("etl.errors.ConfigError") is ConfigError
    from etl.runlock import RunLockTaken

    assert expected_class("etl.runlock.RunLockTaken") is RunLockTaken
    assert expected_class("KeyError") is None and expected_class("os.path") is None
    assert expected_class("no.such.module.Error") is None


def test_failure_line():
    assert failure_line("", "one line", "details: f") == "one line (details: f)"
    assert failure_line("T: ", "heading:\n  the only problem", "details: f") == \
        "T: heading: the only problem (details: f)"
    assert failure_line("T: ", PROBLEMS, "details: f") == \
        "T: table metadata does not match the source (3 problems listed above; details: f)"


def test_install_once_per_process(tmp_path, console):
    before = logging.getLogger("luigi-interface").filters[:]
    saved = error_report._report
    try:
        error_report._report = None
        first = error_report.install("header", log_dir=str(tmp_path / "logs"))
        assert error_report.install("header") is first
        assert os.path.dirname(first.log_path) == str(tmp_path / "logs")
        assert os.path.basename(first.log_path).startswith("dw_etl-")
        assert len(logging.getLogger("luigi-interface").filters) == len(before) + 1
    finally:
        import atexit

        atexit.unregister(error_report._report.print_last_lines)
        error_report._report = saved


def test_an_expected_error_out_of_luigi_itself_gets_a_line_without_a_task(tmp_path):
    report = Report(str(tmp_path / "run.log"))
    try:
        raise ConfigError("[warehouse] flavor = 'oracle' is not supported; use postgres or redshift")
    except ConfigError:
        record = logging.LogRecord("luigi-interface", logging.ERROR, __file__, 1, "Uncaught exception in luigi", (),
                                   sys.exc_info())
    report.handle(record, failures=True)
    assert record.getMessage() == ("Uncaught exception in luigi: [warehouse] flavor = 'oracle' is not supported; "
                                   "use postgres or redshift")
    assert report.failures() == [f"[warehouse] flavor = 'oracle' is not supported; use postgres or redshift "
                                 f"(details: {report.log_path})"]
