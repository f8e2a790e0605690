"""Configuration: one ``luigi.Config`` class per luigi.cfg section, plus resolved settings.

Luigi reads ``luigi.cfg`` from the current directory and the files named by
``LUIGI_CONFIG_PATH``; every key can also be given on the command line as
``--<section>-<key> VALUE`` (for example ``--mysql-database other_db``). The class names
below are the section names (a Luigi convention: ``[mysql]`` is read by ``class mysql``).
They declare the keys and defaults; what each key accepts is ``etl.config_check``'s table,
applied before any section is instantiated (:func:`checked_configuration`). Each key's
``description`` ends with its default, ``(default VALUE[; meaning])``, and is shown by
``luigi RunJob --module luigi_dw_etl --help`` (``always_in_help``; tests/unit/test_entry_point_help.py
checks both).

Run from a directory without ``luigi.cfg`` and without ``LUIGI_CONFIG_PATH`` (cron, systemd),
the project's own ``luigi.cfg`` is read (:func:`read_project_config`). A relative folder or
file pattern resolves against the folder of the config file that sets it, a command line
flag's against the working directory (:func:`absolute_path`), so the settings' paths are
absolute and the same wherever the job starts.

Passwords are never required in luigi.cfg: an empty ``password`` falls back to the
environment (``MYSQL_PASSWORD`` for the source, libpq's own ``PGPASSWORD`` for the
warehouse). Settings objects never show passwords in ``repr``.
"""

from __future__ import annotations

import functools
import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

import luigi
from luigi.cmdline_parser import CmdlineParser
from luigi.parameter import ParameterVisibility

from etl import config_check

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROJECT_CONFIG = PROJECT_ROOT / "luigi.cfg"  # the project's own, beside luigi_dw_etl.py
# Exit codes used when the configuration has no [retcode] value (Luigi's own defaults are 0).
DEFAULT_MAX_DELETE_FRACTION = 0.5  # [dw_etl] max_delete_fraction
DEFAULT_KEEP_RUNS = 30  # [dw_etl] keep_runs: numbered run folders kept in output/, completed/, reports/, rejects/
RETCODE_DEFAULTS = {
    "already_running": 10, "missing_data": 20, "not_run": 25, "task_failed": 30,
    "scheduling_error": 35, "unhandled_exception": 40,
}


# environment variables the resolved settings read (part of the memo key, with the working directory)
_SETTINGS_ENV = ("LUIGI_CONFIG_PATH", "MYSQL_PASSWORD", "PGPASSWORD", "IPINFO_TOKEN")


def _memoised(resolve):
    """Memoise a settings resolver per configuration state (decorator).

    Luigi rebuilds a Config object from the command line and the cfg files on every call
    (about 0.5 ms); the pipeline asks for its settings hundreds of times per run. The
    result is kept while the command line being run (``CmdlineParser``'s instance), the
    config parser object and the environment variables above are the same; a worker
    process forked by Luigi inherits it. Errors are not memoised. (Code that edits the
    parsed configuration in place, rather than running a new command line, would see the
    earlier values.)
    """
    memo: dict = {}

    @functools.wraps(resolve)
    def wrapper():
        parser, config = CmdlineParser.get_instance(), luigi.configuration.get_config()
        env = (*(os.environ.get(v) for v in _SETTINGS_ENV), _working_directory())  # relative flags resolve against it
        found = memo.get("value")
        if found is not None and found[0] is parser and found[1] is config and found[2] == env:
            return found[3]
        value = resolve()
        memo["value"] = (parser, config, env, value)
        return value

    return wrapper


def _working_directory() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # removed: config_check.base_folder says so where a path resolves against it
        return None


@_memoised
def checked_configuration() -> bool:
    """Check every value of the pipeline's sections once per configuration state (``etl.config_check``);
    True, or ConfigError listing every problem. Each settings resolver calls it first, so a wrong value
    is refused before any of them instantiates a section (Luigi's own parsing would raise ValueError)."""
    config_check.check()
    return True


