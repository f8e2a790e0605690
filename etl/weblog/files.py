"""Reading access-log files incrementally and exactly once, across reruns and rotation.

A file's **identity** is a fingerprint of its beginning: SHA-256 (16 hex digits) of its
first ``n`` bytes, where ``n`` is the length of the complete lines within the first 4 KiB
when the file was first seen; ``n`` is recorded with the identity. Later the same file
(grown, renamed ``access.log`` -> ``access.log.1``, or compressed ``access.log.1.gz``,
fingerprinted on its decompressed bytes) still hashes to the identity over its first ``n``
bytes, while a new file that merely starts with the same line differs within those bytes.
(A file first seen with a single short line, and a later file starting with that very
line, cannot be told apart: a known limit.) The read position of each identity is a byte
offset into the (decompressed) content plus the number of lines before it; a line's stable
key is ``<identity>:<line number>``, so two identical requests are two rows. A plain file
shorter than its recorded offset was truncated and is read from the start again. Only
complete lines (ending in a newline) are read; a partial last line waits for the next run.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

FINGERPRINT_MAX_BYTES = 4096
GZIP_MAGIC = b"\x1f\x8b"
READ_BUFFER_BYTES = 1 << 20


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass(frozen=True)
class LogFile:
    """A discovered log file: path, whether gzip-compressed, size, mtime (ns) and its first complete lines."""

    path: str
    compressed: bool
    size: int
    mtime_ns: int
    head: bytes = field(repr=False, compare=False)

    def matches(self, file_id: str, fingerprint_bytes: int | None) -> bool:
        """True when this file's first ``fingerprint_bytes`` bytes hash to ``file_id``.

        ``None`` (identities recorded before the byte count was kept) compares the first line.
        """
        if fingerprint_bytes is None:
            fingerprint_bytes = self.head.index(b"\n") + 1
        return len(self.head) >= fingerprint_bytes and _digest(self.head[:fingerprint_bytes]) == file_id

    @property
    def new_identity(self) -> tuple[str, int]:
        """``(file_id, fingerprint_bytes)`` for a file seen for the first time."""
        return _digest(self.head), len(self.head)


def is_gzip(path: str) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def open_binary(path: str, compressed: bool):
    """Open a log for reading bytes (transparently decompressing gzip)."""
    if compressed:
        return gzip.open(path, "rb")
    return open(path, "rb", buffering=READ_BUFFER_BYTES)


def read_head(path: str, compressed: bool) -> bytes:
    """The complete lines within the first 4 KiB of the (decompressed) file; b"" when none."""
    with open_binary(path, compressed) as handle:
        data = handle.read(FINGERPRINT_MAX_BYTES)
    end = data.rfind(b"\n")
    if end < 0:
        # a first line longer than 4 KiB: its first 4 KiB are stable, use them
        return data if len(data) == FINGERPRINT_MAX_BYTES else b""
    return data[: end + 1]


def matching_files(patterns: list[str]) -> list[str]:
    """The regular files matching the glob ``patterns``, sorted, each once. No reads."""
    return sorted({p for pattern in patterns for p in glob.glob(pattern) if os.path.isfile(p)})


def discover(patterns: list[str]) -> list[LogFile]:
    """Every regular, non-empty file matching the glob ``patterns`` that has a complete first line, oldest first."""
    paths = matching_files(patterns)
    found = []
    for path in paths:
        stat = os.stat(path)
        if stat.st_size == 0:
            continue
        compressed = is_gzip(path)
        head = read_head(path, compressed)
        if head:
            found.append(LogFile(path, compressed, stat.st_size, stat.st_mtime_ns, head))
    return sorted(found, key=lambda f: (f.mtime_ns, f.path))


def identify(files: list[LogFile], known: dict[str, int | None]) -> dict[str, tuple[LogFile, int]]:
    """Map identities to current files: ``{file_id: (LogFile, fingerprint_bytes)}``.

    ``known`` maps recorded identities to their fingerprint byte counts. A file takes the
    known identity it matches over the most bytes, else a new one. When two files have one
    identity (a rotated copy beside its original), the plain file wins, then the newest.
    """
    result: dict[str, tuple[LogFile, int]] = {}
    for lf in files:
        matches = [(n or 0, fid, n) for fid, n in known.items() if lf.matches(fid, n)]
        if matches:
            _, file_id, nbytes = max(matches)
            nbytes = nbytes if nbytes is not None else lf.head.index(b"\n") + 1
        else:
            file_id, nbytes = lf.new_identity
        other = result.get(file_id)
        if other is None or (other[0].compressed, -other[0].mtime_ns) > (lf.compressed, -lf.mtime_ns):
            result[file_id] = (lf, nbytes)
    return result


BLOCK_BYTES = 2 << 20  # bounds the polars working set: about 200 MB peak RSS for the weblog extract


def read_blocks(log: LogFile, start_offset: int, end_offset: int | None,
                block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset after the block, block)``: blocks of complete lines, each ending in a newline.

    Reads from ``start_offset`` (bytes into the decompressed content) up to ``end_offset``
    (None: to the end of the file), about ``block_bytes`` at a time (a longer line makes a
    longer block); a last line that would end after ``end_offset`` or has no newline yet
    is not yielded. Memory: one block plus one read.
    """
    with open_binary(log.path, log.compressed) as handle:
        if log.compressed:
            _skip(handle, start_offset)
        else:
            handle.seek(start_offset)
        offset = start_offset
        pending = b""
        while True:
            want = block_bytes if end_offset is None else min(block_bytes, end_offset - offset - len(pending))
            chunk = handle.read(want) if want > 0 else b""
            if not chunk:
                return
            data = pending + chunk if pending else chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                pending = data
                continue
            pending = data[cut:]
            offset += cut
            yield offset, data[:cut]


def _skip(handle: io.BufferedIOBase, count: int) -> None:
    while count > 0:
        chunk = handle.read(min(count, READ_BUFFER_BYTES))
        if not chunk:
            return
        count -= len(chunk)
