"""Set-up prints one line per step; pip's output goes to the set-up log (scripts/lib/steps.sh, scripts/venv.sh).

scripts/venv.sh runs in a copy of the scripts (tests.support.scripts) against a virtual environment whose
``bin/python`` is a stub: asked to ``-m pip install`` it prints 60 lines the way pip does (and a warning on
stderr), records its arguments, and fails when ``FAKE_PIP_FAIL`` is set. A stub ``python3.11`` on PATH
creates such an environment for ``-m venv``.
"""

from __future__ import annotations

import re
import stat

import pytest

from tests.support.scripts import recording_path, run, script_tree

FAKE_PYTHON = """#!/bin/sh
echo "$*" >>"{calls}"
case "$*" in
*"-m pip install"*)
    i=1
    while [ $i -le 60 ]; do echo "Requirement already satisfied: package$i==1.$i in ./lib/python3.11/site-packages"; i=$((i+1)); done
    echo "WARNING: pip says something on stderr" >&2
    if [ -n "$FAKE_PIP_FAIL" ]; then echo "ERROR: No matching distribution found for nosuchpackage==9.9" >&2; exit 1; fi ;;
esac
"""
PIP = "-m pip install --disable-pip-version-check --no-input --progress-bar off"
STEP = r"\.\.\. done \(\d+ s\)"


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def tree(tmp_path):
    """(the copy of the scripts, the environment, the log of the fake python's calls)."""
    path, _ = recording_path(tmp_path)
    root = script_tree(tmp_path / "tree")
    calls = tmp_path / "python-calls.log"
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PYTHON.format(calls=calls))
    fake.chmod(0o755)
    (tmp_path / "stubs" / "python3.11").write_text(
        f'#!/bin/sh\ncase "$1" in -c) exit 0 ;; esac\necho "created $3"\nmkdir -p "$3/bin" && cp "{fake}" "$3/bin/python"\n')
    (tmp_path / "stubs" / "python3.11").chmod(0o755)
    return root, {"PATH": path}, calls, fake


def existing_venv(root, fake):
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "python").write_bytes(fake.read_bytes())
    (root / ".venv" / "bin" / "python").chmod(0o755)


def test_existing_venv_prints_its_steps_and_logs_pips_output(tree):
    root, env, calls, fake = tree
    existing_venv(root, fake)
    done, _ = run(["bash", str(root / "scripts" / "venv.sh"), "requirements-dev.txt"], root, env)
    assert (done.returncode, done.stdout) == (0, "")
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    assert re.fullmatch(rf"venv: installing requirements-dev.txt into \.venv {STEP}", lines[0])
    assert re.fullmatch(rf"venv: installing this project into \.venv \(editable\) {STEP}", lines[1])
    compile_call = "-m compileall -q -j 0 etl populate bench luigi_dw_etl.py"  # the byte code, each time
    assert calls.read_text().splitlines() == [f"{PIP} -r requirements-dev.txt", f"{PIP} --no-deps -e .", compile_call]
    log = root / "var" / "log" / "setup.log"
    text = log.read_text()
    assert text.count("Requirement already satisfied: package60==1.60") == 2  # both pip runs, in full
    assert "WARNING: pip says something on stderr" in text
    assert re.search(r"=== \S+Z venv: installing requirements-dev.txt into \.venv\n\$ \.venv/bin/python " + PIP
                     + r" -r requirements-dev\.txt\nRequirement already satisfied: package1==1\.1 ", text)
    assert (mode(log), mode(log.parent), mode(root / "var")) == (0o600, 0o700, 0o700)
    assert list((root / ".venv").glob(".installed-*"))

    again, _ = run(["bash", str(root / "scripts" / "venv.sh"), "requirements-dev.txt"], root, env)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")  # installed: nothing to do, nothing said
    assert calls.read_text().splitlines()[3:] == [compile_call]  # no pip run, the byte code refreshed


def test_a_failed_step_prints_the_end_of_its_output_and_the_log(tree):
    root, env, calls, fake = tree
    existing_venv(root, fake)
    log = root / "var" / "log" / "setup.log"
    log.parent.mkdir(parents=True)
    log.write_text("an earlier set-up's output\n")
    log.chmod(0o644)
    failed, _ = run(["bash", str(root / "scripts" / "venv.sh"), "requirements-dev.txt"], root,
                    {**env, "FAKE_PIP_FAIL": "1"})
    assert (failed.returncode, failed.stdout) == (1, "")
    lines = failed.stderr.splitlines()
    assert re.fullmatch(r"venv: installing requirements-dev.txt into \.venv \.\.\. failed \(\d+ s, exit code 1\); "
                        r"its last lines:", lines[0])
    assert lines[1:] == [f"    Requirement already satisfied: package{i}==1.{i} in ./lib/python3.11/site-packages"
                         for i in range(43, 61)] + [
        "    WARNING: pip says something on stderr",
        "    ERROR: No matching distribution found for nosuchpackage==9.9",
        f"venv: the whole output is in {log.resolve()}",
    ]
    assert len(calls.read_text().splitlines()) == 1  # the project is not installed after a failed step
    assert not list((root / ".venv").glob(".installed-*"))  # the next run tries again
    assert log.read_text().startswith("an earlier set-up's output\n")  # appended
    assert mode(log) == 0o600


def test_a_new_venv_is_one_more_step(tree):
    root, env, calls, _ = tree
    done, _ = run(["bash", str(root / "scripts" / "venv.sh")], root, env)
    assert done.returncode == 0, done
    lines = done.stderr.splitlines()
    assert re.fullmatch(rf"venv: creating virtual environment \.venv \(\S+/stubs/python3\.11\) {STEP}", lines[0])
    assert re.fullmatch(rf"venv: installing requirements.txt into \.venv {STEP}", lines[1])
    assert len(lines) == 3
    assert "created .venv" in (root / "var" / "log" / "setup.log").read_text()


def test_the_log_file_can_be_chosen_and_a_missing_requirements_file_is_named(tree, tmp_path):
    root, env, _, fake = tree
    existing_venv(root, fake)
    chosen = tmp_path / "elsewhere" / "setup.log"
    done, _ = run(["bash", str(root / "scripts" / "venv.sh"), "requirements.txt"], root,
                  {**env, "DW_ETL_SETUP_LOG": str(chosen)})
    assert done.returncode == 0, done
    assert "Requirement already satisfied: package60" in chosen.read_text() and mode(chosen) == 0o600
    assert not (root / "var").exists()
    missing, _ = run(["bash", str(root / "scripts" / "venv.sh"), "requirements-typo.txt"], root, env)
    assert (missing.returncode, missing.stderr) == (
        2, "venv: no requirements file requirements-typo.txt (a path relative to the repository root, "
           "e.g. requirements-dev.txt)\n")


def test_step_shows_only_the_commands_last_20_lines_and_returns_its_status(tree):
    root, env, _, _ = tree
    script = f'. "{root}/scripts/lib/steps.sh"; step_prefix=demo; step "counting" sh -c "seq 1 30; exit 3"'
    failed, _ = run(["bash", "-c", script], root, env)
    assert failed.returncode == 3
    lines = failed.stderr.splitlines()
    assert re.fullmatch(r"demo: counting \.\.\. failed \(\d+ s, exit code 3\); its last lines:", lines[0])
    assert lines[1:-1] == [f"    {i}" for i in range(11, 31)]
    assert lines[-1] == f"demo: the whole output is in {(root / 'var' / 'log' / 'setup.log').resolve()}"
