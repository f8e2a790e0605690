"""Retention in whole runs: old run folders and staging partitions go when a run completes, reports/latest is
the newest complete run's, an unfinished latest sequence keeps what its resume needs; S3 staging pruned against
moto's S3 server (the selection rules: tests/unit/test_retention.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


from etl import retention
from etl.staging import S3Staging
from tests.support.oracle import assert_store_equals_source
from tests.support.paths import REPO
from tests.support.s3 import CREDENTIALS
from tests.support.weblog_lines import line

AREAS = ("output", "completed", "reports", "rejects")


def _numbered(folder: Path) -> list[int]:
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def _staged(root: Path) -> dict[tuple[str, str], list[int]]:
    found: dict[tuple[str, str], list[int]] = {}
    for folder in root.glob("*/*/execution_sequence=*"):
        found.setdefault((folder.parent.parent.name, folder.parent.name), []).append(int(folder.name.split("=")[1]))
    return {key: sorted(seqs) for key, seqs in found.items()}


def _landing(project, tables: dict[tuple[str, str], str]) -> dict[tuple[str, str], list[int]]:
    """The execution_sequence values each landing table holds: its list partitions' bounds."""
    conn = project.pg()
    cur = conn.cursor()
    held = {}
    for key, table in tables.items():
        cur.execute("SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = %s::regclass", [table])
        held[key] = sorted(int(bound.removeprefix("FOR VALUES IN (").removesuffix(")")) for (bound,) in cur.fetchall())
    conn.close()
    return held


def _size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _append_log(project, sequence: int) -> None:
    logs = project.root / "logs"
    logs.mkdir(exist_ok=True)
    with open(logs / "access.log", "ab") as handle:
        handle.write(line("run", sequence) + f"not a request line, run {sequence}\n".encode())


def test_runs_keep_the_last_keep_runs_and_staging_follows_landing(project):
    project.populate("--scale", "0.001", "--seed", "61")
    sql_dir = project.root / "sql"
    shutil.copytree(REPO / "sql", sql_dir)
    project.write_cfg(dw_etl={"keep_runs": 2, "landing_keep_sequences": 2, "sql_dir": str(sql_dir)})
    root = project.root
    landing_tables = {("mysql", t): e["landing_table"] for t, e in project.metadata().items()}
    landing_tables[("weblog", "access")] = "landing.weblog_access"
    for sequence in (1, 2, 3, 4):
        if sequence > 1:
            project.populate("--changes", "5", "--seed", str(60 + sequence))
        _append_log(project, sequence)
        if sequence == 4:  # what run 4 is to remove: sequence 2's folders and staging
            folders = [_size(root / area / "2") for area in AREAS]
            staged = [_size(p) for p in root.glob("staging/*/*/execution_sequence=2")]
        proc = project.run()
    for area in AREAS:
        assert _numbered(root / area) == [3, 4], area
    assert _staged(root / "staging") == _landing(project, landing_tables) == {key: [3, 4] for key in landing_tables}
    latest = root / "reports" / "latest"
    assert os.readlink(latest) == "4"
    assert (latest / "dashboard.html").read_bytes() == (root / "reports" / "4" / "dashboard.html").read_bytes()
    assert "<p class='footnote'>Execution sequence 4. " in (latest / "dashboard.html").read_text()
    line_4 = (f"retention: removed 4 run folder(s) (output 1, completed 1, reports 1, rejects 1; "
              f"{sum(f for f, _ in folders):,} files, {sum(b for _, b in folders):,} bytes) and 7 staging partition(s) "
              f"({sum(f for f, _ in staged):,} files, {sum(b for _, b in staged):,} bytes); kept runs 3..4 (keep_runs 2) "
              f"and staging of sequences 3..4 (landing_keep_sequences 2); {latest} -> 4")
    assert len(staged) == 7 and line_4 in proc.stderr
    summary = json.loads((project.output(4) / "RunJob.json").read_text())["retention"]
    assert summary["text"] == line_4 and summary["problems"] == []
    assert {area: c["sequences"] for area, c in summary["runs"].items()} == {area: [2] for area in AREAS}

    # an unfinished latest sequence: run 5 fails at its reports; it removes nothing, latest stays at run 4
    report = sql_dir / "reports" / "sql_top_login_countries.sql"
    report.write_text("SELECT 1 / 0 AS broken\n")  # (a new report file would make sequence 4 incomplete)
    project.populate("--changes", "5", "--seed", "65")
    _append_log(project, 5)
    proc = project.run(expect=30)
    assert "retention:" not in proc.stderr
    for area in ("output", "completed", "rejects"):
        assert _numbered(root / area) == [3, 4, 5], area
    assert _numbered(root / "reports") == [3, 4] and os.readlink(latest) == "4"
    assert _staged(root / "staging") == {key: [3, 4, 5] for key in landing_tables}
    extracts = {p.name: p.read_bytes() for p in project.output(5).glob("*.extract.json")}
    assert len(extracts) == len(landing_tables)
    # its resume needs its staging: rerun one landing step of sequence 5 (README: delete its marker)
    (project.output(5) / "mysql_order_lines.landing.json").unlink()
    shutil.copyfile(REPO / "sql" / "reports" / report.name, report)
    proc = project.run()
    assert "execution sequence 5 (latest known 5)" in proc.stderr
    assert {p.name: p.read_bytes() for p in project.output(5).glob("*.extract.json")} == extracts  # not extracted again
    landed = json.loads((project.output(5) / "mysql_order_lines.landing.json").read_text())
    assert landed["rows"] == json.loads(extracts["mysql_order_lines.extract.json"])["rows"] and not landed.get("streamed")
    for area in AREAS:
        assert _numbered(root / area) == [4, 5], area
    assert _staged(root / "staging") == _landing(project, landing_tables) == {key: [4, 5] for key in landing_tables}
    assert os.readlink(latest) == "5" and "<p class='footnote'>Execution sequence 5. " in (latest / "dashboard.html").read_text()
    assert_store_equals_source(project)


