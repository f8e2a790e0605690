"""Retention: what a completed run removes, and ``reports/latest``.

When run ``N`` completes (``RunJob.run``, after ``etl.context.close_run`` recorded it in
``etl_control.run``), :func:`after_run`:

1. points ``<reports_dir>/latest`` at ``N``'s reports: a relative symbolic link
   ``latest -> N``, replaced atomically (a new link renamed over the old one), so a reader of
   ``reports/latest/dashboard.html`` opens either the previous run's complete dashboard or
   this one's, never a half-written folder or none;
2. removes the staging partitions (``<source>/<table>/execution_sequence=<s>/``, local
   folders or S3 prefixes) that landing no longer holds: see :func:`staging_to_prune`;
3. removes the numbered folders of the runs older than the last ``[dw_etl] keep_runs`` in
   ``output/``, ``completed/``, ``reports/`` and ``rejects/``: see :func:`runs_to_prune`.

It logs one line saying what was removed (folders, files, bytes) and returns it for the
run summary. A folder or object that cannot be removed is a warning naming it and the
reason, never a failed run (the run's data is committed by then); the next completed run
tries again. Nothing here runs for a failed or interrupted run: its sequence stays the
latest, with its markers and staging, and is resumed as before.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from etl.errors import EltError

log = logging.getLogger(__name__)

LATEST = "latest"  # <reports_dir>/latest -> <seq>
AREA_KEYS = {"output": "[dw_etl] output_dir", "completed": "[dw_etl] completed_dir", "reports": "[dw_etl] reports_dir",
             "rejects": "[weblog] rejects_dir"}  # the run folders' areas and the settings naming them


def sequences_to_prune(found: Iterable[int], closed: int, keep: int, protected: Iterable[int] = ()) -> list[int]:
    """The sequences of ``found`` older than the ``keep`` newest ending at ``closed``, minus ``protected``.

    Returns, sorted, every ``s`` in ``found`` with ``s <= closed - keep`` that is not in
    ``protected``: so ``closed`` itself and any sequence above it are never chosen.
    Raises ValueError when ``keep < 1``.
    """
    if keep < 1:
        raise ValueError(f"keep = {keep} must be >= 1")
    spared = set(protected)
    return sorted(s for s in set(found) if s <= closed - keep and s not in spared)


def staging_to_prune(found: Iterable[int], closed: int, landing_keep_sequences: int) -> list[int]:
    """The staged sequences that may be deleted once run ``closed`` completed.

    Exactly ``s <= closed - landing_keep_sequences``: the sequences whose landing partitions
    the landing steps of ``closed`` dropped (landing keeps ``closed - landing_keep_sequences
    + 1`` .. ``closed``), so afterwards staging holds the sequences landing holds. Each is
    older than ``closed``, hence finished: ``RunJob`` starts a new sequence only when the
    latest one is complete, and only the latest one is ever resumed or has steps rerun
    (deleting a marker), so no step reads that staging again. ``closed`` (just completed;
    called only after ``close_run``) and anything newer are never chosen: a failed or
    interrupted run prunes nothing and keeps the staging its resume needs.
    """
    return sequences_to_prune(found, closed, landing_keep_sequences)


def runs_to_prune(found: Iterable[int], closed: int, keep_runs: int, latest: int | None = None) -> list[int]:
    """The run folders (numbered sub-folders of output/, completed/, reports/, rejects/) to remove after run ``closed``.

    ``s <= closed - keep_runs`` and not ``latest`` (the sequence ``reports/latest`` points
    at). ``keep_runs >= 1`` keeps ``closed``, which is all the resume logic reads: the next
    sequence is the latest known one (the highest of ``output/`` and ``etl_control.run``)
    while its markers are incomplete, else the next one, and a run's reports reuse the
    previous sequence's. Older folders are read by nothing, and the sequence numbering does
    not depend on them. Raises ValueError when ``keep_runs < 1``.
    """
    return sequences_to_prune(found, closed, keep_runs, [] if latest is None else [latest])


def numbered_folders(folder: str | os.PathLike) -> dict[int, Path]:
    """The sub-folders of ``folder`` named by a number: ``{sequence: path}`` (no symbolic links; {} when missing)."""
    root = Path(folder)
    if not root.is_dir():
        return {}
    return {int(p.name): p for p in root.iterdir() if p.name.isdigit() and p.is_dir() and not p.is_symlink()}


def tree_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(files, bytes)`` under ``path`` (symbolic links counted as files of their own size, never followed)."""
    files = size = 0
    for top, _dirs, names in os.walk(path):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(top, name)).st_size
    return files, size


