"""Chaos rounds: kills, concurrent writers, late commits, log rotation, operator mistakes; nothing lost or duplicated.

Long run (documented in docs/operations.md), from the repository root::

    .venv/bin/python -m tests.chaos --rounds 100 --seed 1 [--mistakes truncate,where,logtrunc,concurrent]

Each round: a day of source changes; a concurrent writer process keeps updating,
inserting, soft- and hard-deleting (some transactions commit late, after sleeping) while
``RunJob`` runs; access-log lines are appended (sometimes the log is rotated and the old
file gzip-compressed; some lines are malformed, some identical); in some rounds ``RunJob``
is killed with SIGKILL at a random moment and rerun until it completes. After the round
(writer stopped, one clean run to catch up) every store table must equal its source (the
rows its ``where_clause`` selects), every log line written so far must be in
store_weblog.access exactly once, and the rejects files must hold exactly the malformed lines.

Then the operator makes one or two mistakes, drawn by the seeded RNG from ``--mistakes``
(default all; the runs after each may be killed and rerun too), each followed by that check:

* ``truncate``: a source table is truncated (a copy kept); ``RunJob`` must fail with exit
  code 30, the delete guard naming the table, and leave its store rows and tombstones as
  they were; the rows are inserted back from the copy and the next run completes.
* ``where``: a ``where_clause`` is set on a table in the project's extract_config; the run
  must fail with the delete guard exactly when the clause drops more than half the rows
  (store unchanged; the operator then reruns with ``--dw-etl-allow-deletes <table>``), else
  complete; the live store rows must equal the selected ones and the dropped rows be
  tombstones. The clause is reverted (the rows come back to life) in the same round or
  after the next one, which then runs under it.
* ``logtrunc``: the current access.log is truncated in place to a prefix of its lines and
  new lines are appended: every line ever written stays stored exactly once.
* ``concurrent``: two ``RunJob`` processes at once with different command lines
  (``--workers 1`` and ``--workers 2``, so luigi's own pid lock does not stop the second):
  each must exit 0 or 10 (already running), at least one 0; after one clean run no step of
  the sequences they ran is in etl_control.step_log twice.

Prints one summary line per round (kills and the mistakes made) and the totals.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.support.databases import mysql_connect, pg_connect
from tests.support.oracle import assert_store_equals_selected_source, selected_source_rows, store_rows
from tests.support.paths import REPO
from tests.support.project import Project

SAFETY_LAG_SECONDS = 1
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
MISTAKES = ("truncate", "where", "logtrunc", "concurrent")
ALREADY_RUNNING, TASK_FAILED = 10, 30  # Project.write_cfg's [retcode] codes
RUN_LOCK_REFUSAL = "is already being loaded by another run"  # etl.runlock's message, naming the holder after it
MAX_DELETE_FRACTION = 0.5  # [dw_etl] max_delete_fraction, the default
# where_clauses an operator might set: some drop more than half the rows (the delete guard trips), some few
WHERE_CLAUSES = (
    ("companies", "is_supplier = 1"),
    ("customers", "country <> 'US'"),
    ("products", "default_price < 2000"),
    ("order_headers", "is_deleted = 0"),
    ("order_lines", "quantity <= 5"),
)
TABLES_YAML = "mysql_tables.yaml"  # the extract_config file holding the MySQL tables


@dataclass
class ChaosState:
    """What the rounds wrote and did, to check against and to report."""

    seed: int = 1  # with the round number, seeds each round's plan (see plan_rng)
    lines: Counter = field(default_factory=Counter)  # request path -> times written
    malformed: int = 0
    kills: int = 0
    runs: int = 0
    rows_compared: int = 0
    enabled: tuple[str, ...] = MISTAKES  # the mistakes the rounds draw from
    mistakes: Counter = field(default_factory=Counter)  # kind -> times made
    guard_trips: int = 0
    concurrent_codes: Counter = field(default_factory=Counter)  # "0+10" -> times
    pending_where: tuple[str, str, str] | None = None  # (table, clause, original YAML text) not yet reverted


def writer(database: str, seconds: float, seed: int) -> None:
    """Concurrent source writer (run as a subprocess): small random transactions for ``seconds``."""
    rng = random.Random(seed)
    conn = mysql_connect(database)
    conn.autocommit = False
    cur = conn.cursor()
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
        kind = rng.random()
        if kind < 0.4:
            cur.execute("UPDATE customers SET city = %s, updated_datetime = UTC_TIMESTAMP() "
                        "ORDER BY RAND(%s) LIMIT 2", [f"City {seed}-{n}", rng.randrange(10**6)])
        elif kind < 0.7:
            order_no = f"W{seed % 1000:03d}{n:06d}"
            cur.execute("SELECT product_code, supplier_id, default_price FROM products ORDER BY RAND(%s) LIMIT 2",
                        [rng.randrange(10**6)])
            products = cur.fetchall()
            cur.execute("SELECT customer_document_no FROM customers ORDER BY RAND(%s) LIMIT 1", [rng.randrange(10**6)])
            (customer,) = cur.fetchone()
            total = sum(p[2] for p in products)
            cur.execute("INSERT INTO order_headers VALUES (%s, UTC_DATE(), 1, %s, %s, UTC_TIMESTAMP(), UTC_TIMESTAMP(), 0)",
                        [order_no, customer, total])
            for i, (code, supplier, price) in enumerate(products, 1):
                cur.execute("INSERT INTO order_lines VALUES (%s, %s, UTC_DATE(), %s, %s, %s, 1, %s, UTC_TIMESTAMP(), "
                            "UTC_TIMESTAMP(), 0)", [order_no, i, code, supplier, price, price])
        elif kind < 0.85:
            cur.execute("UPDATE order_headers SET is_deleted = 1, updated_datetime = UTC_TIMESTAMP() "
                        "WHERE is_deleted = 0 ORDER BY RAND(%s) LIMIT 1", [rng.randrange(10**6)])
        elif kind < 0.92:
            cur.execute("DELETE FROM product_prices ORDER BY RAND(%s) LIMIT 1", [rng.randrange(10**6)])
        else:  # a late commit: the row's watermark is taken now, the commit comes later
            cur.execute("UPDATE products SET default_price = default_price + 0.01, updated_datetime = UTC_TIMESTAMP() "
                        "ORDER BY RAND(%s) LIMIT 1", [rng.randrange(10**6)])
            time.sleep(rng.uniform(0.3, 1.5))
        conn.commit()
        time.sleep(rng.uniform(0.01, 0.1))
    conn.close()


def write_lines(handle, state: ChaosState, rng: random.Random, prefix: str) -> int:
    """Write 20-200 lines with paths ``<prefix>/<i>`` to ``handle`` (about 3% malformed, 5% written twice),
    counting them in ``state``; returns the lines written."""
    written = 0
    for i in range(rng.randrange(20, 200)):
        if rng.random() < 0.03:
            handle.write(b"garbage \xff line\n")
            state.malformed += 1
            written += 1
            continue
        path = f"{prefix}/{i}"
        line = f'8.8.8.8 - - [10/Oct/2025:13:55:36 +0000] "GET {path} HTTP/1.1" 200 1 "-" "{UA}"\n'.encode()
        copies = 2 if rng.random() < 0.05 else 1
        handle.write(line * copies)
        state.lines[path] += copies
        written += copies
    return written


def append_log(project: Project, state: ChaosState, rng: random.Random, round_no: int) -> None:
    """Append lines (some malformed, some duplicated); sometimes rotate and compress first."""
    logs = project.root / "logs"
    logs.mkdir(exist_ok=True)
    log = logs / "access.log"
    if log.exists() and rng.random() < 0.3:
        for old in sorted(logs.glob("access.log.*"), reverse=True):
            if old.suffix == ".gz":
                continue
            with open(old, "rb") as src, gzip.open(f"{old}.gz", "wb") as dst:
                dst.write(src.read())
            old.unlink()
        os.rename(log, logs / f"access.log.{round_no}")
    with open(log, "ab") as handle:
        write_lines(handle, state, rng, f"/chaos/{round_no}")


def start_job(project: Project, workers: int, *args: str) -> subprocess.Popen:
    """Start ``luigi RunJob`` (``--workers``, plus ``args``) in the project, in its own process group."""
    luigi = Path(sys.executable).with_name("luigi")
    cmd = [str(luigi), "RunJob", "--module", "luigi_dw_etl", "--local-scheduler", "--workers", str(workers), *args]
    return subprocess.Popen(cmd, cwd=project.root, env=project.env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


def run_job(project: Project, kill_after: float | None, workers: int, *args: str) -> tuple[int | None, str]:
    """Run RunJob; SIGKILL its process group after ``kill_after`` s. Returns ``(exit code, stderr)``,
    ``(None, "")`` when killed."""
    proc = start_job(project, workers, *args)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None, ""
    _, err = proc.communicate(timeout=600)
    return proc.returncode, err.decode(errors="replace")


def run_until_done(project: Project, state: ChaosState, rng: random.Random, *args: str, kill_chance: float = 0.3,
                   max_kills: int = 2) -> tuple[int, str, int]:
    """Run RunJob (plus ``args``), killed at a random moment with ``kill_chance`` (at most ``max_kills``
    times) and rerun until it ends by itself. Returns ``(exit code, stderr, kills)``."""
    kills = 0
    while True:
        kill = rng.uniform(0.2, 2.0) if rng.random() < kill_chance and kills < max_kills else None
        state.runs += 1
        code, err = run_job(project, kill, rng.choice((1, 2)), *args)
        if code is None:
            kills += 1
            state.kills += 1
            continue
        return code, err, kills


def kills_note(kills: int) -> str:
    """``"; N kills"`` for a summary, empty when none."""
    return f"; {kills} kills" if kills else ""


def expect_code(code: int, err: str, wanted: int, what: str) -> None:
    """Assert RunJob exited ``wanted``; the message says ``what`` and shows the end of its stderr."""
    assert code == wanted, f"{what}: RunJob exited {code}, expected {wanted}\n{err[-3000:]}"


def settle() -> None:
    """Wait out the safety lag (windows end at source clock - lag, and UTC_TIMESTAMP() has whole
    seconds) so the next run reads every change committed so far."""
    time.sleep(SAFETY_LAG_SECONDS + 1.1)


def check(project: Project, state: ChaosState) -> None:
    """Store equals source (the rows each where_clause selects); each written log line stored exactly as
    often as written; rejects exact."""
    state.rows_compared += assert_store_equals_selected_source(project)
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT path, count(*) FROM store_weblog.access GROUP BY path")
    stored = Counter(dict(cur.fetchall()))
    conn.close()
    missing = state.lines - stored
    extra = stored - state.lines
    assert not missing and not extra, (f"log lines lost {sum(missing.values())}, duplicated {sum(extra.values())} "
                                       f"(e.g. {sorted(missing)[:3]} {sorted(extra)[:3]})")
    rejects = sum(len(p.read_text().splitlines()) for p in (project.root / "rejects").rglob("*.rejects.jsonl"))
    assert rejects == state.malformed, f"{rejects} rejected lines on file, {state.malformed} written"


def store_snapshot(project: Project, table: str) -> tuple[list[tuple], list[tuple]]:
    """``table``'s live store rows and its tombstones, with their sequence and deletion time."""
    extra = ("etl_execution_sequence", "etl_deleted_datetime")
    return store_rows(project, table, extra), store_rows(project, table, extra, tombstones=True)


