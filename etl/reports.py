"""Report runner: run ``sql/reports/*.sql`` against the warehouse; print, or write CSV, charts, dashboard.

Command line::

    python -m etl.reports                 # run every report, print readable tables
    python -m etl.reports --report sql_monthly_sales
    python -m etl.reports --list
    python -m etl.reports --output-dir reports/manual   # also write CSV + PNG + dashboard.html

After each run ``RunJob`` writes ``<reports_dir>/<seq>/<name>.csv`` (the queries' column
names and unformatted values), ``<name>.png`` and one ``dashboard.html`` for business users
(``etl.dashboard``: charts referenced by relative path, tables inline, formatted; it opens
from disk with no network access).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import re
import shutil
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import psycopg2
from psycopg2 import sql

from etl import private, warehouse
from etl.dashboard import view_of, write_chart, write_dashboard
from etl.dialects import dialect_of
from etl.config import WarehouseSettings
from etl.errors import EltError, PresError
from etl.markers import step_marker, write_json_atomic

log = logging.getLogger(__name__)

@dataclass
class ReportResult:
    """One report's result: name (file stem), column names and rows (tuples of Python values)."""

    name: str
    columns: list[str]
    rows: list[tuple]

    @property
    def title(self) -> str:
        """Human title (the file name for reports without one), naming no country."""
        return view_of(self.name, self.columns).words(None)[0]


def report_files(sql_dir: str | Path, only: str | None = None) -> list[Path]:
    """The ``*.sql`` files of ``<sql_dir>/reports`` sorted by name (or just ``only``).

    Raises PresError naming the folder when ``only`` is not one of them.
    """
    files = sorted((Path(sql_dir) / "reports").glob("*.sql"))
    if only:
        wanted = only.removesuffix(".sql")
        files = [f for f in files if f.stem == wanted]
        if not files:
            raise PresError(f"no report {only!r} in {Path(sql_dir) / 'reports'}; see python -m etl.reports --list")
    return files


def run_report(conn, path: Path) -> ReportResult:
    """Execute one report file (read-only, rolled back; translated on Redshift) and fetch its rows.

    Returns a ReportResult (name, column names, rows as tuples). Raises PresError naming the
    file when the query fails, or ConfigError when it cannot be translated for Redshift.
    """
    text = path.read_text(encoding="utf-8")
    statements = dialect_of(conn).translate_file(path, text)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
            columns = [d[0] for d in cur.description]
            rows = cur.fetchall()
        conn.rollback()
    except psycopg2.Error as exc:
        conn.rollback()
        raise PresError(f"report {path} failed: {' '.join((exc.pgerror or str(exc)).split())}") from None
    return ReportResult(path.stem, columns, rows)


REPORT_CONNECTIONS = 2  # warehouse sessions running report queries at the same time


def run_all(settings: WarehouseSettings, files: list[Path], connections: int = REPORT_CONNECTIONS) -> list[ReportResult]:
    """Run report files on up to ``connections`` warehouse sessions at once (threads; each query is
    independent and read-only); returns their results in the order of ``files``. Raises the first
    file's PresError (``run_report``)."""
    from concurrent.futures import ThreadPoolExecutor

    with warehouse.thread_sessions(settings) as session, ThreadPoolExecutor(
            max_workers=max(1, min(connections, len(files))), thread_name_prefix="report") as pool:
        return list(pool.map(lambda path: run_report(session(), path), files))


