"""Access logs through the whole job: rejects, appends, partial lines, rotation, gzip, truncation."""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter

UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
BAD = [
    b"\n",
    b"not a log line\n",
    b'203.0.113.9 - - [10/Oct/2024:13:55:36 +0000] "GET /truncated\n',
    b"\xff\xfe\xc3\x28 garbage\n",
    b'198.51.100.7 - - 10/Oct/2024:13:55:36 +0000 "GET / HTTP/1.1" 200 12 "-" "x"\n',
]


def good(tag: str, i: int, user: str = "-", ip: str = "8.8.8.8") -> bytes:
    return f'{ip} - {user} [10/Oct/2025:13:{i // 60 % 60:02d}:{i % 60:02d} -0700] "GET /{tag}/{i} HTTP/1.1" 200 {i} "-" "{UA}"\n'.encode()


def stored(project) -> Counter:
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT path FROM store_weblog.access")
    paths = Counter(r[0] for r in cur.fetchall())
    conn.close()
    return paths


def summary(project, seq: int) -> dict:
    data = json.loads((project.output(seq) / "RunJob.json").read_text())
    return {r["table"]: r for r in data["tables"]}["weblog_access"]


def test_access_log_lines_load_exactly_once(project):
    project.populate("--scale", "0.001")
    logs = project.root / "logs"
    logs.mkdir()
    log = logs / "access.log"
    lines, expected = [], Counter()
    for i in range(100):
        lines.append(good("a", i))
        expected[f"/a/{i}"] += 1
        if i % 20 == 7:
            lines.append(BAD[(i // 20) % len(BAD)])
    # structurally valid with invalid UTF-8 inside the user agent: kept, decoded with U+FFFD
    lines.append(b'8.8.4.4 - - [10/Oct/2025:14:00:00 +0000] "GET /a/utf8 HTTP/1.1" 200 1 "-" "bad \xff\xfe agent"\n')
    expected["/a/utf8"] += 1
    log.write_bytes(b"".join(lines))

    project.run()
    assert stored(project) == expected
    s = summary(project, 1)
    assert (s["lines"], s["rejected"], s["inserted"]) == (106, 5, 101)
    rejects = [json.loads(x) for x in (project.root / "rejects" / "1" / "access.log.rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == 5
    assert {r["line_no"] for r in rejects} == {i + 1 for i, raw in enumerate(lines) if raw in BAD}
    assert all(r["file"] == str(log) and r["reason"] for r in rejects)
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT user_agent, line_no, access_key FROM store_weblog.access WHERE path = '/a/utf8'")
    agent, line_no, key = cur.fetchone()
    assert agent == "bad \ufffd\ufffd agent" and line_no == 106 and key.endswith(":106")
    cur.execute("SELECT request_timestamp_converted::text, country, device FROM store_weblog.access WHERE path = '/a/0'")
    assert cur.fetchone() == ("2025-10-10 20:00:00", "US", "iPhone")

    # appended lines, and a last line still being written (no newline yet)
    with open(log, "ab") as handle:
        for i in range(20):
            handle.write(good("b", i))
            expected[f"/b/{i}"] += 1
        handle.write(good("c", 1)[:30])
    project.run()
    assert stored(project) == expected
    assert summary(project, 2)["lines"] == 20

    # the line completes, then logrotate: access.log -> access.log.1, a new access.log
    with open(log, "ab") as handle:
        handle.write(good("c", 1)[30:])
        expected["/c/1"] += 1
    os.rename(log, logs / "access.log.1")
    log.write_bytes(b"".join(good("d", i) for i in range(10)))
    expected.update(f"/d/{i}" for i in range(10))
    project.run()
    assert stored(project) == expected
    assert summary(project, 3)["lines"] == 11

    # the rotated file is compressed: recognised by its identity, nothing read twice
    with open(logs / "access.log.1", "rb") as src, gzip.open(logs / "access.log.1.gz", "wb") as dst:
        dst.write(src.read())
    os.remove(logs / "access.log.1")
    project.run()
    assert stored(project) == expected
    assert summary(project, 4)["lines"] == 0

    # two identical requests are two rows
    with open(log, "ab") as handle:
        handle.write(good("e", 1) * 2)
    expected["/e/1"] += 2
    project.run()
    assert stored(project) == expected

    # a file replaced by a new one with another first line is read from its start
    log.write_bytes(b"".join(good("f", i, ip="81.2.69.142") for i in range(3)))
    expected.update(f"/f/{i}" for i in range(3))
    project.run()
    assert stored(project) == expected
    cur.execute("SELECT DISTINCT country FROM store_weblog.access WHERE path LIKE '/f/%'")
    assert cur.fetchall() == [("GB",)]
    conn.close()


def test_report_weblog_access_joins_customers(project):
    project.populate("--scale", "0.001")
    conn = project.mysql()
    cur = conn.cursor()
    cur.execute("SELECT username, customer_full_name, country FROM customers ORDER BY username LIMIT 2")
    (user1, name1, country1), (user2, _, _) = cur.fetchall()
    logs = project.root / "logs"
    logs.mkdir()
    (logs / "access.log").write_bytes(good("x", 1, user=user1) + good("x", 2, user=user2) + good("x", 3) + good("x", 4, user="ghost"))
    project.run()
    pg = project.pg()
    pcur = pg.cursor()
    pcur.execute("SELECT username, customer_full_name, customer_country, device FROM pres.report_weblog_access ORDER BY access_key")
    rows = {r[0]: r for r in pcur.fetchall()}
    assert rows[user1] == (user1, name1, country1, "iPhone")
    assert rows["-"][1] is None and rows["ghost"][1] is None
    # a customer change reaches the report rows of that customer only
    cur.execute("UPDATE customers SET customer_full_name = 'New Name', updated_datetime = UTC_TIMESTAMP() WHERE username = %s", [user1])
    conn.close()
    project.run()
    pcur.execute("SELECT username, customer_full_name FROM pres.report_weblog_access WHERE username IN (%s, %s) ORDER BY 1", [user1, user2])
    assert dict(pcur.fetchall())[user1] == "New Name"
    pg.close()


def test_files_starting_with_the_same_line_are_different_files(project):
    project.populate("--scale", "0.001")
    logs = project.root / "logs"
    logs.mkdir()
    same_first = b"garbage first line\n"
    (logs / "access.log").write_bytes(same_first + good("g", 1) + good("g", 2))
    project.run()
    os.rename(logs / "access.log", logs / "access.log.1")
    (logs / "access.log").write_bytes(same_first + good("h", 1))  # a new file, same first line
    project.run()
    assert stored(project) == Counter({"/g/1": 1, "/g/2": 1, "/h/1": 1})
    assert summary(project, 2)["rejected"] == 1
