"""The warehouse run lock: one run at a time per warehouse database, scale-out kept open.

``RunJob`` takes it in its main process before anything else (``luigi_dw_etl.RunJob``) and
holds it until the process exits. A second ``RunJob`` on the same warehouse, whatever its
command line, is refused with :class:`RunLockTaken`, whose message names the holder.

**Who may join.** Processes of the *same* run may hold the lock together: each holder is
identified by its scheduler (:func:`scheduler_identity`). A ``--local-scheduler`` process is
a run of its own (``local host:pid:start``); processes coordinated by one ``luigid`` share
that scheduler's identity (its URL), because the scheduler gives each task to one worker, so
``RunJob`` started against one luigid on several machines cooperates on one run. Anything
else is refused while a holder is alive.

**PostgreSQL** (the dialect's ``run_lock_advisory``): on a dedicated connection kept open
in the main process, inside a transaction that holds an advisory transaction lock on a
join key (so check-and-join is atomic): ``pg_try_advisory_lock`` (exclusive) on the run key
succeeding means no holder is alive, so the holder rows left by dead processes are deleted;
otherwise the rows name the live run, and a different identity is refused. A joining
process then takes the run key *shared* (session level) and records its row in
``etl_control.run_holder``. Advisory locks belong to one database, so two warehouse
databases never block each other. A process that dies (even by SIGKILL) closes its
connection and the server drops its lock at once; a vanished host within about two
minutes (the session's TCP keepalives).

**Redshift** (no advisory locks): the rows themselves are the lock, serialised by ``LOCK
etl_control.run_holder``; a daemon thread refreshes the process's ``heartbeat_datetime``
every :data:`HEARTBEAT_SECONDS`; a row older than :data:`STALE_SECONDS` belongs to a dead
process and is deleted by the next process taking the lock. So after a crash a new run can
start at most :data:`STALE_SECONDS` later.

**Forked workers** (``--workers N``) inherit the lock connection's socket. A fork handler
points the child's copy of that file descriptor at ``/dev/null``: the child can never send
on the lock's session or end it, and the session lives exactly as long as the main process.
"""

from __future__ import annotations

import atexit
import logging
import os
import shlex
import socket
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

import psycopg2

from etl import control, warehouse
from etl.config import WarehouseSettings
from etl.dialects import dialect_of
from etl.errors import EltError, WarehouseError, is_transient_postgres, pg_message

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30  # Redshift: how often a holder refreshes its row
STALE_SECONDS = 180  # Redshift: a row not refreshed for this long belongs to a dead process
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "")
SECRET_OPTIONS = ("password", "token", "secret")  # command-line options whose value is never shown


class RunLockTaken(EltError):
    """Another run holds the warehouse run lock; ``holder`` is the :class:`Holder` named in the message."""

    def __init__(self, message: str, holder: Holder | None):
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class Holder:
    """One process holding the run lock: its scheduler ``identity``, ``host``, ``pid``, ``started``
    (the warehouse's time of its joining, None before it joined) and ``command`` line (or None)."""

    identity: str
    host: str
    pid: int
    started: datetime | None = None
    command: str | None = None

    def describe(self) -> str:
        """``pid 123 on host h since 2026-01-02 03:04:05 UTC (luigi RunJob ...; scheduler ...)`` for messages."""
        since = ""
        if self.started is not None:
            moment = self.started.astimezone(timezone.utc) if self.started.tzinfo else self.started
            since = f" since {moment:%Y-%m-%d %H:%M:%S} UTC"
        command = f"{self.command}; " if self.command else ""
        return f"pid {self.pid} on host {self.host}{since} ({command}scheduler {self.identity})"


def scheduler_identity(local_scheduler: bool, scheduler_url: str, scheduler_host: str, scheduler_port: int,
                       host: str | None = None, pid: int | None = None, started: float | None = None) -> str:
    """The identity a process holds the run lock under (a text), from luigi's ``[core]`` settings.

    ``local_scheduler``: ``local <host>:<pid>:<started>`` (unique: a run of its own). Else the
    central scheduler's URL as luigi builds it (``scheduler_url``, or
    ``http://<scheduler_host>:<scheduler_port>/``), trailing slash normalised; a loopback URL
    (localhost, 127.0.0.1, ::1) is qualified by ``host`` (this machine), since the same text on
    two machines names two schedulers. ``started``: a ``time.time()`` value (default now).
    """
    host = host or socket.gethostname()
    if local_scheduler:
        pid = os.getpid() if pid is None else pid
        started = time.time() if started is None else started
        return f"local {host}:{pid}:{started:.3f}"
    url = scheduler_url or f"http://{scheduler_host}:{scheduler_port:d}/"
    url = url.rstrip("/") + "/"
    if (urlsplit(url).hostname or "") in LOOPBACK_HOSTS:
        return f"luigid {url} on {host}"
    return f"luigid {url}"