def assert_guard_tripped(code: int, err: str, table: str) -> None:
    """Assert RunJob failed (exit 30) with the delete guard's message naming ``table``."""
    expect_code(code, err, TASK_FAILED, f"the delete guard on {table}")
    assert f"table {table!r}: this run would mark" in err, f"no delete guard message for {table}\n{err[-3000:]}"
    assert f"--dw-etl-allow-deletes {table}" in err, f"the guard message does not say how to allow it\n{err[-3000:]}"


def mistake_truncate(project: Project, state: ChaosState, plan: random.Random, kills_rng: random.Random,
                     round_no: int) -> str:
    """TRUNCATE a source table: the guard stops the run, store unchanged; restored, the next run completes."""
    table = plan.choice(sorted(project.metadata()))
    keep = f"chaos_keep_{table}"
    before = store_snapshot(project, table)
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute(f"DROP TABLE IF EXISTS `{keep}`")
    cur.execute(f"CREATE TABLE `{keep}` AS SELECT * FROM `{table}`")
    cur.execute(f"TRUNCATE TABLE `{table}`")
    code, err, kills = run_until_done(project, state, kills_rng)
    live = len(before[0])
    if live:  # every live row would become a tombstone
        assert_guard_tripped(code, err, table)
        state.guard_trips += 1
    else:
        expect_code(code, err, 0, f"round {round_no}: {table} truncated with no live store rows")
    assert store_snapshot(project, table) == before, f"{table} truncated: its store rows changed"
    cur.execute(f"INSERT INTO `{table}` SELECT * FROM `{keep}`")
    cur.execute(f"DROP TABLE `{keep}`")
    conn.close()
    code, err, more = run_until_done(project, state, kills_rng)
    expect_code(code, err, 0, f"round {round_no}: {table} restored")
    check(project, state)
    guard = "guard tripped, store unchanged" if live else "no live rows"
    return f"truncate {table} ({live} live rows, {guard}, restored{kills_note(kills + more)})"


