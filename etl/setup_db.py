"""``python -m etl.setup_db``: create the configured warehouse database when it is missing.

Reads ``[warehouse]`` from luigi.cfg / LUIGI_CONFIG_PATH. Exit code 0 on success, 1 with a
one-line message on error.
"""

from __future__ import annotations

import argparse
import sys

from etl.config import warehouse_settings
from etl.errors import EltError
from etl.warehouse import ensure_database


_DESCRIPTION = ("Create the warehouse database ([warehouse] in luigi.cfg or the file named by LUIGI_CONFIG_PATH; "
                "PGPASSWORD when [warehouse] password is empty) when it is missing. Exit code 0 on success, 1 with a "
                "one-line message on error.")


def main(argv: list[str] | None = None) -> int:
    """Create the warehouse database if needed; returns the exit code."""
    argparse.ArgumentParser(prog="python -m etl.setup_db", description=_DESCRIPTION).parse_args(argv)
    try:
        settings = warehouse_settings()
        created = ensure_database(settings)
    except EltError as exc:
        print(f"setup_db: error: {exc}", file=sys.stderr)
        return 1
    print(f"warehouse database {settings.database}: {'created' if created else 'exists'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
