"""scripts/luigid.sh: luigid's state, log and pid file are private whatever the umask; a state or pid file
others could have written is refused; --help has no side effects.

Each test runs a copy of the script in its own folder (tests.support.luigid.script_tree), so var/luigid
is the test's and the real start path (umask, detaching, pid file, API poll) runs on a free port.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time

from tests.support.luigid import VENV_STUB, api, free_port, script_tree


def run(script, *args, umask=None, check_rc=None) -> subprocess.CompletedProcess:
    proc = subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if not k.startswith("LUIGI")},
                          preexec_fn=None if umask is None else lambda: os.umask(umask))
    if check_rc is not None:
        assert proc.returncode == check_rc, proc
    return proc


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_start_under_umask_000_keeps_state_log_and_pid_private(tmp_path):
    script = script_tree(tmp_path)
    port = free_port()
    state = tmp_path / "var" / "luigid"
    started = run(script, "start", str(port), umask=0)
    try:
        assert started.returncode == 0, started
        pid = int((state / "luigid.pid").read_text())
        assert started.stdout == f"luigid running (pid {pid}); web UI: http://127.0.0.1:{port}/\n"
        assert (tmp_path / VENV_STUB).exists()  # start still sets up the venv first
        assert api(port, "task_list", {"status": "DONE", "upstream_status": "", "search": ""}) == {}
        assert run(script, "status", check_rc=0).stdout == f"luigid running (pid {pid})\n"
        assert run(script, "start", str(port), check_rc=0).stdout == f"luigid already running (pid {pid})\n"
    finally:
        stopped = run(script, "stop")
    assert (stopped.returncode, stopped.stdout) == (0, "luigid stopped\n")
    assert not alive(pid)
    files = {p.name: mode(p) for p in state.iterdir()}
    assert files == {"luigi-server.log": 0o600, "luigid.out": 0o600, "state.pickle": 0o600}  # pid file removed
    assert (mode(tmp_path / "var"), mode(state)) == (0o700, 0o700)
    assert run(script, "status").returncode == 3


def test_a_state_file_others_can_write_is_refused(tmp_path):
    script = script_tree(tmp_path)
    state = tmp_path / "var" / "luigid"
    state.mkdir(parents=True, mode=0o700)
    pickle = state / "state.pickle"
    pickle.write_bytes(b"not a pickle anyone should load")
    pickle.chmod(0o666)
    port = free_port()
    refused = run(script, "start", str(port))
    assert refused.returncode == 1
    assert refused.stderr == (
        f"luigid.sh: refusing to start: var/luigid/state.pickle is mode 0666 (owner {_me()}): others can write it; "
        "luigid unpickles it at start: whoever can write it runs code as you. Remove it: rm var/luigid/state.pickle "
        "(luigid then starts with no task history; or, if you trust its contents, chmod go-w var/luigid/state.pickle)\n"
    )
    assert sorted(p.name for p in state.iterdir()) == ["state.pickle"] and not (tmp_path / VENV_STUB).exists()
    # a folder others can write is refused the same way
    pickle.unlink()
    state.chmod(0o777)
    refused = run(script, "start", str(port))
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"luigid.sh: refusing to start: var/luigid is mode 0777 (owner {_me()}): "
                                     "others can write it; whoever can write it can replace the state file")
    assert list(state.iterdir()) == []


def test_stop_kills_only_a_luigid_named_by_a_trusted_pid_file(tmp_path):
    script = script_tree(tmp_path)
    state = tmp_path / "var" / "luigid"
    state.mkdir(parents=True, mode=0o700)
    pidfile = state / "luigid.pid"
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        pidfile.write_text(f"{bystander.pid}\n")
        pidfile.chmod(0o666)
        refused = run(script, "stop")
        assert refused.returncode == 1
        assert refused.stderr == (
            f"luigid.sh: refusing to stop: var/luigid/luigid.pid is mode 0666 (owner {_me()}): others can write it; "
            "stop kills the pid it names. Remove it: rm var/luigid/luigid.pid (stop any luigid you started yourself "
            "by its pid)\n"
        )
        pidfile.chmod(0o600)  # ours now, but it names a process that is not this folder's luigid
        stopped = run(script, "stop", check_rc=0)
        assert stopped.stdout == (f"luigid not running (pid file var/luigid/luigid.pid named pid {bystander.pid}, "
                                  "not a luigid of var/luigid; removed it)\n")
        time.sleep(0.2)
        assert bystander.poll() is None and not pidfile.exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_help_prints_usage_and_creates_nothing(tmp_path):
    script = script_tree(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for flag in ("--help", "-h"):
        shown = run(script, flag, check_rc=0)
        assert shown.stdout.startswith("usage: scripts/luigid.sh start [PORT] | stop | status | --help\n")
        assert "refuses a state file, pid file or folder others could have written" in shown.stdout
        assert shown.stderr == ""
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # no var/, venv.sh not run
    wrong = run(script, "restart")
    assert (wrong.returncode, wrong.stdout) == (2, "") and wrong.stderr.startswith("usage: ")


def _me() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name
