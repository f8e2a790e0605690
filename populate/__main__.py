"""Command line of the sample source generators.

Usage::

    python -m populate orders [--scale 0.01] [--seed 42] [--recreate | --if-empty]
    python -m populate orders --changes PCT [--seed N]

Connection settings come from luigi.cfg ``[mysql]`` (and ``MYSQL_PASSWORD``), overridable
with --host/--port/--user/--database.
"""

from __future__ import annotations

import argparse
import logging
import sys

from etl.config import mysql_settings
from etl.errors import EltError


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the generator; returns the process exit code (0 ok, 1 error)."""
    parser = argparse.ArgumentParser(prog="python -m populate", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    orders = sub.add_parser("orders", help="create/fill the MySQL B2B order database or apply daily changes")
    orders.add_argument("--scale", type=float, default=0.01, help="1 = 1M order lines; default 0.01 (demo size)")
    orders.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    mode = orders.add_mutually_exclusive_group()
    mode.add_argument("--recreate", action="store_true", help="drop and refill existing tables")
    mode.add_argument("--if-empty", action="store_true", help="fill only when the source has no orders yet")
    mode.add_argument("--changes", type=float, metavar="PCT", help="simulate a day of activity on PCT%% of rows")
    for key in ("host", "port", "user", "database"):
        orders.add_argument(f"--{key}", type=int if key == "port" else str, help=f"override [mysql] {key}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from dataclasses import replace

    from populate import orders_db

    try:
        settings = mysql_settings()
        overrides = {k: getattr(args, k) for k in ("host", "port", "user", "database") if getattr(args, k) is not None}
        settings = replace(settings, **overrides)
        if args.changes is not None:
            if not 0 < args.changes <= 100:
                parser.error("--changes must be in (0, 100]")
            counts = orders_db.apply_changes(settings, args.changes, args.seed)
        elif args.if_empty and not orders_db.source_is_empty(settings):
            print(f"source {settings.describe()} already has orders; nothing to do")
            return 0
        else:
            counts = orders_db.create_and_fill(settings, args.scale, args.seed, recreate=args.recreate or args.if_empty)
    except (EltError, RuntimeError) as exc:
        print(f"populate: error: {exc}", file=sys.stderr)
        return 1
    for key, value in counts.items():
        print(f"{key:20s} {value:>10,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
