"""Apache access-log lines: parsing the Combined (and Common) Log Format, a block at a time.

``%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"``; the Common Log Format (no
referer / user agent) is accepted with those fields empty. Inside quoted fields Apache
escapes ``"`` and ``\\`` with a backslash; they are unescaped here. A structurally valid
line whose timestamp cannot be read keeps the raw text, gets
``request_timestamp_converted = 1900-01-01 00:00:00`` and ``request_timestamp_has_issue``.
Lines that do not have the structure (or hold a NUL byte, which PostgreSQL text cannot
store) are rejected with a reason.

Blocks of lines are parsed with polars (Rust regular expressions, vectorised casts and
timestamp parsing): a line without backslash escapes takes a simpler pattern, the few
others the full one. :func:`parse_line` parses one line through the same code.

Source of the format: Apache HTTP Server documentation, mod_log_config ("Common Log
Format", "Combined Log Format", escaping of ``%r``/``%i`` values).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import datetime

UNPARSEABLE_TIMESTAMP = datetime(1900, 1, 1)
REJECT_RAW_BYTES = 2048  # the most of a rejected line its rejects record keeps
STAMP_FORMAT = "%d/%b/%Y:%H:%M:%S %z"  # Apache's %t, English month names


def _quoted(name: str, escapes: bool = True) -> str:
    # "unrolled loop" form of a quoted field with backslash escapes: no per-character alternation
    body = r'[^"\\]*(?:\\.[^"\\]*)*' if escapes else r'[^"\\]*'
    return f'"(?P<{name}>{body})"'


def _line_pattern(escapes: bool) -> str:
    return (
        r"^(?P<ip_address>\S+) (?P<request_identity>\S+) (?P<username>\S+) \[(?P<request_timestamp>[^\]]*)\] "
        + _quoted("request_line", escapes) + r" (?P<status>[0-9]{3}|-) (?P<size>[0-9]+|-)"
        + "(?: " + _quoted("referer", escapes) + " " + _quoted("user_agent", escapes) + ")?$"
    )


LINE_PATTERN = _line_pattern(escapes=True)
_PLAIN_PATTERN = _line_pattern(escapes=False)  # the same lines when no field holds an escape: faster to match
_GROUPS = ("ip_address", "request_identity", "username", "request_timestamp", "request_line", "status", "size",
           "referer", "user_agent")
_UNESCAPE = r"\\([\\\"])"
_REQUEST_RE = re.compile(r"\] " + _quoted("r") + " ")
_STATUS_RE = re.compile(r'" ([0-9]{3}|-) ([0-9]+|-)')
FIELDS = ("ip_address", "request_identity", "username", "request_timestamp", "request_timestamp_converted",
          "request_timestamp_has_issue", "request_line", "method", "path", "protocol", "status_code",
          "response_size", "referer", "user_agent")


class RejectedLine(ValueError):
    """A line that is not an access-log line; ``str()`` is the reason."""


@dataclass(slots=True)
class ParsedLine:
    """The fields of one access-log line (text as logged, unescaped; ``-`` kept as logged)."""

    ip_address: str
    request_identity: str
    username: str
    request_timestamp: str
    request_timestamp_converted: datetime
    request_timestamp_has_issue: bool
    request_line: str
    method: str
    path: str
    protocol: str
    status_code: int | None
    response_size: int | None
    referer: str
    user_agent: str


def parse_block(lines):
    """Parse access-log lines.

    ``lines``: a polars String Series, one line per value without its newline (one
    trailing carriage return is allowed). Returns ``(frame, rejects)``: ``frame`` is a
    polars DataFrame with ``row`` (UInt32, the line's 0-based index in ``lines``) and the
    :data:`FIELDS` (String; ``request_timestamp_converted`` Datetime (naive UTC, seconds),
    ``request_timestamp_has_issue`` Boolean, ``status_code`` Int16, ``response_size``
    Int64, null for ``-``), in input order; ``rejects`` lists ``(row, line, reason)`` for
    the lines that are not access-log lines. Never raises for bad input.
    """
    import polars as pl

    frame = pl.DataFrame({"line": lines.str.strip_suffix("\r")}).with_row_index("row")
    # trailing blanks are not part of the format (and matching them would make the pattern slower)
    nul = pl.col("line").str.contains("\x00", literal=True)
    text = pl.when(nul).then(None).otherwise(pl.col("line").str.strip_chars_end(" \t\r"))
    plain = frame.with_columns(text.str.extract_groups(_PLAIN_PATTERN).alias("fields")).unnest("fields")
    matched = pl.col("ip_address").is_not_null()
    rest = plain.filter(~matched).select("row", "line")
    bad = rest
    if rest.height:  # lines with escapes (or no match at all): the full pattern, then unescape, in place
        full = rest.with_columns(text.str.extract_groups(LINE_PATTERN).alias("fields")).unnest("fields")
        bad = full.filter(~matched).select("row", "line")
        escaped = full.filter(matched).with_columns(
            pl.col("request_line", "referer", "user_agent").str.replace_all(_UNESCAPE, "$1"))
        if escaped.height:
            rows = escaped["row"]
            plain = plain.with_columns(plain[name].scatter(rows, escaped[name]) for name in _GROUPS)
    parsed = plain.lazy().filter(matched).with_columns(
        utc_timestamps(pl.col("request_timestamp")).alias("converted"),
        pl.col("request_line").str.split(" ").alias("parts"),
    ).with_columns(pl.col("parts").list.len().alias("count"))
    parts, count = pl.col("parts"), pl.col("count")
    frame = parsed.select(
        "row", "ip_address", "request_identity", "username", "request_timestamp",
        pl.col("converted").fill_null(UNPARSEABLE_TIMESTAMP).alias("request_timestamp_converted"),
        pl.col("converted").is_null().alias("request_timestamp_has_issue"),
        "request_line",
        pl.when(count.is_in([2, 3])).then(parts.list.get(0, null_on_oob=True)).otherwise(pl.lit("")).alias("method"),
        pl.when(count.is_in([2, 3])).then(parts.list.get(1, null_on_oob=True)).otherwise(pl.lit("")).alias("path"),
        pl.when(count == 3).then(parts.list.get(2, null_on_oob=True)).otherwise(pl.lit("")).alias("protocol"),
        pl.col("status").cast(pl.Int16, strict=False).alias("status_code"),
        pl.col("size").cast(pl.Int64, strict=False).alias("response_size"),
        pl.col("referer").fill_null(""),
        pl.col("user_agent").fill_null(""),
    ).collect()
    rejects = [(row, line, reject_reason(line)) for row, line in bad.iter_rows()]
    return frame, rejects


def parse_line(line: str) -> ParsedLine:
    """Parse one line (without its newline) with :func:`parse_block`. Raises RejectedLine with the reason."""
    import polars as pl

    frame, rejects = parse_block(pl.Series([line], dtype=pl.String))
    if rejects:
        raise RejectedLine(rejects[0][2])
    return ParsedLine(**{name: value for name, value in frame.row(0, named=True).items() if name != "row"})


def utc_timestamps(stamps):
    """A polars expression: Apache ``%t`` text (``10/Oct/2000:13:55:36 -0700``) -> naive UTC
    Datetime, null where it cannot be read (31 February, another layout)."""
    import polars as pl

    return stamps.str.strptime(pl.Datetime("us", "UTC"), STAMP_FORMAT, strict=False).dt.replace_time_zone(None)


def convert_timestamp(stamp: str) -> datetime | None:
    """One timestamp through :func:`utc_timestamps`: naive UTC datetime, or None when it cannot be read."""
    import polars as pl

    (value,) = pl.select(utc_timestamps(pl.lit(stamp))).to_series().to_list()
    return value


def reject_record(path: str, line_no: int, reason: str, raw: bytes) -> dict:
    """The rejects-file record (one JSON object) of a rejected line: ``file``, ``line_no``, ``reason``,
    ``raw`` (the line's first :data:`REJECT_RAW_BYTES` bytes, decoded as UTF-8 with invalid bytes
    replaced; a character cut at the end is dropped), ``raw_bytes`` (the whole line's length in
    bytes, without its newline) and ``raw_truncated`` (whether ``raw`` is a prefix). ``raw``
    is the line as read, without its newline."""
    truncated = len(raw) > REJECT_RAW_BYTES
    # not final when cut: the incremental decoder holds back a character the cut split instead of replacing it
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(raw[:REJECT_RAW_BYTES], final=not truncated)
    return {"file": path, "line_no": line_no, "reason": reason, "raw": text, "raw_bytes": len(raw),
            "raw_truncated": truncated}


def reject_reason(line: str) -> str:
    """A short reason why ``line`` is not in the log format (for the rejects file)."""
    if not line.strip():
        return "empty line"
    if "\x00" in line:
        return "contains a NUL byte"
    fields = line.split(" ", 3)
    if len(fields) < 4:
        return "too few fields"
    if not fields[3].startswith("["):
        return "no [timestamp] after host, identity and user"
    if not _REQUEST_RE.search(line):
        return "no quoted request after the timestamp"
    if not _STATUS_RE.search(line):
        return "no status code and size after the request"
    return "does not match the combined log format"