def _set_where(project: Project, table: str, clause: str) -> str:
    """Set ``table``'s where_clause in the project's extract_config; returns the file's text before."""
    path = project.root / "extract_config" / TABLES_YAML
    original = path.read_text()
    entries = yaml.safe_load(original)
    entries[table]["where_clause"] = clause
    path.write_text(yaml.safe_dump(entries, sort_keys=False))
    return original


def revert_where(project: Project, state: ChaosState, kills_rng: random.Random) -> str:
    """Put back the extract_config of the pending where_clause mistake, run: the dropped rows come back."""
    table, clause, original = state.pending_where
    (project.root / "extract_config" / TABLES_YAML).write_text(original)
    state.pending_where = None
    code, err, kills = run_until_done(project, state, kills_rng)
    expect_code(code, err, 0, f"where_clause {clause!r} on {table} reverted")
    check(project, state)  # the live store rows equal the whole source table again: the tombstones revived
    return f"where reverted on {table}" + (f" ({kills} kills)" if kills else "")


def mistake_where(project: Project, state: ChaosState, plan: random.Random, kills_rng: random.Random,
                  round_no: int) -> str:
    """Set a where_clause; run (a guard trip rerun with --dw-etl-allow-deletes); live store rows are the
    selected ones, the dropped ones tombstones; reverted now or after the next round."""
    done = [revert_where(project, state, kills_rng)] if state.pending_where else []
    table, clause = plan.choice(WHERE_CLAUSES)
    before = store_snapshot(project, table)
    live = {row[:-2] for row in before[0]}  # equal to the source rows: the last check passed, no where_clause
    original = _set_where(project, table, clause)
    selected = set(selected_source_rows(project, table))
    dropped = live - selected
    trips = len(dropped) > MAX_DELETE_FRACTION * len(live)
    code, err, kills = run_until_done(project, state, kills_rng)
    outcome = f"{len(dropped)} of {len(live)} rows dropped"
    if trips:
        assert_guard_tripped(code, err, table)
        assert store_snapshot(project, table) == before, f"{table}: the guard tripped, but its store rows changed"
        state.guard_trips += 1
        code, err, more = run_until_done(project, state, kills_rng, "--dw-etl-allow-deletes", table)
        kills += more
        outcome += ", guard tripped, rerun allowing the deletes"
    expect_code(code, err, 0, f"round {round_no}: where_clause {clause!r} on {table}")
    check(project, state)
    tombstones = {row[:-2] for row in store_snapshot(project, table)[1]}
    assert tombstones == {row[:-2] for row in before[1]} | dropped, f"{table}: the dropped rows are not the tombstones"
    state.pending_where = (table, clause, original)
    if plan.random() < 0.5:
        done.append(f"where {table} {clause!r} ({outcome}{kills_note(kills)}; kept for the next round)")
    else:
        done.append(f"where {table} {clause!r} ({outcome}{kills_note(kills)})")
        done.append(revert_where(project, state, kills_rng))
    return " then ".join(done)


