"""Command line of the sample source generators.

Usage::

    python -m populate orders [--variant sample|strings] [--scale 0.01] [--seed 42] [--recreate | --if-empty]
    python -m populate orders --changes PCT [--seed N]   (the variant is read from the source's schema)
    python -m populate weblog [--lines 20000] [--seed 42] [--start 2025-01-01] [--end 2026-11-22]
                              [--malformed 0.5] [--output weblogs/access.log] [--if-missing]

Connection settings come from luigi.cfg ``[mysql]`` (and ``MYSQL_PASSWORD``), overridable
with --host/--port/--user/--database.
"""

from __future__ import annotations

import argparse
import logging
import sys

from etl import private
from etl.config import etl_settings, mysql_settings
from etl.errors import EltError


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the generator; returns the process exit code (0 ok, 1 error)."""
    parser = argparse.ArgumentParser(prog="python -m populate", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    orders = sub.add_parser("orders", help="create/fill the MySQL B2B order database or apply daily changes")
    orders.add_argument("--scale", type=float, default=0.01, help="1 = 1M order lines; default 0.01 (demo size)")
    orders.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    orders.add_argument("--variant", choices=("sample", "strings"),
                        help="source schema: sample (default; integer ids, DATETIME) or strings (string/bigint ids, "
                             "NULL names, extra columns, latin1/utf8mb4_bin text, DECIMAL(65,30), DATETIME(6)); "
                             "--changes reads it from the source")
    mode = orders.add_mutually_exclusive_group()
    mode.add_argument("--recreate", action="store_true", help="drop and refill existing tables")
    mode.add_argument("--if-empty", action="store_true", help="fill only when the source has no orders yet")
    mode.add_argument("--changes", type=float, metavar="PCT", help="simulate a day of activity on PCT%% of rows")
    for key in ("host", "port", "user", "database"):
        orders.add_argument(f"--{key}", type=int if key == "port" else str, help=f"override [mysql] {key}")
    web = sub.add_parser("weblog", help="append combined-format access-log lines (users from the source customers)")
    web.add_argument("--lines", type=int, default=20000, help="number of lines to append (default 20000)")
    web.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    web.add_argument("--start", type=_date, help="first day, YYYY-MM-DD (default: 1 January last year)")
    web.add_argument("--end", type=_date, help="last moment, YYYY-MM-DD (default: now)")
    web.add_argument("--malformed", type=float, default=0.0, metavar="PCT", help="percent of broken lines to inject")
    web.add_argument("--utc-offset", default="+0000", help="server time zone offset written in the lines, e.g. -0700")
    web.add_argument("--output", default="weblogs/access.log", help="log file to append to (default weblogs/access.log)")
    web.add_argument("--if-missing", action="store_true", help="do nothing when the output file exists")
    web.add_argument("--database", help="override [mysql] database (where the customers are)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from dataclasses import replace

    from populate import orders_db
    from populate.orders import VARIANTS

    if args.command == "weblog":
        return _weblog(args)
    try:
        settings = mysql_settings()
        overrides = {k: getattr(args, k) for k in ("host", "port", "user", "database") if getattr(args, k) is not None}
        settings = replace(settings, **overrides)
        if args.changes is not None:
            if not 0 < args.changes <= 100:
                parser.error("--changes must be in (0, 100]")
            counts = orders_db.apply_changes(settings, args.changes, args.seed, VARIANTS.get(args.variant))
        elif args.if_empty and not orders_db.source_is_empty(settings):
            print(f"source {settings.describe()} already has orders; nothing to do")
            return 0
        else:
            counts = orders_db.create_and_fill(settings, args.scale, args.seed, recreate=args.recreate or args.if_empty,
                                               variant=VARIANTS[args.variant or "sample"])
    except (EltError, RuntimeError) as exc:
        print(f"populate: error: {exc}", file=sys.stderr)
        return 1
    for key, value in counts.items():
        print(f"{key:20s} {value:>10,}")
    return 0


def _date(text: str):
    from datetime import datetime

    return datetime.strptime(text, "%Y-%m-%d")


def _weblog(args) -> int:
    """Append generated access-log lines; returns the exit code."""
    import os
    import re
    from dataclasses import replace

    from etl import source_mysql
    from populate.weblog import default_range, generate

    if not re.fullmatch(r"[+-]\d{4}", args.utc_offset):
        print("populate: error: --utc-offset must look like +0000 or -0700", file=sys.stderr)
        return 1
    if args.if_missing and os.path.exists(args.output):
        print(f"{args.output} exists; nothing to do")
        return 0
    try:
        # the lines are sample customer data: the file is private like the job's own (etl.private)
        private.apply(etl_settings().group_readable)
        settings = mysql_settings()
        if args.database:
            settings = replace(settings, database=args.database)
        with source_mysql.connection(settings) as conn:
            cur = conn.cursor()
            # customers without a username (the strings variant has some) never appear in the logs
            cur.execute("SELECT username, country FROM customers WHERE username IS NOT NULL ORDER BY username")
            users = [(u, c) for u, c in cur.fetchall()]
    except EltError as exc:
        print(f"populate: error: {exc}", file=sys.stderr)
        return 1
    if not users:
        print("populate: error: the source has no customers; run python -m populate orders first", file=sys.stderr)
        return 1
    start, end = default_range()
    start, end = args.start or start, args.end or end
    private.make_dirs(os.path.dirname(args.output) or ".")
    count = 0
    with private.open_private(args.output, "ab") as handle:
        for line in generate(users, args.lines, args.seed, start, end, args.malformed, args.utc_offset):
            handle.write(line)
            count += 1
    print(f"appended {count:,} lines to {args.output} ({start:%Y-%m-%d} .. {end:%Y-%m-%d %H:%M}, {len(users):,} users)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
