"""A copy of the repository's scripts to run in a test's own folder, with the programs they install or start
replaced by stubs that record their calls.

:func:`script_tree` copies what the scripts read (scripts/, .ci/, bench/, the requirements files,
pyproject.toml, luigi.cfg) into a folder, so a script's ``cd "$(dirname "$0")/.."`` lands there, never in
the repository. :func:`recording_path` puts stubs of the installers and servers (apt-get, sudo, pip,
luigid, mariadbd, pg_ctlcluster, ...) first on PATH: each appends its name and arguments to
``calls.log`` and exits 1, so a script that would install or start something leaves a trace.
:func:`snapshot` lists a folder's files with their size and modification time, to compare before and after.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.support.paths import REPO

COPIED = ("scripts", ".ci", "bench", "requirements.txt", "requirements-dev.txt", "requirements-bench.txt",
          "pyproject.toml", "luigi.cfg")
# what the scripts would call to install, start or create something
STUBBED = ("apt-get", "apt", "sudo", "pip", "pip3", "luigi", "luigid", "mariadbd", "mysqld", "mysqladmin", "mariadb",
           "mysql", "pg_ctlcluster", "pg_isready", "psql", "runuser", "start-stop-daemon", "systemctl", "service",
           "curl", "setsid", "goaccess", "chromium")


def script_tree(folder: Path) -> Path:
    """Copy the scripts and what they read into ``folder`` (no virtual environment); returns ``folder``."""
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, folder / name)
    return folder


def recording_path(folder: Path) -> tuple[str, Path]:
    """Stubs of :data:`STUBBED` in ``folder/stubs``; returns (a PATH with them first, the calls log they append to)."""
    stubs = folder / "stubs"
    stubs.mkdir()
    calls = folder / "calls.log"
    for name in STUBBED:
        stub = stubs / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >>"{calls}"\nexit 1\n')
        stub.chmod(0o755)
    return f"{stubs}{os.pathsep}{os.environ.get('PATH', '')}", calls


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``folder``: relative path -> (size, mtime in ns; 0 for folders)."""
    found = {}
    for path in folder.rglob("*"):
        st = path.lstat()
        found[str(path.relative_to(folder))] = (0, 0) if path.is_dir() else (st.st_size, st.st_mtime_ns)
    return found


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``command`` with only ``env`` (plus HOME and LANG) in its environment; returns (the result, seconds)."""
    started = time.monotonic()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={"HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8", **env})
    return proc, time.monotonic() - started
