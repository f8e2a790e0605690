"""Reading access-log files incrementally and exactly once, across reruns and rotation.

A file's **identity** is a fingerprint of its first line (SHA-256 of the bytes up to and
including the first newline, 16 hex digits): it survives renaming (``access.log`` ->
``access.log.1``) and compression (``access.log.1.gz``, fingerprinted on its decompressed
bytes), so a rotated file is recognised and not read twice. The read position of each
identity is a byte offset into the (decompressed) content plus the number of lines before
it; a line's stable key is ``<identity>:<line number>``, so two identical requests are two
rows. A plain file shorter than its recorded offset was truncated and is read from the
start again. Only complete lines (ending in a newline) are read; a partial last line waits
for the next run.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass

FINGERPRINT_MAX_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
READ_BUFFER_BYTES = 1 << 20


@dataclass(frozen=True)
class LogFile:
    """A discovered log file: path, identity, whether gzip-compressed, size and mtime (ns)."""

    path: str
    file_id: str
    compressed: bool
    size: int
    mtime_ns: int


def is_gzip(path: str) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def open_binary(path: str, compressed: bool):
    """Open a log for reading bytes (transparently decompressing gzip)."""
    if compressed:
        return gzip.open(path, "rb")
    return open(path, "rb", buffering=READ_BUFFER_BYTES)


def fingerprint(path: str, compressed: bool) -> str | None:
    """The identity of a log: hash of its first line; None while it has no complete first line."""
    with open_binary(path, compressed) as handle:
        first = handle.readline(FINGERPRINT_MAX_BYTES)
    if not first.endswith(b"\n") and len(first) < FINGERPRINT_MAX_BYTES:
        return None
    return hashlib.sha256(first).hexdigest()[:16]


def discover(patterns: list[str]) -> list[LogFile]:
    """Every regular, non-empty file matching the glob ``patterns``, oldest first.

    Files without a complete first line are skipped (they are read once they have one).
    Two paths with the same identity (a rotated copy next to its original) appear once:
    the plain (uncompressed) one wins, then the newest.
    """
    paths = sorted({p for pattern in patterns for p in glob.glob(pattern) if os.path.isfile(p)})
    found: dict[str, LogFile] = {}
    for path in paths:
        stat = os.stat(path)
        if stat.st_size == 0:
            continue
        compressed = is_gzip(path)
        file_id = fingerprint(path, compressed)
        if file_id is None:
            continue
        candidate = LogFile(path, file_id, compressed, stat.st_size, stat.st_mtime_ns)
        other = found.get(file_id)
        if other is None or (other.compressed, -other.mtime_ns) > (candidate.compressed, -candidate.mtime_ns):
            found[file_id] = candidate
    return sorted(found.values(), key=lambda f: (f.mtime_ns, f.path))


def read_lines(log: LogFile, start_offset: int, end_offset: int | None) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset after the line, line bytes without newline)`` for complete lines.

    Reads from ``start_offset`` (bytes into the decompressed content) up to ``end_offset``
    (None: to the end of the file); a line that would end after ``end_offset`` or has no
    newline yet is not yielded.
    """
    with open_binary(log.path, log.compressed) as handle:
        if log.compressed:
            _skip(handle, start_offset)
        else:
            handle.seek(start_offset)
        offset = start_offset
        for line in handle:
            if not line.endswith(b"\n"):
                return
            offset += len(line)
            if end_offset is not None and offset > end_offset:
                return
            yield offset, line[:-1]


def _skip(handle: io.BufferedIOBase, count: int) -> None:
    while count > 0:
        chunk = handle.read(min(count, READ_BUFFER_BYTES))
        if not chunk:
            return
        count -= len(chunk)
