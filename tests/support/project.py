"""A temporary project folder with its own source and warehouse databases, and the job run in it.

The pipeline runs as a real ``luigi`` subprocess with its own luigi.cfg (via
LUIGI_CONFIG_PATH) in the project folder; ``populate`` fills the source database. The
``project`` fixture (tests/integration/conftest.py) creates the folder and databases and
drops them afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.support.databases import mysql_connect, pg_connect
from tests.support.paths import REPO

VARIANTS = ("sample", "strings")  # python -m populate orders --variant


@dataclass
class Project:
    """A temporary project folder with its own source and warehouse databases."""

    root: Path
    source_db: str
    warehouse_db: str
    cfg_overrides: dict = field(default_factory=dict)
    variant: str = "sample"  # the source schema project.populate creates

    @property
    def cfg_path(self) -> Path:
        return self.root / "test-luigi.cfg"

    def write_cfg(self, **sections) -> None:
        """(Re)write the project's luigi.cfg; ``sections`` override keys: {"mysql": {"port": 1}}; None drops one."""
        base = {
            # no luigi pid lock, as the project's luigi.cfg (RunJob's warehouse run lock replaces it);
            # a test turning it on gets one per project: luigi keys it by command line, the same
            # for every test, so concurrent test runs (other sessions, checkouts) would refuse each other
            "core": {"autoload_range": "false", "no_lock": "true", "lock_pid_dir": str(self.root / "luigi-pid")},
            "retcode": {"already_running": 10, "missing_data": 20, "not_run": 25, "task_failed": 30,
                        "scheduling_error": 35, "unhandled_exception": 40},
            "mysql": {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": self.source_db},
            "warehouse": {"flavor": "postgres", "host": "127.0.0.1", "port": 5432, "user": "root", "password": "",
                          "database": self.warehouse_db},
            "staging": {"uri": str(self.root / "staging")},
            "weblog": {"paths": str(self.root / "logs" / "access.log*"), "rejects_dir": str(self.root / "rejects")},
            "dw_etl": {"extract_config_dir": str(self.root / "extract_config"), "sql_dir": str(REPO / "sql"),
                       "output_dir": str(self.root / "output"), "completed_dir": str(self.root / "completed"),
                       "reports_dir": str(self.root / "reports"), "lookback_seconds": 300, "safety_lag_seconds": 0},
        }
        for section, values in sections.items():
            if values is None:
                base.pop(section, None)  # leave the whole section out
            else:
                base.setdefault(section, {}).update(values)
        text = "".join(
            f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()) + "\n" for name, values in base.items()
        )
        self.cfg_path.write_text(text)

    def env(self, **extra) -> dict:
        """The environment of the project's subprocesses: no LUIGI*/PG*/MYSQL* variables of the caller,
        its luigi.cfg, and this checkout first on PYTHONPATH (an editable install may point elsewhere)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LUIGI", "PG", "MYSQL"))}
        env["LUIGI_CONFIG_PATH"] = str(self.cfg_path)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
        env.update(extra)
        return env

    def run(self, *args: str, expect: int | None = 0, env: dict | None = None, timeout: int = 120,
            task: str = "RunJob", umask: int | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
        """Run ``luigi <task> --module luigi_dw_etl`` (plus ``args``) in the project folder, or in ``cwd``
        (under ``umask`` when given, else the caller's)."""
        luigi = Path(sys.executable).with_name("luigi")
        cmd = [str(luigi), task, "--module", "luigi_dw_etl", *args]
        if "--scheduler-url" not in args:
            cmd.append("--local-scheduler")
        proc = subprocess.run(cmd, cwd=cwd or self.root, env=env or self.env(), capture_output=True, text=True, timeout=timeout,
                              preexec_fn=None if umask is None else lambda: os.umask(umask))
        if expect is not None and proc.returncode != expect:
            raise AssertionError(
                f"exit code {proc.returncode} != {expect}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-8000:]}"
            )
        return proc

    def populate(self, *args: str) -> str:
        """Run ``python -m populate orders --variant <self.variant>`` against the project's source database.

        With ``--changes`` the variant is only checked (populate reads it from the source's schema).
        """
        if "--variant" not in args:
            args = (*args, "--variant", self.variant)
        proc = subprocess.run(
            [sys.executable, "-m", "populate", "orders", *args], cwd=self.root, env=self.env(),
            capture_output=True, text=True, timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def metadata(self) -> dict:
        """The project's extract_config MySQL tables as parsed YAML: {table: entry} (not the weblog source)."""
        merged = {}
        for path in sorted((self.root / "extract_config").glob("*.yaml")):
            merged.update(yaml.safe_load(path.read_text()) or {})
        return {name: entry for name, entry in merged.items() if entry.get("source", "mysql") == "mysql"}

    def add_table(self, name: str, columns: list[str], unique: list[str], **fields) -> None:
        """Write ``extract_config/<name>.yaml`` for a test table (incremental on updated_datetime unless
        ``fields`` says otherwise; landing.mysql_<name>, store_mysql.<name>)."""
        entry = {
            "columns": columns, "where_clause": "", "is_incremental": True, "watermark_column": "updated_datetime",
            "landing_table": f"landing.mysql_{name}", "store_table": f"store_mysql.{name}", "unique_columns": unique,
            **fields,
        }
        (self.root / "extract_config" / f"{name}.yaml").write_text(yaml.safe_dump({name: entry}))

    def mysql(self):
        return mysql_connect(self.source_db)

    def pg(self):
        return pg_connect(self.warehouse_db)

    def output(self, sequence: int) -> Path:
        return self.root / "output" / str(sequence)


REFUSED, TASK_FAILED = 35, 30  # [retcode] scheduling_error and task_failed (Project.write_cfg)
SUMMARY_END = "===== Luigi Execution Summary ====="


def run_job(project, *args: str, expect: int, module: str = "luigi_dw_etl", env: dict | None = None) -> list[str]:
    """Run ``luigi RunJob`` in the project with stdout and stderr merged, as a terminal shows them; returns the
    output's non-empty lines after checking the exit code."""
    cmd = [str(Path(sys.executable).with_name("luigi")), "RunJob", "--module", module, *args]
    if "--scheduler-url" not in args:
        cmd.append("--local-scheduler")
    proc = subprocess.run(cmd, cwd=project.root, env=env or project.env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=180)
    assert proc.returncode == expect, proc.stdout[-6000:]
    return [line for line in proc.stdout.splitlines() if line.strip()]
