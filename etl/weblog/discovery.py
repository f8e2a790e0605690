"""Finding the access-log files to read, and setting aside the ones that cannot be read.

:func:`scan` expands the ``[weblog] paths`` glob patterns and admits each match as a
:class:`~etl.weblog.files.LogFile`, or skips it with a :class:`Skipped` reason (and what to
do) when it is:

* a symbolic link whose target resolves outside the **log folders**: the folders the
  patterns' directory parts name (``/var/log/nginx`` for ``/var/log/nginx/access.log*``; each
  folder ``/srv/*/logs`` matches for ``/srv/*/logs/access.log``; symlinked folders resolved),
  so a link in the log folder cannot make the job copy another file (say a private one)
  into staging and the rejects; a link to a file in a log folder stays allowed (a link
  whose target does not exist is skipped too);
* not a regular file (a folder, FIFO, device, socket): told by ``lstat``/``stat`` before any
  open, so a FIFO is never opened (it would block) and a device never read;
* unreadable by the job user (PermissionError, or another OSError at ``stat`` or ``open``);
* a gzip file whose first 4 KiB cannot be decompressed (truncated or corrupt). A gzip damaged
  further on is found when its window is read (``files.read_blocks`` checks the whole file
  before it yields a line) and skipped by the loader the same way.

A skipped file is never recorded as read, so it is retried on every run and, once fixed,
its lines load with the keys they would have had. A match that disappears between the glob
and its ``lstat`` (a log rotated meanwhile), an empty file and a file without a complete
first line are left out silently, as before: nothing to read yet. Cost per match: one
``lstat`` (plus ``realpath`` for a link), one ``stat``, and the 4 KiB head read the
identity needs; a plain file is never read further here.
"""

from __future__ import annotations

import glob
import os
import stat
from dataclasses import dataclass, field

from etl.weblog.files import GZIP_ERRORS, LogFile, file_kind, inode_of, is_gzip, read_head


@dataclass(frozen=True)
class Skipped:
    """A matched log path that is not read this run: ``reason`` (what is wrong) and ``advice`` (what to do)."""

    path: str
    reason: str
    advice: str

    def message(self) -> str:
        """One line for the log and the run summary: file, reason, what to do, and that it is retried."""
        return (f"log {self.path} skipped: {self.reason}; {self.advice}. Nothing of it is recorded as read: "
                "it is retried on every run")

    def as_dict(self) -> dict:
        """The marker form: ``{"path", "reason", "advice"}``."""
        return {"path": self.path, "reason": self.reason, "advice": self.advice}


