"""Data-quality checks after store and pres, recorded in ``etl_control.quality_check``.

Checks (each ``warn`` or ``fail`` by ``[quality]`` configuration):

* ``count_mismatch`` - per MySQL table: the source rows with a complete key whose watermark
  is before the run's window end (full-extract tables: all of them) vs the live store rows
  below it, less those the source changed after it. One population on both sides, so a
  writer changing or adding rows during the run is no finding, and a row missing from store
  (or a hard delete not followed) is; ``etl.row_counts`` says why. Taken by the store
  step's hard-delete detection when that is on (in the snapshot of the source keys it
  compared), else here, the source in one snapshot.
* ``duplicate_keys`` / ``null_keys`` - per store table (MySQL tables and the access log)
  and per dimension natural key.
* ``unknown_members`` - fact rows pointing at a dimension's unknown member (-1); for the
  customer of a request only logged-in requests count.

A check with level ``fail`` that finds a problem fails the run with a message naming the
table and the count; ``warn`` logs and records it.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import luigi
from psycopg2 import sql

from etl import control, row_counts, source_mysql, warehouse
from etl.dialects import dialect_of
from etl.errors import ConfigError, EltError
from etl.domain import TableMeta
from etl.warehouse_sql import qualified
from etl.weblog import load as weblog_load

log = logging.getLogger(__name__)

LEVELS = ("warn", "fail", "off")
DIMENSION_KEYS = {  # dimension -> natural key columns (unknown member excluded)
    "dim_company": ("company_id",),
    "dim_customer": ("customer_document_no",),
    "dim_country": ("country_code",),
    "dim_device": ("device", "device_type"),
    "dim_date": ("full_date",),
}
FACT_KEYS = {  # fact -> (key, rows that should find a member: SQL condition)
    "fact_order_line": [(k, "true") for k in
                        ("order_date_key", "product_key", "supplier_company_key", "seller_company_key", "customer_key")],
    "fact_weblog_access": [("request_date_key", "true"), ("device_key", "true"), ("country_key", "true"),
                           ("customer_key", "is_login")],  # anonymous requests have no customer by definition
}


class quality(luigi.Config):  # noqa: N801 - the class name is the cfg section name
    """``[quality]``: the level of each check kind (warn, fail or off)."""

    count_mismatch = luigi.Parameter(default="warn", always_in_help=True,
                                     description="source and store row counts differ: warn, fail or off (default warn)")
    duplicate_keys = luigi.Parameter(default="fail", always_in_help=True,
                                     description="a key twice in store or a dimension: warn, fail or off "
                                                 "(default fail)")
    null_keys = luigi.Parameter(default="fail", always_in_help=True,
                                description="a NULL key in store or a dimension: warn, fail or off (default fail)")
    unknown_members = luigi.Parameter(default="warn", always_in_help=True,
                                      description="fact rows on a dimension's unknown member: warn, fail or off "
                                                  "(default warn)")


class QualityError(EltError):
    """A check configured as ``fail`` found problems."""


@dataclass
class CheckResult:
    """One check's outcome: ``problem_count`` 0 means passed."""

    check_name: str
    table_name: str
    problem_count: int
    level: str
    details: str = ""

    @property
    def status(self) -> str:
        """``ok``, or the level (``warn``/``fail``) when problems were found."""
        return "ok" if self.problem_count == 0 else self.level


def levels() -> dict[str, str]:
    """The configured level per check kind; raises ConfigError for an unknown level."""
    cfg = quality()
    result = {}
    for name in ("count_mismatch", "duplicate_keys", "null_keys", "unknown_members"):
        value = getattr(cfg, name)
        if value not in LEVELS:
            raise ConfigError(f"[quality] {name} = {value!r} must be one of {', '.join(LEVELS)}")
        result[name] = value
    return result


def _count(cur, query, params=None) -> int:
    cur.execute(query, params)
    return int(cur.fetchone()[0])


def _surplus_rows(table: sql.Composable, columns: sql.Composable, where: sql.Composable = sql.SQL("")) -> sql.Composable:
    """Rows beyond the first per value of ``columns`` (0 when unique); no row constructors (Redshift)."""
    return sql.SQL("SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {}{} GROUP BY {}) AS g").format(
        table, where, columns)


def _source_counts(ctx, tables: dict[str, TableMeta], windows: dict) -> dict[str, row_counts.SourceCounts]:
    """:class:`etl.row_counts.SourceCounts` per table, each table's in one snapshot (one connection)."""
    counts = {}
    with source_mysql.connection(ctx.source) as src:
        for meta in tables.values():
            with source_mysql.snapshot(src):
                counts[meta.name] = row_counts.count_source(src, meta, ctx.source.database, windows.get(meta.name))
    return counts


def _changed_note(changed: int) -> str:
    """The details' note on the store rows left out of the count (changed in the source after the window end)."""
    if not changed:
        return ""
    return f"; {changed} store row{'s' if changed > 1 else ''} changed in the source after the window end not counted"


def _nullable(cur, table, columns) -> list[str]:
    """The ``columns`` of ``table`` (QualifiedName) that the catalog allows to be NULL."""
    cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                "AND is_nullable = 'YES'", [table.schema, table.table])
    nullable = {row[0] for row in cur.fetchall()}
    return [c for c in columns if c in nullable]


