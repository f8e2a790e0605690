"""Staging files: where each run's extracted rows wait between extract and landing load.

Layout (the same under a local folder and an S3 prefix)::

    <folder>/<source>/<table>/execution_sequence=<seq>/part-00000.csv          local
    s3://<bucket>/<prefix>/<source>/<table>/execution_sequence=<seq>/part-00000.csv.gz

S3 objects are gzip-compressed, written through boto3 (multipart above 64 MiB), with
credentials from boto3's standard chain (environment, profile, instance role) - never from
this project's files - and read back as a stream (no second local copy).

The files' format and how lines are written into them: ``etl.staging_format``. Here: the
staging area (local folder or S3 prefix), its parts, and :class:`BytePipe`, which mirrors
the staged bytes into a streamed landing COPY.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from etl import folders, private
from etl.errors import ConfigError, EltError, StagingError

STAGED_SOURCES = ("mysql", "weblog")  # the folders (prefixes) under the staging root the extracts write


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


_PARTITION = re.compile(r"execution_sequence=([0-9]+)")


def partition_sequence(name: str) -> int | None:
    """The sequence of a partition folder or prefix component ``execution_sequence=<n>``; None for any other name."""
    match = _PARTITION.fullmatch(name)
    return int(match.group(1)) if match else None


class LocalStaging:
    """Staging files under a local folder ``root`` (created on demand)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def describe(self) -> str:
        """The staging location for messages."""
        return str(self.root)

    def write_problems(self) -> list[str]:
        """What keeps the job user from creating and writing files in the staging folders: [] when nothing,
        else one line per folder naming ``[staging] uri``, the folder, the OS error and what to do. The root
        is probed first (created when missing, a file created and deleted), then the folders the extracts
        write (``mysql/``, ``weblog/``)."""
        root = folders.writable_problem("[staging] uri", str(self.root))
        if root:
            return [root]
        return [p for p in (folders.writable_problem("[staging] uri", str(self.root), source)
                            for source in STAGED_SOURCES) if p]

    def check(self) -> None:
        """Fail early, StagingError listing :meth:`write_problems`, when the staging folders cannot be written."""
        problems = self.write_problems()
        if problems:
            raise StagingError("staging folder not writable: " + "; ".join(problems))

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
        and renamed at the end; on error the partial files are deleted. Folders and files are
        created private (``etl.private``: 0700/0600, or 0750/0640 with group_readable).
        """
        folder = self.partition_dir(source, table, sequence)
        private.make_dirs(folder)
        for old in folder.glob("part-*"):
            old.unlink()

        def temporary(index: int) -> Path:
            final = self.part_path(source, table, sequence, index)
            return final.with_name(final.name + f".tmp-{os.getpid()}")

        parts = PartFiles(lambda index: private.open_private(temporary(index), "wb"))
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

    def partitions(self) -> dict[tuple[str, str, int], tuple[int, int]]:
        """Every staged partition: ``{(source, table, sequence): (files, bytes)}``.

        Only folders of the layout ``<root>/<source>/<table>/execution_sequence=<n>`` count
        (not symbolic links); nothing else under the root is listed. Raises OSError when the
        root cannot be read.
        """
        found: dict[tuple[str, str, int], tuple[int, int]] = {}
        if not self.root.is_dir():
            return found
        for folder in self.root.glob("*/*/execution_sequence=*"):
            sequence = partition_sequence(folder.name)
            if sequence is None or folder.is_symlink() or not folder.is_dir():
                continue
            sizes = [p.lstat().st_size for p in folder.rglob("*") if not p.is_dir() or p.is_symlink()]
            found[(folder.parent.parent.name, folder.parent.name, sequence)] = (len(sizes), sum(sizes))
        return found

    def delete_partition(self, source: str, table: str, sequence: int) -> None:
        """Remove one sequence's folder of ``source``/``table`` and its files. Raises OSError naming the path."""
        shutil.rmtree(self.partition_dir(source, table, sequence))


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
        """Fail early when the bucket is missing, not ours, unreachable or refuses writes under the prefix.

        Heads the bucket, then puts and deletes a small probe object under the prefix (a role that may
        read the bucket but not write it passes ``head_bucket``). Raises ConfigError naming the bucket
        (missing, no credentials, access denied: what to do) or StagingError (anything else).
        """
        self._call("check bucket", lambda: self.client.head_bucket(Bucket=self.bucket))
        key = "/".join([self.prefix] if self.prefix else []) + ("/" if self.prefix else "")
        key += f"{folders.PROBE_PREFIX}{uuid.uuid4().hex}"
        needs = (f"the job writes and deletes objects under {self.describe()}/: allow s3:PutObject and s3:DeleteObject "
                 f"on arn:aws:s3:::{self.bucket}/{self.prefix + '/' if self.prefix else ''}* to these credentials, "
                 "or fix [staging] uri")
        self._call(f"writing the probe object {key}", denied=needs,
                   fn=lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=b"probe\n"))
        self._call(f"deleting the probe object {key}", denied=needs,
                   fn=lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    def write_problems(self) -> list[str]:
        """[] when :meth:`check` passes, else its error's message (as LocalStaging's)."""
        try:
            self.check()
        except EltError as exc:
            return [str(exc)]
        return []

    def _call(self, action: str, fn, denied: str = ""):
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
            if denied and code in ("403", "AccessDenied"):
                raise ConfigError(f"S3 staging {self.describe()}: {action} was denied ({code}); {denied}") from None
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

    def partitions(self) -> dict[tuple[str, str, int], tuple[int, int]]:
        """Every staged partition: ``{(source, table, sequence): (objects, bytes)}``, from one listing.

        Only keys of the layout ``<prefix>/<source>/<table>/execution_sequence=<n>/<name>``
        count; other keys under the prefix are left out. Raises ConfigError or StagingError
        (see :meth:`check`) when the bucket cannot be listed.
        """
        base = self.prefix + "/" if self.prefix else ""
        pages = self._call(
            f"list {self.describe()}",
            lambda: list(self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base)),
        )
        found: dict[tuple[str, str, int], tuple[int, int]] = {}
        for obj in (obj for page in pages for obj in page.get("Contents", [])):
            names = obj["Key"][len(base):].split("/")
            sequence = partition_sequence(names[2]) if len(names) >= 4 and all(names[:3]) else None
            if sequence is not None:
                count, size = found.get((names[0], names[1], sequence), (0, 0))
                found[(names[0], names[1], sequence)] = (count + 1, size + int(obj.get("Size", 0)))
        return found

    def delete_partition(self, source: str, table: str, sequence: int) -> None:
        """Delete every object under one sequence's prefix of ``source``/``table``. Raises StagingError naming it."""
        self._delete_prefix(self.partition_prefix(source, table, sequence))

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
