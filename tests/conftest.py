"""Shared fixtures: unique source/warehouse databases per test, a project folder, job runs.

Integration tests talk to the real local MariaDB/MySQL (127.0.0.1:3306, root) and
PostgreSQL (127.0.0.1:5432, root) started by scripts/test.sh; each test gets its own
uniquely named databases, dropped afterwards. The pipeline runs as a real ``luigi``
subprocess with its own luigi.cfg (via LUIGI_CONFIG_PATH) in a temporary folder.

A test that takes the ``variant`` fixture runs once per source schema variant of
``populate orders`` (``sample``, ``strings``); its ``project.populate(...)`` creates that
variant.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import mysql.connector
import psycopg2
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
MYSQL = dict(host="127.0.0.1", port=3306, user="root", password="")
PG = dict(host="127.0.0.1", port=5432, user="root")
VARIANTS = ("sample", "strings")  # python -m populate orders --variant


def mysql_connect(database: str | None = None):
    """A UTC MySQL connection to ``database`` (autocommit)."""
    conn = mysql.connector.connect(**MYSQL, database=database, autocommit=True, charset="utf8mb4", collation="utf8mb4_unicode_ci")
    cur = conn.cursor()
    cur.execute("SET time_zone = '+00:00'")
    cur.close()
    return conn


def pg_connect(database: str):
    """A UTC PostgreSQL connection to ``database`` (autocommit)."""
    conn = psycopg2.connect(**PG, dbname=database, options="-c timezone=UTC")
    conn.autocommit = True
    return conn


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
            # the pid lock per project: luigi keys it by command line, the same for every test, so
            # concurrent test runs (other sessions, other checkouts) would refuse each other's jobs
            "core": {"autoload_range": "false", "lock_pid_dir": str(self.root / "luigi-pid")},
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
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LUIGI", "PG", "MYSQL"))}
        env["LUIGI_CONFIG_PATH"] = str(self.cfg_path)
        env.update(extra)
        return env

    def run(self, *args: str, expect: int | None = 0, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
        """Run ``luigi RunJob --module luigi_dw_etl`` (plus ``args``) in the project folder."""
        luigi = Path(sys.executable).with_name("luigi")
        cmd = [str(luigi), "RunJob", "--module", "luigi_dw_etl", *args]
        if "--scheduler-url" not in args:
            cmd.append("--local-scheduler")
        proc = subprocess.run(cmd, cwd=self.root, env=env or self.env(), capture_output=True, text=True, timeout=timeout)
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


@pytest.fixture(scope="session")
def services():
    """Fail early, with the fix, when the local database servers are not reachable."""
    try:
        mysql_connect().close()
        pg_connect("postgres").close()
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing here
        pytest.fail(f"local MariaDB/PostgreSQL not reachable ({exc}); run scripts/services.sh")


@pytest.fixture(params=VARIANTS)
def variant(request) -> str:
    """The source schema variant (``populate orders --variant``); a test taking it runs once per variant."""
    return request.param


@pytest.fixture
def project(request, tmp_path, services):
    """A project folder with fresh, uniquely named source and warehouse databases (dropped after).

    Its ``variant`` is the test's ``variant`` fixture when the test takes one, else ``sample``.
    """
    suffix = uuid.uuid4().hex[:10]
    variant = request.getfixturevalue("variant") if "variant" in request.fixturenames else "sample"
    proj = Project(root=tmp_path, source_db=f"t_src_{suffix}", warehouse_db=f"t_dw_{suffix}", variant=variant)
    shutil.copytree(REPO / "extract_config", tmp_path / "extract_config")
    conn = pg_connect("postgres")
    conn.cursor().execute(f'CREATE DATABASE "{proj.warehouse_db}"')
    conn.close()
    proj.write_cfg()
    try:
        yield proj
    finally:
        m = mysql_connect()
        m.cursor().execute(f"DROP DATABASE IF EXISTS `{proj.source_db}`")
        m.close()
        conn = pg_connect("postgres")
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{proj.warehouse_db}" WITH (FORCE)')
        conn.close()


def source_rows(project: Project, table: str) -> list[tuple]:
    """Every source row of ``table`` (metadata columns) as a sorted list of repr tuples."""
    entry = project.metadata()[table]
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute(f"SELECT {', '.join('`%s`' % c for c in entry['columns'])} FROM `{table}`")
    rows = sorted(tuple(_norm(v) for v in r) for r in cur.fetchall())
    conn.close()
    return rows


def store_rows(project: Project, table: str, extra: tuple[str, ...] = ()) -> list[tuple]:
    """Every store row of ``table`` (metadata columns + ``extra``) as a sorted list of repr tuples."""
    entry = project.metadata()[table]
    conn = project.pg()
    cur = conn.cursor()
    cols = [f'"{c}"' for c in entry["columns"]] + list(extra)
    cur.execute(f"SELECT {', '.join(cols)} FROM {entry['store_table']}")
    rows = sorted(tuple(_norm(v) for v in r) for r in cur.fetchall())
    conn.close()
    return rows


def _norm(value) -> str:
    """A comparable text form of a value: exact digits for numbers, repr for text, ISO for times.

    int and Decimal compare by their digits (so MySQL's BIGINT UNSIGNED 5 equals
    PostgreSQL's numeric 5, but 1.50 does not equal 1.5); None and '' stay distinct.
    """
    if isinstance(value, (bytes, bytearray)):
        value = value.decode()
    if value is None:
        return "<NULL>"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return repr(value)


def assert_store_equals_source(project: Project) -> int:
    """Assert every metadata table's store equals its source, all columns; returns rows compared."""
    compared = 0
    for table in project.metadata():
        src, dst = source_rows(project, table), store_rows(project, table)
        missing = sorted(set(src) - set(dst))[:3]
        extra = sorted(set(dst) - set(src))[:3]
        assert src == dst, f"{table}: {len(src)} source rows vs {len(dst)} store rows; missing {missing}; extra {extra}"
        compared += len(src)
    return compared


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()
