"""Staging files: where each run's extracted rows wait between extract and landing load.

Layout (the same under a local folder and an S3 prefix)::

    <folder>/<source>/<table>/execution_sequence=<seq>/part-00000.csv          local
    s3://<bucket>/<prefix>/<source>/<table>/execution_sequence=<seq>/part-00000.csv.gz

S3 objects are gzip-compressed, written through boto3 (multipart above 64 MiB), with
credentials from boto3's standard chain (environment, profile, instance role) - never from
this project's files - and read back as a stream (no second local copy).

File format: RFC 4180 CSV as read by PostgreSQL ``COPY ... (FORMAT csv, HEADER true)``:
UTF-8, a header row, text values quoted with ``"`` doubled (so an empty string is ``""``),
numbers, dates and booleans as written by their producer, NULL as an unquoted empty
field. MySQL rows are formatted by the source server itself
(``etl.sqlgen.staged_line_select``), access-log rows by polars' CSV writer. No line holds a
NUL character (PostgreSQL text cannot), nor a JSON value its ``\\u0000`` escape (jsonb
cannot): :func:`write_lines` removes them from MySQL values and counts the rows it altered;
the access-log parser rejects such lines.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import tempfile
import threading
from collections import deque
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from etl.errors import ConfigError, StagingError


class PartFiles:
    """The part files of one sequence being written: ``part(i, header)`` opens part ``i`` on first use.

    ``opener(i)`` returns a new binary file; ``header`` (bytes) is written when a part is
    opened. ``count`` is the number of parts opened so far.
    """

    def __init__(self, opener):
        self._opener = opener
        self.handles: dict[int, object] = {}
        self._mirrors: dict[int, object] = {}

    def mirror(self, index: int, sink) -> None:
        """Hand every byte written to part ``index`` (header included) also to ``sink(data)``.

        Must be called before the part is first opened.
        """
        self._mirrors[index] = sink

    def part(self, index: int, header: bytes = b""):
        """The binary file of part ``index`` (opened, with ``header`` written, on first use)."""
        handle = self.handles.get(index)
        if handle is None:
            handle = self._opener(index)
            if index in self._mirrors:
                handle = _Tee(handle, self._mirrors[index])
            self.handles[index] = handle
            handle.write(header)
        return handle

    @property
    def count(self) -> int:
        """How many parts were opened."""
        return len(self.handles)

    def close(self) -> None:
        """Close every opened part."""
        for handle in self.handles.values():
            handle.close()


class _Tee:
    """A binary file whose writes also go to ``sink(data)``."""

    def __init__(self, handle, sink):
        self._handle, self._sink = handle, sink

    def write(self, data: bytes) -> int:
        self._handle.write(data)
        self._sink(data)
        return len(data)

    def close(self) -> None:
        self._handle.close()


class BytePipe:
    """Bytes handed from a writing thread to a reading one (a COPY FROM STDIN), bounded in memory.

    ``write(data)`` blocks while ``limit_bytes`` or more wait to be read; ``read(size)``
    (the file interface ``copy_expert`` uses) blocks until bytes arrive, returns ``b""``
    after ``close()``, and raises the writer's error after ``abort(error)``. When the
    reader gives up it calls ``discard()``: later writes are dropped, so the writer never
    blocks on a reader that is gone.
    """

    def __init__(self, limit_bytes: int = 8 << 20):
        self._limit = limit_bytes
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._closed = False
        self._discarding = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the reader (blocking while the pipe is full)."""
        with self._cond:
            while self._size >= self._limit and not self._discarding:
                self._cond.wait()
            if self._discarding or not data:
                return
            self._chunks.append(bytes(data))
            self._size += len(data)
            self._cond.notify_all()

    def close(self) -> None:
        """The writer is done: the reader gets ``b""`` once the queued bytes are read."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abort(self, error: BaseException) -> None:
        """The writer failed: the reader's next ``read`` raises ``error``."""
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def discard(self) -> None:
        """The reader stopped: drop what is queued and every later write."""
        with self._cond:
            self._discarding = True
            self._chunks.clear()
            self._size = 0
            self._cond.notify_all()

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all queued when negative); ``b""`` at the end."""
        with self._cond:
            while not self._chunks and not self._closed and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            taken: list[bytes] = []
            count = 0
            while self._chunks and (size < 0 or count < size):
                chunk = self._chunks.popleft()
                if 0 <= size < count + len(chunk):
                    cut = size - count
                    self._chunks.appendleft(chunk[cut:])
                    chunk = chunk[:cut]
                taken.append(chunk)
                count += len(chunk)
            self._size -= count
            self._cond.notify_all()
            return b"".join(taken)


class LocalStaging:
    """Staging files under a local folder ``root`` (created on demand)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def describe(self) -> str:
        """The staging location for messages."""
        return str(self.root)

    def check(self) -> None:
        """Nothing to check for a local folder (it is created on demand)."""

    def partition_dir(self, source: str, table: str, sequence: int) -> Path:
        """The folder holding one sequence's files of ``source``/``table``."""
        return self.root / source / table / f"execution_sequence={sequence}"

    def part_path(self, source: str, table: str, sequence: int, part: int = 0) -> Path:
        """The path of one part file (``part-NNNNN.csv``)."""
        return self.partition_dir(source, table, sequence) / f"part-{part:05d}.csv"

    @contextmanager
    def write_parts(self, source: str, table: str, sequence: int):
        """Yield a :class:`PartFiles` for the sequence's parts; publish them on success.

        Any older files of the same sequence are removed first, so a rerun of a sequence
        replaces its own files and nothing else. Parts are written under temporary names
        and renamed at the end; on error the partial files are deleted.
        """
        folder = self.partition_dir(source, table, sequence)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("part-*"):
            old.unlink()

        def temporary(index: int) -> Path:
            final = self.part_path(source, table, sequence, index)
            return final.with_name(final.name + f".tmp-{os.getpid()}")

        parts = PartFiles(lambda index: open(temporary(index), "wb"))
        try:
            yield parts
            parts.close()
            for index in sorted(parts.handles):
                os.replace(temporary(index), self.part_path(source, table, sequence, index))
        finally:
            parts.close()
            for index in parts.handles:
                temporary(index).unlink(missing_ok=True)

    def open_part(self, source: str, table: str, sequence: int, part: int = 0):
        """Open one of the sequence's part files for reading as bytes (for COPY)."""
        return open(self.part_path(source, table, sequence, part), "rb")


