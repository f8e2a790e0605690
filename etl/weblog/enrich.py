"""Enriching parsed access-log lines: the staged row of each line, with its key, country and device.

:func:`enrich_block` is the one entry: it takes a block parsed by
:func:`etl.weblog.parse.parse_block` and adds the line's key (``access_key`` =
``<file identity>:<line number>``, or ``<file identity>.g<N>:<line number>`` in
generation N, see :mod:`etl.weblog.files`), its file and line number,
the country of its IP address (:class:`etl.weblog.geo.CountryLookup`) and the device of its
user agent (:func:`etl.weblog.device.classify`). Both lookups load their databases only
when a block is enriched, not when this module is imported.
"""

from __future__ import annotations

from etl.weblog.parse import FIELDS

KEY_COLUMNS = ("access_key", "source_file", "line_no")
ENRICHED_COLUMNS = ("country", "device", "device_type", "os_family", "browser_family")
COLUMNS = (*KEY_COLUMNS, *FIELDS, *ENRICHED_COLUMNS)
"""Every column the loader writes for a line (after ``execution_sequence``): what the weblog
declaration in extract_config/ must list, each once (``etl.metadata.load_weblog_source``)."""
VALUE_KINDS = {
    **{column: "string" for column in COLUMNS},
    "line_no": "integer",
    "status_code": "integer",
    "response_size": "integer",
    "request_timestamp_converted": "timestamp",
    "request_timestamp_has_issue": "boolean",
}
"""The kind of value each column holds in the staging file: string, integer, boolean or
timestamp (naive UTC, whole seconds); the declared warehouse type must be one that holds it."""


def enrich_block(parsed, sequence: int, key_prefix: str, path: str, first_line_no: int, countries,
                 columns: tuple[str, ...] = COLUMNS):
    """The staged rows of a parsed block: a polars DataFrame of ``execution_sequence`` and ``columns``.

    ``key_prefix`` is the part of the keys before ``:<line number>`` (``etl.weblog.files.key_prefix``),
    ``first_line_no`` the number of lines before the block.
    ``columns`` are :data:`COLUMNS` in any order (the declaration's, ``TableMeta.columns``).
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

    values = {
        "access_key": pl.lit(f"{key_prefix}:") + line_no.cast(pl.String),
        "source_file": pl.lit(path),
        "line_no": line_no,
        **{name: pl.col(name) for name in FIELDS},
        "country": lookup("ip_address", ips, [known[ip] for ip in ips]),
        "device": lookup("user_agent", agents, [i.device for i in infos]),
        "device_type": lookup("user_agent", agents, [i.device_type for i in infos]),
        "os_family": lookup("user_agent", agents, [i.os_family for i in infos]),
        "browser_family": lookup("user_agent", agents, [i.browser_family for i in infos]),
    }
    return parsed.select(
        pl.lit(sequence, dtype=pl.Int64).alias("execution_sequence"),
        *(values[name].alias(name) for name in columns),
    )