class mysql(luigi.Config):  # noqa: N801 - the class name is the cfg section name
    """``[mysql]``: the source order database."""

    host = luigi.Parameter(default="127.0.0.1", always_in_help=True,
                           description="source MySQL/MariaDB server (default 127.0.0.1)")
    port = luigi.IntParameter(default=3306, always_in_help=True,
                              description="source server port (default 3306)")
    user = luigi.Parameter(default="root", always_in_help=True,
                           description="source user (default root)")
    password = luigi.Parameter(default="", significant=False, visibility=ParameterVisibility.PRIVATE,
                               always_in_help=True,
                               description="source password; leave it empty and set MYSQL_PASSWORD, a flag shows in ps "
                                           "(default empty)")
    database = luigi.Parameter(default="b2b_source", always_in_help=True,
                               description="source order database (default b2b_source)")


class warehouse(luigi.Config):  # noqa: N801
    """``[warehouse]``: the PostgreSQL (or Redshift) warehouse."""

    flavor = luigi.Parameter(default="postgres", always_in_help=True,
                             description="postgres or redshift (default postgres)")
    host = luigi.Parameter(default="127.0.0.1", always_in_help=True,
                           description="warehouse server (default 127.0.0.1)")
    port = luigi.IntParameter(default=5432, always_in_help=True,
                              description="warehouse port (default 5432)")
    user = luigi.Parameter(default="root", always_in_help=True,
                           description="warehouse user (default root)")
    password = luigi.Parameter(default="", significant=False, visibility=ParameterVisibility.PRIVATE,
                               always_in_help=True,
                               description="warehouse password; leave it empty and use PGPASSWORD or ~/.pgpass "
                                           "(default empty)")
    database = luigi.Parameter(default="dw_dev", always_in_help=True,
                               description="warehouse database (default dw_dev)")
    iam_role = luigi.Parameter(default="", always_in_help=True,
                               description="Redshift: the IAM role ARN its COPY reads S3 staging with (default empty)")


class staging(luigi.Config):  # noqa: N801
    """``[staging]``: where extracted files are staged (a local folder or s3://bucket/prefix)."""

    uri = luigi.Parameter(default="staging", always_in_help=True,
                          description="staging area: a local folder or s3://bucket/prefix (default staging)")
    s3_endpoint_url = luigi.Parameter(default="", always_in_help=True,
                                      description="S3-compatible server of s3:// staging (default empty; AWS)")


class weblog(luigi.Config):  # noqa: N801
    """``[weblog]``: access logs to ingest and where rejected lines go."""

    paths = luigi.Parameter(default="", always_in_help=True,
                            description="access-log glob patterns, comma or space separated; the project's luigi.cfg "
                                        "sets weblogs/access.log* (default empty; no access logs are read)")
    rejects_dir = luigi.Parameter(default="rejects", always_in_help=True,
                                  description="access-log lines that do not parse, rejects/<seq>/ (default rejects)")


class ipinfo(luigi.Config):  # noqa: N801
    """``[ipinfo]``: optional ipinfo.io lookups (token empty: offline database only)."""

    token = luigi.Parameter(default="", significant=False, visibility=ParameterVisibility.PRIVATE, always_in_help=True,
                            description="ipinfo.io token; empty: IPINFO_TOKEN, else the offline IP database only "
                                        "(default empty)")
    api_url = luigi.Parameter(default="https://ipinfo.io", always_in_help=True,
                              description="ipinfo.io API address (default https://ipinfo.io)")
    timeout_seconds = luigi.FloatParameter(default=5.0, always_in_help=True,
                                           description="seconds per ipinfo.io request (default 5)")


