"""Private files: everything the job writes is owner-only (or owner+group) whatever the umask.

Staging files, rejects, reports and markers hold customer data or decide what the next run
does, so nobody else may read or replace them. Two mechanisms, each covering what the other
cannot:

* **explicit modes at creation** (:func:`make_dirs`, :func:`open_private`, :func:`chmod_private`):
  the job's own files and folders are created 0600/0700 (0640/0750 with
  ``[dw_etl] group_readable = true``) even when the process umask is 000 and whoever calls
  the code (the ``luigi`` command, ``python -m etl.reports``, a test, the benchmark);
* **the process umask** (:func:`apply`, called as the ``luigi`` command builds its tasks,
  so before any worker is forked, which inherits it): also covers files written by
  libraries (matplotlib's caches, gzip temporaries, a log file of the user's logging config).

:func:`tighten_folders` fixes state folders an earlier version (or another umask) left
open to others. The policy (owner-only or owner+group) is per process: :func:`apply` sets
it; until then it is owner-only. This module imports nothing of the package.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

OWNER_ONLY_MASK = 0o077  # umask: folders 0700, files 0600
GROUP_READ_MASK = 0o027  # umask: folders 0750, files 0640

_policy = {"mask": OWNER_ONLY_MASK}


def apply(group_readable: bool = False) -> None:
    """Set this process's policy and umask: owner-only (077) or owner+group read (027).

    Called by every entry point before it writes anything; forked worker processes inherit
    both. Never loosens a stricter umask the user set (the new umask is the union of both).
    """
    mask = GROUP_READ_MASK if group_readable else OWNER_ONLY_MASK
    _policy["mask"] = mask
    current = os.umask(mask)
    os.umask(current | mask)


def mask() -> int:
    """The permission bits the job never grants (0o077, or 0o027 with group_readable)."""
    return _policy["mask"]


def dir_mode() -> int:
    """Mode of a folder the job creates: 0o700 (0o750 with group_readable)."""
    return 0o777 & ~mask()


def file_mode() -> int:
    """Mode of a file the job creates: 0o600 (0o640 with group_readable)."""
    return 0o666 & ~mask()


def make_dirs(path: str | os.PathLike) -> Path:
    """Create ``path`` and its missing parents with :func:`dir_mode`; returns it as a Path.

    Folders that already exist keep their mode (see :func:`tighten_folders`). Raises OSError
    (e.g. PermissionError naming the folder) when one cannot be created.
    """
    folder = Path(path)
    missing = []
    probe = folder
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for item in reversed(missing):
        try:
            item.mkdir(mode=dir_mode())  # the umask can only take bits away from 0700/0750
        except FileExistsError:
            if not item.is_dir():
                raise
    return folder


def chmod_private(fd: int) -> None:
    """Give the open file ``fd`` :func:`file_mode` when this user owns it (an existing file keeps
    its mode at open; one owned by someone else is left as it is)."""
    if os.fstat(fd).st_uid == os.geteuid():
        os.fchmod(fd, file_mode())


def open_private(path: str | os.PathLike, mode: str = "wb", **kwargs):
    """Open ``path`` for writing (``"wb"``, ``"w"``, ``"ab"``, ``"a"``) as :func:`open` would, but
    created with :func:`file_mode` whatever the umask (and an existing file of ours set to it).

    ``kwargs`` go to :func:`os.fdopen` (encoding, newline, buffering). Returns the file object.
    Raises ValueError for a reading mode, OSError when the file cannot be opened.
    """
    if mode.rstrip("bt") not in ("w", "a"):
        raise ValueError(f"open_private writes only ('w' or 'a' modes), not {mode!r}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    fd = os.open(path, flags, file_mode())
    try:
        chmod_private(fd)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def _shared_folder(path: Path, st: os.stat_result) -> bool:
    """A folder that is not the job's to close: the root, the home folder, a sticky one like /tmp."""
    try:
        home = Path.home().resolve()
    except (KeyError, RuntimeError):  # no HOME and no passwd entry
        home = None
    return path == Path(path.anchor) or path == home or bool(st.st_mode & stat.S_ISVTX)


def tighten_folders(folders: Iterable[str | os.PathLike]) -> list[str]:
    """Take away the bits :func:`mask` forbids from existing state folders and, when a folder was
    open, from everything below it that this user owns (symbolic links are not followed).

    A missing folder is skipped (it is created private). A folder owned by someone else, or a
    shared one (``/``, the home folder, a sticky folder such as /tmp) is not changed: a warning
    names it, its mode and owner, and what to do. Returns the warnings (also logged); a folder
    that was tightened is logged at WARNING too, naming it and its old mode.
    """
    warnings = []
    forbidden = mask()
    for name in dict.fromkeys(str(f) for f in folders if str(f)):
        path = Path(name).resolve()
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode) or not st.st_mode & forbidden:
            continue
        old = stat.S_IMODE(st.st_mode)
        if st.st_uid != os.geteuid() or _shared_folder(path, st):
            why = (f"it is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})" if st.st_uid != os.geteuid()
                   else "it is a shared folder")
            warnings.append(f"state folder {name} is mode {old:04o} and {why}: others may read or replace the job's "
                            f"files there; point the setting at a folder of the job's own, or have its owner run "
                            f"chmod go-rwx {name}" + (" (or g-w,o-rwx with group_readable)" if forbidden == GROUP_READ_MASK else ""))
            log.warning("%s", warnings[-1])
            continue
        changed, failed = _tighten_tree(path, forbidden)
        log.warning("state folder %s was mode %04o (open to others): now %04o, with %d entries below it tightened",
                    name, old, old & ~forbidden, changed - 1)
        if failed:
            warnings.append(f"state folder {name}: {len(failed)} entries could not be tightened, e.g. {failed[0]}; "
                            f"run chmod -R go-rwx {name}")
            log.warning("%s", warnings[-1])
    return warnings


def _tighten_tree(root: Path, forbidden: int) -> tuple[int, list[str]]:
    """chmod away ``forbidden`` from ``root`` and every entry below it this user owns.

    Returns (how many changed, ``"<path>: <error>"`` of those that could not be changed).
    """
    changed = 0
    failed = []
    uid = os.geteuid()

    def fix(path: str) -> None:
        nonlocal changed
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode) or st.st_uid != uid or not st.st_mode & forbidden:
                return
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~forbidden)
            changed += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            failed.append(f"{path}: {exc.strerror}")

    fix(str(root))
    for folder, dirs, files in os.walk(root):
        for entry in (*dirs, *files):
            fix(os.path.join(folder, entry))
    return changed, failed
