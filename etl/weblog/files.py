"""Reading access-log files incrementally and exactly once, across reruns and rotation.

A file's **identity** is a fingerprint of its beginning: SHA-256 (16 hex digits) of its
first ``n`` bytes, where ``n`` is the length of the complete lines within the first 4 KiB
when the file was first seen; ``n`` is recorded with the identity. Later the same file
(grown, renamed ``access.log`` -> ``access.log.1``, or compressed ``access.log.1.gz``,
fingerprinted on its decompressed bytes) still hashes to the identity over its first ``n``
bytes, while a new file that merely starts with the same line differs within those bytes.
(A file first seen with a single short line, and a later file starting with that very
line, cannot be told apart: a known limit.) The read position of each identity is a byte
offset into the (decompressed) content plus the number of lines before it, and the
**tail digest**: SHA-256 (16 hex digits) of the up to 4 KiB just before that offset
(:func:`tail_digest`, :class:`TailHash`). Only complete lines (ending in a newline) are
read; a partial last line waits for the next run.

**Generations.** A plain file shorter than its recorded offset was truncated in place; one
whose bytes before the offset no longer hash to the tail digest was rewritten in place
(:func:`resume_check`; one seek and a 4 KiB read per file and run, so a growing or
renamed file costs no re-read; a compressed file, a rotated copy, is not checked). Either
starts a new **generation** of the identity: its lines that still equal the stored ones
stay (``etl.weblog.generations``), the lines after them get keys of the new generation,
so a stored line is never overwritten. A line's stable key is
``<identity>:<line number>`` in generation 0 (every key stored before generations
existed) and ``<identity>.g<N>:<line number>`` in generation N (:func:`key_prefix`); the
line number is the line's number in the file. Two identical requests are two rows.

**Inode and alias.** A file truncated or rewritten in place within its first ``n`` bytes
no longer hashes to its identity. Its inode (``"<st_dev>:<st_ino>"``, recorded with the
position of a plain file) still names it: :func:`identify` gives a plain file that matches
no identity the one identity no other file matches whose recorded inode is its own, and
the generations above take it from there (a new file that reuses a deleted log's inode is
compared the same way: its lines differ, so its generation starts at line 1). The loader
then records the file's current head as the identity's **alias** fingerprint, matched like
the identity's own, so the file renamed and compressed (a new inode) is still recognised.
Known limit: a log changed in place within its first ``n`` bytes and then rotated (renamed
and compressed, or copied) before any run saw it is taken for a new file, so its unchanged
first lines are loaded again under a new identity.

**Damaged files.** Every read opens through :func:`open_regular` (``O_NONBLOCK`` and an
``fstat`` of the descriptor: a FIFO never blocks, a device is never read). A compressed file
is read all or nothing (:func:`read_blocks`): a truncated or corrupt gzip raises one of
:data:`GZIP_ERRORS` before any of its lines is yielded. Which matched paths are read at all
(links outside the log folders, unreadable files, ...) is ``etl.weblog.discovery``'s part.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import zlib
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

FINGERPRINT_MAX_BYTES = 4096
TAIL_BYTES = 4096  # the bytes before a read offset that its tail digest covers
GZIP_MAGIC = b"\x1f\x8b"
READ_BUFFER_BYTES = 1 << 20
GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)
"""What reading a truncated or corrupt gzip raises (BadGzipFile is an OSError)."""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def key_prefix(file_id: str, generation: int | None) -> str:
    """The part of a line's key before ``:<line number>``: ``file_id`` in generation 0 (or
    None, positions recorded before generations existed), ``<file_id>.g<N>`` in generation N."""
    return f"{file_id}.g{generation}" if generation else file_id


class TailHash:
    """The last :data:`TAIL_BYTES` bytes fed to it (in file order) and their :meth:`digest`."""

    def __init__(self) -> None:
        self.data = b""

    def feed(self, chunk: bytes) -> None:
        """Append ``chunk`` (bytes that follow the ones fed before), keeping the last TAIL_BYTES."""
        self.data = (self.data + chunk[-TAIL_BYTES:])[-TAIL_BYTES:]

    def digest(self) -> str:
        """SHA-256 (16 hex digits) of the kept bytes: what :func:`tail_digest` gives at the offset reached."""
        return _digest(self.data)


@dataclass(frozen=True)
class LogFile:
    """A discovered log file: path, whether gzip-compressed, size, mtime (ns), its first complete
    lines and its inode (``"<st_dev>:<st_ino>"``, the same for the same file under any name)."""

    path: str
    compressed: bool
    size: int
    mtime_ns: int
    head: bytes = field(repr=False, compare=False)
    inode: str | None = field(default=None, compare=False)  # f"{st_dev}:{st_ino}", filled by discover

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


def tail_digest(log: LogFile, offset: int) -> str | None:
    """The tail digest at byte ``offset`` of ``log``'s (decompressed) content: SHA-256 (16 hex
    digits) of the up to TAIL_BYTES bytes before it, or None when the content is shorter than
    ``offset``. A plain file costs one seek and read; a compressed one is decompressed up to
    ``offset`` (the loader never asks for that)."""
    start = max(0, offset - TAIL_BYTES)
    with open_binary(log.path, log.compressed) as handle:
        if log.compressed:
            _skip(handle, start)
        else:
            handle.seek(start)
        data = handle.read(offset - start)
    return _digest(data) if len(data) == offset - start else None


def resume_check(log: LogFile, offset: int, recorded_tail: str | None) -> str | None:
    """Why ``log`` cannot be read on from its recorded position, or None when it can.

    ``offset`` is the identity's recorded read offset (bytes), ``recorded_tail`` its tail
    digest (None: recorded before tail digests existed, not checked). Returns
    ``"truncated"`` (a plain file shorter than ``offset``), ``"rewritten"`` (the bytes
    before ``offset`` differ from the recorded tail) or None. Compressed files (rotated
    copies, never written in place) are not checked: None without a read.
    """
    if log.compressed:
        return None
    if log.size < offset:
        return "truncated"
    if recorded_tail is not None and tail_digest(log, offset) != recorded_tail:
        return "rewritten"
    return None


class NotRegularFile(OSError):
    """A log path that is not (or no longer) a regular file; ``kind`` says what it is."""

    def __init__(self, path: str, kind: str):
        super().__init__(f"{path} is a {kind}, not a regular file")
        self.path, self.kind = path, kind


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, in words: ``regular file``, ``directory``, ``FIFO (named pipe)``, ..."""
    for test, kind in ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO (named pipe)"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISLNK, "symbolic link")):
        if test(mode):
            return kind
    return "special file"


