"""dlt's ``sql_database`` source -> ``postgres`` destination, merge on the tables' keys.

Run with the benchmark venv's Python (dlt is a benchmark-only dependency)::

    .venv-bench/bin/python bench/dlt_pipeline.py {default|fast} MYSQL_URL PG_URL PIPELINES_DIR TABLES_JSON

``default``: dlt's defaults (SQLAlchemy backend over PyMySQL, insert_values loader).
``fast``: the fastest configuration dlt documents for this path: ConnectorX backend
(Arrow tables), parquet loader files, ``adbc-driver-postgresql`` installed for the load.
Both are incremental on ``updated_datetime`` with ``write_disposition="merge"`` on the
same business keys and columns as the pipeline (``TABLES_JSON``: ``{"table": {"keys": [...],
"columns": [...]}}``: a source's other columns are not read, as by the pipeline). Prints the rows
loaded per table as JSON on the last line.
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
    from dlt.sources.sql_database import sql_table

    mode, mysql_url, pg_url, pipelines_dir, tables_json = argv
    tables = json.loads(tables_json)
    options = {}
    if mode == "fast":
        options = {"backend": "connectorx", "backend_kwargs": {"conn": mysql_url.replace("mysql+pymysql://", "mysql://")},
                   "chunk_size": 100_000}
    resources = []
    for table, spec in tables.items():
        resource = sql_table(mysql_url, table=table, included_columns=spec["columns"],
                             incremental=dlt.sources.incremental("updated_datetime"), **options)
        resource.apply_hints(primary_key=spec["keys"], write_disposition="merge")
        resources.append(resource)
    pipeline = dlt.pipeline(pipeline_name=f"bench_{mode}", destination=dlt.destinations.postgres(pg_url),
                            dataset_name=f"dlt_{mode}", pipelines_dir=pipelines_dir)
    info = pipeline.run(resources, loader_file_format=None if mode == "default" else "parquet")
    counts = pipeline.last_trace.last_normalize_info.row_counts if pipeline.last_trace.last_normalize_info else {}
    print(json.dumps({t: n for t, n in counts.items() if not t.startswith("_dlt")}))
    return 1 if info.has_failed_jobs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
