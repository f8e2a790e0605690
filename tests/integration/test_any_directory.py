"""The job started from another directory, as cron and systemd start it, continues the same execution sequence.

``cd elsewhere && <clone>/.venv/bin/luigi RunJob --module luigi_dw_etl --local-scheduler``
(docs/scheduling.md): the configuration is found (named by ``LUIGI_CONFIG_PATH``, or the
project's own luigi.cfg beside luigi_dw_etl.py when there is none in the working directory),
its relative folders resolve against its own folder, so the second run, from elsewhere,
sees the first run's markers and the logs' read positions: it runs sequence 2, reads only
the lines appended since, and writes nothing into the directory it was started from.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from tests.support.paths import REPO
from tests.support.project import REFUSED
from tests.support.weblog_lines import line

RELATIVE = {  # every state folder and path relative: they must resolve beside the config file
    "staging": {"uri": "staging"},
    "weblog": {"paths": "logs/access.log*", "rejects_dir": "rejects"},
    "dw_etl": {"extract_config_dir": "extract_config", "output_dir": "output", "completed_dir": "completed",
               "reports_dir": "reports"},  # log_dir left out: its default var/log, beside the file too
}


def write_log(path: Path, first: int, count: int) -> None:
    """Append ``count`` request lines ``/cwd/<i>`` from ``first`` on to the access log ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:
        handle.writelines(line("cwd", i) for i in range(first, first + count))


def marker(folder: Path, sequence: int, name: str) -> dict:
    return json.loads((folder / "output" / str(sequence) / name).read_text())


def stored_paths(project) -> list[str]:
    conn = project.pg()
    cur = conn.cursor()
    cur.execute("SELECT path FROM store_weblog.access ORDER BY path")
    paths = [row[0] for row in cur.fetchall()]
    conn.close()
    return paths


def assert_continued(project, state: Path, output: str, elsewhere: Path) -> None:
    """The run from ``elsewhere`` ran sequence 2 on ``state``'s folders, read only the 12 appended lines and
    left ``elsewhere`` empty."""
    assert "execution sequence 2 (latest known 1)" in output
    assert marker(state, 2, "RunJob.json")["execution_sequence"] == 2
    assert marker(state, 2, "weblog_access.extract.json")["lines"] == 12
    assert stored_paths(project) == sorted(f"/cwd/{i}" for i in range(42))
    assert "paths is empty" not in output and "are lost" not in output
    assert (state / "reports" / "2" / "dashboard.html").is_file()
    assert sorted(os.listdir(elsewhere)) == []


def test_a_config_path_with_relative_folders_works_from_any_directory(project, tmp_path_factory):
    project.populate("--scale", "0.001")
    sql = os.path.relpath(REPO / "sql", project.root)  # a relative sql_dir, too
    project.write_cfg(**{**RELATIVE, "dw_etl": {**RELATIVE["dw_etl"], "sql_dir": sql}})
    write_log(project.root / "logs" / "access.log", 0, 30)
    project.run()  # from the project folder
    assert marker(project.root, 1, "weblog_access.extract.json")["lines"] == 30

    write_log(project.root / "logs" / "access.log", 30, 12)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    tables = project.root / "extract_config" / "mysql_tables.yaml"
    good = tables.read_text()
    tables.write_text(good.replace("columns: [company_id, ", "columns: [company_id, no_such_column, ", 1))
    refused = project.run(cwd=elsewhere, expect=REFUSED)  # the run log of a failed run goes beside the cfg too
    [log] = (project.root / "var" / "log").glob("dw_etl-*.log")
    assert refused.stderr.rstrip().endswith(f" (details: {log})") and os.listdir(elsewhere) == []
    tables.write_text(good)
    proc = project.run(cwd=elsewhere)
    assert_continued(project, project.root, proc.stdout + proc.stderr, elsewhere)


def test_without_a_config_path_the_projects_own_luigi_cfg_is_read_from_any_directory(project, tmp_path_factory):
    """A copy of the module tree stands for the clone (the repository's own luigi.cfg stays untouched); its
    luigi.cfg is the project's, with the test's databases. PYTHONPATH stands for the clone's editable
    install (scripts/venv.sh), which makes ``--module luigi_dw_etl`` importable from any directory."""
    project.populate("--scale", "0.001")
    clone = project.root / "clone"
    clone.mkdir()
    shutil.copy(REPO / "luigi_dw_etl.py", clone)
    for folder in ("etl", "extract_config", "sql"):
        shutil.copytree(REPO / folder, clone / folder, ignore=shutil.ignore_patterns("__pycache__"))
    text = (REPO / "luigi.cfg").read_text()
    text = re.sub(r"(?m)^database = b2b_source$", f"database = {project.source_db}", text)
    text = re.sub(r"(?m)^database = dw_dev$", f"database = {project.warehouse_db}", text)
    text = re.sub(r"(?m)^safety_lag_seconds = 2$", "safety_lag_seconds = 0", text)
    assert project.source_db in text and project.warehouse_db in text and "paths = weblogs/access.log*" in text
    (clone / "luigi.cfg").write_text(text)
    env = project.env(PYTHONPATH=str(clone))
    del env["LUIGI_CONFIG_PATH"]  # cron's environment: no config path, the working directory elsewhere

    write_log(clone / "weblogs" / "access.log", 0, 30)
    project.run(env=env, cwd=clone)  # Luigi itself reads ./luigi.cfg
    assert marker(clone, 1, "weblog_access.extract.json")["lines"] == 30

    write_log(clone / "weblogs" / "access.log", 30, 12)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    proc = project.run(env=env, cwd=elsewhere)
    assert_continued(project, clone, proc.stdout + proc.stderr, elsewhere)
    assert not (project.root / "output").exists()  # the test's own cfg was not read
    assert "DEBUG: Checking if" not in proc.stderr  # so is the project's [core] log_level = INFO
