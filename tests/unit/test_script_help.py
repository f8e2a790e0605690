"""Every script answers --help and -h with its usage and exit code 0 at once, and installs, starts or creates
nothing: it runs in a copy of the scripts with no virtual environment, the installers and servers on PATH are
stubs that record their calls (tests.support.scripts), and the copy and the working directory must be as
they were.
"""

from __future__ import annotations

import pytest

from tests.support.paths import REPO
from tests.support.scripts import recording_path, run, script_tree, snapshot

# script -> (first line of its usage, lines its usage must contain)
USAGE = {
    "scripts/bench.sh": ("usage: scripts/bench.sh [-h] [--scale SCALE] [--repeats REPEATS]", [
        "scripts/bench.sh first sets up, one line per step (pip's and apt-get's whole output in var/log/setup.log):",
        "is missed, 2 on a setup error. --help prints this and sets up nothing.",
    ]),
    "scripts/luigid.sh": ("usage: scripts/luigid.sh start [PORT] | stop | status | --help", [
        "  --help, -h    this text (nothing is started or created)",
    ]),
    "scripts/run_job.sh": ("usage: scripts/run_job.sh [LUIGI ARGUMENTS ...] | --help", [
        "  5. .venv/bin/luigi RunJob --module luigi_dw_etl --local-scheduler LUIGI ARGUMENTS.",
        "  .venv/bin/luigi RunJob --module luigi_dw_etl --help     (once set up)",
        "  LUIGI_CONFIG_PATH  a configuration file read after luigi.cfg (its values win)",
        "  MYSQL_PASSWORD     the source's password when [mysql] password is empty",
        "  PGPASSWORD         the warehouse's password when [warehouse] password is empty",
    ]),
    "scripts/services.sh": ("usage: scripts/services.sh [--help]", [
        "  - installs mariadb-server and postgresql from Debian packages when missing (apt-get; as root, else sudo);",
        "  MYSQL_PASSWORD    root's MariaDB password, for the check that it is up (default: none)",
    ]),
    "scripts/test.sh": ("usage: scripts/test.sh [PYTEST ARGUMENTS ...] | --help", [
        "  scripts/test.sh tests/unit       the unit tests only: no database, service or browser is set up",
        "pytest's own options: .venv/bin/python -m pytest --help (once set up)",
    ]),
    "scripts/venv.sh": ("usage: scripts/venv.sh [REQUIREMENTS [FOLDER]] | --help", [
        "  DW_ETL_SETUP_LOG  the set-up log file (default var/log/setup.log in the repository)",
    ]),
    ".ci/run": ("usage: .ci/run [--help]", [
        "--help, -h: this text; nothing is installed, started or created.",
    ]),
}


def test_every_script_is_covered():
    scripts = {str(p.relative_to(REPO)) for p in (REPO / "scripts").glob("*.sh")} | {".ci/run"}
    assert scripts == set(USAGE)


@pytest.fixture
def tree(tmp_path):
    """(the copy of the scripts, an empty working directory, the environment with recording stubs, the calls log)."""
    path, calls = recording_path(tmp_path)
    root = script_tree(tmp_path / "tree")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    return root, cwd, {"PATH": path}, calls


@pytest.mark.parametrize("script", sorted(USAGE))
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_usage_and_changes_nothing(tree, script, flag):
    root, cwd, env, calls = tree
    before = snapshot(root)
    shown, seconds = run(["bash", str(root / script), flag], cwd, env, timeout=20)
    assert (shown.returncode, shown.stderr) == (0, ""), shown
    first, lines = USAGE[script]
    assert shown.stdout.splitlines()[0] == first
    for line in lines:
        assert line in shown.stdout.splitlines()
    assert not calls.exists(), calls.read_text()  # nothing installed or started
    assert snapshot(root) == before  # no .venv, no var/, no __pycache__
    assert list(cwd.iterdir()) == []
    assert seconds < 5  # about 0.01 s; bench.sh's comes from Python's argparse (0.3 s)


@pytest.mark.parametrize("script, args", [
    ("scripts/run_job.sh", ["--workers", "2", "--help"]),
    ("scripts/test.sh", ["tests/unit", "-k", "roundtrip", "-h"]),
    ("scripts/bench.sh", ["--scale", "0.1", "--help"]),
    ("scripts/venv.sh", ["requirements-dev.txt", "--help"]),
])
def test_help_after_other_arguments_still_only_prints_usage(tree, script, args):
    root, cwd, env, calls = tree
    before = snapshot(root)
    shown, _ = run(["bash", str(root / script), *args], cwd, env, timeout=20)
    assert (shown.returncode, shown.stdout.splitlines()[0]) == (0, USAGE[script][0])
    assert not calls.exists() and snapshot(root) == before


@pytest.mark.parametrize("script, args", [
    ("scripts/services.sh", ["start"]),
    ("scripts/venv.sh", ["requirements.txt", ".venv", "extra"]),
])
def test_wrong_arguments_print_usage_on_stderr_and_exit_2(tree, script, args):
    root, cwd, env, calls = tree
    before = snapshot(root)
    wrong, _ = run(["bash", str(root / script), *args], cwd, env, timeout=20)
    assert (wrong.returncode, wrong.stdout) == (2, "")
    assert wrong.stderr.splitlines()[0] == USAGE[script][0]
    assert not calls.exists() and snapshot(root) == before