def mistake_logtrunc(project: Project, state: ChaosState, plan: random.Random, kills_rng: random.Random,
                     round_no: int) -> str:
    """Truncate access.log in place to a prefix of its lines, append new ones: each line stored once."""
    log = project.root / "logs" / "access.log"
    lines = log.read_bytes().splitlines(keepends=True)
    kept = plan.randrange(0, len(lines))
    with open(log, "r+b") as handle:  # in place: the same file, shorter
        handle.truncate(sum(map(len, lines[:kept])))
        handle.seek(0, os.SEEK_END)
        added = write_lines(handle, state, plan, f"/chaos/{round_no}/after-truncation")
    code, err, kills = run_until_done(project, state, kills_rng)
    expect_code(code, err, 0, f"round {round_no}: access.log truncated to {kept} of {len(lines)} lines")
    check(project, state)
    return f"logtrunc (kept {kept} of {len(lines)} lines, {added} appended{kills_note(kills)})"


def mistake_concurrent(project: Project, state: ChaosState, plan: random.Random, kills_rng: random.Random,
                       round_no: int) -> str:
    """Two RunJobs at once (--workers 1 and 2): each exits 0 or 10, at least one 0; no step ran twice."""
    subprocess.run([sys.executable, "-m", "populate", "orders", "--changes", "1", "--seed", str(10_000 + round_no)],
                   cwd=project.root, env=project.env(), check=True, capture_output=True)
    with open(project.root / "logs" / "access.log", "ab") as handle:
        write_lines(handle, state, plan, f"/chaos/{round_no}/concurrent")
    settle()
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT coalesce(max(execution_sequence), 0) FROM etl_control.run")
    (last,) = cur.fetchone()
    first = start_job(project, 1)
    time.sleep(plan.uniform(0, 1.0))
    second = start_job(project, 2)
    ends = [proc.communicate(timeout=600) for proc in (first, second)]
    codes = (first.returncode, second.returncode)
    state.runs += 2
    state.concurrent_codes["+".join(map(str, codes))] += 1
    errors = "\n".join(f"--- RunJob {i + 1} exited {code}\n{err.decode(errors='replace')[-3000:]}"
                       for i, (code, (_, err)) in enumerate(zip(codes, ends)))
    assert set(codes) <= {0, ALREADY_RUNNING} and 0 in codes, f"round {round_no}: concurrent RunJobs exited {codes}\n{errors}"
    for code, (_, err) in zip(codes, ends):  # refused by the warehouse run lock, which names the holder
        assert code != ALREADY_RUNNING or RUN_LOCK_REFUSAL in err.decode(errors="replace"), \
            f"round {round_no}: a RunJob exited {ALREADY_RUNNING} without the run lock's refusal\n{errors}"
    state.runs += 1
    code, err = run_job(project, None, 2)
    expect_code(code, err, 0, f"round {round_no}: the run after two concurrent RunJobs")
    check(project, state)
    cur.execute("SELECT execution_sequence, step, table_name, count(*) FROM etl_control.step_log "
                "WHERE execution_sequence > %s GROUP BY 1, 2, 3 HAVING count(*) > 1 ORDER BY 1, 2, 3", [last])
    twice = cur.fetchall()
    conn.close()
    assert not twice, f"round {round_no}: concurrent RunJobs ran steps more than once: {twice[:10]}"
    return f"concurrent (exit {codes[0]} and {codes[1]})"


