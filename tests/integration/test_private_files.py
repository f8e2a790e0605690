"""Under umask 000, everything the job writes is owner-only (0700/0600), or owner+group with
``[dw_etl] group_readable = true``; state folders an earlier umask left open are closed."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

STATE = ("staging", "output", "completed", "reports", "rejects")


def modes(root) -> dict[str, int]:
    """{path relative to root: mode} of every folder and file under the job's state folders."""
    found = {}
    for name in STATE:
        top = root / name
        found[name] = stat.S_IMODE(top.stat().st_mode)
        for path in top.rglob("*"):
            if path.is_symlink():  # reports/latest -> <seq>: a link's own mode is never used (Linux: always 0777)
                continue
            found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_everything_the_job_writes_is_private_under_umask_000(project):
    project.populate("--scale", "0.001", "--seed", "17")
    sample = subprocess.run(
        [sys.executable, "-m", "populate", "weblog", "--lines", "300", "--malformed", "5", "--output", "logs/access.log"],
        cwd=project.root, env=project.env(), capture_output=True, text=True, timeout=120, preexec_fn=lambda: os.umask(0),
    )
    assert sample.returncode == 0, sample.stderr
    logs = project.root / "logs"
    assert (stat.S_IMODE(logs.stat().st_mode), stat.S_IMODE((logs / "access.log").stat().st_mode)) == (0o700, 0o600)
    # what an earlier version left under umask 000: an open output folder with an open file in it
    (project.root / "output" / "0").mkdir(parents=True)
    (project.root / "output" / "0" / "old.json").write_text("{}")
    for path, loose in (("output", 0o777), ("output/0", 0o777), ("output/0/old.json", 0o666)):
        os.chmod(project.root / path, loose)

    run = project.run(umask=0)
    assert (f"WARNING etl.private[{_pid(run.stderr)}]: state folder {project.root / 'output'} was mode 0777 (open to "
            "others): now 0700, with 2 entries below it tightened\n") in run.stderr
    found = modes(project.root)
    files = [p for p in found if (project.root / p).is_file()]
    for expected in ("staging/mysql/order_lines/execution_sequence=1/part-00000.csv", "output/1/RunJob.json",
                     "completed/1/pres/010_report_order_lines.sql", "reports/1/dashboard.html",
                     "reports/1/sql_monthly_sales.png", "reports/1/sql_monthly_sales.csv",
                     "rejects/1/access.log.rejects.jsonl", "output/0/old.json"):
        assert expected in files
    assert len(files) > 40
    assert os.readlink(project.root / "reports" / "latest") == "1"  # the one link: into reports/, relative
    loose = {p: oct(m) for p, m in found.items() if m != (0o600 if p in files else 0o700)}
    assert loose == {}

    # owner+group on request: what the next run writes is 0640/0750; nothing is writable by group or others
    project.populate("--changes", "5", "--seed", "18")
    project.run("--dw-etl-group-readable", "true", umask=0)
    found = modes(project.root)
    second = {p: m for p, m in found.items() if "/2" in p or "=2" in p}
    assert "output/2/RunJob.json" in second and "staging/mysql/order_lines/execution_sequence=2/part-00000.csv" in second
    assert {oct(m) for p, m in second.items()} == {"0o640", "0o750"}
    assert {p: oct(m) for p, m in found.items() if m & 0o027} == {}


def _pid(log: str) -> str:
    """The main process's pid in the job's log lines (``etl.runlock[<pid>]`` takes the run lock there)."""
    return log.split("etl.runlock[", 1)[1].split("]", 1)[0]
