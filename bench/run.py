"""Benchmark the load against dlt, sling, a raw COPY floor and (for access logs) GoAccess.

Command (documented in README.md and BENCHMARKS.md)::

    scripts/bench.sh [--scale 1] [--repeats 3] [--lines 1000000] [--skip dlt_default ...]

On the local MariaDB and PostgreSQL: fills ``[--database]`` (default ``b2b_bench``) with
``populate orders --scale S``, then measures, on the same data, each loader for

* ``initial``: a full load into an empty target;
* ``incremental``: after ``populate --changes 1``, the changed rows;
* ``noop``: nothing changed;
* ``weblog``: a ``--lines`` access log: ours = parse + enrich + stage (the extract step's
  seconds), ours_chain = the three weblog steps into store; GoAccess's
  ``--log-format=COMBINED -o report.json`` on the same file.

Loaders (each into its own PostgreSQL database ``bench_<name>``, recreated for ``initial``):

* ``ours``: ``luigi RunJob --workers 2``; ``ours`` is the load part (extract -> landing ->
  store: RunJob's start to its last store marker), ``ours_runjob`` the whole RunJob with
  pres, quality checks and reports;
* ``floor``: ``mysql --batch --quick`` piped into ``psql \\copy`` per table, two tables at
  a time, then ``INSERT ... ON CONFLICT`` into keyed tables (incremental: rows with
  ``updated_datetime`` at or after the target's maximum);
* ``sling``: sling 1.4.11, incremental on ``updated_datetime``, upsert on the keys;
* ``dlt_default`` / ``dlt_fast``: dlt 1.31 ``sql_database`` -> ``postgres``, merge on the
  keys (see ``bench/dlt_pipeline.py``).

Each figure is the median of ``--repeats`` runs, with the peak RSS of the run's largest
process (``wait4`` rusage: the process and every descendant it waited for; the database
servers are not counted); each ratio is the median of the per-repetition ratios (the loaders
of one repetition run in the same round, so a slower round moves both sides). Prints one
table (seconds, rows/s, ratio to the floor, ratio to the best peer), checks the targets of
BENCHMARKS.md and writes a JSON result file
(``bench-work/results-<time>.json``). Exit code 0 when every target is met, 1 otherwise,
2 on a setup error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench-work"
PY = ROOT / ".venv" / "bin" / "python"
# ours runs from an environment of requirements.txt only: the test tools in .venv (moto pulls in
# jsonschema, which luigi then imports at start-up) are not part of what users install
PIPELINE_BIN = ROOT / ".venv-pipeline" / "bin"
BENCH_PY = ROOT / ".venv-bench" / "bin" / "python"
PEERS = ("sling", "dlt_fast", "dlt_default")  # the loaders users would pick instead; the floor is no peer
LOADERS = ("ours", "floor") + PEERS
PHASES = ("initial", "incremental", "noop")
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root"}
PG = {"host": "127.0.0.1", "port": 5432, "user": "root"}

# Targets (BENCHMARKS.md): (phase, what, limit); "ours" is the load part, "ours_runjob" the whole job
TARGETS = [
    ("initial", "ours / floor", 1.0),
    ("initial", "ours / dlt_fast", 0.8),
    ("initial", "ours_runjob / dlt_fast", 1.5),
    ("incremental", "ours / best peer", 1.0),
    ("incremental", "ours / floor", 1.5),
    ("incremental", "ours_runjob / dlt_fast", 1.0),
    ("noop", "ours / best peer", 1.0),
]
NOOP_RUNJOB_SECONDS = 3.0
PEAK_RSS_MB = 150.0
WEBLOG_GOACCESS_RATIO = 4.0  # ours (parse + enrich + stage) lines/s against GoAccess's
WEBLOG_CHAIN_GOACCESS_RATIO = 2.0  # ours_chain (the three weblog steps into store) lines/s against GoAccess's
WEBLOG_RSS_MB = 250.0


# the end of --help: what scripts/bench.sh does before this harness runs, and what it touches
HELP_EPILOG = """\
scripts/bench.sh first sets up, one line per step (pip's and apt-get's whole output in var/log/setup.log):
.venv (requirements.txt: populate and this harness), .venv-pipeline (requirements.txt only: ours runs from
it, as users install it), .venv-bench (requirements-bench.txt: dlt and sling), GoAccess (apt-get) when
missing, MariaDB and PostgreSQL (scripts/services.sh); then it runs .venv/bin/python -m bench ARGUMENTS.

