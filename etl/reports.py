"""Report runner: run ``sql/reports/*.sql`` against the warehouse; print, or write CSV, charts, dashboard.

Command line::

    python -m etl.reports                 # run every report, print readable tables
    python -m etl.reports --report sql_monthly_sales
    python -m etl.reports --list
    python -m etl.reports --output-dir reports/manual   # also write CSV + PNG + dashboard.html

After each run ``RunJob`` writes ``<reports_dir>/<seq>/<name>.csv``, ``<name>.png`` and one
``dashboard.html`` (charts referenced by relative path, tables inline: it opens from disk
with no network access).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import html
import json
import logging
import re
import shutil
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg2
from psycopg2 import sql

from etl import private, warehouse
from etl.dialects import dialect_of
from etl.config import WarehouseSettings
from etl.errors import EltError, PresError
from etl.markers import step_marker, write_json_atomic

log = logging.getLogger(__name__)

TITLES = {
    "sql_monthly_sales": "Monthly sales, last year",
    "sql_top_5_most_used_devices": "Top 5 devices by logins, last year",
    "sql_most_popular_products_from_country_with_most_logins": "Top products of the country with most logged-in users",
    "sql_top_10_revenue_products": "Top 10 products by revenue, last year",
    "sql_top_login_countries": "Top 10 countries by logged-in users, last year",
}
# report name -> (label columns, value column, horizontal bars); a product is code + supplier
CHARTS = {
    "sql_monthly_sales": (("year_month",), "total_amount", False),
    "sql_top_5_most_used_devices": (("device",), "request_count", False),
    "sql_most_popular_products_from_country_with_most_logins": (("product_code", "supplier_id"), "total_quantity", True),
    "sql_top_10_revenue_products": (("product_code", "supplier_id"), "total_amount", True),
    "sql_top_login_countries": (("country",), "user_count", False),
}


@dataclass
class ReportResult:
    """One report's result: name (file stem), column names and rows (tuples of Python values)."""

    name: str
    columns: list[str]
    rows: list[tuple]

    @property
    def title(self) -> str:
        """Human title (the file name for reports without one)."""
        return TITLES.get(self.name, self.name)


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


def run_reports(settings: WarehouseSettings, sql_dir: str | Path, only: str | None = None) -> list[ReportResult]:
    """Run the report files on one connection; returns their results in file-name order."""
    files = report_files(sql_dir, only)
    with warehouse.connection(settings) as conn:
        return [run_report(conn, path) for path in files]


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


def write_chart(result: ReportResult, path: Path) -> None:
    """Draw the report's chart (bars of its value column) as a PNG (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    label_cols, value_col, horizontal = CHARTS.get(result.name, ((result.columns[0],), result.columns[-1], False))
    labels = [" / ".join(_cell(row[result.columns.index(c)]) for c in label_cols) for row in result.rows]
    values = [float(row[result.columns.index(value_col)] or 0) for row in result.rows]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    if horizontal:
        ax.barh(labels[::-1], values[::-1], color="#3b6ea5")
        ax.set_xlabel(value_col)
    else:
        ax.bar(labels, values, color="#3b6ea5")
        ax.set_ylabel(value_col)
        ax.tick_params(axis="x", labelrotation=45 if len(labels) > 6 else 0)
    if not result.rows:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(result.title)
    fig.tight_layout()
    private.make_dirs(path.parent)
    with private.open_private(path, "wb") as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)


def write_dashboard(results: list[ReportResult], folder: Path, title: str) -> Path:
    """Write ``dashboard.html`` in ``folder``: every chart (relative ``<img>``) and table, no external resources."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;color:#222}section{margin-bottom:3em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "th{background:#eef}img{max-width:100%;display:block;margin:1em 0}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for result in results:
        parts.append(f"<section id='{html.escape(result.name)}'><h2>{html.escape(result.title)}</h2>")
        parts.append(f"<img src='{html.escape(result.name)}.png' alt='{html.escape(result.title)} chart'>")
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in result.columns) + "</tr>")
        for row in result.rows:
            parts.append("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>")
        parts.append(f"</table><p><a href='{html.escape(result.name)}.csv'>{html.escape(result.name)}.csv</a></p></section>")
    parts.append("</body></html>")
    path = folder / "dashboard.html"
    private.make_dirs(folder)
    with private.open_private(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(parts))
    return path


