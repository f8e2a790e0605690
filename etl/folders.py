"""Whether the job user can write a folder: created when missing, then probed with a real file.

``os.access`` is not enough: as root it answers yes for a folder on a read-only mount, and
it says nothing about a regular file sitting where the folder should be. :func:`probe`
creates the folder (private, like every folder the job makes: ``etl.private``) and creates, writes and
deletes a temporary file in it; :func:`writable_problem` turns a failure into a message
naming the setting, the resolved path, the OS error and what to do.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from etl import private

PROBE_PREFIX = ".preflight-probe-"


def make_folder(path: Path) -> None:
    """Create ``path`` and its missing parents private (``etl.private.make_dirs``: 0700, or 0750 with
    ``[dw_etl] group_readable``, whatever the umask); an existing folder keeps its mode. Raises OSError:
    FileExistsError/NotADirectoryError naming the file in the way, PermissionError, ..."""
    current = path
    while not current.is_dir():
        if current.exists() or current.is_symlink():
            if current == path:
                raise FileExistsError(17, "it exists but is not a folder", str(path))
            raise NotADirectoryError(20, f"{current} is not a folder", str(path))
        if current.parent == current:
            break
        current = current.parent
    private.make_dirs(path)


def probe(path: Path) -> None:
    """Create ``path`` if missing, then create, write and delete a temporary file in it.

    Raises OSError naming what failed; leaves nothing behind on success.
    """
    make_folder(path)
    handle, name = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=path)
    try:
        os.write(handle, b"probe\n")
    finally:
        os.close(handle)
        os.unlink(name)


def writable_problem(key: str, configured: str, below: str = "") -> str | None:
    """None when the folder ``configured`` (the value of the setting ``key``, e.g. ``[dw_etl] reports_dir``),
    or its subfolder ``below``, can be written by the job user; else one line naming the key, the value,
    the absolute path (when it differs from the value: the settings' folders are absolute already,
    ``etl.config.absolute_path``), the OS error and what to do."""
    path = (Path(configured or ".").expanduser() / below).resolve()
    try:
        probe(path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if isinstance(exc, (FileExistsError, NotADirectoryError)):
            fix = "remove or move the file in the way, or point the setting at a folder"
        else:
            fix = "make it writable by this user, or point the setting at a folder it can write"
        user = _user()
        where = "" if str(path) == configured else f" ({path})"
        return (f"{key} = {configured!r}{where}: the job user {user} cannot write there: {reason}; {fix}")
    return None


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return str(os.geteuid())