It uses the local servers as root without a password: the MySQL databases --database (recreated and
filled) and b2b_bench_weblog (filled when empty) on 127.0.0.1:3306; each loader loads its own PostgreSQL
database on 127.0.0.1:5432 (bench_ours, bench_floor, bench_sling, bench_dlt_fast, bench_dlt_default,
bench_weblog), recreated for the initial load.
Work files and logs go to bench-work/. Exit code 0 when every target of BENCHMARKS.md is met, 1 when one
is missed, 2 on a setup error. --help prints this and sets up nothing.
"""


class BenchError(Exception):
    """A loader or a setup step failed; the message names it and its log file."""


@dataclass
class Run:
    """One measured run: wall seconds, peak RSS (KiB) and rows moved."""

    seconds: float
    peak_rss_kb: int
    rows: int = 0


@dataclass
class Series:
    """The runs of one loader in one phase."""

    runs: list[Run] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def peak_rss_mb(self) -> float:
        return max(r.peak_rss_kb for r in self.runs) / 1024

    @property
    def rows(self) -> int:
        return int(statistics.median(r.rows for r in self.runs))


def measure(name: str, cmd: list[str], log: Path, env: dict | None = None, cwd: Path | None = None) -> Run:
    """Run ``cmd`` to completion; returns its wall seconds and peak RSS. Raises BenchError on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(map(str, cmd))}\n".encode())
        out.flush()
        started = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise BenchError(f"{name} failed with exit code {proc.returncode}; see {log}")
    return Run(seconds, usage.ru_maxrss)


# --- databases ---------------------------------------------------------------------------------

def pg(database: str = "postgres"):
    import psycopg2

    conn = psycopg2.connect(dbname=database, **PG)
    conn.autocommit = True
    return conn


def recreate_pg(database: str) -> None:
    """Drop and create a PostgreSQL database (the target of one loader)."""
    conn = pg()
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{database}"')
    finally:
        conn.close()


def mysql_scalar(database: str, query: str):
    import mysql.connector

    conn = mysql.connector.connect(database=database, **MYSQL)
    try:
        cur = conn.cursor()
        cur.execute(query)
        return cur.fetchone()[0]
    finally:
        conn.close()


def source_rows(database: str, tables, since: str | None = None) -> int:
    """Rows of the source tables (with ``since``: those changed at or after it)."""
    where = f" WHERE updated_datetime >= '{since}'" if since else ""
    return sum(int(mysql_scalar(database, f"SELECT COUNT(*) FROM `{t}`{where}")) for t in tables)


# --- loaders -------------------------------------------------------------------------------------

class Ours:
    """The pipeline itself: luigi RunJob --workers 2 in its own folder and warehouse database."""

    schema = "store_mysql"

    def __init__(self, database: str, work: Path, weblog_paths: str = "", source: str = "", lookback_seconds: int = 10):
        self.database, self.work, self.weblog_paths, self.source = database, work, weblog_paths, source
        self.lookback_seconds = lookback_seconds

    def reset(self) -> None:
        recreate_pg(self.database)
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        (self.work / "luigi.cfg").write_text(textwrap.dedent(f"""\
            [core]
            autoload_range = false
            log_level = INFO
            [dw_etl]
            lookback_seconds = {self.lookback_seconds}
            [mysql]
            host = 127.0.0.1
            port = 3306
            user = root
            database = {self.source or SOURCE_DB}
            [warehouse]
            flavor = postgres
            host = 127.0.0.1
            port = 5432
            user = root
            database = {self.database}
            [staging]
            uri = staging
            [weblog]
            paths = {self.weblog_paths}
            rejects_dir = rejects
            """))

    def run(self, log: Path) -> tuple[Run, Run]:
        """One RunJob; returns (load part, whole RunJob)."""
        started = time.time()
        whole = measure("ours RunJob", [PIPELINE_BIN / "luigi", "RunJob", "--module", "luigi_dw_etl",
                                        "--local-scheduler", "--workers", "2"], log,
                        env={"PYTHONPATH": str(ROOT), "LUIGI_CONFIG_PATH": str(self.work / "luigi.cfg")}, cwd=self.work)
        sequence = max((p for p in (self.work / "output").iterdir()), key=lambda p: int(p.name))
        stores = list(sequence.glob("mysql_*.store.json"))
        rows = sum(json.loads(p.read_text())["rows"] for p in sequence.glob("mysql_*.extract.json"))
        load = Run(max(p.stat().st_mtime for p in stores) - started, whole.peak_rss_kb, rows) if stores else None
        whole.rows = rows
        return load, whole

    def weblog(self) -> dict:
        """The weblog steps' markers of the latest sequence: seconds per step, lines, rejects."""
        sequence = max((p for p in (self.work / "output").iterdir()), key=lambda p: int(p.name))
        steps = {p.name.split(".")[1]: json.loads(p.read_text()) for p in sequence.glob("weblog_*.json")}
        return steps


