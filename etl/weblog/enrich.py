"""Enriching parsed access-log lines: the staged row of each line, with its key, country and device.

:func:`enrich_block` is the one entry: it takes a block parsed by
:func:`etl.weblog.parse.parse_block` and adds the line's key (``access_key`` =
``<file identity>:<line number>``, see :mod:`etl.weblog.files`), its file and line number,
the country of its IP address (:class:`etl.weblog.geo.CountryLookup`) and the device of its
user agent (:func:`etl.weblog.device.classify`). Both lookups load their databases only
when a block is enriched, not when this module is imported.
"""

from __future__ import annotations

from etl.weblog.parse import FIELDS


def enrich_block(parsed, sequence: int, file_id: str, path: str, first_line_no: int, countries):
    """The staged rows of a parsed block (polars DataFrame in META column order, ``execution_sequence`` first).

    Each distinct IP address and user agent of the block is resolved once (country via
    ``countries`` (an ``etl.weblog.geo.CountryLookup``), device via
    :func:`etl.weblog.device.classify`, both cached across blocks).
    """
    import polars as pl

    from etl.weblog.device import classify

    ips = parsed["ip_address"].unique().to_list()
    known = countries.countries(ips)
    agents = parsed["user_agent"].unique().to_list()
    infos = [classify(agent) for agent in agents]
    line_no = pl.col("row").cast(pl.Int64) + first_line_no + 1

    def lookup(column: str, keys: list[str], values: list[str]):
        return pl.col(column).replace_strict(keys, values, return_dtype=pl.String)

    return parsed.select(
        pl.lit(sequence, dtype=pl.Int64).alias("execution_sequence"),
        (pl.lit(f"{file_id}:") + line_no.cast(pl.String)).alias("access_key"),
        pl.lit(path).alias("source_file"),
        line_no.alias("line_no"),
        *FIELDS,
        lookup("ip_address", ips, [known[ip] for ip in ips]).alias("country"),
        lookup("user_agent", agents, [i.device for i in infos]).alias("device"),
        lookup("user_agent", agents, [i.device_type for i in infos]).alias("device_type"),
        lookup("user_agent", agents, [i.os_family for i in infos]).alias("os_family"),
        lookup("user_agent", agents, [i.browser_family for i in infos]).alias("browser_family"),
    )