def run_checks(ctx, tables: dict[str, TableMeta], sequence: int) -> list[CheckResult]:
    """Run every enabled check for ``sequence``; record them; raise QualityError on a failing one.

    Costs one scan per fact table and one count per store table and source table (with the
    source keys changed after the window end, matched in store: ``etl.row_counts``); the
    source counts run in a thread beside the warehouse checks. Constraints the warehouse
    enforces (the store's unique index on PostgreSQL, NOT NULL key columns) are not
    counted again: their results say so in ``details``.
    """
    level = levels()
    results: list[CheckResult] = []
    with warehouse.connection(ctx.warehouse) as conn, conn.cursor() as cur, ThreadPoolExecutor(1) as pool:
        control.ensure_schema(conn)  # etl_control.quality_check
        source_counts = None
        if level["count_mismatch"] != "off":
            windows = {name: control.recorded_window(conn, sequence, name) for name in tables}
            recorded = control.counted_rows(conn, sequence)  # counted by this sequence's store steps
            counted = {name: meta for name, meta in tables.items() if name not in recorded}
            source_counts = pool.submit(_source_counts, ctx, counted, windows)
        for meta in [*tables.values(), weblog_load.meta(ctx.etl.extract_config_dir)]:
            keys = sql.SQL(", ").join(sql.Identifier(c) for c in meta.unique_columns)
            table = qualified(meta.store_table)
            if level["duplicate_keys"] != "off":
                if not dialect_of(conn).enforces_keys:  # count
                    n, details = _count(cur, _surplus_rows(table, keys)), ""
                else:  # the store's unique index makes a duplicate impossible; no 1M-row GROUP BY
                    n, details = 0, "enforced by the store's unique index"
                results.append(CheckResult("duplicate_keys", str(meta.store_table), n, level["duplicate_keys"], details))
            if level["null_keys"] != "off":
                nullable = _nullable(cur, meta.store_table, meta.unique_columns)
                n, details = 0, "enforced by NOT NULL key columns"
                if nullable:  # a key column added to an existing table after it was created
                    any_null = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(sql.Identifier(c)) for c in nullable)
                    n, details = _count(cur, sql.SQL("SELECT count(*) FROM {} WHERE {}").format(table, any_null)), ""
                results.append(CheckResult("null_keys", str(meta.store_table), n, level["null_keys"], details))
        cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'pres' AND table_name = 'dim_product'")
        if cur.fetchone()[0]:
            for dim, natural in DIMENSION_KEYS.items():
                cols = sql.SQL(", ").join(sql.Identifier(c) for c in natural)
                table = sql.SQL("pres.{}").format(sql.Identifier(dim))
                if level["duplicate_keys"] != "off":
                    n = _count(cur, _surplus_rows(table, cols, sql.SQL(" WHERE {} IS NOT NULL").format(sql.Identifier(natural[0]))))
                    results.append(CheckResult("duplicate_keys", f"pres.{dim}", n, level["duplicate_keys"]))
            if level["duplicate_keys"] != "off":
                n = _count(cur, _surplus_rows(sql.SQL("pres.dim_product"), sql.SQL("product_code, supplier_id"),
                                              sql.SQL(" WHERE is_current")))
                results.append(CheckResult("duplicate_keys", "pres.dim_product (current)", n, level["duplicate_keys"]))
            if level["unknown_members"] != "off":
                for fact, fact_keys in FACT_KEYS.items():
                    # one query per fact; its WHERE is the predicate of the fact's partial index of
                    # unknown-member rows (sql/pres/04x), so only those rows are read
                    unknown = [sql.SQL("({} = -1 AND {})").format(sql.Identifier(key), sql.SQL(condition))
                               for key, condition in fact_keys]
                    cur.execute(sql.SQL("SELECT {} FROM pres.{} WHERE {}").format(
                        sql.SQL(", ").join(sql.SQL("coalesce(sum(CASE WHEN {} THEN 1 ELSE 0 END), 0)").format(u)
                                           for u in unknown),
                        sql.Identifier(fact), sql.SQL(" OR ").join(unknown)))
                    for (key, _), n in zip(fact_keys, cur.fetchone()):
                        results.append(CheckResult("unknown_members", f"pres.{fact}.{key}", int(n), level["unknown_members"]))
        if source_counts is not None:
            counts = source_counts.result()  # the store's counts need the source's changed keys
            mismatches = []
            for name, meta in tables.items():
                if name in recorded:
                    compared, how = recorded[name], " (counted in the store step)"
                else:
                    compared, how = row_counts.compared(counts[name], row_counts.count_store(
                        cur, meta, windows[name], counts[name].changed_keys)), ""
                source, store = compared["source"], compared["store"]
                mismatches.append(CheckResult("count_mismatch", str(meta.store_table), abs(source - store),
                                              level["count_mismatch"], f"source {source}, store {store}{how}"
                                              + _changed_note(compared["changed"])))
            results[:0] = mismatches
        cur.execute("DELETE FROM etl_control.quality_check WHERE execution_sequence = %s", [sequence])
        checked = datetime.now(timezone.utc).replace(tzinfo=None)
        for r in results:
            cur.execute(
                "INSERT INTO etl_control.quality_check (execution_sequence, check_name, table_name, problem_count, "
                "level, status, details, checked_datetime) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [sequence, r.check_name, r.table_name, r.problem_count, r.level, r.status, r.details, checked],
            )
        conn.commit()
    problems = [r for r in results if r.problem_count]
    for r in problems:
        log.warning("quality %s: %s: %d (%s)%s", r.status, r.check_name, r.problem_count, r.table_name,
                    f" - {r.details}" if r.details else "")
    failing = [r for r in problems if r.level == "fail"]
    if failing:
        raise QualityError("data-quality checks failed: " + "; ".join(
            f"{r.check_name} {r.table_name}: {r.problem_count}" + (f" ({r.details})" if r.details else "") for r in failing))
    return results


def payload(results: list[CheckResult], sequence: int) -> dict:
    """The CheckQuality marker payload."""
    return {
        "execution_sequence": sequence,
        "checks": [dict(asdict(r), status=r.status) for r in results],
        "problems": sum(1 for r in results if r.problem_count),
    }