def latest_target(reports_dir: str | os.PathLike) -> int | None:
    """The sequence ``<reports_dir>/latest`` points at (None when it is missing or not such a link)."""
    link = Path(reports_dir) / LATEST
    try:
        target = os.readlink(link)
    except OSError:  # missing, or not a link
        return None
    return int(target) if target.isdigit() else None


def publish_latest(reports_dir: str | os.PathLike, sequence: int) -> Path:
    """Point ``<reports_dir>/latest`` at ``<reports_dir>/<sequence>`` atomically; returns the link's path.

    A relative link ``latest -> <sequence>`` is made under a temporary name and renamed over
    the old link (rename is atomic), so ``latest/dashboard.html`` always resolves to one
    complete run's dashboard. Raises EltError naming the folder when ``<sequence>`` has no
    ``dashboard.html``, or when ``latest`` exists and is not a link (a folder made by hand).
    """
    folder = Path(reports_dir)
    link = folder / LATEST
    if not (folder / str(sequence) / "dashboard.html").is_file():
        raise EltError(f"{folder / str(sequence)} has no dashboard.html, so {link} was not moved to it; to rebuild "
                       f"that run's reports delete its report markers (completed/{sequence}/reports/) and "
                       f"output/{sequence}/RunJob.json, and run RunJob again")
    if link.exists() and not link.is_symlink():
        raise EltError(f"{link} is not the symbolic link this job maintains (latest -> <sequence>), so it was not "
                       f"updated; move it away and the next run creates the link")
    temporary = folder / f".{LATEST}.{os.getpid()}.tmp"
    temporary.unlink(missing_ok=True)
    os.symlink(str(sequence), temporary)
    try:
        os.replace(temporary, link)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return link


def _remove_folder(path: Path, problems: list[str]) -> tuple[int, int] | None:
    """Remove ``path`` (a folder tree); returns its ``(files, bytes)``, or None after adding a problem."""
    try:
        counted = tree_size(path)
        shutil.rmtree(path)
    except OSError as exc:
        problems.append(f"could not remove {path}: {exc.strerror or exc}; check its owner and permissions")
        return None
    return counted


def prune_runs(folders: dict[str, str], closed: int, keep_runs: int, latest: int | None) -> tuple[dict, list[str]]:
    """Remove the old run folders of each area (``{"output": "output", ...}``), see :func:`runs_to_prune`.

    Returns ``({area: {"folders", "files", "bytes", "sequences"}}, problems)``; a folder that
    cannot be removed is a problem (text naming it) and is kept.
    """
    removed, problems = {}, []
    for area, folder in folders.items():
        counts = {"folders": 0, "files": 0, "bytes": 0, "sequences": []}
        removed[area] = counts
        try:
            found = numbered_folders(folder)
        except OSError as exc:
            problems.append(f"could not list {folder} ({AREA_KEYS.get(area, area)}): {exc.strerror or exc}; "
                            "check its owner and permissions")
            continue
        for sequence in runs_to_prune(found, closed, keep_runs, latest):
            counted = _remove_folder(found[sequence], problems)
            if counted is not None:
                counts["folders"] += 1
                counts["files"] += counted[0]
                counts["bytes"] += counted[1]
                counts["sequences"].append(sequence)
    return removed, problems


