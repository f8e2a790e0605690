"""What a failed run shows: one line per failure, repeated last; tracebacks of expected errors in a log file.

``RunJob`` calls :func:`install` in the ``luigi`` command's main process (its command-line
hook, ``luigi_dw_etl.RunJob``), before Luigi sets up its own logging and before any worker
process forks. From then on:

* **An expected failure** (an :class:`~etl.errors.EltError`, configuration errors included)
  raised in a task's ``run()``, or in ``complete()``/``requires()`` (a scheduling error,
  such as the preflight refusing the metadata), shows on the terminal as Luigi's line about
  it followed by the error's message, without the traceback. The whole record, traceback
  included, is appended to the run's log file :attr:`Report.log_path`
  (``<[dw_etl] log_dir>/dw_etl-<UTC time>-<pid>.log``, folder ``var/log`` by default, mode
  0600, created on the first such record; known passwords and tokens replaced by ``***``).
* **An unexpected one** (a bug: ``KeyError``, ...) keeps its traceback on the terminal, and
  is written to the log file as well.
* **At exit** (``atexit``, after Luigi's execution summary) the main process prints one
  line per failed task, last: ``dw_etl: FAILED: <task>: <message> (details: <log file>)``.
  A message listing several problems (one per line) is shortened there to its first line
  and their count; the full list was printed once, above.

Failures in forked worker processes (``--workers N``) reach the main process through an
anonymous file that :func:`install` opens before they fork (each failure one ``O_APPEND``
write of a JSON line). :data:`DEBUG_ENV` (``DW_ETL_DEBUG=1``) keeps every traceback on the
terminal too.

The filter works on the records Luigi logs on its ``luigi-interface`` logger
(``TaskProcess.run``: ``logger.exception``; ``Worker._add``: a warning holding the formatted
traceback of ``complete()``/``deps()``; ``run_with_retcodes``: an uncaught exception) and on
the handler :func:`etl.logs.ensure_logging` gives the ``etl`` logger.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import sys
import tempfile
import time

from etl import config
from etl.errors import EltError

DEBUG_ENV = "DW_ETL_DEBUG"  # 1, true, yes or on: tracebacks of expected errors stay on the terminal too
PREFIX = "dw_etl: FAILED: "
LUIGI_LOGGER = "luigi-interface"
DEFAULT_LOG_DIR = "var/log"  # [dw_etl] log_dir's default (config.dw_etl)
MIN_SECRET_LENGTH = 4  # shorter secret values are not masked in the log file (they would garble it)
SECRET_ENV = ("MYSQL_PASSWORD", "PGPASSWORD", "IPINFO_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# Worker._add's warnings about complete()/deps() errors: the formatted traceback follows the colon
_SCHEDULING = re.compile(r"^Will not run (?P<task>.+?) or any dependencies due to error in "
                         r"(?P<method>complete|deps)\(\) method:\n(?P<tb>.*)\Z", re.S)
# Worker._purge_children: a worker process that ended without reporting its task
_DIED = re.compile(r"^Task (?P<task>\S+) (?P<what>died unexpectedly with exit code -?\d+|timed out after .+)$")


def debug_enabled(environ=None) -> bool:
    """True when :data:`DEBUG_ENV` is set to 1, true, yes or on (any case) in ``environ`` (default os.environ)."""
    return (environ if environ is not None else os.environ).get(DEBUG_ENV, "").strip().lower() in (
        "1", "true", "yes", "on")


def final_exception(tb_text: str) -> tuple[str, str] | None:
    """The last exception of a formatted traceback: (``module.Class`` as printed, its message).

    ``tb_text`` is what ``traceback.format_exc()`` returns; the message may span lines.
    Returns None when ``tb_text`` holds no frame line (``  File ...``).
    """
    lines = tb_text.rstrip("\n").split("\n")
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    if not frames:
        return None
    i = frames[-1] + 1
    while i < len(lines) and lines[i].startswith("    "):  # the frame's source line and its ^^^ markers
        i += 1
    if i == len(lines):
        return None
    name, _, first = lines[i].partition(": ")
    return name, "\n".join([first, *lines[i + 1:]])


def expected_class(name: str) -> type | None:
    """The EltError subclass a traceback names (``etl.errors.ConfigError``), looked up in loaded modules only;
    None when ``name`` is no such class."""
    module, _, qualname = name.rpartition(".")
    obj = sys.modules.get(module) if module else None
    for part in qualname.split(".") if obj is not None else ():
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, type) and issubclass(obj, EltError) else None


def failure_line(label: str, message: str, where: str) -> str:
    """One line for a failure: ``label`` (``"BuildPres(execution_sequence=1): "`` or empty), the ``message`` and
    ``where`` its traceback is, in parentheses. A message of up to two lines is joined; a longer one (a heading
    and one problem a line) is shortened to the heading and ``N problems listed above``."""
    lines = [" ".join(line.split()) for line in message.strip().split("\n")]
    lines = [line for line in lines if line]
    if len(lines) <= 2:
        return f"{label}{' '.join(lines)} ({where})"
    return f"{label}{lines[0].rstrip(':')} ({len(lines) - 1} problems listed above; {where})"


class Report:
    """The failures of this run and its log file (one per ``luigi`` process; see the module doc).

    ``log_path`` is the log file (absolute), ``header`` the first line written to it (the
    command line, secrets masked), ``secrets`` values replaced by ``***`` in it, ``debug``
    keeps tracebacks on the terminal. Failures are appended to an anonymous file shared with
    forked children; :meth:`failures` reads them back in the main process.
    """

    def __init__(self, log_path: str, header: str = "", secrets=(), debug: bool = False):
        self.log_path = log_path
        self.header = header
        self.secrets = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self.debug = debug
        self.main_pid = os.getpid()
        self._shared = tempfile.TemporaryFile(mode="a+b")  # O_APPEND, unlinked; inherited across fork
        self._formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
        self._log_error: str | None = None

    # -- the failures, from any process of the run
    def add_failure(self, line: str) -> None:
        """Record ``line`` (without :data:`PREFIX`) to be printed last by the main process."""
        os.write(self._shared.fileno(), (json.dumps(line) + "\n").encode())

    def failures(self) -> list[str]:
        """Every recorded line, in order, duplicates dropped."""
        self._shared.seek(0)
        seen: list[str] = []
        for raw in self._shared.read().decode(errors="replace").splitlines():
            line = json.loads(raw)
            if line not in seen:
                seen.append(line)
        return seen

    def print_last_lines(self, stream=None) -> None:
        """Write ``dw_etl: FAILED: ...`` for each failure to ``stream`` (default stderr); in the main process only."""
        if os.getpid() != self.main_pid:
            return
        stream = stream or sys.stderr
        sys.stdout.flush()
        for line in self.failures():
            stream.write(PREFIX + line + "\n")
        stream.flush()

    # -- the log file
    def write_log(self, record: logging.LogRecord) -> bool:
        """Append ``record`` (formatted, traceback included, secrets masked) to the log file; False if it cannot
        be written (the reason is kept for the failure line)."""
        text = self._formatter.format(record)
        record.exc_text = None  # formatting caches it; the console must format its own record
        for secret in self.secrets:
            text = text.replace(secret, "***")
        try:
            os.makedirs(os.path.dirname(self.log_path), mode=0o700, exist_ok=True)
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if os.fstat(fd).st_size == 0 and self.header:
                    os.write(fd, (self.header + "\n").encode())
                os.write(fd, (text + "\n").encode(errors="replace"))
            finally:
                os.close(fd)
        except OSError as exc:
            self._log_error = f"the log file {self.log_path} could not be written: {exc}"
            return False
        return True

    def where(self, on_terminal: bool) -> str:
        """Where the traceback is, for a failure line."""
        if self._log_error:
            return f"traceback above; {self._log_error}"
        return f"traceback above and in {self.log_path}" if on_terminal else f"details: {self.log_path}"

    def unexpected_line(self, label: str, name: str, message: str, written: bool) -> str:
        """The failure line of an unexpected exception ``name`` (a bug): its traceback is on the terminal."""
        text = " ".join(message.split())
        also = f" (also in {self.log_path})" if written else ""
        what = f"{name}: {text}" if text else name
        return f"{label}unexpected error {what}; see the traceback above{also} and please report it"

    # -- one record
    def handle(self, record: logging.LogRecord, failures: bool) -> None:
        """Send ``record``'s traceback to the log file and, for an expected error, take it off the console
        record; with ``failures``, record the failure it reports (see the module doc)."""
        if getattr(record, "_dw_etl_seen", False):
            return
        record._dw_etl_seen = True
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            self._exception_record(record, exc, failures)
        elif failures and isinstance(record.msg, str):
            match = _SCHEDULING.match(record.msg) if not record.args else None
            if match:
                self._scheduling_record(record, match)
                return
            died = _DIED.match(record.getMessage())
            if died:
                self.add_failure(f"{died['task']}: its worker process {died['what']}; see the log above, "
                                 "then run RunJob again to resume the run")

    def _exception_record(self, record, exc: BaseException, failures: bool) -> None:
        task = next((a for a in (record.args or ()) if hasattr(a, "task_id")), None) \
            if isinstance(record.args, tuple) else None
        label = f"{task}: " if task is not None else ""
        written = self.write_log(record)
        if isinstance(exc, EltError):
            keep = self.debug or not written
            if not keep:
                record.msg, record.args = f"{record.getMessage()}: {exc}", ()
                record.exc_info, record.exc_text = None, None
            if failures:
                self.add_failure(failure_line(label, str(exc), self.where(keep)))
        elif failures:
            self.add_failure(self.unexpected_line(label, type(exc).__name__, str(exc), written))

    def _scheduling_record(self, record, match) -> None:
        task = match["task"].removesuffix("()")  # "RunJob cannot start", "BuildPres(execution_sequence=1) ..."
        found = final_exception(match["tb"])
        cls = expected_class(found[0]) if found else None
        written = self.write_log(record)
        if cls is None:
            name, message = found if found else ("error", "")
            self.add_failure(self.unexpected_line(f"{task} cannot start: ", name.rpartition(".")[2], message, written))
            return
        message = found[1]
        keep = self.debug or not written
        if not keep:
            record.msg = f"Will not run {match['task']} or any dependencies: {message}"
        self.add_failure(failure_line(f"{task} cannot start: ", message, self.where(keep)))


class ReportFilter(logging.Filter):
    """A logging filter handing every record to ``report`` (:meth:`Report.handle`); never drops one.

    ``failures``: records of this logger report failures (Luigi's); else only tracebacks are moved.
    """

    def __init__(self, report: Report, failures: bool):
        super().__init__()
        self.report, self.failures = report, failures

    def filter(self, record):
        try:
            self.report.handle(record, self.failures)
        except Exception:  # noqa: BLE001 - reporting must never hide the record it reports
            pass
        return True


_report: Report | None = None  # this process's, once install() ran


def run_log_dir() -> str:
    """``[dw_etl] log_dir`` (default ``var/log``), absolute (``etl.config.absolute_path``: a relative folder
    resolves against the folder of the config file that sets it); the default when ``[dw_etl]`` cannot be
    read (its wrong value is reported by the preflight, not here)."""
    try:
        folder = config.dw_etl().log_dir or DEFAULT_LOG_DIR
    except Exception:  # noqa: BLE001 - the log file must have a place even when [dw_etl] is wrong
        folder = luigi_config_value("dw_etl", "log_dir") or DEFAULT_LOG_DIR
    try:
        return config.absolute_path("dw_etl", "log_dir", folder)
    except EltError:  # the working directory is gone: install() reports the folder it cannot create
        return folder


def secret_values() -> list[str]:
    """The configured passwords and tokens (``[mysql]``/``[warehouse]`` password, ``[ipinfo]`` token, command
    line included) and those of :data:`SECRET_ENV`: what the log file must not show."""
    values = [os.environ.get(name, "") for name in SECRET_ENV]
    for section, key in ((config.mysql, "password"), (config.warehouse, "password"), (config.ipinfo, "token")):
        try:
            values.append(getattr(section(), key))
        except Exception:  # noqa: BLE001 - a wrong other key of the section: read the file's value
            values.append(luigi_config_value(section.__name__, key))
    return [v for v in values if v]


def luigi_config_value(section: str, key: str) -> str:
    """``key`` of ``section`` as the config files give it ('' when absent; as written when Luigi's
    interpolation cannot read it, e.g. a password with a lone %: etl.config_check reports that)."""
    import configparser

    import luigi.configuration

    try:
        return luigi.configuration.get_config().get(section, key, "")
    except configparser.Error:
        return luigi.configuration.get_config().get(section, key, "", raw=True)


def install(header: str = "", etl_handler: logging.Handler | None = None, log_dir: str | None = None
            ) -> Report | None:
    """Install the report in this (the run's main) process; once per process. Returns it (None, with a warning,
    when its shared file cannot be created: Luigi's own output then stays as it is).

    ``header`` is the log file's first line (the command line, secrets masked), ``log_dir``
    its folder (default :func:`run_log_dir`, made absolute now); ``etl_handler`` (the ``etl``
    logger's handler) gets a filter that moves tracebacks of expected errors. The values of
    :func:`secret_values` are masked in the file. Registers the last lines at exit.
    """
    global _report
    if _report is not None and _report.main_pid == os.getpid():
        return _report
    name = "dw_etl-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}.log"
    path = os.path.join(os.path.abspath(log_dir or run_log_dir()), name)
    try:
        _report = Report(path, header, secret_values(), debug_enabled())
    except OSError as exc:
        logging.getLogger(__name__).warning("failures are shown as Luigi logs them (tracebacks included): %s", exc)
        return None
    logging.getLogger(LUIGI_LOGGER).addFilter(ReportFilter(_report, failures=True))
    if etl_handler is not None:
        etl_handler.addFilter(ReportFilter(_report, failures=False))
    atexit.register(_report.print_last_lines)
    return _report


def add_failure(line: str) -> None:
    """Record a failure line (without :data:`PREFIX`) when :func:`install` ran in this run; else nothing."""
    if _report is not None:
        _report.add_failure(line)