def write_outputs(results: list[ReportResult], folder: Path, title: str, previous: Path | None = None) -> Path:
    """CSV and chart per report plus the dashboard, in ``folder``; returns the dashboard path.

    With ``previous`` (the folder of an earlier sequence), a report whose CSV is byte for
    byte the previous one reuses the previous chart instead of drawing it again (matplotlib
    costs about 0.3 s per chart plus 0.9 s to import; most runs change few reports).
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
    return write_dashboard(results, folder, title)


INPUTS_FILE = "inputs.json"


def input_fingerprint(conn, files: list[Path]) -> dict:
    """What the report results depend on: the report files' text, the session's date (the
    reports look at "last year") and, per ``pres.<table>`` the files read, its row count and
    latest ``etl_updated_datetime`` (pres files delete and re-insert changed rows, so any
    change moves one of the two). A JSON-able dict; one scan per table, no report query.
    """
    texts = {f.name: f.read_text(encoding="utf-8") for f in files}
    tables = sorted({t for text in texts.values() for t in re.findall(r"\bpres\.(\w+)", text)})
    fingerprint = {"files": {n: hashlib.sha256(t.encode()).hexdigest() for n, t in texts.items()}}
    with conn.cursor() as cur:
        cur.execute("SELECT CAST(current_date AS varchar)")
        fingerprint["current_date"] = cur.fetchone()[0]
        for table in tables:
            cur.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'pres' "
                        "AND table_name = %s AND column_name = 'etl_updated_datetime'", [table])
            latest = "max(etl_updated_datetime)" if cur.fetchone()[0] else "NULL"
            cur.execute(sql.SQL("SELECT count(*), CAST({} AS varchar) FROM pres.{}").format(
                sql.SQL(latest), sql.Identifier(table)))
            fingerprint[f"pres.{table}"] = list(cur.fetchone())
    conn.rollback()
    return fingerprint


def _reuse(previous: Path, files: list[Path]) -> list[ReportResult] | None:
    """The previous sequence's results read back from its CSV files (None when any is missing)."""
    results = []
    for path in files:
        csv_path = previous / f"{path.stem}.csv"
        if not csv_path.is_file() or not (previous / f"{path.stem}.png").is_file():
            return None
        with open(csv_path, encoding="utf-8", newline="") as handle:
            columns, *rows = list(csv.reader(handle))
        results.append(ReportResult(path.stem, columns, [tuple(r) for r in rows]))
    return results


def build_for_sequence(settings: WarehouseSettings, sql_dir: str | Path, reports_dir: str | Path,
                       completed_dir: str | Path, sequence: int) -> dict:
    """Run every report and write ``<reports_dir>/<seq>/`` (CSV, PNG, dashboard.html) with a step marker each.

    When the previous sequence's reports were made from the same inputs (see
    :func:`input_fingerprint`), their results are reused instead of running the queries
    again: a no-op run costs a few table scans, not the five report queries. Returns the
    payload of the run's ``reports.json`` marker (dashboard path, rows per report, reused).
    """
    folder = Path(reports_dir) / str(sequence)
    previous = Path(reports_dir) / str(sequence - 1)
    files = report_files(sql_dir)
    with warehouse.connection(settings) as conn:
        fingerprint = input_fingerprint(conn, files)
        old = previous / INPUTS_FILE
        reused = _reuse(previous, files) if old.is_file() and json.loads(old.read_text()) == fingerprint else None
        results = reused if reused is not None else [run_report(conn, path) for path in files]
    dashboard = write_outputs(results, folder, f"Reports, execution sequence {sequence}", previous=previous)
    write_json_atomic(folder / INPUTS_FILE, fingerprint)
    for result in results:
        write_json_atomic(
            step_marker(completed_dir, sequence, "reports", result.name),
            {"report": result.name, "rows": len(result.rows), "csv": str(folder / f"{result.name}.csv")},
        )
    log.info("reports: %d written to %s (dashboard %s)%s", len(results), folder, dashboard,
             "; inputs unchanged since the previous sequence, its results reused" if reused is not None else "")
    return {"execution_sequence": sequence, "dashboard": str(dashboard), "reports": {r.name: len(r.rows) for r in results},
            "reused_previous": reused is not None}


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
                print(f"{path.stem:60s} {TITLES.get(path.stem, '')}")
            return 0
        results = run_reports(warehouse_settings(), settings.sql_dir, args.report)
    except EltError as exc:
        print(f"reports: error: {exc}", file=sys.stderr)
        return 1
    for result in results:
        print(render(result), end="\n\n")
    if args.output_dir:
        print(f"dashboard: {write_outputs(results, Path(args.output_dir), 'Reports')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