def open_regular(path: str, buffering: int = READ_BUFFER_BYTES):
    """Open ``path`` for reading bytes only if it is a regular file; raises NotRegularFile otherwise.

    Opened with ``O_NONBLOCK`` and checked with ``fstat`` on the open descriptor, so a path
    replaced by a FIFO after it was examined never blocks the job (``O_NONBLOCK`` changes
    nothing for a regular file), and a device or folder is never read. OSError
    (PermissionError, FileNotFoundError) as ``open``.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, file_kind(mode))
        return os.fdopen(fd, "rb", buffering=buffering)
    except BaseException:
        os.close(fd)
        raise


def is_gzip(path: str) -> bool:
    """True when the (regular) file starts with the gzip magic bytes."""
    with open_regular(path, buffering=0) as handle:
        return handle.read(2) == GZIP_MAGIC


@contextmanager
def open_binary(path: str, compressed: bool) -> Iterator[io.BufferedIOBase]:
    """Open a regular log file for reading bytes (transparently decompressing gzip), see :func:`open_regular`.

    Reading a damaged gzip raises EOFError (truncated), ``gzip.BadGzipFile`` (an OSError: bad
    header, CRC or length) or ``zlib.error`` (corrupt deflate data): :data:`GZIP_ERRORS`.
    """
    with open_regular(path) as raw:
        if compressed:
            with gzip.GzipFile(fileobj=raw, mode="rb") as handle:
                yield handle
        else:
            yield raw


def read_head(path: str, compressed: bool) -> bytes:
    """The complete lines within the first 4 KiB of the (decompressed) file; b"" when none."""
    with open_binary(path, compressed) as handle:
        data = handle.read(FINGERPRINT_MAX_BYTES)
    end = data.rfind(b"\n")
    if end < 0:
        # a first line longer than 4 KiB: its first 4 KiB are stable, use them
        return data if len(data) == FINGERPRINT_MAX_BYTES else b""
    return data[: end + 1]


def inode_of(st: os.stat_result) -> str:
    """A file's inode as recorded with its identity: ``"<st_dev>:<st_ino>"``."""
    return f"{st.st_dev}:{st.st_ino}"


