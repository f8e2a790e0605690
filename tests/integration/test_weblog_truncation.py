"""Access logs truncated or rewritten in place: a new generation of the identity, stored history never overwritten.

The weblog chain does not read the MySQL source, so these tests do not take the ``variant``
fixture (the source schema makes no difference to them).
"""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter

UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"


def good(tag: str, i: int) -> bytes:
    return f'8.8.8.8 - - [10/Oct/2025:13:{i // 60 % 60:02d}:{i % 60:02d} +0000] "GET /{tag}/{i} HTTP/1.1" 200 {i} "-" "{UA}"\n'.encode()


def lines(tag: str, count: int, first: int = 0) -> list[bytes]:
    return [good(tag, i) for i in range(first, first + count)]


def store_rows(project) -> dict[str, tuple]:
    """Every row of store_weblog.access, all columns, by access_key."""
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT * FROM store_weblog.access")
    names = [d[0] for d in cur.description]
    rows = {row[names.index("access_key")]: row for row in cur.fetchall()}
    conn.close()
    return rows


def keys_lines_paths(project) -> Counter:
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT access_key, line_no, path FROM store_weblog.access")
    found = Counter(cur.fetchall())
    conn.close()
    return found


def extract_marker(project, seq: int) -> dict:
    return json.loads((project.output(seq) / "weblog_access.extract.json").read_text())


def identity_of(rows: dict) -> str:
    (identity,) = {key.split(":")[0] for key in rows}
    return identity


def rotate_and_compress(project, log):
    """Rotate ``log`` as logrotate does after a line written before the rename: ``access.log`` ->
    ``access.log.1``, a new ``access.log`` of 10 lines, a run (sequence 4: 11 lines read), then
    ``access.log.1`` gzip-compressed (a new file, a new inode) and the run after it, returned."""
    logs = log.parent
    with open(log, "ab") as handle:
        handle.write(good("last", 0))
    os.rename(log, logs / "access.log.1")
    log.write_bytes(b"".join(lines("d", 10)))
    project.run()
    assert extract_marker(project, 4)["lines"] == 11
    with open(logs / "access.log.1", "rb") as src, gzip.open(logs / "access.log.1.gz", "wb") as dst:
        dst.write(src.read())
    os.remove(logs / "access.log.1")
    return project.run()


def test_a_log_truncated_in_place_and_appended_keeps_every_stored_line(project):
    project.populate("--scale", "0.001")
    logs = project.root / "logs"
    logs.mkdir()
    log = logs / "access.log"
    original = lines("a", 100)
    log.write_bytes(b"".join(original))
    project.run()
    first = store_rows(project)
    assert len(first) == 100
    identity = identity_of(first)
    assert set(first) == {f"{identity}:{n}" for n in range(1, 101)}  # generation 0: the keys as ever

    # truncated in place to its first 50 lines, then 20 new lines
    os.truncate(log, len(b"".join(original[:50])))
    with open(log, "ab") as handle:
        handle.write(b"".join(lines("n", 20)))
    assert log.stat().st_size < len(b"".join(original))
    second_run = project.run()
    after = store_rows(project)
    assert {k: after[k] for k in first} == first  # every stored row unchanged
    new = {k: v for k, v in after.items() if k not in first}
    assert set(new) == {f"{identity}.g1:{n}" for n in range(51, 71)}
    assert keys_lines_paths(project) - Counter((k, int(k.split(":")[1]), f"/a/{int(k.split(':')[1]) - 1}") for k in first) \
        == Counter((f"{identity}.g1:{n}", n, f"/n/{n - 51}") for n in range(51, 71))
    assert (f"log {log} (identity {identity}) was truncated in place: 100 lines ({len(b''.join(original))} bytes) "
            "had been read") in second_run.stderr
    assert f"its first 50 lines are unchanged and stay; new generation 1 starts at line 51 (keys {identity}.g1:<line>)" \
        in second_run.stderr
    assert "WARNING access logs: 1 log file(s) truncated or rewritten in place started a new generation" \
        in second_run.stderr  # in the run summary too
    marker = extract_marker(project, 2)
    assert (marker["lines"], marker["rows"], marker["new_generations"]) == (20, 20, 1)
    (entry,) = marker["files"]
    assert (entry["generation"], entry["new_generation"], entry["replaced_offset"], entry["start_offset"]) == (
        1, True, len(b"".join(original)), len(b"".join(original[:50])))

    # the same sequence again (its weblog markers deleted) after 5 more lines: it reads exactly its recorded
    # window (the same 20 lines, the same keys), nothing twice; the 5 lines wait for the next sequence
    with open(log, "ab") as handle:
        handle.write(b"".join(lines("m", 5)))
    for step in ("extract", "landing", "store"):
        (project.output(2) / f"weblog_access.{step}.json").unlink()
    rerun = project.run()
    assert "execution sequence 2" in rerun.stderr and not project.output(3).exists()
    assert "was truncated in place" not in rerun.stderr  # the window was recorded: no second detection
    assert store_rows(project) == after
    assert extract_marker(project, 2)["lines"] == 20

    # appended lines continue generation 1, without another warning
    third = project.run()
    assert "in place" not in third.stderr
    assert extract_marker(project, 3)["new_generations"] == 0
    grown = store_rows(project)
    assert {k: grown[k] for k in after} == after
    assert set(grown) - set(after) == {f"{identity}.g1:{n}" for n in range(71, 76)}

    # rotation after the truncation: access.log -> access.log.1 (plus a line written before the rename),
    # a new access.log, then access.log.1 compressed: every line exactly once
    rotate_and_compress(project, log)
    assert extract_marker(project, 5)["lines"] == 0
    final = store_rows(project)
    assert {k: final[k] for k in grown} == grown
    assert f"{identity}.g1:76" in final
    expected = Counter({f"/a/{i}": 1 for i in range(100)}) + Counter({f"/n/{i}": 1 for i in range(20)}) \
        + Counter({f"/m/{i}": 1 for i in range(5)}) + Counter({"/last/0": 1}) + Counter({f"/d/{i}": 1 for i in range(10)})
    assert Counter(path for _, _, path in keys_lines_paths(project)) == expected