def run_reports(settings: WarehouseSettings, sql_dir: str | Path, only: str | None = None) -> list[ReportResult]:
    """Run the report files (:func:`run_all`); returns their results in file-name order."""
    return run_all(settings, report_files(sql_dir, only))


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def write_csv(result: ReportResult, path: Path) -> None:
    """Write a report as CSV (header row, ``NULL`` as empty, decimals as written by the warehouse); private
    (``etl.private``) like every report file."""
    private.make_dirs(path.parent)
    with private.open_private(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(result.columns)
        writer.writerows([_cell(v) for v in row] for row in result.rows)


def write_outputs(results: list[ReportResult], folder: Path, note: str = "", previous: Path | None = None,
                  built: datetime | None = None) -> Path:
    """CSV and chart per report plus the dashboard (``etl.dashboard``), in ``folder``; returns the dashboard path.

    ``note`` is the dashboard's footnote (e.g. the execution sequence), ``built`` the time it
    states (default now).

    With ``previous`` (the folder of an earlier sequence), a report whose CSV is byte for
    byte the previous one reuses the previous chart instead of drawing it again (matplotlib
    costs about 0.3 s per chart plus 0.9 s to import; most runs change few reports), and when every
    CSV is, the dashboard reuses the previous page's sections (``etl.dashboard.write_dashboard``).
    """
    for result in results:
        csv_path, png_path = folder / f"{result.name}.csv", folder / f"{result.name}.png"
        write_csv(result, csv_path)
        old_csv, old_png = (previous / csv_path.name, previous / png_path.name) if previous else (None, None)
        if old_png is not None and old_png.is_file() and old_csv.is_file() and old_csv.read_bytes() == csv_path.read_bytes():
            with open(old_png, "rb") as old, private.open_private(png_path, "wb") as new:
                shutil.copyfileobj(old, new)
        else:
            write_chart(result, png_path)
    return write_dashboard(results, folder, note, built, previous=previous)


INPUTS_FILE = "inputs.json"

# PostgreSQL 15+: a pres table's write counters (rows inserted, updated, deleted since the statistics
# were reset; the pres runner flushes them before each file commits), its storage file and the
# reset time: any write moves one of them
_TABLE_VERSION_SQL = """SELECT c.relname, json_build_array(c.relfilenode::text,
    (pg_stat_get_tuples_inserted(c.oid) + pg_stat_get_tuples_updated(c.oid) + pg_stat_get_tuples_deleted(c.oid))::text,
    (SELECT CAST(stats_reset AS varchar) FROM pg_stat_database WHERE datname = current_database()))::text
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'pres' AND c.relname = ANY(%s)"""


def report_tables(text: str) -> list[str]:
    """The ``pres`` tables a report's SQL names (``pres.<table>``), sorted, without the schema."""
    return sorted(set(re.findall(r"\bpres\.(\w+)", text)))


def input_fingerprint(conn, files: list[Path]) -> dict:
    """What each report's result depends on: ``{report name: {"file", "current_date", "tables"}}``.

    ``file`` is the SHA-256 of the report's text, ``current_date`` the session's date (the
    reports look at "last year"), ``tables`` a version of each ``pres`` table it reads: on
    PostgreSQL 15 or later the table's write counters, storage file and the statistics' reset
    time (one catalog query for all tables, no scan); elsewhere its row count and latest
    ``etl_updated_datetime`` (one scan per table; every pres write sets that column). A
    JSON-able dict.
    """
    texts = {f.stem: f.read_text(encoding="utf-8") for f in files}
    tables = sorted({t for text in texts.values() for t in report_tables(text)})
    versions = {}
    with conn.cursor() as cur:
        cur.execute("SELECT CAST(current_date AS varchar)")
        today = cur.fetchone()[0]
        if dialect_of(conn).counts_row_writes(conn):
            cur.execute(_TABLE_VERSION_SQL, [tables])
            versions = dict(cur.fetchall())
        for table in tables:
            if table in versions:
                continue
            cur.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'pres' "
                        "AND table_name = %s AND column_name = 'etl_updated_datetime'", [table])
            latest = "max(etl_updated_datetime)" if cur.fetchone()[0] else "NULL"
            cur.execute(sql.SQL("SELECT count(*), CAST({} AS varchar) FROM pres.{}").format(
                sql.SQL(latest), sql.Identifier(table)))
            versions[table] = json.dumps(list(cur.fetchone()))
    conn.rollback()
    return {name: {"file": hashlib.sha256(text.encode()).hexdigest(), "current_date": today,
                   "tables": {t: versions[t] for t in report_tables(text)}}
            for name, text in texts.items()}


def _reuse(previous: Path, name: str) -> ReportResult | None:
    """A report's previous result read back from its CSV file (None when its CSV or chart is missing)."""
    csv_path = previous / f"{name}.csv"
    if not csv_path.is_file() or not (previous / f"{name}.png").is_file():
        return None
    with open(csv_path, encoding="utf-8", newline="") as handle:
        columns, *rows = list(csv.reader(handle))
    return ReportResult(name, columns, [tuple(r) for r in rows])