MISTAKE_STEPS = {"truncate": mistake_truncate, "where": mistake_where, "logtrunc": mistake_logtrunc,
                 "concurrent": mistake_concurrent}


def operator_mistakes(project: Project, state: ChaosState, plan: random.Random, kills_rng: random.Random,
                      round_no: int) -> list[str]:
    """Make one or two of ``state.enabled``'s mistakes (drawn by ``plan``; the runs after them killed
    by ``kills_rng``), each checked; returns their summaries."""
    if not state.enabled:
        return []
    kinds = plan.sample(state.enabled, min(len(state.enabled), plan.randint(1, 2)))
    done = []
    for kind in kinds:
        state.mistakes[kind] += 1
        done.append(MISTAKE_STEPS[kind](project, state, plan, kills_rng, round_no))
    return done


def plan_rng(state: ChaosState, round_no: int) -> random.Random:
    """The RNG of round ``round_no``'s plan: log lines, rotation, mistakes and their parameters. Seeded
    by ``state.seed`` and the round alone, so ``--seed`` reproduces them; kill moments (and so how many
    runs a round takes) depend on timing and come from the caller's RNG."""
    return random.Random(state.seed * 1_000_003 + round_no)


def chaos_round(project: Project, state: ChaosState, rng: random.Random, round_no: int) -> str:
    """One round (see the module docstring); ``rng`` decides the kills. Returns its summary line."""
    plan = plan_rng(state, round_no)
    subprocess.run([sys.executable, "-m", "populate", "orders", "--changes", "2", "--seed", str(round_no)],
                   cwd=project.root, env=project.env(), check=True, capture_output=True)
    append_log(project, state, plan, round_no)
    writer_proc = subprocess.Popen([sys.executable, "-m", "tests.chaos", "writer", project.source_db, "4", str(round_no)],
                                   cwd=REPO, env=project.env())
    try:
        code, err, kills = run_until_done(project, state, rng, kill_chance=0.7, max_kills=3)
        expect_code(code, err, 0, f"round {round_no}")
    finally:
        writer_proc.wait(timeout=60)
    # writer stopped: one clean run catches up with the last changes
    settle()
    state.runs += 1
    code, err = run_job(project, None, 2)
    expect_code(code, err, 0, f"round {round_no}: the clean run")
    check(project, state)
    made = operator_mistakes(project, state, plan, rng, round_no)
    return (f"round {round_no}: {kills} kills; mistakes: {'; '.join(made) or 'none'}; "
            f"{sum(state.lines.values())} log lines, {state.rows_compared} rows compared so far")