def test_a_log_rewritten_in_place_with_the_same_first_lines_starts_a_new_generation(project):
    project.populate("--scale", "0.001")
    logs = project.root / "logs"
    logs.mkdir()
    log = logs / "access.log"
    original = lines("a", 100)
    log.write_bytes(b"".join(original))
    project.run()
    first = store_rows(project)
    identity = identity_of(first)

    # rewritten in place: the first 40 lines (over 4 KiB, so the same identity), then other content, longer
    rewritten = original[:40] + lines("r", 70, first=40)
    log.write_bytes(b"".join(rewritten))
    assert log.stat().st_size > len(b"".join(original))
    proc = project.run()
    assert f"log {log} (identity {identity}) was rewritten in place: 100 lines" in proc.stderr
    assert "new generation 1 starts at line 41" in proc.stderr
    after = store_rows(project)
    assert {k: after[k] for k in first} == first
    assert set(after) - set(first) == {f"{identity}.g1:{n}" for n in range(41, 111)}
    assert extract_marker(project, 2)["new_generations"] == 1

    # generation 1 truncated to 60 lines (40 of generation 0, 20 of generation 1), then 5 new: the kept lines
    # are compared with the generation that stored them, generation 2 starts at line 61
    os.truncate(log, len(b"".join(rewritten[:60])))
    with open(log, "ab") as handle:
        handle.write(b"".join(lines("s", 5)))
    proc = project.run()
    assert "was truncated in place: 110 lines" in proc.stderr
    assert f"its first 60 lines are unchanged and stay; new generation 2 starts at line 61 (keys {identity}.g2:<line>)" \
        in proc.stderr
    final = store_rows(project)
    assert {k: final[k] for k in after} == after
    assert set(final) - set(after) == {f"{identity}.g2:{n}" for n in range(61, 66)}
    expected = Counter({f"/a/{i}": 1 for i in range(100)}) + Counter({f"/r/{i}": 1 for i in range(40, 110)}) \
        + Counter({f"/s/{i}": 1 for i in range(5)})
    assert Counter(path for _, _, path in keys_lines_paths(project)) == expected