class dw_etl(luigi.Config):  # noqa: N801
    """``[dw_etl]``: folders and the watermark window settings."""

    extract_config_dir = luigi.Parameter(default="", always_in_help=True,
                                         description="table metadata (default empty; the project's extract_config/)")
    sql_dir = luigi.Parameter(default="", always_in_help=True,
                              description="pres/ and reports/ SQL files (default empty; the project's sql/)")
    output_dir = luigi.Parameter(default="output", always_in_help=True,
                                 description="task markers, output/<seq>/ (default output)")
    completed_dir = luigi.Parameter(default="completed", always_in_help=True,
                                    description="pres and report step markers, completed/<seq>/ (default completed)")
    reports_dir = luigi.Parameter(default="reports", always_in_help=True,
                                  description="CSV files, charts and dashboard.html, reports/<seq>/ (default reports)")
    log_dir = luigi.Parameter(default="var/log", always_in_help=True,  # see etl.error_report
                              description="log files of failed runs, with their tracebacks (default var/log)")
    lookback_seconds = luigi.IntParameter(default=300, always_in_help=True,
                                          description="a window starts this long before the last one ended "
                                                      "(default 300)")
    safety_lag_seconds = luigi.IntParameter(default=2, always_in_help=True,
                                            description="a window ends this long before the source clock (default 2)")
    batch_rows = luigi.IntParameter(default=20000, always_in_help=True,
                                    description="rows per fetch from the source cursor (default 20000)")
    landing_keep_sequences = luigi.IntParameter(default=7, always_in_help=True,
                                                description="sequences landing and staging keep (default 7)")
    keep_runs = luigi.IntParameter(default=DEFAULT_KEEP_RUNS, always_in_help=True,  # see etl.retention
                                   description="runs output/, completed/, reports/ and rejects/ keep (default 30)")
    parallel_copies = luigi.IntParameter(default=1, always_in_help=True,
                                         description="files and concurrent COPYs of an extract beyond "
                                                     "parallel_copy_min_rows; above 1: no streaming (default 1)")
    parallel_copy_min_rows = luigi.IntParameter(default=200000, always_in_help=True,
                                                description="see parallel_copies (default 200000)")
    pres_connections = luigi.IntParameter(default=2, always_in_help=True,
                                          description="warehouse sessions running independent pres files at "
                                                      "the same time (default 2)")
    detect_hard_deletes = luigi.BoolParameter(default=True, parsing=luigi.BoolParameter.EXPLICIT_PARSING,
                                              always_in_help=True,
                                              description="tombstone store rows deleted in the source (default true)")
    stream_landing = luigi.BoolParameter(default=True, parsing=luigi.BoolParameter.EXPLICIT_PARSING,
                                         always_in_help=True,
                                         description="COPY an extract beyond 1 MiB into landing while staging it "
                                                     "(PostgreSQL) (default true)")
    retry_count = luigi.IntParameter(default=3, always_in_help=True,
                                     description="retries of a step after a transient fault (default 3)")
    retry_delay_seconds = luigi.FloatParameter(default=2.0, always_in_help=True,
                                               description="first retry's wait, doubled each time (default 2)")
    # the delete guard: a store step that would tombstone more than this fraction of a table's live rows fails
    max_delete_fraction = luigi.FloatParameter(default=DEFAULT_MAX_DELETE_FRACTION, always_in_help=True,
                                               description="delete guard: the share of a table's live rows a store "
                                                           "step may tombstone (default 0.5)")
    # tables (comma separated, or *) whose store step may exceed max_delete_fraction: give it on the command
    # line (--dw-etl-allow-deletes companies) for the one run that should apply a mass delete
    allow_deletes = luigi.Parameter(default="", always_in_help=True,
                                    description="tables (comma separated, or *) whose store step may pass the "
                                                "delete guard, for one run (default empty)")
    # files and folders the job writes: owner-only (0600/0700), or also group-readable (0640/0750); etl.private
    group_readable = luigi.BoolParameter(default=False, parsing=luigi.BoolParameter.EXPLICIT_PARSING,
                                         always_in_help=True,
                                         description="files 0640, folders 0750 instead of 0600, 0700 (default false)")


