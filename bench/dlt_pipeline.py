"""dlt's ``sql_database`` source -> ``postgres`` destination, merge on the tables' keys.

Run with the benchmark venv's Python (dlt is a benchmark-only dependency)::

    .venv-bench/bin/python bench/dlt_pipeline.py {default|fast} MYSQL_URL PG_URL PIPELINES_DIR KEYS_JSON

``default``: dlt's defaults (SQLAlchemy backend over PyMySQL, insert_values loader).
``fast``: the fastest configuration dlt documents for this path: ConnectorX backend
(Arrow tables), parquet loader files, ``adbc-driver-postgresql`` installed for the load.
Both are incremental on ``updated_datetime`` with ``write_disposition="merge"`` on the
same business keys as the pipeline (``KEYS_JSON``: ``{"table": ["key", ...]}``). Prints
the rows loaded per table as JSON on the last line.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    """Run one dlt load; returns the exit code (this module's docstring for --help, 2 for wrong arguments)."""
    if len(argv) != 5 or argv[0] not in ("default", "fast"):
        print(__doc__, file=sys.stdout if argv in (["-h"], ["--help"]) else sys.stderr)
        return 0 if argv in (["-h"], ["--help"]) else 2
    import dlt
    from dlt.sources.sql_database import sql_database

    mode, mysql_url, pg_url, pipelines_dir, keys_json = argv
    keys = json.loads(keys_json)
    if mode == "fast":
        native = mysql_url.replace("mysql+pymysql://", "mysql://")
        source = sql_database(mysql_url, table_names=list(keys), backend="connectorx",
                              backend_kwargs={"conn": native}, chunk_size=100_000)
    else:
        source = sql_database(mysql_url, table_names=list(keys))
    for table, key in keys.items():
        source.resources[table].apply_hints(
            primary_key=key, write_disposition="merge", incremental=dlt.sources.incremental("updated_datetime"))
    pipeline = dlt.pipeline(pipeline_name=f"bench_{mode}", destination=dlt.destinations.postgres(pg_url),
                            dataset_name=f"dlt_{mode}", pipelines_dir=pipelines_dir)
    info = pipeline.run(source, loader_file_format="parquet" if mode == "fast" else None)
    counts = pipeline.last_trace.last_normalize_info.row_counts if pipeline.last_trace.last_normalize_info else {}
    print(json.dumps({t: n for t, n in counts.items() if not t.startswith("_dlt")}))
    return 1 if info.has_failed_jobs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
