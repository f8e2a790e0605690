"""How a run's processes end: worker processes with their parent, and SIGTERM cleanly.

``RunJob`` calls :func:`install` in its main process (``luigi_dw_etl.RunJob``):

* **Worker processes end with their parent.** Every process forked afterwards (Luigi's
  ``--workers N`` task processes) asks Linux to SIGKILL it when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``), so a parent killed with SIGKILL leaves no worker running
  beside the rerun; the server rolls back the killed worker's open transaction when its
  connection drops, and the rerun's extract of that table deletes the staging files it left.
* **SIGTERM ends a run cleanly.** The main process logs one line, sends SIGTERM to its
  worker processes and waits up to :data:`CHILD_GRACE_SECONDS` for them (then SIGKILLs
  the rest), and exits with :data:`EXIT_TERMINATED` (143, the shell's 128 + SIGTERM): at once
  when the steps ran in workers, else by unwinding the step it runs itself. Each
  process unwinds its running step as on any error: open transactions are rolled back
  (``etl.warehouse.connection``), partial staging files and markers are deleted; the step
  stops when its current statement returns. Nothing was marked complete that did not
  commit, so the rerun resumes the same execution sequence.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import time

log = logging.getLogger(__name__)

EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process ended by SIGTERM
CHILD_GRACE_SECONDS = 30  # how long the main process waits for its workers to unwind after SIGTERM
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class RunTerminated(SystemExit, KeyboardInterrupt):
    """Raised in a process of the run by SIGTERM; ``code`` is :data:`EXIT_TERMINATED`.

    A KeyboardInterrupt, so Luigi re-raises it where it records any other exception as a
    task failure (``TaskProcess.run``, ``Worker.add``) and the run stops instead of going on
    with the next task; a SystemExit, so the interpreter (and a forked worker's
    ``multiprocessing`` bootstrap) exits with its code and without a traceback.
    """

    def __init__(self):
        super().__init__(EXIT_TERMINATED)


_main_pid: int | None = None
_forking_pid: int | None = None
_describe = None
_on_exit = None
_prctl = None


def install(describe=None, on_exit=None) -> None:
    """Install the SIGTERM handler and the fork handlers in this (the run's main) process; once.

    ``describe()``, if given, returns what is stopped for the log line (e.g. ``sequence 3``);
    ``on_exit()``, if given, is called before the process ends after its workers were stopped
    (the run lock's release). Must be called from the main thread. The fork handlers run in
    every child forked later.
    """
    global _main_pid, _describe, _on_exit, _prctl
    if _main_pid == os.getpid():
        return
    _main_pid, _describe, _on_exit = os.getpid(), describe, on_exit
    if sys.platform.startswith("linux"):
        _prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the child
    signal.signal(signal.SIGTERM, _on_sigterm)
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def _before_fork() -> None:
    global _forking_pid
    _forking_pid = os.getpid()


def _after_fork_in_child() -> None:
    """In a new child: die with the parent (SIGKILL); if the parent died already, exit now."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != _forking_pid:  # the parent died before prctl took effect
        os._exit(EXIT_TERMINATED)


def _on_sigterm(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the unwinding is not interrupted again
    if os.getpid() != _main_pid:
        raise RunTerminated()  # a worker process: unwind its step and exit
    what = (_describe() if _describe else None) or "the run"
    log.warning("SIGTERM: stopping %s (running steps roll back, partial files are removed); exit code %d; "
                "run RunJob again to resume it", what, EXIT_TERMINATED)
    if multiprocessing.active_children():
        # --workers N: the steps ran in the workers, which have unwound now; the main process holds no
        # transaction or file of its own. It ends here rather than raising into Luigi's loop, which, hit
        # at the wrong moment, records the exception as a task failure and exits with task_failed.
        stop_children(CHILD_GRACE_SECONDS)
        if _on_exit is not None:
            try:
                _on_exit()
            except Exception:  # noqa: BLE001 - the exit code matters more than a failed release
                log.exception("SIGTERM: releasing the run failed")
        logging.shutdown()
        os._exit(EXIT_TERMINATED)
    raise RunTerminated()  # the step runs in this process (--workers 1): unwind it like any error


def stop_children(grace_seconds: float) -> int:
    """SIGTERM this process's live ``multiprocessing`` children, wait up to ``grace_seconds`` (s) for
    them to end, then SIGKILL the rest; returns how many had to be killed."""
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    deadline = time.monotonic() + grace_seconds
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
    killed = [child for child in children if child.is_alive()]
    for child in killed:
        log.warning("worker process %d did not end within %.0f s of SIGTERM; killed", child.pid, grace_seconds)
        child.kill()
        child.join(5)
    return len(killed)