@dataclass(frozen=True)
class MySQLSettings:
    """Resolved connection settings of the source (password from cfg or ``MYSQL_PASSWORD``)."""

    host: str
    port: int
    user: str
    database: str
    password: str = field(default="", repr=False)

    def describe(self) -> str:
        """Return ``user@host:port/database`` for messages (never the password)."""
        return f"{self.user}@{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class WarehouseSettings:
    """Resolved warehouse settings (password from cfg, else libpq's ``PGPASSWORD``)."""

    flavor: str
    host: str
    port: int
    user: str
    database: str
    password: str = field(default="", repr=False)
    iam_role: str = ""

    def describe(self) -> str:
        """Return ``user@host:port/database`` for messages (never the password)."""
        return f"{self.user}@{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class EtlSettings:
    """Resolved ``[dw_etl]`` and ``[staging]`` settings; folders (and a local staging uri) are absolute
    (:func:`absolute_path`)."""

    extract_config_dir: str
    sql_dir: str
    output_dir: str
    completed_dir: str
    reports_dir: str
    staging_uri: str
    s3_endpoint_url: str
    lookback_seconds: int
    safety_lag_seconds: int
    batch_rows: int
    landing_keep_sequences: int
    detect_hard_deletes: bool
    retry_count: int = 3
    retry_delay_seconds: float = 2.0
    parallel_copies: int = 1
    parallel_copy_min_rows: int = 200000
    pres_connections: int = 2
    stream_landing: bool = True
    max_delete_fraction: float = DEFAULT_MAX_DELETE_FRACTION
    allow_deletes: frozenset = frozenset()
    group_readable: bool = False
    keep_runs: int = DEFAULT_KEEP_RUNS

    def allows_deletes(self, table: str) -> bool:
        """True when ``[dw_etl] allow_deletes`` names ``table`` (or is ``*``): its store step may
        tombstone more than ``max_delete_fraction`` of its live rows."""
        return table in self.allow_deletes or "*" in self.allow_deletes


@_memoised
def mysql_settings() -> MySQLSettings:
    """Read ``[mysql]``; returns MySQLSettings. Raises ConfigError for a wrong value in any section."""
    checked_configuration()
    cfg = mysql()
    return MySQLSettings(
        host=cfg.host,
        port=cfg.port,
        user=cfg.user,
        database=cfg.database,
        password=cfg.password or os.environ.get("MYSQL_PASSWORD", ""),
    )


@_memoised
def warehouse_settings() -> WarehouseSettings:
    """Read ``[warehouse]``; returns WarehouseSettings. Raises ConfigError for a wrong value in any section."""
    checked_configuration()
    cfg = warehouse()
    return WarehouseSettings(
        flavor=cfg.flavor,
        host=cfg.host,
        port=cfg.port,
        user=cfg.user,
        database=cfg.database,
        password=cfg.password or os.environ.get("PGPASSWORD", ""),
        iam_role=cfg.iam_role,
    )


@_memoised
def etl_settings() -> EtlSettings:
    """Read ``[dw_etl]`` and ``[staging]``; raises ConfigError for a wrong value in any section."""
    checked_configuration()
    cfg = dw_etl()
    stg = staging()
    return EtlSettings(
        extract_config_dir=absolute_path("dw_etl", "extract_config_dir", cfg.extract_config_dir)
        or str(PROJECT_ROOT / "extract_config"),
        sql_dir=absolute_path("dw_etl", "sql_dir", cfg.sql_dir) or str(PROJECT_ROOT / "sql"),
        output_dir=absolute_path("dw_etl", "output_dir", cfg.output_dir),
        completed_dir=absolute_path("dw_etl", "completed_dir", cfg.completed_dir),
        reports_dir=absolute_path("dw_etl", "reports_dir", cfg.reports_dir),
        staging_uri=stg.uri if stg.uri.startswith("s3://") else absolute_path("staging", "uri", stg.uri),
        s3_endpoint_url=stg.s3_endpoint_url,
        lookback_seconds=cfg.lookback_seconds,
        safety_lag_seconds=cfg.safety_lag_seconds,
        batch_rows=cfg.batch_rows,
        landing_keep_sequences=cfg.landing_keep_sequences,
        detect_hard_deletes=cfg.detect_hard_deletes,
        retry_count=cfg.retry_count,
        retry_delay_seconds=cfg.retry_delay_seconds,
        parallel_copies=cfg.parallel_copies,
        parallel_copy_min_rows=cfg.parallel_copy_min_rows,
        pres_connections=cfg.pres_connections,
        stream_landing=cfg.stream_landing,
        max_delete_fraction=cfg.max_delete_fraction,
        allow_deletes=frozenset(t for t in cfg.allow_deletes.replace(",", " ").split() if t),
        group_readable=cfg.group_readable,
        keep_runs=cfg.keep_runs,
    )


