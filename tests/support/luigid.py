"""A luigid central scheduler on a free local port, and calls to its JSON API.

The ``luigid`` fixture (tests/integration/conftest.py) starts one per test with
:func:`start` and stops it with :func:`stop`. :func:`script_tree` gives scripts/luigid.sh a
folder of its own to run in.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tests.support.paths import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(port: int, method: str, data: dict) -> dict:
    url = f"http://127.0.0.1:{port}/api/{method}?data=" + urllib.parse.quote(json.dumps(data))
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())["response"]


def start(folder: Path) -> tuple[int, Path]:
    """Start luigid in the background with its state and logs under ``folder/luigid``; returns (port, pid file).

    Raises RuntimeError (with the server's log) when it does not answer within 10 s.
    """
    port = free_port()
    state = folder / "luigid"
    state.mkdir()
    pidfile = state / "luigid.pid"
    luigid_bin = Path(sys.executable).with_name("luigid")
    subprocess.run(
        [str(luigid_bin), "--address", "127.0.0.1", "--port", str(port), "--background", "--pidfile", str(pidfile),
         "--logdir", str(state), "--state-path", str(state / "state.pickle")],
        check=True, cwd=folder, env={k: v for k, v in os.environ.items() if not k.startswith("LUIGI")},
    )
    for _ in range(100):
        try:
            api(port, "task_list", {"status": "DONE", "upstream_status": "", "search": ""})
            return port, pidfile
        except OSError:
            time.sleep(0.1)
    log = state / "luigi-server.log"
    raise RuntimeError(f"luigid did not start: {log.read_text() if log.exists() else ''}")


def stop(pidfile: Path) -> None:
    """Stop the luigid started with ``pidfile``."""
    os.kill(int(pidfile.read_text()), signal.SIGTERM)


VENV_STUB = "venv-was-run"  # what script_tree's scripts/venv.sh creates when it runs


def script_tree(folder: Path) -> Path:
    """A copy of scripts/luigid.sh in ``folder/scripts`` (its var/luigid is ``folder/var/luigid``), returned.

    ``scripts/venv.sh`` there only creates ``folder/VENV_STUB`` (so a test sees whether it ran) and
    ``folder/.venv`` links to the environment running the tests (its ``bin/luigid``).
    """
    scripts = folder / "scripts"
    scripts.mkdir(parents=True)
    script = scripts / "luigid.sh"
    shutil.copy2(REPO / "scripts" / "luigid.sh", script)
    (scripts / "venv.sh").write_text(f"#!/bin/sh\ntouch {VENV_STUB}\n")
    (scripts / "venv.sh").chmod(0o755)
    (folder / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return script
