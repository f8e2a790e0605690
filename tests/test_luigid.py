"""A run against a real luigid central scheduler started on a free local port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import assert_store_equals_source

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(port: int, method: str, data: dict) -> dict:
    url = f"http://127.0.0.1:{port}/api/{method}?data=" + urllib.parse.quote(json.dumps(data))
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())["response"]


@pytest.fixture
def luigid(tmp_path):
    port = free_port()
    state = tmp_path / "luigid"
    state.mkdir()
    pidfile = state / "luigid.pid"
    luigid_bin = Path(sys.executable).with_name("luigid")
    subprocess.run(
        [str(luigid_bin), "--address", "127.0.0.1", "--port", str(port), "--background", "--pidfile", str(pidfile),
         "--logdir", str(state), "--state-path", str(state / "state.pickle")],
        check=True, cwd=tmp_path, env={k: v for k, v in os.environ.items() if not k.startswith("LUIGI")},
    )
    for _ in range(100):
        try:
            api(port, "task_list", {"status": "DONE", "upstream_status": "", "search": ""})
            break
        except OSError:
            time.sleep(0.1)
    else:
        pytest.fail(f"luigid did not start: {(state / 'luigi-server.log').read_text() if (state / 'luigi-server.log').exists() else ''}")
    yield port
    os.kill(int(pidfile.read_text()), signal.SIGTERM)


def test_run_against_luigid(project, luigid):
    project.populate("--scale", "0.001", "--seed", "5")
    # empty folders fall back to the project's own extract_config/ and sql/, whatever the cwd
    project.write_cfg(dw_etl={"extract_config_dir": "", "sql_dir": ""})
    project.run("--scheduler-url", f"http://127.0.0.1:{luigid}/", "--workers", "2")
    assert_store_equals_source(project)
    done = api(luigid, "task_list", {"status": "DONE", "upstream_status": "", "search": ""})
    families = sorted({task["name"] for task in done.values()})
    assert families == ["BuildPres", "BuildReports", "CheckQuality", "ExtractMySQLTable", "ExtractWeblog", "LoadLandingTable", "LoadWeblogLanding",
                        "RunJob", "UpsertStoreTable", "UpsertWeblogStore"]
    assert len(done) == 4 + 3 * len(project.metadata()) + 3
    # the web UI's page is served too
    with urllib.request.urlopen(f"http://127.0.0.1:{luigid}/static/visualiser/index.html", timeout=5) as page:
        assert b"Luigi" in page.read()