def _previous_inputs(previous: Path) -> dict:
    """The inputs the previous sequence's reports were made from ({} when unknown or unreadable)."""
    try:
        return json.loads((previous / INPUTS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _load_chart_libraries() -> None:
    """Import what drawing charts and the dashboard needs (matplotlib's Figure, pandas); errors surface
    where they are used."""
    import importlib

    for module in ("matplotlib.figure", "pandas"):
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def build_for_sequence(settings: WarehouseSettings, sql_dir: str | Path, reports_dir: str | Path,
                       completed_dir: str | Path, sequence: int) -> dict:
    """Run every report and write ``<reports_dir>/<seq>/`` (CSV, PNG, dashboard.html) with a step marker each.

    A report whose inputs (see :func:`input_fingerprint`: its file, the date, the pres tables
    it reads) are those of the previous sequence's result reuses that result instead of
    running its query: a no-op run runs no report query, a run that changed only the order
    tables reruns only the reports that read them. Returns the payload of the run's
    ``reports.json`` marker (dashboard path, rows per report, ``reused``: the reports reused,
    ``reused_previous``: all of them were).
    """
    folder = Path(reports_dir) / str(sequence)
    previous = Path(reports_dir) / str(sequence - 1)
    files = report_files(sql_dir)
    with warehouse.connection(settings) as conn:
        fingerprint = input_fingerprint(conn, files)
    before = _previous_inputs(previous)
    reused = {path.stem: result for path in files
              if before.get(path.stem) == fingerprint[path.stem] and (result := _reuse(previous, path.stem)) is not None}
    stale = [path for path in files if path.stem not in reused]
    if stale:
        # the chart libraries load (0.5-0.9 s of Python) while the queries run in the warehouse
        threading.Thread(target=_load_chart_libraries, name="report-imports", daemon=True).start()
    fresh = {result.name: result for result in run_all(settings, stale)} if stale else {}
    results = [reused.get(path.stem) or fresh[path.stem] for path in files]
    dashboard = write_outputs(results, folder, f"Execution sequence {sequence}", previous=previous)
    write_json_atomic(folder / INPUTS_FILE, fingerprint)
    for result in results:
        write_json_atomic(
            step_marker(completed_dir, sequence, "reports", result.name),
            {"report": result.name, "rows": len(result.rows), "csv": str(folder / f"{result.name}.csv")},
        )
    log.info("reports: %d written to %s (dashboard %s)%s", len(results), folder, dashboard,
             f"; {len(reused)} with inputs unchanged since the previous sequence reused its results" if reused else "")
    return {"execution_sequence": sequence, "dashboard": str(dashboard), "reports": {r.name: len(r.rows) for r in results},
            "reused": sorted(reused), "reused_previous": len(reused) == len(files)}


def render(result: ReportResult) -> str:
    """A readable text table of one report."""
    from tabulate import tabulate

    rows = [[_cell(v) for v in row] for row in result.rows]
    return f"{result.title} ({result.name})\n" + tabulate(rows, headers=result.columns, tablefmt="simple", disable_numparse=True)


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring); returns the exit code (0 ok, 1 error)."""
    from etl.config import etl_settings, warehouse_settings

    parser = argparse.ArgumentParser(prog="python -m etl.reports", description="Run the report SQL files against the warehouse.")
    parser.add_argument("--report", help="run only this report (file name without .sql)")
    parser.add_argument("--list", action="store_true", help="list the report files and exit")
    parser.add_argument("--output-dir", help="also write CSV files, charts and dashboard.html here")
    args = parser.parse_args(argv)
    try:
        settings = etl_settings()
        private.apply(settings.group_readable)
        if args.list:
            for path in report_files(settings.sql_dir):
                print(f"{path.stem:60s} {view_of(path.stem, ['']).words(None)[0]}")
            return 0
        results = run_reports(warehouse_settings(), settings.sql_dir, args.report)
    except EltError as exc:
        print(f"reports: error: {exc}", file=sys.stderr)
        return 1
    for result in results:
        print(render(result), end="\n\n")
    if args.output_dir:
        print(f"dashboard: {write_outputs(results, Path(args.output_dir), 'Built by python -m etl.reports')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