class Floor:
    """The raw floor: mysql --batch --quick | psql \\copy, two tables at a time, then INSERT ... ON CONFLICT."""

    database = "bench_floor"
    schema = "floor"

    def __init__(self, tables: dict):
        self.tables = tables

    def reset(self) -> None:
        from etl import source_mysql, sqlgen
        from etl.config import MySQLSettings

        recreate_pg(self.database)
        settings = MySQLSettings(database=SOURCE_DB, **MYSQL)
        with source_mysql.connection(settings) as conn:
            found = source_mysql.read_column_types(conn, SOURCE_DB, list(self.tables))
        conn = pg(self.database)
        with conn.cursor() as cur:
            cur.execute("CREATE SCHEMA floor_landing; CREATE SCHEMA floor")
            for name, meta in self.tables.items():
                cols = ", ".join(f'"{c}" {sqlgen.pg_type(name, found[name][c])}' for c in meta.columns)
                cur.execute(f'CREATE UNLOGGED TABLE floor_landing."{name}" ({cols})')
                keys = ", ".join(meta.unique_columns)
                cur.execute(f'CREATE TABLE floor."{name}" ({cols}, PRIMARY KEY ({keys}))')
        conn.close()

    def script(self) -> Path:
        """The bash script of one load (per table: watermark, copy, upsert; 2 tables in parallel)."""
        lines = ["#!/usr/bin/env bash", "set -euo pipefail", "load() {", "  set -euo pipefail", '  case "$1" in']
        for name, meta in self.tables.items():
            cols = ", ".join(meta.columns)  # validated identifiers (etl.metadata)
            keys = ", ".join(meta.unique_columns)
            values = [c for c in meta.columns if c not in meta.unique_columns]
            sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in values)
            psql = f"psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U root -d {self.database}"
            lines += [
                f"    {name})",
                f"      since=$({psql} -At -c 'SELECT coalesce(max(updated_datetime), '\"'\"'1000-01-01'\"'\"') FROM floor.\"{name}\"')",
                f"      mysql -h 127.0.0.1 -u root --batch --quick --skip-column-names {SOURCE_DB} "
                f"-e \"SELECT {cols} FROM {name} WHERE updated_datetime >= '$since'\" "
                f"| sed 's/\\r/\\\\r/g' "  # mysql --batch escapes tab, newline and backslash, not CR
                f"| {psql} -c \"TRUNCATE floor_landing.\\\"{name}\\\"\" "
                f"-c \"\\\\copy floor_landing.\\\"{name}\\\" FROM pstdin WITH (NULL 'NULL')\"",
                f"      {psql} -c 'INSERT INTO floor.\"{name}\" SELECT * FROM floor_landing.\"{name}\" "
                f"ON CONFLICT ({keys}) DO UPDATE SET {sets}' ;;",
            ]
        lines += ["  esac", "}", "export -f load",
                  f"printf '%s\\n' {' '.join(self.tables)} | xargs -P 2 -I{{}} bash -c 'load {{}}'"]
        path = WORK / "floor" / "load.sh"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        return path

    def run(self, log: Path) -> Run:
        return measure("floor", ["bash", self.script()], log)


