"""The ipinfo path against a local fake HTTP server: request shape, persistent cache, timeout and errors."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from etl.weblog.geo import CountryLookup
from tests.support.databases import pg_connect

TOKEN = "tok_" + uuid.uuid4().hex[:8]


class FakeIpinfo:
    """POST /batch answers every address with country FR (or fails / sleeps when told to)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.mode = "ok"
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                if fake.mode == "sleep":
                    time.sleep(1.5)
                if fake.mode == "error":
                    self.send_response(500)
                    self.end_headers()
                    return
                payload = json.dumps({ip: {"ip": ip, "country": "FR"} for ip in body}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def fake():
    server = FakeIpinfo()
    yield server
    server.close()


@pytest.fixture
def cache_db(services):
    name = "t_geo_" + uuid.uuid4().hex[:8]
    admin = pg_connect("postgres")
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    conn = pg_connect(name)
    conn.autocommit = False
    conn.cursor().execute("CREATE SCHEMA etl_control")
    conn.commit()
    yield conn
    conn.close()
    admin.cursor().execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


def test_batch_request_shape_and_persistent_cache(fake, cache_db):
    lookup = CountryLookup(TOKEN, fake.url, 2.0, cache_conn=cache_db)
    result = lookup.countries(["8.8.8.8", "1.1.1.1", "8.8.8.8", "10.0.0.1"])
    assert result == {"8.8.8.8": "FR", "1.1.1.1": "FR", "10.0.0.1": ""}
    assert len(fake.requests) == 1
    request = fake.requests[0]
    assert request["path"] == "/batch"
    assert request["auth"] == f"Bearer {TOKEN}"
    assert sorted(request["body"]) == ["1.1.1.1", "8.8.8.8"]  # private address answered locally, each IP once
    lookup.countries(["8.8.8.8"])
    assert len(fake.requests) == 1  # known for this run
    # a later run finds them in the persistent cache: no request at all
    later = CountryLookup(TOKEN, fake.url, 2.0, cache_conn=cache_db)
    assert later.countries(["8.8.8.8", "1.1.1.1"]) == {"8.8.8.8": "FR", "1.1.1.1": "FR"}
    assert len(fake.requests) == 1 and later.cache_hits == 2
    # more than 1,000 new addresses go in several batches
    many = [f"100.{i // 256}.{i % 256}.1" for i in range(1500)]
    later.countries(many)
    assert [len(r["body"]) for r in fake.requests[1:]] == [1000, 500]


@pytest.mark.parametrize("mode", ["sleep", "error"])
def test_timeout_or_error_falls_back_to_the_offline_database(fake, cache_db, mode):
    fake.mode = mode
    lookup = CountryLookup(TOKEN, fake.url, 0.5, cache_conn=cache_db)
    result = lookup.countries(["8.8.8.8", "81.2.69.142"])
    assert result == {"8.8.8.8": "US", "81.2.69.142": "GB"}  # iptocc's answers
    assert lookup.fallbacks == 2 and lookup.ipinfo_lookups == 0
    with cache_db.cursor() as cur:
        cur.execute("SELECT count(*) FROM etl_control.ip_country_cache")
        assert cur.fetchone()[0] == 0  # fallbacks are not cached as ipinfo answers


def test_without_token_no_request_is_made(fake):
    lookup = CountryLookup("", fake.url)
    assert lookup.countries(["8.8.8.8"]) == {"8.8.8.8": "US"}
    assert fake.requests == []


def test_pipeline_uses_ipinfo_when_a_token_is_set_and_never_prints_it(project, fake):
    project.populate("--scale", "0.001")
    logs = project.root / "logs"
    logs.mkdir()
    (logs / "access.log").write_text(
        '8.8.8.8 - - [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "curl/8"\n'
        '192.168.0.1 - - [10/Oct/2025:13:55:37 +0000] "GET / HTTP/1.1" 200 1 "-" "curl/8"\n'
    )
    project.write_cfg(ipinfo={"api_url": fake.url, "timeout_seconds": 2})
    proc = project.run(env=project.env(IPINFO_TOKEN=TOKEN))
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT ip_address, country FROM store_weblog.access ORDER BY 1")
    assert cur.fetchall() == [("192.168.0.1", ""), ("8.8.8.8", "FR")]
    conn.close()
    assert [r["body"] for r in fake.requests] == [["8.8.8.8"]]
    written = "".join(p.read_text(errors="replace") for p in project.root.rglob("*") if p.is_file())
    assert TOKEN not in proc.stdout + proc.stderr + written