MULTIPART_THRESHOLD_BYTES = 64 * 1024 * 1024
CREDENTIALS_HINT = (
    "boto3 looks for credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE "
    "(~/.aws/credentials) or the instance role"
)


class S3Staging:
    """Staging objects under ``s3://bucket/prefix`` (gzip CSV), optionally on an S3-compatible endpoint."""

    def __init__(self, uri: str, endpoint_url: str = ""):
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ConfigError(f"[staging] uri = {uri!r} is not s3://bucket/prefix")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.endpoint_url = endpoint_url or None
        self._client = None

    @property
    def client(self):
        """The boto3 S3 client (created on first use, in the process that uses it)."""
        if self._client is None:
            import boto3

            self._client = boto3.client("s3", endpoint_url=self.endpoint_url)
        return self._client

    def describe(self) -> str:
        """The staging location for messages."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def partition_prefix(self, source: str, table: str, sequence: int) -> str:
        """The key prefix of one sequence's objects of ``source``/``table`` (ends with /)."""
        parts = [self.prefix] if self.prefix else []
        return "/".join(parts + [source, table, f"execution_sequence={sequence}"]) + "/"

    def part_key(self, source: str, table: str, sequence: int, part: int = 0) -> str:
        """The key of one part object (``part-NNNNN.csv.gz``)."""
        return self.partition_prefix(source, table, sequence) + f"part-{part:05d}.csv.gz"

    def part_path(self, source: str, table: str, sequence: int, part: int = 0) -> str:
        """The ``s3://`` URI of one part object (what Redshift's COPY reads)."""
        return f"s3://{self.bucket}/{self.part_key(source, table, sequence, part)}"

    def parts_uri(self, source: str, table: str, sequence: int) -> str:
        """The ``s3://`` prefix of every part of the sequence (what Redshift's COPY reads, all parts at once)."""
        return f"s3://{self.bucket}/{self.partition_prefix(source, table, sequence)}part-"

    def check(self) -> None:
        """Fail early when the bucket is missing, not ours, or unreachable (ConfigError naming it)."""
        self._call("check bucket", lambda: self.client.head_bucket(Bucket=self.bucket))

    def _call(self, action: str, fn):
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return fn()
        except NoCredentialsError:
            raise ConfigError(f"S3 staging {self.describe()}: no AWS credentials found; {CREDENTIALS_HINT}") from None
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchBucket"):
                raise ConfigError(
                    f"S3 staging {self.describe()}: bucket {self.bucket!r} does not exist; create it or fix [staging] uri"
                ) from None
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise ConfigError(
                    f"S3 staging {self.describe()}: access denied ({code}) to bucket {self.bucket!r}; {CREDENTIALS_HINT}"
                ) from None
            if code in ("NoSuchKey",):
                raise StagingError(f"S3 staging {self.describe()}: {action}: object not found") from None
            raise StagingError(f"S3 staging {self.describe()}: {action} failed: {code or exc}") from None
        except BotoCoreError as exc:
            raise StagingError(f"S3 staging {self.describe()}: {action} failed: {exc}; check [staging] s3_endpoint_url") from None

    @contextmanager
    def write_parts(self, source: str, table: str, sequence: int):
        """Yield a :class:`PartFiles`; on success gzip-upload every part as an object.

        The data goes to local temporary files first (memory stays bounded), then older
        objects of the same sequence are deleted and the parts uploaded (multipart above
        64 MiB), so a rerun of a sequence replaces its own objects and nothing else.
        """
        from boto3.s3.transfer import TransferConfig

        with tempfile.TemporaryDirectory(prefix="staging-") as folder:
            def temporary(index: int) -> str:
                return os.path.join(folder, f"part-{index:05d}.csv.gz")

            parts = PartFiles(lambda index: gzip.open(temporary(index), "wb", compresslevel=3))
            try:
                yield parts
            finally:
                parts.close()
            self._delete_prefix(self.partition_prefix(source, table, sequence))
            config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD_BYTES)
            for index in sorted(parts.handles):
                key = self.part_key(source, table, sequence, index)
                self._call(f"upload {key}", lambda: self.client.upload_file(temporary(index), self.bucket, key, Config=config))

    def _delete_prefix(self, prefix: str) -> None:
        pages = self._call(
            f"list {prefix}",
            lambda: list(self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)),
        )
        keys = [{"Key": obj["Key"]} for page in pages for obj in page.get("Contents", [])]
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            self._call(f"delete under {prefix}", lambda: self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch}))

    def open_part(self, source: str, table: str, sequence: int, part: int = 0):
        """Stream one of the sequence's parts, decompressed, as a binary file object (for COPY FROM STDIN)."""
        key = self.part_key(source, table, sequence, part)
        response = self._call(f"read {key}", lambda: self.client.get_object(Bucket=self.bucket, Key=key))
        return gzip.GzipFile(fileobj=response["Body"], mode="rb")