def test_positions_recorded_before_generations_existed_still_catch_a_truncation(project):
    project.populate("--scale", "0.001")
    logs = project.root / "logs"
    logs.mkdir()
    log = logs / "access.log"
    original = lines("a", 60)
    log.write_bytes(b"".join(original))
    project.run()
    first = store_rows(project)
    identity = identity_of(first)
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT generation, tail_digest IS NOT NULL FROM etl_control.weblog_file")
    assert cur.fetchall() == [(0, True)]
    # a warehouse from before: the columns were added in place, empty
    cur.execute("UPDATE etl_control.weblog_file SET generation = NULL, tail_digest = NULL")
    conn.commit()
    conn.close()
    os.truncate(log, len(b"".join(original[:30])))
    with open(log, "ab") as handle:
        handle.write(b"".join(lines("n", 3)))
    proc = project.run()
    assert "new generation 1 starts at line 31" in proc.stderr
    after = store_rows(project)
    assert {k: after[k] for k in first} == first
    assert set(after) - set(first) == {f"{identity}.g1:{n}" for n in (31, 32, 33)}


def test_a_log_truncated_below_its_fingerprint_bytes_keeps_its_identity_by_inode(project):
    project.populate("--scale", "0.001")
    logs = project.root / "logs"
    logs.mkdir()
    log = logs / "access.log"
    original = lines("a", 60)
    log.write_bytes(b"".join(original))
    project.run()
    first = store_rows(project)
    identity = identity_of(first)
    assert set(first) == {f"{identity}:{n}" for n in range(1, 61)}
    inode = f"{log.stat().st_dev}:{log.stat().st_ino}"

    # truncated to its first 5 lines (fewer bytes than its fingerprint covers), then 10 new lines
    assert len(b"".join(original[:5])) < 4096 < len(b"".join(original))
    os.truncate(log, len(b"".join(original[:5])))
    with open(log, "ab") as handle:
        handle.write(b"".join(lines("n", 10)))
    proc = project.run()
    assert f"log {log} (identity {identity}) was truncated in place: 60 lines" in proc.stderr
    assert f"its first 5 lines are unchanged and stay; new generation 1 starts at line 6 (keys {identity}.g1:<line>)" \
        in proc.stderr
    after = store_rows(project)
    assert {k: after[k] for k in first} == first  # every stored row unchanged
    assert set(after) - set(first) == {f"{identity}.g1:{n}" for n in range(6, 16)}
    assert keys_lines_paths(project) - Counter((k, int(k.split(":")[1]), f"/a/{int(k.split(':')[1]) - 1}") for k in first) \
        == Counter((f"{identity}.g1:{n}", n, f"/n/{n - 6}") for n in range(6, 16))
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT file_id, inode, alias_id IS NOT NULL, alias_bytes, generation, line_no FROM etl_control.weblog_file")
    assert cur.fetchall() == [(identity, inode, True, len(b"".join(original[:5] + lines("n", 10))), 1, 15)]
    conn.close()

    # the same sequence again (its weblog markers deleted) after 2 more lines: its recorded window finds the
    # file (no longer matching its identity's fingerprint) and reads the same 10 lines with the same keys
    with open(log, "ab") as handle:
        handle.write(b"".join(lines("p", 2)))
    for step in ("extract", "landing", "store"):
        (project.output(2) / f"weblog_access.{step}.json").unlink()
    rerun = project.run()
    assert "execution sequence 2" in rerun.stderr and not project.output(3).exists()
    assert "was truncated in place" not in rerun.stderr and "is gone" not in rerun.stderr
    assert extract_marker(project, 2)["lines"] == 10
    assert store_rows(project) == after

    # it grows: read on by its alias, no other warning
    with open(log, "ab") as handle:
        handle.write(b"".join(lines("m", 3)))
    proc = project.run()
    assert "in place" not in proc.stderr
    assert extract_marker(project, 3)["lines"] == 5
    grown = store_rows(project)
    assert set(grown) - set(after) == {f"{identity}.g1:{n}" for n in range(16, 21)}

    # rotation: access.log -> access.log.1 (plus a line written before the rename), a new access.log,
    # then access.log.1 compressed (a new inode): every line exactly once
    proc = rotate_and_compress(project, log)
    assert "in place" not in proc.stderr
    assert extract_marker(project, 5)["lines"] == 0
    final = store_rows(project)
    assert {k: final[k] for k in grown} == grown
    assert f"{identity}.g1:21" in final
    expected = Counter({f"/a/{i}": 1 for i in range(60)}) + Counter({f"/n/{i}": 1 for i in range(10)}) \
        + Counter({f"/p/{i}": 1 for i in range(2)}) + Counter({f"/m/{i}": 1 for i in range(3)}) + Counter({"/last/0": 1}) + Counter({f"/d/{i}": 1 for i in range(10)})
    assert Counter(path for _, _, path in keys_lines_paths(project)) == expected
