"""Access logs that cannot be read, through the whole job: skipped with a warning and counted, every other
file and every MySQL table loaded, retried next run; `[weblog] paths` that match no file warn every run."""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter

from tests.support.oracle import assert_store_equals_source
from tests.support.weblog_lines import line, truncated_gzip

RETRIED = "Nothing of it is recorded as read: it is retried on every run"


def lines(tag: str, count: int) -> list[bytes]:
    return [line(tag, i) for i in range(count)]


def requested_paths(raw: list[bytes]) -> Counter:
    """The request path of each line, counted from the bytes we wrote (independent of the parser)."""
    return Counter(r.split(b'"')[1].split(b" ")[1].decode() for r in raw)


def stored(project) -> tuple[Counter, int, int]:
    """(paths of store_weblog.access counted, its rows, its distinct access keys)."""
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT path FROM store_weblog.access")
    paths = Counter(r[0] for r in cur.fetchall())
    cur.execute("SELECT count(*), count(DISTINCT access_key) FROM store_weblog.access")
    rows, keys = cur.fetchone()
    conn.close()
    return paths, rows, keys


def marker(project, seq: int, name: str) -> dict:
    return json.loads((project.output(seq) / name).read_text())


def test_a_damaged_gzip_and_a_foreign_link_are_skipped_and_the_gzip_loads_once_fixed(project):
    project.populate("--scale", "0.001")
    logs, private = project.root / "logs", project.root / "private"
    logs.mkdir()
    private.mkdir()
    plain, rotated, damaged = lines("a", 120), lines("b", 80), lines("c", 3000)
    (logs / "access.log").write_bytes(b"".join(plain))
    (logs / "access.log.2.gz").write_bytes(gzip.compress(b"".join(rotated)))
    half = logs / "access.log.3.gz"  # a half-written gzip: its first 4 KiB decompress, the rest is missing
    half.write_bytes(truncated_gzip(b"".join(damaged)))
    secret = private / "secret.log"
    secret.write_bytes(b"".join(lines("s", 10)))
    os.chmod(secret, 0o600)
    evil = logs / "access.log.evil"
    evil.symlink_to(secret)

    proc = project.run()
    output = proc.stdout + proc.stderr
    paths, rows, keys = stored(project)
    assert paths == requested_paths(plain + rotated)  # the good files' lines, each once; nothing of the others
    assert rows == keys == 200
    assert assert_store_equals_source(project) > 0  # every MySQL table loaded
    half_warning = (f"log {half} skipped: a truncated or corrupt gzip file (EOFError: Compressed file ended before "
                    f"the end-of-stream marker was reached); replace it with a complete copy (`gzip -t {half}` tests "
                    f"one); a file still being compressed is read once it is complete. {RETRIED}")
    evil_warning = (f"log {evil} skipped: a symbolic link to {secret}, outside the log folders ({logs}); logs are "
                    f"read only from the folders of [weblog] paths: move the file there or remove the link. {RETRIED}")
    assert "WARNING etl.weblog.load" in output and half_warning in output and evil_warning in output
    extract = marker(project, 1, "weblog_access.extract.json")
    assert extract["skipped_files"] == 2 and sorted(s["path"] for s in extract["skipped"]) == sorted([str(evil), str(half)])
    assert (extract["lines"], extract["rows"], extract["no_match"]) == (200, 200, None)
    warnings = marker(project, 1, "RunJob.json")["warnings"]
    assert f"access logs: {evil_warning}" in warnings and f"access logs: {half_warning}" in warnings
    assert f"WARNING access logs: {half_warning}" in output  # the rendered run summary
    assert not (project.root / "rejects" / "1").exists()  # the secret was never read

    half.write_bytes(gzip.compress(b"".join(damaged)))  # the complete copy arrives
    project.run()
    paths, rows, keys = stored(project)
    assert paths == requested_paths(plain + rotated + damaged)
    assert rows == keys == 3200
    extract = marker(project, 2, "weblog_access.extract.json")
    assert (extract["lines"], extract["skipped_files"]) == (3000, 1)
    assert [s["path"] for s in extract["skipped"]] == [str(evil)]

    project.run()  # nothing new: nothing read twice
    assert stored(project) == (paths, 3200, 3200)
    assert marker(project, 3, "weblog_access.extract.json")["lines"] == 0


def test_paths_matching_no_file_warn_on_every_run(project):
    project.populate("--scale", "0.001")
    project.write_cfg(weblog={"paths": "lgs/access.log*"})
    warning = (f"[weblog] paths = lgs/access.log* matches no file (relative patterns resolve against {project.root}, "
               f"the folder of {project.cfg_path}, which sets [weblog] paths; folder lgs does not exist): no access "
               "logs are read. Fix the patterns, or set [weblog] paths empty to read no logs")
    for seq in (1, 2):
        proc = project.run()
        output = proc.stdout + proc.stderr
        assert "WARNING etl.weblog.load[" in output and warning in output
        assert f"WARNING access logs: {warning}" in output  # the run summary
        assert f"access logs: {warning}" in marker(project, seq, "RunJob.json")["warnings"]
    assert assert_store_equals_source(project) > 0


def test_a_resumed_extract_that_finds_a_file_damaged_forgets_the_earlier_attempts_read(project):
    """Attempt 1 of sequence 1 read the gzip (its window's read position set); before the sequence
    completes the file is damaged, and attempt 2 skips it: the position must not advance with what
    attempt 2 did not stage, or the file's lines would never load."""
    project.populate("--scale", "0.001")
    logs = project.root / "logs"
    logs.mkdir()
    plain, rotated = lines("a", 50), lines("b", 3000)
    (logs / "access.log").write_bytes(b"".join(plain))
    gz = logs / "access.log.2.gz"
    gz.write_bytes(gzip.compress(b"".join(rotated)))
    project.run("--execution-sequence", "1", task="ExtractWeblog")
    assert marker(project, 1, "weblog_access.extract.json")["lines"] == 3050
    (project.output(1) / "weblog_access.extract.json").unlink()  # the extract runs again when sequence 1 resumes
    gz.write_bytes(truncated_gzip(b"".join(rotated)))  # same first lines: the same identity, its window
    project.run()
    extract = marker(project, 1, "weblog_access.extract.json")
    assert (extract["lines"], [s["path"] for s in extract["skipped"]]) == (50, [str(gz)])
    assert stored(project) == (requested_paths(plain), 50, 50)

    gz.write_bytes(gzip.compress(b"".join(rotated)))
    project.run()
    assert marker(project, 2, "weblog_access.extract.json")["lines"] == 3000
    assert stored(project) == (requested_paths(plain + rotated), 3050, 3050)