@dataclass
class Discovery:
    """What :func:`scan` found: ``files`` to read (oldest first), ``skipped`` matches, ``matched`` paths in all."""

    files: list[LogFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    matched: int = 0


def corrupt_gzip(path: str, exc: BaseException) -> Skipped:
    """The skip of a gzip file that raised ``exc`` (one of ``files.GZIP_ERRORS``) while being decompressed."""
    return Skipped(path, f"a truncated or corrupt gzip file ({type(exc).__name__}: {exc})",
                   f"replace it with a complete copy (`gzip -t {path}` tests one); a file still being compressed is "
                   "read once it is complete")


def unreadable(path: str, exc: OSError) -> Skipped:
    """The skip of a file that ``stat``/``open``/``read`` refused with ``exc``."""
    if isinstance(exc, PermissionError):
        return Skipped(path, f"the job user (uid {os.getuid()}) may not read it ({exc.strerror})",
                       "give that user read permission (e.g. its group and chmod g+r) or exclude the file from "
                       "[weblog] paths")
    return Skipped(path, f"it cannot be read ({type(exc).__name__}: {exc.strerror or exc})",
                   "check the file and its disk, or exclude it from [weblog] paths")


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def log_folders(patterns: list[str]) -> set[str]:
    """The resolved (``realpath``) folders the patterns' directory parts name; the current
    directory for a pattern without one. No reads beyond listing folders a pattern globs."""
    folders = set()
    for pattern in patterns:
        folder = os.path.dirname(pattern) or os.curdir
        for match in glob.glob(folder) if _has_magic(folder) else [folder]:
            folders.add(os.path.realpath(match))
    return folders


def matching_files(patterns: list[str]) -> list[str]:
    """The regular files matching the glob ``patterns`` (links followed), sorted, each once. No reads, never raises."""
    return sorted({p for pattern in patterns for p in glob.glob(pattern) if os.path.isfile(p)})


def _admit(path: str, folders: set[str]) -> LogFile | Skipped | None:
    try:
        link = os.lstat(path)
    except FileNotFoundError:
        return None  # gone since the glob listed it (rotated away)
    except OSError as exc:
        return unreadable(path, exc)
    if stat.S_ISLNK(link.st_mode):
        target = os.path.realpath(path)
        if os.path.dirname(target) not in folders:
            return Skipped(path, f"a symbolic link to {target}, outside the log folders ({', '.join(sorted(folders))})",
                           "logs are read only from the folders of [weblog] paths: move the file there or remove "
                           "the link")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return Skipped(path, f"a symbolic link to {os.path.realpath(path)}, which does not exist",
                       "fix or remove the link")
    except OSError as exc:
        return unreadable(path, exc)
    if not stat.S_ISREG(st.st_mode):
        return Skipped(path, f"a {file_kind(st.st_mode)}, not a regular file (never opened)",
                       "remove it from the log folder or narrow [weblog] paths to the log files")
    if st.st_size == 0:
        return None
    try:
        compressed = is_gzip(path)
        head = read_head(path, compressed)
    except GZIP_ERRORS as exc:  # before OSError: BadGzipFile is one
        return corrupt_gzip(path, exc)
    except OSError as exc:
        return unreadable(path, exc)
    if not head:
        return None
    return LogFile(path, compressed, st.st_size, st.st_mtime_ns, head, inode_of(st))


def scan(patterns: list[str]) -> Discovery:
    """The log files matching the glob ``patterns``: the readable ones with a complete first
    line (oldest first, by mtime then path; one path per file when links or hard links name
    it twice, a path that is not a link preferred) and the skipped ones (see the module
    docstring), in path order. Never raises for a bad file; reads at most 4 KiB of each."""
    found = Discovery()
    folders = log_folders(patterns)
    by_inode: dict[str, LogFile] = {}
    for path in sorted({p for pattern in patterns for p in glob.glob(pattern)}):
        found.matched += 1
        admitted = _admit(path, folders)
        if isinstance(admitted, Skipped):
            found.skipped.append(admitted)
        elif admitted is not None:
            other = by_inode.get(admitted.inode)
            if other is None or (os.path.islink(other.path) and not os.path.islink(admitted.path)):
                by_inode[admitted.inode] = admitted
    found.files = sorted(by_inode.values(), key=lambda f: (f.mtime_ns, f.path))
    return found


def discover(patterns: list[str]) -> list[LogFile]:
    """The readable log files matching ``patterns``, oldest first (:func:`scan` without the skipped ones)."""
    return scan(patterns).files


def no_match_message(patterns: list[str], base: str, why: str = "") -> str:
    """The warning for ``[weblog] paths`` that match no file at all: the patterns as written, the folder
    ``base`` relative patterns resolve against (and ``why``: ``etl.config_check.base_folder``), a folder
    that is missing or cannot be listed, and what to do."""
    notes = []
    for pattern in patterns:
        folder = os.path.dirname(pattern)
        if folder and not _has_magic(folder):
            full = os.path.join(base, os.path.expanduser(folder))
            if not os.path.isdir(full):
                notes.append(f"folder {folder} does not exist")
            elif not os.access(full, os.R_OK | os.X_OK):
                notes.append(f"the job user (uid {os.getuid()}) may not list folder {folder}")
    return (f"[weblog] paths = {' '.join(patterns)} matches no file (relative patterns resolve against {base}"
            f"{', ' + why if why else ''}{'; ' + '; '.join(notes) if notes else ''}): no access logs are read. "
            "Fix the patterns, or set [weblog] paths empty to read no logs")