@dataclass(frozen=True)
class WeblogSettings:
    """Resolved ``[weblog]``: glob patterns (comma or whitespace separated) and the rejects folder, absolute
    (:func:`absolute_path`); ``configured_patterns`` as written and ``patterns_base``, the folder relative
    ones resolved against and why (``etl.config_check.base_folder``), for messages."""

    patterns: tuple[str, ...]
    rejects_dir: str
    ipinfo_token: str = field(default="", repr=False)
    ipinfo_api_url: str = "https://ipinfo.io"
    ipinfo_timeout_seconds: float = 5.0
    configured_patterns: tuple[str, ...] = ()
    patterns_base: tuple[str, str] = ("", "")


@_memoised
def weblog_settings() -> WeblogSettings:
    """Read ``[weblog]`` and ``[ipinfo]`` (token from cfg or ``IPINFO_TOKEN``); empty ``paths``: no logs.
    Raises ConfigError for a wrong value in any section."""
    checked_configuration()
    cfg = weblog()
    info = ipinfo()
    patterns = tuple(p for p in cfg.paths.replace(",", " ").split() if p)
    return WeblogSettings(
        patterns=tuple(absolute_path("weblog", "paths", p, pattern=True) for p in patterns),
        rejects_dir=absolute_path("weblog", "rejects_dir", cfg.rejects_dir),
        ipinfo_token=info.token or os.environ.get("IPINFO_TOKEN", ""),
        ipinfo_api_url=info.api_url,
        ipinfo_timeout_seconds=info.timeout_seconds,
        configured_patterns=patterns,
        patterns_base=config_check.base_folder("weblog", "paths") if patterns else ("", ""),
    )


def absolute_path(section: str, key: str, value: str, pattern: bool = False) -> str:
    """``value`` of ``[section] key``, a folder or (``pattern``) a glob pattern, as an absolute path.

    ``~`` is expanded; an absolute value is returned as it is; a relative one is joined to
    the folder ``etl.config_check.base_folder`` names: the folder of the config file that sets
    the key, the working directory for a command line flag, the folder of the last config
    file read for a key left at its default. A pattern keeps its own wildcards while the
    folder's characters are escaped (``glob.escape``); a folder is normalised (``a/./b`` is
    ``a/b``). An empty value stays empty. Raises ConfigError when the folder is the working directory
    and it is gone.
    """
    if not value:
        return value
    path = os.path.expanduser(value)
    if os.path.isabs(path):
        return path
    base, _ = config_check.base_folder(section, key)
    return os.path.join(glob.escape(base), path) if pattern else os.path.normpath(os.path.join(base, path))


def read_project_config() -> bool:
    """Add the project's own ``luigi.cfg`` (:data:`PROJECT_CONFIG`) to the files Luigi reads when it
    found none: no ``luigi.cfg`` in the working directory and no ``LUIGI_CONFIG_PATH``.

    So ``cd elsewhere && <clone>/.venv/bin/luigi RunJob --module luigi_dw_etl`` (cron, systemd)
    runs with the project's settings, read after ``/etc/luigi/luigi.cfg`` as a ``luigi.cfg`` in
    the working directory would be. Must run before Luigi reads ``[core]`` and ``[retcode]`` and
    before any task parameter resolves: at the import of the task module. Reads that one file,
    nothing else; returns True when it was added (False: another file is in charge, the
    project has no luigi.cfg, Luigi uses its TOML parser, or it was added already).
    """
    if "LUIGI_CONFIG_PATH" in os.environ or os.path.isfile("luigi.cfg") or not PROJECT_CONFIG.is_file():
        return False
    config = luigi.configuration.get_config()
    paths = getattr(type(config), "_config_paths", None)
    if not isinstance(config, luigi.configuration.LuigiConfigParser) or paths is None or str(PROJECT_CONFIG) in paths:
        return False
    paths.append(str(PROJECT_CONFIG))  # luigi.configuration.add_config_path would read every file again
    config.read([str(PROJECT_CONFIG)])
    return True


def apply_retcode_defaults() -> None:
    """Give every ``[retcode]`` key missing from the configuration a non-zero default.

    Luigi exits 0 when a task fails unless ``[retcode]`` says otherwise; a user's own
    config file may lack that section. Values the configuration sets are kept. Must run
    before Luigi reads ``[retcode]`` (it does so after importing the task module).
    """
    config = luigi.configuration.get_config()
    for key, value in RETCODE_DEFAULTS.items():
        if not config.has_option("retcode", key):
            config.set("retcode", key, str(value))