def identify(files: list[LogFile], known: dict[str, int | None], inodes: dict[str, str] | None = None,
             aliases: dict[str, tuple[str, int]] | None = None) -> dict[str, tuple[LogFile, int]]:
    """Map identities to current files: ``{file_id: (LogFile, fingerprint_bytes)}``.

    ``known`` maps recorded identities to their fingerprint byte counts, ``aliases`` some of
    them to a second fingerprint ``(digest, bytes)`` (taken when the identity was found by
    inode), ``inodes`` some of them to the inode of the plain file last read for them. A
    file takes the known identity whose fingerprint or alias it matches over the most bytes.
    A plain file that matches none then takes the identity no other file matched whose
    recorded inode is its own, when exactly one has it (a file truncated or rewritten in
    place below its fingerprint bytes: ``resume_check`` and the generations take it from
    there); else it gets a new identity. When two files have one identity (a rotated copy
    beside its original), the plain file wins, then the newest.
    """
    aliases = aliases or {}
    result: dict[str, tuple[LogFile, int]] = {}
    unmatched = []

    def take(file_id: str, lf: LogFile, nbytes: int) -> None:
        other = result.get(file_id)
        if other is None or (other[0].compressed, -other[0].mtime_ns) > (lf.compressed, -lf.mtime_ns):
            result[file_id] = (lf, nbytes)

    def recorded_bytes(file_id: str, lf: LogFile) -> int:
        nbytes = known[file_id]
        return nbytes if nbytes is not None else lf.head.index(b"\n") + 1

    for lf in files:
        matches = [(n or 0, fid) for fid, n in known.items() if lf.matches(fid, n)]
        matches += [(alias[1], fid) for fid, alias in aliases.items() if fid in known and lf.matches(*alias)]
        if matches:
            file_id = max(matches)[1]
            take(file_id, lf, recorded_bytes(file_id, lf))
        else:
            unmatched.append(lf)
    claimed = set(result)  # by fingerprint: an identity another file matches is never taken by inode
    by_inode: dict[str, list[str]] = {}
    for fid, inode in (inodes or {}).items():
        if fid in known and inode:
            by_inode.setdefault(inode, []).append(fid)
    for lf in unmatched:
        candidates = by_inode.get(lf.inode, []) if not lf.compressed and lf.inode else []
        if len(candidates) == 1 and candidates[0] not in claimed:
            take(candidates[0], lf, recorded_bytes(candidates[0], lf))
            continue
        file_id, nbytes = lf.new_identity
        take(file_id, lf, nbytes)
    return result


def matched_by_fingerprint(lf: LogFile, nbytes: int | None, file_id: str, alias: tuple[str, int] | None) -> bool:
    """True when ``lf`` matches identity ``file_id`` (fingerprint ``nbytes``) by its fingerprint or its
    ``alias`` ``(digest, bytes)``; False when :func:`identify` gave it the identity by inode."""
    return lf.matches(file_id, nbytes) or (alias is not None and lf.matches(*alias))


