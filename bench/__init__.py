"""Benchmark of the load against the loaders users would pick instead (see BENCHMARKS.md).

``scripts/bench.sh [--scale S] [--repeats N] ...`` runs :mod:`bench.run`. The peers run
from a separate virtual environment (``.venv-bench``, ``requirements-bench.txt``): dlt and
sling are benchmark-only dependencies.
"""