def open_staging(uri: str, endpoint_url: str = ""):
    """The staging area for ``[staging] uri``: S3Staging for ``s3://...``, else LocalStaging."""
    if uri.startswith("s3://"):
        return S3Staging(uri, endpoint_url)
    return LocalStaging(uri)


def csv_writer(handle):
    """A csv.writer on a text ``handle``: strings quoted, numbers not (the staging dialect for rows without NULLs)."""
    return csv.writer(handle, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n", doublequote=True)


def header_line(columns: Iterable[str]) -> bytes:
    """The staging file's header row (UTF-8 bytes, newline included)."""
    buffer = io.StringIO()
    csv_writer(buffer).writerow(list(columns))
    return buffer.getvalue().encode("utf-8")


ALTERED_KEYS_KEPT = 10  # keys of the first altered rows an extract records (marker, summary)


@dataclass
class StagedLines:
    """What :func:`write_lines` wrote.

    ``rows``: lines written. ``invalid_dates``: ``{column: zero or partial dates staged as
    NULL}``. ``altered_rows``: rows staged with a value changed so that PostgreSQL can store
    it (a NUL character removed from a text value); ``altered_values``: ``{column: rows
    whose value in it was changed}``; ``altered_keys``: the key of the first
    ``ALTERED_KEYS_KEPT`` altered rows, as ``"col=value, col=value"`` text (``NULL`` for a
    NULL key value).
    """

    rows: int = 0
    invalid_dates: dict[str, int] = field(default_factory=dict)
    altered_rows: int = 0
    altered_values: dict[str, int] = field(default_factory=dict)
    altered_keys: list[str] = field(default_factory=list)


def staged_fields(line: bytes) -> list[bytes | None]:
    """Split one staged CSV line (no newline) into its field values.

    Input: a line in the staging dialect (a quoted field may hold commas, doubled quotes and
    newlines; an unquoted empty field is NULL). Returns the values as bytes, unquoted and
    with quotes undoubled, None for NULL. Raises StagingError for a line that is not valid
    CSV (an unterminated quoted field, text after a closing quote).
    """
    values: list[bytes | None] = []
    pos, end = 0, len(line)
    while True:
        if pos < end and line[pos:pos + 1] == b'"':
            parts, start = [], pos + 1
            while True:
                close = line.find(b'"', start)
                if close < 0:
                    raise StagingError("a staged line is not valid CSV: a quoted field is not closed")
                parts.append(line[start:close])
                if line[close + 1:close + 2] == b'"':  # a doubled quote inside the value
                    parts.append(b'"')
                    start = close + 2
                    continue
                pos = close + 1
                break
            values.append(b"".join(parts))
            if pos < end and line[pos:pos + 1] != b",":
                raise StagingError("a staged line is not valid CSV: text after a closing quote")
        else:
            comma = line.find(b",", pos)
            stop = end if comma < 0 else comma
            values.append(bytes(line[pos:stop]) or None)
            pos = stop
        if pos >= end:
            return values
        pos += 1  # the comma
        if pos == end:  # a trailing comma: one more (NULL) field
            values.append(None)
            return values


# a JSON \u0000 escape (jsonb cannot hold it): the escape itself, not an escaped backslash followed by
# "u0000" (an even run of backslashes before it is kept)
_JSON_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def _quoted(value: bytes | None) -> bytes:
    """One field of the staging dialect: NULL unquoted and empty, any other value quoted."""
    return b"" if value is None else b'"' + value.replace(b'"', b'""') + b'"'


def _make_storable(rows: list[tuple], header: list[str], key_columns: list[str], json_columns: list[str],
                   result: StagedLines) -> list[bytes]:
    """The batch's lines with what PostgreSQL cannot store removed; counts the altered rows and
    columns into ``result`` and keeps the first keys (see :class:`StagedLines`).

    Removed: every NUL byte (in UTF-8 a 0 byte is only ever the NUL character, and only text
    values can hold one: numbers, dates and hex-staged binary never do, so removing the
    bytes from the line removes the character from the values that had it), and in the
    ``json_columns`` the escape ``\\u0000`` (valid JSON for MySQL; jsonb refuses it). A line
    whose JSON changed is written again field by field (every non-NULL value quoted).
    """
    columns = ["execution_sequence", *header]
    key_indexes = [columns.index(c) for c in key_columns if c in columns]
    json_indexes = [columns.index(c) for c in json_columns if c in columns]
    lines = []
    for row in rows:
        line = row[0]
        escaped = bool(json_indexes) and b"\\u0000" in line
        if b"\x00" not in line and not escaped:
            lines.append(line)
            continue
        values = staged_fields(line)
        cleaned = [None if v is None else v.replace(b"\x00", b"") for v in values]
        for i in json_indexes if escaped else ():
            if cleaned[i] is not None:
                cleaned[i] = _JSON_NUL_ESCAPE.sub(rb"\1", cleaned[i])
        changed = [name for name, before, after in zip(columns, values, cleaned) if before != after]
        if not changed:  # "\\u0000" as text, or an escaped backslash in JSON: nothing to remove
            lines.append(line)
            continue
        result.altered_rows += 1
        for name in changed:
            result.altered_values[name] = result.altered_values.get(name, 0) + 1
        if len(result.altered_keys) < ALTERED_KEYS_KEPT:
            result.altered_keys.append(", ".join(
                f"{columns[i]}=" + ("NULL" if cleaned[i] is None else cleaned[i].decode("utf-8", "replace"))
                for i in key_indexes))
        lines.append(line.replace(b"\x00", b"") if not escaped else b",".join(_quoted(v) for v in cleaned))
    return lines


def write_lines(parts: PartFiles, header: list[str], batches: Iterable[list[tuple]], date_columns: list[str] = (),
                on_batch=None, split_after_rows: int = 0, part_count: int = 1,
                key_columns: list[str] = (), json_columns: list[str] = ()) -> StagedLines:
    """Write the lines MySQL formatted (see ``etl.sqlgen.staged_line_select``) into staging parts.

    ``parts``: the :class:`PartFiles` of the sequence; every part starts with the header.
    ``header``: the staged columns after ``execution_sequence``; ``key_columns``: those
    naming a row (the business key) in :attr:`StagedLines.altered_keys`; ``json_columns``:
    those loaded as jsonb.
    ``batches``: lists of raw rows ``(line,)`` or, when the table has ``date_columns``,
    ``(line, invalid)`` where ``invalid`` lists the indexes into ``date_columns`` of the
    row's zero or partial dates (None when none). The first ``split_after_rows`` rows go
    to part 0; after that, with ``part_count`` > 1, batches alternate between the parts
    so that a large extract can be loaded by parallel COPYs. ``on_batch(rows_so_far)`` is
    called after each batch. A NUL character, which PostgreSQL text cannot hold, and a
    ``\\u0000`` escape in a JSON column, which jsonb cannot hold, are removed from the value
    that has them and the row counted (one ``in`` test per batch: a batch without one costs
    nothing more). Returns a :class:`StagedLines`;
    ``parts.count`` tells how many parts were written. Raises OSError / StagingError from
    the part files.
    """
    head = header_line(["execution_sequence", *header])
    parts.part(0, head)
    result = StagedLines()
    invalid = [0] * len(date_columns)
    for number, rows in enumerate(batches):
        handle = parts.part(number % part_count if part_count > 1 and result.rows >= split_after_rows else 0, head)
        data = b"\n".join([row[0] for row in rows])
        if b"\x00" in data or (json_columns and b"\\u0000" in data):
            data = b"\n".join(_make_storable(rows, header, list(key_columns), list(json_columns), result))
        handle.write(data)
        handle.write(b"\n")
        # freed before the next batch is joined: the allocator then reuses the same warm pages (with
        # two batch buffers alive the join wrote to fresh memory, which cost more than the NUL test)
        del data
        if date_columns:
            for flags in [row[1] for row in rows if row[1] is not None]:
                for index in flags.split(b","):
                    invalid[int(index)] += 1
        result.rows += len(rows)
        if on_batch is not None:
            on_batch(result.rows)
    result.invalid_dates = {name: n for name, n in zip(date_columns, invalid) if n}
    return result


def altered_message(table: str, rows: int, values: dict[str, int], keys: list[str]) -> str:
    """The warning naming a table's altered values: ``rows`` altered rows, ``values``
    ``{column: rows}``, ``keys`` the first rows' keys (see :class:`StagedLines`). Returns one line."""
    columns = ", ".join(f"{name} {n}" for name, n in values.items())
    more = "; ..." if rows > len(keys) else ""
    return (f"table {table}: {rows} row{'s' if rows != 1 else ''} stored without the NUL characters PostgreSQL "
            f"cannot hold (rows per column: {columns}); keys: {'; '.join(keys)}{more}")