def command_line(argv: list[str] | None = None) -> str:
    """``argv`` (default ``sys.argv``) as one shell-quoted line, program name without its folder and
    the values of options naming a password, token or secret replaced by ``***``."""
    argv = list(sys.argv if argv is None else argv)
    shown, hide_next = [], False
    for index, arg in enumerate(argv):
        if index == 0:
            shown.append(os.path.basename(arg))
        elif hide_next:
            shown.append("***")
            hide_next = False
        elif arg.startswith("--") and any(word in arg.lower() for word in SECRET_OPTIONS):
            if "=" in arg:
                shown.append(arg.split("=", 1)[0] + "=***")
            else:
                shown.append(arg)
                hide_next = True
        else:
            shown.append(arg)
    return " ".join(shlex.quote(a) for a in shown)


class RunLock:
    """The run lock held on ``conn`` (a dedicated warehouse connection) by ``me`` (a :class:`Holder`).

    Made by :func:`acquire`; :meth:`release` gives it up (the process's exit does too).
    """

    def __init__(self, conn, me: Holder, where: str):
        self.conn, self.me, self.where = conn, me, where
        self.owner_pid = os.getpid()
        self._guard = threading.Lock()  # the heartbeat thread and release() share the connection
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    @property
    def params(self) -> dict:
        """The statements' parameters for this holder."""
        return _params(self.me)

    def start_heartbeat(self) -> None:
        """Refresh this holder's row every HEARTBEAT_SECONDS in a daemon thread (Redshift)."""
        self._heartbeat = threading.Thread(target=self._beat, name="run-lock-heartbeat", daemon=True)
        self._heartbeat.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                with self._guard:
                    rows = _execute(self.conn, dialect_of(self.conn).run_holder_heartbeat, self.params)
                    self.conn.commit()
                if rows == 0:
                    log.error("run lock on %s: this process's holder row is gone (its heartbeat was more than %d s "
                              "late); another run may start", self.where, STALE_SECONDS)
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried; the row expires only after STALE_SECONDS
                log.warning("run lock on %s: heartbeat failed (%s); retrying in %d s", self.where, exc, HEARTBEAT_SECONDS)
                _rollback_quietly(self.conn)

    def forget_in_child(self) -> None:
        """In a forked child: point its copy of the lock socket at /dev/null (the child never talks
        on the lock's session, and never ends it). Called by the fork handler."""
        self.owner_pid = -1
        try:
            fd = self.conn.fileno()
        except Exception:  # noqa: BLE001 - closed already: nothing shared
            return
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, fd)
        os.close(null)

    def release(self) -> None:
        """Delete this process's holder row and close the lock connection (which drops an advisory
        lock); only in the process that acquired it, once. Never raises."""
        if os.getpid() != self.owner_pid:
            return
        self.owner_pid = -1
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=10)
        try:
            with self._guard:
                _execute(self.conn, dialect_of(self.conn).run_holder_delete, self.params)
                self.conn.commit()
        except Exception as exc:  # noqa: BLE001 - the row of a dead process is cleared by the next run
            log.warning("run lock on %s: could not delete this process's holder row (%s)", self.where, exc)
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass


