"""Markers and the execution sequence.

* ``<output_dir>/<seq>/...``: one Luigi target per task (JSON: what the task did).
* ``<completed_dir>/<seq>/<layer>/<name>``: one marker per finished step inside a looping task.

The execution sequence is 1 for the first run and +1 after each fully successful run; a
run whose markers are not all present is resumed under its own number. The latest
sequence is the highest known to either the output folder or ``etl_control.run`` (so a
wiped output folder does not restart numbering at 1).
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

from etl import private


def write_json_atomic(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` as JSON to ``path`` via a temp file + ``os.replace`` (never half-written).

    The file gets ``etl.private.file_mode()`` (0600, or 0640 with group_readable), missing
    folders ``dir_mode()``.
    """
    target = Path(path)
    private.make_dirs(target.parent)
    # SIGTERM (etl.shutdown raises out of its handler) waits until the marker is written or its temp file
    # removed: arriving between mkstemp and the try below it would leave a stray temp file
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                private.chmod_private(handle.fileno())
                json.dump(payload, handle, indent=2, sort_keys=True, default=str)
                handle.write("\n")
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def read_json(path: str | os.PathLike) -> dict:
    """Read a JSON marker; returns {} when the file does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}


def step_marker(completed_dir: str | os.PathLike, sequence: int, layer: str, name: str) -> Path:
    """Path of the step marker ``<completed_dir>/<seq>/<layer>/<name>`` (e.g. layer ``pres``)."""
    return Path(completed_dir) / str(sequence) / layer / name


def latest_sequence_on_disk(output_dir: str | os.PathLike) -> int:
    """Highest numeric sub-folder of ``output_dir`` (0 when none)."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return 0
    numbers = [int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()]
    return max(numbers, default=0)


def resolve_sequence(latest_known: int, is_complete: Callable[[int], bool]) -> int:
    """Return the sequence to run: ``latest_known`` when it is incomplete, else the next one.

    ``latest_known`` is the highest sequence on disk or in etl_control (0 when none);
    ``is_complete(seq)`` tells whether every task of ``seq`` has its marker.
    """
    if latest_known == 0:
        return 1
    return latest_known + 1 if is_complete(latest_known) else latest_known