BLOCK_BYTES = 2 << 20  # bounds the polars working set: about 200 MB peak RSS for the weblog extract
GZIP_HOLD_BYTES = 16 << 20  # the new lines of a compressed file held in memory while the rest of it is checked


def read_blocks(log: LogFile, start_offset: int, end_offset: int | None,
                block_bytes: int = BLOCK_BYTES, tail: TailHash | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset after the block, block)``: blocks of complete lines, each ending in a newline.

    Reads from ``start_offset`` (bytes into the decompressed content) up to ``end_offset``
    (None: to the end of the file), about ``block_bytes`` at a time (a longer line makes a
    longer block); a last line that would end after ``end_offset`` or has no newline yet
    is not yielded. Memory: one block plus one read. ``tail``, when given, is fed the bytes
    before ``start_offset`` (the skipped ones of a compressed file, one 4 KiB read of a
    plain one) and every yielded block: at any point its digest is the tail digest at the
    offset yielded last (or at ``start_offset``).

    A compressed file is all or nothing: nothing is yielded before the whole file has been
    decompressed and every gzip member's CRC and length checked, so a truncated or corrupt
    gzip raises (:data:`GZIP_ERRORS`) before its first block, never after some of its lines
    were used (deflate data damaged before the point where the damage is detected can
    decompress to wrong bytes that only the CRC at the member's end reveals). Up to
    :data:`GZIP_HOLD_BYTES` of new lines are held in memory meanwhile (one decompression);
    a longer rest is decompressed twice, once to check it and once to yield it (memory
    stays bounded). Errors: OSError (NotRegularFile, PermissionError) from opening.
    """
    if log.compressed:
        yield from _read_compressed(log, start_offset, end_offset, block_bytes, tail)
        return
    with open_binary(log.path, False) as handle:
        if tail is not None:
            before = max(0, start_offset - TAIL_BYTES)
            handle.seek(before)
            tail.feed(handle.read(start_offset - before))
        handle.seek(start_offset)
        yield from _complete_blocks(handle, start_offset, end_offset, block_bytes, tail)


def _read_compressed(log: LogFile, start_offset: int, end_offset: int | None, block_bytes: int,
                     tail: TailHash | None) -> Iterator[tuple[int, bytes]]:
    skipped = TailHash()
    held: deque[tuple[int, bytes]] | None = deque()
    with open_binary(log.path, True) as handle:
        _skip(handle, start_offset, skipped)
        size = 0
        for item in _complete_blocks(handle, start_offset, end_offset, block_bytes, None):
            held.append(item)
            size += len(item[1])
            if size > GZIP_HOLD_BYTES:
                held = None  # too much to hold: check the rest, then read it again
                break
        while handle.read(READ_BUFFER_BYTES):  # to the end: gzip checks each member's CRC and length
            pass
    if held is None:
        with open_binary(log.path, True) as handle:
            _skip(handle, start_offset, tail)
            yield from _complete_blocks(handle, start_offset, end_offset, block_bytes, tail)
        return
    if tail is not None:
        tail.feed(skipped.data)
    while held:
        offset, block = held.popleft()  # not kept once yielded
        if tail is not None:
            tail.feed(block)
        yield offset, block


def _complete_blocks(handle, offset: int, end_offset: int | None, block_bytes: int,
                     tail: TailHash | None) -> Iterator[tuple[int, bytes]]:
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
        if tail is not None:
            tail.feed(data[:cut])
        yield offset, data[:cut]


def _skip(handle: io.BufferedIOBase, count: int, tail: TailHash | None = None) -> None:
    while count > 0:
        chunk = handle.read(min(count, READ_BUFFER_BYTES))
        if not chunk:
            return
        if tail is not None:
            tail.feed(chunk)
        count -= len(chunk)