def acquire(conn, me: Holder, where: str) -> RunLock:
    """Take the run lock on ``conn`` (a new, dedicated warehouse connection) for ``me``.

    ``where`` names the warehouse in messages (``user@host:port/database``). Commits on
    ``conn``. Returns the :class:`RunLock`. Raises :class:`RunLockTaken` (after rolling back)
    when a live holder of another identity exists, naming it and what to do; psycopg2 errors
    of the warehouse pass through.
    """
    dialect = dialect_of(conn)
    control.ensure_schema(conn)
    params = _params(me)
    _execute(conn, dialect.run_lock_session, params)
    conn.commit()
    _execute(conn, dialect.run_lock_join, params)  # serialises check-and-join (PostgreSQL: until the commit)
    if dialect.run_lock_advisory:
        with conn.cursor() as cur:
            cur.execute(dialect.run_lock_try_exclusive)
            nobody_alive = cur.fetchone()[0]
        if nobody_alive:
            _execute(conn, dialect.run_holder_clear, params)  # rows of dead processes
        else:
            _refuse_other_runs(conn, dialect, me, where)
        _execute(conn, dialect.run_lock_share, params)
        if nobody_alive:
            _execute(conn, dialect.run_lock_drop_exclusive, params)
    else:
        _refuse_other_runs(conn, dialect, me, where)  # the join statements deleted the stale rows
    _execute(conn, dialect.run_holder_insert, params)
    conn.commit()
    lock = RunLock(conn, me, where)
    if not dialect.run_lock_advisory:
        lock.start_heartbeat()
    return lock


def _refuse_other_runs(conn, dialect, me: Holder, where: str) -> None:
    with conn.cursor() as cur:
        cur.execute(dialect.run_holders)
        holders = [Holder(*row) for row in cur.fetchall()]
    others = [h for h in holders if h.identity != me.identity]
    if not others and (holders or not dialect.run_lock_advisory):
        return
    conn.rollback()
    holder = others[0] if others else None
    who = holder.describe() if holder else "a process without a holder row in etl_control.run_holder"
    if dialect.run_lock_advisory:
        release = "a dead run's lock is released when its connection closes"
    else:
        release = f"a dead run's lock expires {STALE_SECONDS} s after its last heartbeat"
    raise RunLockTaken(
        f"warehouse {where} is already being loaded by another run: {who}; wait for it to finish or stop it "
        f"(kill -TERM <pid> on that host; the rerun resumes its sequence), then run RunJob again; "
        f"{release}", holder)


_held: RunLock | None = None
_fork_handler_installed = False


def hold(settings: WarehouseSettings, identity: str, command: str | None) -> RunLock:
    """Take the run lock for this process (once; later calls return the lock held) until it exits.

    Opens the dedicated connection (``etl.warehouse.connect``), installs the fork handler
    (:meth:`RunLock.forget_in_child`) and an exit handler that releases the lock. Raises
    :class:`RunLockTaken` when another run holds it, WarehouseError when the warehouse is
    unreachable or refuses the lock's statements (nothing is held then).
    """
    global _held, _fork_handler_installed
    if _held is not None and _held.owner_pid == os.getpid():
        return _held
    conn = warehouse.connect(settings)
    me = Holder(identity, socket.gethostname(), os.getpid(), None, command)
    try:
        lock = acquire(conn, me, settings.describe())
    except psycopg2.Error as exc:
        _rollback_quietly(conn)
        conn.close()
        raise WarehouseError(f"warehouse {settings.describe()}: taking the run lock failed: {pg_message(exc)}; "
                             "check that the warehouse is reachable and [warehouse] flavor is right",
                             transient=is_transient_postgres(exc)) from None
    except BaseException:
        _rollback_quietly(conn)
        conn.close()
        raise
    _held = lock
    if not _fork_handler_installed:
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_handler_installed = True
    atexit.register(lock.release)
    log.info("run lock on %s taken (scheduler %s)", settings.describe(), identity)
    return lock


def release_held() -> None:
    """Release the lock this process holds (:func:`hold`), if any; never raises (see :meth:`RunLock.release`)."""
    if _held is not None:
        _held.release()


def _after_fork_in_child() -> None:
    if _held is not None and _held.owner_pid != -1:
        _held.forget_in_child()


def _params(me: Holder) -> dict:
    return {"identity": me.identity, "host": me.host, "pid": me.pid, "command": me.command, "stale": STALE_SECONDS}


def _execute(conn, statements, params) -> int:
    """Run ``statements`` with ``params``; returns the last statement's rowcount (-1 when none ran)."""
    rows = -1
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement, params)
            rows = cur.rowcount
    return rows


def _rollback_quietly(conn) -> None:
    try:
        conn.rollback()
    except Exception:  # noqa: BLE001 - the connection is gone; nothing to undo
        pass