class Sling:
    """sling 1.4.11 (PyPI sling-linux-amd64): a replication of the six tables, incremental upsert."""

    database = "bench_sling"
    schema = "sling"

    def __init__(self, tables: dict):
        self.tables = tables

    def reset(self) -> None:
        recreate_pg(self.database)

    def binary(self) -> Path:
        found = sorted((ROOT / ".venv-bench").glob("lib/python*/site-packages/sling_linux_amd64/bin/sling-linux-amd64"))
        if not found:
            raise BenchError("sling binary not found in .venv-bench; run scripts/bench.sh (it installs requirements-bench.txt)")
        return found[0]

    def run(self, log: Path) -> Run:
        streams = "\n".join(
            f"  {SOURCE_DB}.{name}:\n    primary_key: [{', '.join(meta.unique_columns)}]\n"
            f"    select: [{', '.join(meta.columns)}]"  # the columns ours reads (an outside source has others)
            for name, meta in self.tables.items())
        replication = WORK / "sling" / "replication.yaml"
        replication.parent.mkdir(parents=True, exist_ok=True)
        replication.write_text(
            "source: BENCH_MYSQL\ntarget: BENCH_PG\ndefaults:\n  mode: incremental\n  update_key: updated_datetime\n"
            "  object: sling.{stream_table}\nstreams:\n" + streams + "\n")
        env = {"BENCH_MYSQL": f"mysql://root@127.0.0.1:3306/{SOURCE_DB}",
               "BENCH_PG": f"postgresql://root@127.0.0.1:5432/{self.database}?sslmode=disable",
               "SLING_HOME_DIR": str(WORK / "sling" / "home"), "SLING_DISABLE_TELEMETRY": "true",
               "SLING_THREADS": "2"}
        return measure("sling", [self.binary(), "run", "-r", replication], log, env=env)


class Dlt:
    """dlt 1.31 sql_database -> postgres, merge (``default`` or ``fast`` configuration)."""

    def __init__(self, mode: str, tables: dict):
        self.mode, self.tables, self.database = mode, tables, f"bench_dlt_{mode}"
        self.schema = f"dlt_{mode}"

    def reset(self) -> None:
        recreate_pg(self.database)
        shutil.rmtree(WORK / f"dlt_{self.mode}", ignore_errors=True)

    def run(self, log: Path) -> Run:
        keys = json.dumps({name: {"keys": list(meta.unique_columns), "columns": list(meta.columns)}
                           for name, meta in self.tables.items()})
        return measure(f"dlt {self.mode}", [
            BENCH_PY, ROOT / "bench" / "dlt_pipeline.py", self.mode,
            # trust authentication: dlt insists on a password, any one is accepted
            f"mysql+pymysql://root@127.0.0.1:3306/{SOURCE_DB}", f"postgresql://root:trust@127.0.0.1:5432/{self.database}",
            WORK / f"dlt_{self.mode}", keys], log, env={"RUNTIME__LOG_LEVEL": "WARNING"}, cwd=WORK)


SOURCE_DB = "b2b_bench"


def check_loaded(name: str, loader, tables, expected: int) -> None:
    """Raise BenchError unless the loader's target tables hold ``expected`` rows (a broken load is no figure)."""
    conn = pg(loader.database)
    try:
        with conn.cursor() as cur:
            found = 0
            for table in tables:
                cur.execute(f'SELECT count(*) FROM "{loader.schema}"."{table}"')
                found += cur.fetchone()[0]
    finally:
        conn.close()
    if found != expected:
        raise BenchError(f"{name} left {found:,} rows in {loader.database}.{loader.schema}, the source has {expected:,}")


# --- the benchmark -------------------------------------------------------------------------------

def populate(args, log: Path, *extra: str) -> None:
    measure("populate", [PY, "-m", "populate", "orders", "--database", SOURCE_DB, "--seed", str(args.seed),
                         "--variant", args.variant, *extra],
            log, env={"PYTHONPATH": str(ROOT)}, cwd=ROOT)


