"""With real passwords set, nothing the run writes contains them; written files are not world-writable."""

from __future__ import annotations

import stat
import uuid

from tests.support.databases import mysql_connect


def test_no_secret_in_anything_written(project, luigid, tmp_path):
    project.populate("--scale", "0.001", "--seed", "91")
    mysql_secret = "My-" + uuid.uuid4().hex
    pg_secret = "Pg-" + uuid.uuid4().hex
    token = "tok-" + uuid.uuid4().hex
    user = "etl_" + uuid.uuid4().hex[:8]
    admin = mysql_connect()
    cur = admin.cursor()
    for host in ("%", "localhost"):
        cur.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{mysql_secret}'")
        cur.execute(f"GRANT SELECT ON `{project.source_db}`.* TO '{user}'@'{host}'")
    logs = project.root / "logs"
    logs.mkdir()
    (logs / "access.log").write_text('8.8.8.8 - - [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "curl/8"\n')
    try:
        project.write_cfg(mysql={"user": user}, ipinfo={"api_url": "http://127.0.0.1:9", "timeout_seconds": 0.5})
        env = project.env(MYSQL_PASSWORD=mysql_secret, PGPASSWORD=pg_secret, IPINFO_TOKEN=token)
        ok = project.run("--scheduler-url", f"http://127.0.0.1:{luigid}/", env=env)
        # a failing run too: its messages must be clean as well
        project.write_cfg(mysql={"user": user}, warehouse={"port": 1})
        failed = project.run(env=env, expect=35)
    finally:
        for host in ("%", "localhost"):
            cur.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
        admin.close()
    secrets = (mysql_secret, pg_secret, token)
    printed = ok.stdout + ok.stderr + failed.stdout + failed.stderr
    assert not [s for s in secrets if s in printed]
    written = [p for p in list(project.root.rglob("*")) + list(tmp_path.parent.rglob("luigid/*")) if p.is_file()]
    assert len(written) > 20
    for path in written:
        data = path.read_bytes()
        assert not [s for s in secrets if s.encode() in data], path
    conn = project.pg()
    pcur = conn.cursor()
    pcur.execute("SELECT string_agg(details::text, ' ') FROM etl_control.step_log")
    logged = pcur.fetchone()[0] or ""
    assert logged and not [s for s in secrets if s in logged]
    conn.close()
    # files the run wrote are not world-writable
    ours = [p for p in project.root.rglob("*") if p.is_file() and p.parts[len(project.root.parts)] in
            ("output", "completed", "staging", "reports", "rejects")]
    assert ours and not [p for p in ours if p.stat().st_mode & stat.S_IWOTH]
