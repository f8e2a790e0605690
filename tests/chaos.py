"""Chaos rounds: kills, concurrent writers, late commits, log rotation; nothing lost or duplicated.

Long run (documented in the README), from the repository root::

    .venv/bin/python -m tests.chaos --rounds 100 --seed 1

Each round: a day of source changes; a concurrent writer process keeps updating,
inserting, soft- and hard-deleting (some transactions commit late, after sleeping) while
``RunJob`` runs; access-log lines are appended (sometimes the log is rotated and the old
file gzip-compressed; some lines are malformed, some identical); in some rounds ``RunJob``
is killed with SIGKILL at a random moment and rerun until it completes. After the round
(writer stopped, one clean run to catch up) every store table must equal its source,
every log line written so far must be in store_weblog.access exactly once, and the
rejects files must hold exactly the malformed lines. Prints one summary line per round
and a total.
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

from tests.support.databases import mysql_connect, pg_connect
from tests.support.oracle import assert_store_equals_source
from tests.support.paths import REPO
from tests.support.project import Project

SAFETY_LAG_SECONDS = 1
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"


@dataclass
class ChaosState:
    """What the rounds wrote, to check against."""

    lines: Counter = field(default_factory=Counter)  # request path -> times written
    malformed: int = 0
    kills: int = 0
    runs: int = 0
    rows_compared: int = 0


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
        for i in range(rng.randrange(20, 200)):
            if rng.random() < 0.03:
                handle.write(b"garbage \xff line\n")
                state.malformed += 1
                continue
            path = f"/chaos/{round_no}/{i}"
            line = f'8.8.8.8 - - [10/Oct/2025:13:55:36 +0000] "GET {path} HTTP/1.1" 200 1 "-" "{UA}"\n'.encode()
            copies = 2 if rng.random() < 0.05 else 1
            handle.write(line * copies)
            state.lines[path] += copies


def run_job(project: Project, kill_after: float | None, workers: int) -> int | None:
    """Start RunJob; SIGKILL its process group after ``kill_after`` s; returns its exit code (None if killed)."""
    luigi = Path(sys.executable).with_name("luigi")
    cmd = [str(luigi), "RunJob", "--module", "luigi_dw_etl", "--local-scheduler", "--workers", str(workers)]
    proc = subprocess.Popen(cmd, cwd=project.root, env=project.env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None
    _, err = proc.communicate(timeout=600)
    if proc.returncode != 0:
        sys.stderr.write(err.decode(errors="replace")[-3000:])
    return proc.returncode


def check(project: Project, state: ChaosState) -> None:
    """Store equals source; each written log line stored exactly as often as written; rejects exact."""
    state.rows_compared += assert_store_equals_source(project)
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT path, count(*) FROM store_weblog.access GROUP BY path")
    stored = Counter(dict(cur.fetchall()))
    conn.close()
    missing = state.lines - stored
    extra = stored - state.lines
    assert not missing and not extra, f"log lines lost {sum(missing.values())}, duplicated {sum(extra.values())}"
    rejects = sum(len(p.read_text().splitlines()) for p in (project.root / "rejects").rglob("*.rejects.jsonl"))
    assert rejects == state.malformed, f"{rejects} rejected lines on file, {state.malformed} written"


def chaos_round(project: Project, state: ChaosState, rng: random.Random, round_no: int) -> str:
    """One round (see the module docstring); returns its summary line."""
    subprocess.run([sys.executable, "-m", "populate", "orders", "--changes", "2", "--seed", str(round_no)],
                   cwd=project.root, env=project.env(), check=True, capture_output=True)
    append_log(project, state, rng, round_no)
    writer_proc = subprocess.Popen([sys.executable, "-m", "tests.chaos", "writer", project.source_db, "4", str(round_no)],
                                   cwd=REPO, env=project.env())
    kills = 0
    try:
        while True:
            kill = rng.uniform(0.2, 2.0) if rng.random() < 0.7 and kills < 3 else None
            state.runs += 1
            code = run_job(project, kill, rng.choice((1, 2)))
            if code is None:
                kills += 1
                continue
            assert code == 0, f"round {round_no}: RunJob exited {code}"
            break
    finally:
        writer_proc.wait(timeout=60)
    # writer stopped: wait out the safety lag (windows end at source clock - lag, and
    # UTC_TIMESTAMP() has whole seconds), then one clean run catches up with the last changes
    time.sleep(SAFETY_LAG_SECONDS + 1.1)
    state.runs += 1
    assert run_job(project, None, 2) == 0
    state.kills += kills
    check(project, state)
    return f"round {round_no}: {kills} kills, {sum(state.lines.values())} log lines, {state.rows_compared} rows compared so far"


def main(argv=None) -> int:
    """CLI: ``python -m tests.chaos --rounds N [--seed S]`` or the internal ``writer DB SECONDS SEED``."""
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "writer":
        writer(argv[1], float(argv[2]), int(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", default="0.002")
    args = parser.parse_args(argv)
    import tempfile
    import uuid

    root = Path(tempfile.mkdtemp(prefix="chaos-"))
    suffix = uuid.uuid4().hex[:10]
    project = Project(root=root, source_db=f"t_src_{suffix}", warehouse_db=f"t_dw_{suffix}")
    import shutil

    shutil.copytree(REPO / "extract_config", root / "extract_config")
    admin = pg_connect("postgres")
    admin.cursor().execute(f'CREATE DATABASE "{project.warehouse_db}"')
    project.write_cfg(dw_etl={"lookback_seconds": 300, "safety_lag_seconds": SAFETY_LAG_SECONDS, "retry_delay_seconds": 0.2})
    state = ChaosState()
    rng = random.Random(args.seed)
    started = time.monotonic()
    try:
        project.populate("--scale", args.scale, "--seed", str(args.seed))
        for round_no in range(1, args.rounds + 1):
            print(chaos_round(project, state, rng, round_no), flush=True)
    finally:
        m = mysql_connect()
        m.cursor().execute(f"DROP DATABASE IF EXISTS `{project.source_db}`")
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{project.warehouse_db}" WITH (FORCE)')
        shutil.rmtree(root, ignore_errors=True)
    print(f"chaos: {args.rounds} rounds, {state.kills} kills, {state.runs} runs, {state.rows_compared} rows compared, "
          f"{sum(state.lines.values())} log lines, 0 lost, 0 duplicated, {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