def run_bench(args) -> dict:
    """Run every phase ``args.repeats`` times; returns the result document."""
    from etl.metadata import load_metadata

    global SOURCE_DB
    SOURCE_DB = args.database
    WORK.mkdir(exist_ok=True)
    log = WORK / "bench.log"
    tables = load_metadata(ROOT / "extract_config")
    loaders = {"ours": Ours("bench_ours", WORK / "ours", lookback_seconds=args.lookback_seconds), "floor": Floor(tables), "sling": Sling(tables),
               "dlt_fast": Dlt("fast", tables), "dlt_default": Dlt("default", tables)}
    loaders = {k: v for k, v in loaders.items() if k not in args.skip}
    results = {phase: {} for phase in (*PHASES, "weblog")}

    def record(phase, name, run):
        results[phase].setdefault(name, Series()).runs.append(run)
        print(f"  {phase:<11} {name:<12} {run.seconds:8.2f} s  {run.rows:>9,} rows  {run.peak_rss_kb / 1024:7.1f} MB",
              flush=True)

    if "orders" not in args.skip:
        print(f"populate orders --scale {args.scale} into MySQL database {SOURCE_DB} ...", flush=True)
        populate(args, log, "--scale", str(args.scale), "--recreate")
        total = source_rows(SOURCE_DB, tables)
        print(f"source: {total:,} rows in {len(tables)} tables", flush=True)
        for repeat in range(1, args.repeats + 1):
            print(f"repeat {repeat} of {args.repeats}", flush=True)
            for name, loader in loaders.items():
                loader.reset()
                if name == "ours":
                    load, whole = loader.run(log)
                    record("initial", "ours", load)
                    record("initial", "ours_runjob", whole)
                else:
                    run = loader.run(log)
                    run.rows = total
                    record("initial", name, run)
                check_loaded(name, loader, tables, total)
            changes_from = mysql_scalar(SOURCE_DB, "SELECT UTC_TIMESTAMP()")
            time.sleep(1)
            populate(args, log, "--changes", "1")
            changed = source_rows(SOURCE_DB, tables, str(changes_from))
            time.sleep(3)  # past ours' safety lag, so the changes are in this window
            for phase in ("incremental", "noop"):
                for name, loader in loaders.items():
                    if name == "ours":
                        load, whole = loader.run(log)
                        load.rows = whole.rows = changed if phase == "incremental" else 0
                        record(phase, "ours", load)
                        record(phase, "ours_runjob", whole)
                    else:
                        run = loader.run(log)
                        run.rows = changed if phase == "incremental" else 0
                        record(phase, name, run)
                    check_loaded(name, loader, tables, source_rows(SOURCE_DB, tables))
            total = source_rows(SOURCE_DB, tables)

    if "weblog" not in args.skip:
        logfile = WORK / "weblog" / "access.log"
        # the weblog runs get their own small order database (the log's customers and products come from it,
        # so `--skip orders` works on a fresh machine): only the weblog steps are timed
        weblog_db = f"{SOURCE_DB}_weblog"
        measure("populate", [PY, "-m", "populate", "orders", "--database", weblog_db, "--scale", "0.01", "--if-empty"],
                log, env={"PYTHONPATH": str(ROOT)}, cwd=ROOT)
        if not logfile.exists() or args.lines != _lines(logfile):
            logfile.parent.mkdir(parents=True, exist_ok=True)
            logfile.unlink(missing_ok=True)
            print(f"populate weblog --lines {args.lines} ...", flush=True)
            measure("populate weblog", [PY, "-m", "populate", "weblog", "--lines", str(args.lines), "--seed", "7",
                                        "--database", weblog_db, "--malformed", "0.1", "--output", logfile],
                    log, env={"PYTHONPATH": str(ROOT)}, cwd=ROOT)
        lines = _lines(logfile)
        ours = Ours("bench_weblog", WORK / "weblog" / "ours", weblog_paths=str(logfile), source=weblog_db)
        for repeat in range(1, args.repeats + 1):
            print(f"weblog repeat {repeat} of {args.repeats}", flush=True)
            ours.reset()
            _, whole = ours.run(log)
            steps = ours.weblog()
            record("weblog", "ours", Run(float(steps["extract"]["seconds"]), whole.peak_rss_kb, lines))
            seconds = sum(float(s["seconds"]) for s in steps.values())
            record("weblog", "ours_chain", Run(seconds, whole.peak_rss_kb, lines))
            report = WORK / "weblog" / "report.json"
            run = measure("goaccess", ["goaccess", logfile, "--log-format=COMBINED", "-o", report], log)
            run.rows = lines
            record("weblog", "goaccess", run)
    return results


