"""Apache access-log lines: parsing the Combined (and Common) Log Format.

``%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"``; the Common Log Format (no
referer / user agent) is accepted with those fields empty. Inside quoted fields Apache
escapes ``"`` and ``\\`` with a backslash; they are unescaped here. A structurally valid
line whose timestamp cannot be read keeps the raw text, gets
``request_timestamp_converted = 1900-01-01 00:00:00`` and ``request_timestamp_has_issue``.
Lines that do not have the structure raise :class:`RejectedLine` with the reason.

Source of the format: Apache HTTP Server documentation, mod_log_config ("Common Log
Format", "Combined Log Format", escaping of ``%r``/``%i`` values).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache

UNPARSEABLE_TIMESTAMP = datetime(1900, 1, 1)

_QUOTED = r'"([^"\\]*(?:\\.[^"\\]*)*)"'  # "unrolled loop" form: no per-character alternation
LINE_RE = re.compile(
    r"(\S+) (\S+) (\S+) \[([^\]]*)\] " + _QUOTED + r" (\d{3}|-) (\d+|-)"
    r"(?: " + _QUOTED + " " + _QUOTED + r")?[ \t]*\r?"
)
_UNESCAPE_RE = re.compile(r"\\([\\\"])")
_REQUEST_RE = re.compile(r"\] " + _QUOTED + " ")


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


def parse_line(line: str) -> ParsedLine:
    """Parse one line (without its newline). Raises RejectedLine when it has not the format."""
    if not line.strip():
        raise RejectedLine("empty line")
    match = LINE_RE.fullmatch(line)
    if match is None:
        raise RejectedLine(_diagnose(line))
    ip, ident, user, stamp, request, status, size, referer, agent = match.groups()
    converted = convert_timestamp(stamp)
    request = _unescape(request)
    method, path, protocol = split_request(request)
    return ParsedLine(
        ip_address=ip,
        request_identity=ident,
        username=user,
        request_timestamp=stamp,
        request_timestamp_converted=converted or UNPARSEABLE_TIMESTAMP,
        request_timestamp_has_issue=converted is None,
        request_line=request,
        method=method,
        path=path,
        protocol=protocol,
        status_code=None if status == "-" else int(status),
        response_size=None if size == "-" else int(size),
        referer=_unescape(referer) if referer is not None else "",
        user_agent=_unescape(agent) if agent is not None else "",
    )


def _unescape(value: str) -> str:
    return _UNESCAPE_RE.sub(r"\1", value) if "\\" in value else value


def split_request(request: str) -> tuple[str, str, str]:
    """``"GET /a?b HTTP/1.1"`` -> (method, path, protocol); parts missing are empty strings."""
    parts = request.split(" ")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return parts[0], parts[1], ""
    return "", "", ""


_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


@lru_cache(maxsize=65536)
def convert_timestamp(stamp: str) -> datetime | None:
    """``10/Oct/2000:13:55:36 -0700`` -> naive UTC datetime, or None when it cannot be read.

    The layout Apache writes (``%d/%b/%Y:%H:%M:%S %z``, English month) is read directly,
    which is about ten times faster than ``strptime`` (whose locale checks dominate a
    large log); anything else falls back to ``strptime``. Impossible dates (31 February)
    give None. Cached: a busy log repeats each second's timestamp many times.
    """
    if len(stamp) == 26 and stamp[2] == "/" and stamp[6] == "/" and stamp[11] == ":" and stamp[20] == " ":
        month = _MONTHS.get(stamp[3:6])
        sign = stamp[21]
        digits = stamp[0:2] + stamp[7:11] + stamp[12:14] + stamp[15:17] + stamp[18:20] + stamp[22:26]
        if month and sign in "+-" and digits.isascii() and digits.isdigit():
            try:
                local = datetime(int(stamp[7:11]), month, int(stamp[0:2]), int(stamp[12:14]), int(stamp[15:17]), int(stamp[18:20]))
                offset = timedelta(hours=int(stamp[22:24]), minutes=int(stamp[24:26]))
                return local - offset if sign == "+" else local + offset
            except (ValueError, OverflowError):
                return None
    try:
        parsed = datetime.strptime(stamp, "%d/%b/%Y:%H:%M:%S %z")
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc).replace(tzinfo=None)


def _diagnose(line: str) -> str:
    """A short reason why ``line`` is not in the log format (for the rejects file)."""
    fields = line.split(" ", 3)
    if len(fields) < 4:
        return "too few fields"
    if not fields[3].startswith("["):
        return "no [timestamp] after host, identity and user"
    if not _REQUEST_RE.search(line):
        return "no quoted request after the timestamp"
    if not re.search(r'" (\d{3}|-) (\d+|-)', line):
        return "no status code and size after the request"
    return "does not match the combined log format"
