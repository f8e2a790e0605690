"""Access-log lines and files for the weblog tests (etl.weblog.files, etl.weblog.generations, damaged files)."""

from __future__ import annotations

import gzip

from etl.weblog import discovery, files

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def line(tag: str, i: int) -> bytes:
    """One combined-format request line, ``/<tag>/<i>``, unique per (tag, i), newline-terminated."""
    return f'8.8.8.8 - - [10/Oct/2025:13:{i // 60 % 60:02d}:{i % 60:02d} +0000] "GET /{tag}/{i} HTTP/1.1" 200 {i} "-" "{UA}"\n'.encode()


def one(path) -> files.LogFile:
    """The one LogFile ``discovery.discover`` finds at ``path``."""
    (lf,) = discovery.discover([str(path)])
    return lf


def truncated_gzip(data: bytes) -> bytes:
    """``data`` gzip-compressed and cut at half its compressed length: a half-written ``.gz`` whose
    first 4 KiB still decompress when ``data`` is long enough (thousands of lines)."""
    packed = gzip.compress(data)
    return packed[: len(packed) // 2]


def corrupt_gzip(data: bytes) -> bytes:
    """``data`` gzip-compressed with 64 bytes in the middle of its deflate stream inverted: a complete
    file whose damage shows only past its start (zlib.error or a CRC mismatch when read through)."""
    packed = bytearray(gzip.compress(data))
    middle = len(packed) // 2
    packed[middle:middle + 64] = bytes(b ^ 0xFF for b in packed[middle:middle + 64])
    return bytes(packed)