def finish(project: Project, state: ChaosState, kills_rng: random.Random) -> str | None:
    """Revert a where_clause mistake still pending after the last round (checked); its summary or None."""
    return revert_where(project, state, kills_rng) if state.pending_where else None


def totals(state: ChaosState) -> str:
    """The run's totals: kills, runs, mistakes by kind, guard trips, rows and lines compared."""
    made = ", ".join(f"{kind} {state.mistakes[kind]}" for kind in MISTAKES if kind in state.enabled) or "none"
    concurrent = (f" (exit codes {', '.join(f'{k}: {v}' for k, v in sorted(state.concurrent_codes.items()))})"
                  if state.concurrent_codes else "")
    return (f"{state.kills} kills, {state.runs} runs; mistakes: {made}{concurrent}; {state.guard_trips} guard trips; "
            f"{state.rows_compared} rows compared, {sum(state.lines.values())} log lines, 0 lost, 0 duplicated")


def parse_mistakes(text: str) -> tuple[str, ...]:
    """``--mistakes``: comma separated names of MISTAKES, ``all`` or ``none``."""
    if text.strip() in ("all", ""):
        return MISTAKES
    if text.strip() == "none":
        return ()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in MISTAKES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown mistakes {', '.join(unknown)}; choose from {', '.join(MISTAKES)}")
    return names


def main(argv=None) -> int:
    """CLI: ``python -m tests.chaos --rounds N [--seed S] [--mistakes a,b]`` or the internal ``writer DB SECONDS SEED``."""
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "writer":
        writer(argv[1], float(argv[2]), int(argv[3]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.split("\n\n")[0],
                                     epilog="Uses the local MariaDB and PostgreSQL as root: a source and a warehouse database "
                                     "of its own (t_src_<id>, t_dw_<id>) and a temporary project folder, all removed at the "
                                     "end.")
    parser.add_argument("--rounds", type=int, default=100, help="rounds to run (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the rounds' plans (default 1)")
    parser.add_argument("--scale", default="0.002", help="populate scale of the source (default 0.002)")
    parser.add_argument("--mistakes", type=parse_mistakes, default=MISTAKES,
                        help=f"comma separated operator mistakes to draw from: {','.join(MISTAKES)} (default), or none")
    args = parser.parse_args(argv)
    import shutil
    import tempfile
    import uuid

    root = Path(tempfile.mkdtemp(prefix="chaos-"))
    suffix = uuid.uuid4().hex[:10]
    project = Project(root=root, source_db=f"t_src_{suffix}", warehouse_db=f"t_dw_{suffix}")
    shutil.copytree(REPO / "extract_config", root / "extract_config")
    admin = pg_connect("postgres")
    admin.cursor().execute(f'CREATE DATABASE "{project.warehouse_db}"')
    # keep_runs: check() counts the rejects of every sequence, so no run's rejects folder may be pruned
    project.write_cfg(dw_etl={"lookback_seconds": 300, "safety_lag_seconds": SAFETY_LAG_SECONDS, "retry_delay_seconds": 0.2,
                              "keep_runs": 1_000_000})
    state = ChaosState(seed=args.seed, enabled=args.mistakes)
    rng = random.Random(args.seed)
    started = time.monotonic()
    try:
        project.populate("--scale", args.scale, "--seed", str(args.seed))
        for round_no in range(1, args.rounds + 1):
            print(chaos_round(project, state, rng, round_no), flush=True)
        last = finish(project, state, rng)
        if last:
            print(f"after round {args.rounds}: {last}", flush=True)
    finally:
        m = mysql_connect()
        m.cursor().execute(f"DROP DATABASE IF EXISTS `{project.source_db}`")
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{project.warehouse_db}" WITH (FORCE)')
        shutil.rmtree(root, ignore_errors=True)
    print(f"chaos: {args.rounds} rounds, {totals(state)}, {time.monotonic() - started:.0f} s (seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