def test_keep_runs_0_is_refused_before_a_sequence_opens(project):
    proc = project.run("--dw-etl-keep-runs", "0", expect=35)
    assert ("[dw_etl] keep_runs = '0' (set by the command line flag --dw-etl-keep-runs) must be an integer between 1 "
            "and 2147483647 (the runs whose numbered folders output/, completed/, reports/ and rejects/ keep; "
            "default 30)") in proc.stderr
    assert not (project.root / "output").exists()


def _keys(s3, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_s3_staging_prefixes_of_old_sequences_are_deleted(s3, s3_server):
    bucket = "dw-retention-test"
    s3.create_bucket(Bucket=bucket)
    staging = S3Staging(f"s3://{bucket}/elt", s3_server)
    for sequence in (1, 2, 3, 4):
        for source, table, parts in (("mysql", "orders", 2), ("weblog", "access", 1)):
            with staging.write_parts(source, table, sequence) as files:
                for part in range(parts):
                    files.part(part, b"header\n").write(b"x" * sequence)
    others = ["elt/mysql/orders/notes.txt", "elt/readme", "other/mysql/orders/execution_sequence=1/part-00000.csv.gz"]
    for key in others:
        s3.put_object(Bucket=bucket, Key=key, Body=b"not ours to prune")
    before = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    pruned = [k for k in before if k.startswith("elt/") and "/execution_sequence=" in k
              and int(k.split("execution_sequence=")[1].split("/")[0]) <= 2]
    assert len(pruned) == 6
    counts, problems = retention.prune_staging(staging, 4, 2)
    assert problems == []
    assert counts == {"partitions": 4, "files": 6, "bytes": sum(before[k] for k in pruned), "sequences": [1, 2]}
    assert _keys(s3, bucket) == sorted(set(before) - set(pruned))
    assert [k for k in _keys(s3, bucket) if k not in others] == [
        f"elt/{path}/execution_sequence={seq}/part-0000{part}.csv.gz"
        for path, parts in (("mysql/orders", 2), ("weblog/access", 1)) for seq in (3, 4) for part in range(parts)]

    counts, problems = retention.prune_staging(S3Staging("s3://no-such-bucket/elt", s3_server), 4, 2)
    assert counts["partitions"] == 0 and problems == [
        "could not list staging s3://no-such-bucket/elt: S3 staging s3://no-such-bucket/elt: bucket 'no-such-bucket' "
        "does not exist; create it or fix [staging] uri"]


def test_a_completed_run_prunes_s3_staging_to_the_landing_sequences(project, s3, s3_server):
    bucket = "dw-retention-run"
    s3.create_bucket(Bucket=bucket)
    project.populate("--scale", "0.001", "--seed", "62")
    project.write_cfg(staging={"uri": f"s3://{bucket}/elt", "s3_endpoint_url": s3_server},
                      dw_etl={"landing_keep_sequences": 1})
    env = project.env(**CREDENTIALS)
    _append_log(project, 1)
    project.run(env=env)
    expected = {f"elt/mysql/{t}/execution_sequence={{}}/part-00000.csv.gz" for t in project.metadata()}
    expected.add("elt/weblog/access/execution_sequence={}/part-00000.csv.gz")
    assert _keys(s3, bucket) == sorted(k.format(1) for k in expected)
    project.populate("--changes", "5", "--seed", "63")
    _append_log(project, 2)
    proc = project.run(env=env)
    assert _keys(s3, bucket) == sorted(k.format(2) for k in expected)
    assert f"and {len(expected)} staging partition(s)" in proc.stderr
    assert_store_equals_source(project)