def prune_staging(staging, closed: int, landing_keep_sequences: int) -> tuple[dict, list[str]]:
    """Delete the staging partitions of ``staging`` (LocalStaging or S3Staging) :func:`staging_to_prune` chooses.

    Returns ``({"partitions", "files", "bytes", "sequences"}, problems)``; a partition that
    cannot be deleted (or a staging area that cannot be listed) is a problem and is kept.
    """
    counts = {"partitions": 0, "files": 0, "bytes": 0, "sequences": []}
    try:
        found = staging.partitions()
    except (OSError, EltError) as exc:
        return counts, [f"could not list staging {staging.describe()}: {exc}"]
    problems = []
    doomed = set(staging_to_prune({seq for _s, _t, seq in found}, closed, landing_keep_sequences))
    for (source, table, sequence), (files, size) in sorted(found.items()):
        if sequence not in doomed:
            continue
        try:
            staging.delete_partition(source, table, sequence)
        except (OSError, EltError) as exc:
            problems.append(f"could not remove staging {source}/{table}/execution_sequence={sequence} of "
                            f"{staging.describe()}: {exc}")
            continue
        counts["partitions"] += 1
        counts["files"] += files
        counts["bytes"] += size
    counts["sequences"] = sorted(doomed)
    return counts, problems


def after_run(ctx, rejects_dir: str, sequence: int) -> dict:
    """Apply retention after run ``sequence`` completed (see the module docstring); returns the summary entry.

    ``ctx`` is the run's :class:`etl.context.Context` (folders, ``keep_runs``,
    ``landing_keep_sequences``, staging), ``rejects_dir`` the ``[weblog]`` rejects folder.
    Returns ``{"latest", "runs", "staging", "problems", "text"}``: ``text`` is the line
    logged (and shown in the run summary), ``problems`` one warning per folder, object or
    link that was kept because it could not be changed. Never raises for a file-system or
    S3 failure (they become problems).
    """
    settings = ctx.etl
    problems: list[str] = []
    try:
        latest = str(publish_latest(settings.reports_dir, sequence))
    except (OSError, EltError) as exc:
        latest = None
        problems.append(f"reports latest not updated: {exc}")
    folders = {"output": settings.output_dir, "completed": settings.completed_dir,
               "reports": settings.reports_dir, "rejects": rejects_dir}
    runs, found = prune_runs(folders, sequence, settings.keep_runs, latest_target(settings.reports_dir))
    problems += found
    staged, found = prune_staging(ctx.staging, sequence, settings.landing_keep_sequences)
    problems += found
    text = describe(runs, staged, sequence, settings.keep_runs, settings.landing_keep_sequences, latest)
    log.info("%s", text)
    for problem in problems:
        log.warning("retention: %s", problem)
    return {"latest": latest, "runs": runs, "staging": staged, "problems": problems, "text": text}


def describe(runs: dict, staged: dict, sequence: int, keep_runs: int, landing_keep: int, latest: str | None) -> str:
    """The one-line account of :func:`after_run`: what was removed (folders, files, bytes) and what is kept."""
    folders = sum(c["folders"] for c in runs.values())
    files = sum(c["files"] for c in runs.values())
    size = sum(c["bytes"] for c in runs.values())
    first_run, first_staged = max(1, sequence - keep_runs + 1), max(1, sequence - landing_keep + 1)
    per_area = ", ".join(f"{area} {c['folders']}" for area, c in runs.items())
    text = (f"retention: removed {folders} run folder(s) ({per_area}; {files:,} files, {size:,} bytes) and "
            f"{staged['partitions']} staging partition(s) ({staged['files']:,} files, {staged['bytes']:,} bytes); "
            f"kept runs {first_run}..{sequence} (keep_runs {keep_runs}) and staging of sequences "
            f"{first_staged}..{sequence} (landing_keep_sequences {landing_keep})")
    return text + (f"; {latest} -> {sequence}" if latest else "")