def _lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


# --- report ----------------------------------------------------------------------------------------

def ratio(a: Series, b: Series) -> float:
    """``a``'s seconds against ``b``'s as the targets read them: the median of the per-repetition ratios
    (repetition i of one against repetition i of the other, which ran in the same round), or the ratio of
    the medians when the two have different numbers of repetitions."""
    if a.runs and len(a.runs) == len(b.runs):
        return statistics.median(x.seconds / y.seconds for x, y in zip(a.runs, b.runs))
    return a.seconds / b.seconds


def summarise(results: dict) -> tuple[list[list], list[dict]]:
    """The printed table's rows and the target checks."""
    rows, checks = [], []
    for phase, series in results.items():
        if not series:
            continue
        floor = series.get("floor")
        peers = [series[p] for p in (PEERS if phase != "weblog" else ("goaccess",)) if p in series]
        best = min(peers, key=lambda s: s.seconds) if peers else None
        for name, s in series.items():
            rate = s.rows / s.seconds if s.seconds and s.rows else 0
            rows.append([phase, name, round(s.seconds, 2), f"{rate:,.0f}" if rate else "-",
                         f"{ratio(s, floor):.2f}" if floor else "-",
                         f"{ratio(s, best):.2f}" if best else "-", round(s.peak_rss_mb, 1)])
        ours = series.get("ours")
        if ours is None:
            continue
        for t_phase, what, limit in TARGETS:
            if t_phase != phase:
                continue
            mine, _, theirs = what.partition(" / ")
            other = {"floor": floor, "dlt_fast": series.get("dlt_fast"), "best peer": best}[theirs]
            if other is None or mine not in series:  # a loader was skipped
                checks.append({"phase": phase, "target": f"{what} <= {limit}", "value": None, "met": None})
            else:
                value = ratio(series[mine], other)
                checks.append({"phase": phase, "target": f"{what} <= {limit}", "value": round(value, 2), "met": value <= limit})
        if phase == "noop" and "ours_runjob" in series:
            value = series["ours_runjob"].seconds
            checks.append({"phase": phase, "target": f"whole no-op RunJob < {NOOP_RUNJOB_SECONDS} s",
                           "value": round(value, 2), "met": value < NOOP_RUNJOB_SECONDS})
        if phase == "weblog" and best is not None:
            value = ratio(best, ours) * ours.rows / best.rows  # lines/s against lines/s
            checks.append({"phase": phase, "target": f"ours lines/s >= {WEBLOG_GOACCESS_RATIO} x goaccess",
                           "value": round(value, 2), "met": value >= WEBLOG_GOACCESS_RATIO})
            if "ours_chain" in series:
                chain = series["ours_chain"]
                value = ratio(best, chain) * chain.rows / best.rows
                checks.append({"phase": phase, "target": f"ours_chain lines/s >= {WEBLOG_CHAIN_GOACCESS_RATIO} x goaccess",
                               "value": round(value, 2), "met": value >= WEBLOG_CHAIN_GOACCESS_RATIO})
            checks.append({"phase": phase, "target": f"ours peak RSS < {WEBLOG_RSS_MB} MB",
                           "value": round(ours.peak_rss_mb, 1), "met": ours.peak_rss_mb < WEBLOG_RSS_MB})
        elif phase != "weblog":
            rss = max(s.peak_rss_mb for n, s in series.items() if n.startswith("ours"))
            checks.append({"phase": phase, "target": f"ours peak RSS < {PEAK_RSS_MB} MB", "value": round(rss, 1),
                           "met": rss < PEAK_RSS_MB})
    return rows, checks


