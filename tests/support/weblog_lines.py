"""Access-log lines and files for the weblog unit tests (etl.weblog.files, etl.weblog.generations)."""

from __future__ import annotations

from etl.weblog import files

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def line(tag: str, i: int) -> bytes:
    """One combined-format request line, ``/<tag>/<i>``, unique per (tag, i), newline-terminated."""
    return f'8.8.8.8 - - [10/Oct/2025:13:{i // 60 % 60:02d}:{i % 60:02d} +0000] "GET /{tag}/{i} HTTP/1.1" 200 {i} "-" "{UA}"\n'.encode()


def one(path) -> files.LogFile:
    """The one LogFile ``files.discover`` finds at ``path``."""
    (lf,) = files.discover([str(path)])
    return lf