def job_beside_load(results: dict) -> list[list]:
    """Per order phase: ours' whole job beside its load part, the other loaders and the ratios (the
    second printed table): [phase, job s, load s, floor, dlt_fast, sling, load/floor, load/dlt, load/sling,
    job/dlt] (seconds: medians; ratios: :func:`ratio`; "-" where a loader was skipped)."""
    rows = []
    for phase in PHASES:
        series = results.get(phase, {})
        if "ours" not in series:
            continue

        def against(a: str, b: str) -> str:
            return f"{ratio(series[a], series[b]):.2f}" if a in series and b in series else "-"

        rows.append([phase, *(round(series[n].seconds, 2) if n in series else "-"
                              for n in ("ours_runjob", "ours", "floor", "dlt_fast", "sling")),
                     against("ours", "floor"), against("ours", "dlt_fast"), against("ours", "sling"),
                     against("ours_runjob", "dlt_fast")])
    return rows


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the benchmark, print and save the results; returns the exit code."""
    parser = argparse.ArgumentParser(prog="scripts/bench.sh", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=HELP_EPILOG)
    parser.add_argument("--scale", type=float, default=1.0, help="populate scale (1 = about 1.4M rows; default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the median is reported (default 3)")
    parser.add_argument("--lines", type=int, default=1_000_000, help="access-log lines for the weblog phase (default 1M)")
    parser.add_argument("--seed", type=int, default=1, help="populate seed (default 1)")
    parser.add_argument("--variant", choices=("sample", "strings"), default="sample",
                        help="source variant populate fills (default sample; strings: varchar ids, NULL attributes, "
                             "extra columns - dlt_fast's ConnectorX refuses its DECIMAL(20,10) column)")
    parser.add_argument("--lookback-seconds", type=int, default=10,
                        help="ours' [dw_etl] lookback_seconds (default 10; the pipeline's own default is 300)")
    parser.add_argument("--database", default="b2b_bench", help="MySQL source database, recreated (default b2b_bench)")
    parser.add_argument("--skip", nargs="*", default=[], choices=[*LOADERS[1:], "orders", "weblog"],
                        help="loaders or parts to leave out (dlt_default alone takes minutes per run)")
    parser.add_argument("--output", type=Path, help="JSON result file (default bench-work/results-<time>.json)")
    parser.add_argument("--summarise", type=Path, metavar="JSON",
                        help="print the table and target checks of an earlier result file, run nothing")
    args = parser.parse_args(argv)
    from tabulate import tabulate

    started = datetime.now(timezone.utc)
    if args.summarise:
        saved = json.loads(args.summarise.read_text())["results"]
        results = {phase: {name: Series([Run(**r) for r in s["runs"]]) for name, s in series.items()}
                   for phase, series in saved.items()}
    else:
        try:
            results = run_bench(args)
        except BenchError as exc:
            print(f"bench: error: {exc}", file=sys.stderr)
            return 2
    rows, checks = summarise(results)
    print()
    print(tabulate(rows, headers=["phase", "loader", "median s", "rows/s", "x floor", "x best peer", "peak RSS MB"]))
    print()
    print(tabulate(job_beside_load(results), headers=["phase", "ours job s", "ours load s", "floor", "dlt_fast", "sling",
                                                      "load/floor", "load/dlt", "load/sling", "job/dlt"]))
    print()
    for c in checks:
        verdict = "SKIP" if c["met"] is None else "PASS" if c["met"] else "FAIL"
        print(f"{verdict}  {c['phase']:<11} {c['target']:<40} {'not measured' if c['value'] is None else c['value']}")
    met = all(c["met"] is not False for c in checks)
    if args.summarise:
        return 0 if met else 1
    output = args.output or WORK / f"results-{started:%Y%m%dT%H%M%SZ}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({
        "started": started.isoformat(), "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "uname": " ".join(os.uname())},
        "results": {phase: {name: {"median_seconds": s.seconds, "peak_rss_mb": s.peak_rss_mb, "rows": s.rows,
                                   "runs": [asdict(r) for r in s.runs]} for name, s in series.items()}
                    for phase, series in results.items()},
        "table": rows, "job_beside_load": job_beside_load(results), "targets": checks,
    }, indent=2))
    print(f"\nresults: {output}")
    return 0 if met else 1
