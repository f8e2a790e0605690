"""The Python entry points answer --help with their usage and exit code 0, touching nothing; ``luigi RunJob
--help`` lists every pipeline setting (each ``[section] key`` as ``--section-key``) with its meaning and
default, and each declared default is the one its description names.

The entry points start at once, in parallel (their imports take about a second each), from an empty
working directory with an empty HOME and no bytecode written; both must stay empty.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from etl import config_check
from tests.support.paths import REPO

BIN = Path(sys.executable).parent
ENTRY_POINTS = {  # name -> (command, the start of its usage, a text it must contain)
    "populate": ([sys.executable, "-m", "populate", "--help"], "usage: python -m populate [-h] {orders,weblog} ...",
                 "    orders         create/fill the MySQL B2B order database or apply daily"),
    "populate orders": ([sys.executable, "-m", "populate", "orders", "--help"], "usage: python -m populate orders [-h]",
                        "  --if-empty            fill only when the source has no orders yet"),
    "populate weblog": ([sys.executable, "-m", "populate", "weblog", "--help"], "usage: python -m populate weblog [-h]",
                        "  --if-missing          do nothing when the output file exists"),
    "bench": ([sys.executable, "-m", "bench", "--help"], "usage: scripts/bench.sh [-h] [--scale SCALE] [--repeats REPEATS]",
              "Work files and logs go to bench-work/. Exit code 0 when every target of BENCHMARKS.md is met, 1 when one"),
    "bench dlt": ([sys.executable, "bench/dlt_pipeline.py", "--help"],
                  "dlt's ``sql_database`` source -> ``postgres`` destination, merge on the tables' keys.",
                  "    .venv-bench/bin/python bench/dlt_pipeline.py {default|fast} MYSQL_URL PG_URL PIPELINES_DIR TABLES_JSON"),
    "etl.setup_db": ([sys.executable, "-m", "etl.setup_db", "--help"], "usage: python -m etl.setup_db [-h]",
                     "Create the warehouse database ([warehouse] in luigi.cfg or the file named by"),
    "etl.reports": ([sys.executable, "-m", "etl.reports", "--help"], "usage: python -m etl.reports [-h] [--report REPORT] [--list]",
                    "  --list                list the report files and exit"),
    "tests.chaos": ([sys.executable, "-m", "tests.chaos", "--help"], "usage: python -m tests.chaos [-h] [--rounds ROUNDS] [--seed SEED]",
                    "  --rounds ROUNDS      rounds to run (default 100)"),
    "luigi RunJob": ([str(BIN / "luigi"), "RunJob", "--module", "luigi_dw_etl", "--help"],
                     "usage: luigi [--local-scheduler] [--module CORE_MODULE] [--help] [--help-all]",
                     "  --dw-etl-allow-deletes DW_ETL_ALLOW_DELETES"),
}


@pytest.fixture(scope="module")
def shown(tmp_path_factory):
    """name -> (CompletedProcess-like (returncode, stdout, stderr), seconds), and the folders that must stay empty."""
    cwd, home = tmp_path_factory.mktemp("cwd"), tmp_path_factory.mktemp("home")
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8", "PYTHONPATH": str(REPO),
           "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "120"}
    started = time.monotonic()
    procs = {}
    for name, (command, _, _) in ENTRY_POINTS.items():
        relative = [str(REPO / c) if c.startswith("bench/") else c for c in command]
        procs[name] = subprocess.Popen(relative, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        results[name] = ((proc.returncode, out, err), time.monotonic() - started)
    return results, (cwd, home)


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_help_prints_usage_and_exits_0(shown, name):
    results, _ = shown
    (returncode, out, err), seconds = results[name]
    _, first, line = ENTRY_POINTS[name]
    assert (returncode, err) == (0, ""), (out, err)
    assert out.splitlines()[0].startswith(first)
    assert " ".join(line.split()) in " ".join(out.split())  # wrapped to the terminal's width
    assert seconds < 60  # all of them together, in parallel: a few seconds


def test_help_creates_nothing(shown):
    _, folders = shown
    assert [sorted(os.listdir(f)) for f in folders] == [[], []]


def described_parameters():
    """(section, key, parameter) of every pipeline setting."""
    importlib.import_module("luigi_dw_etl")  # registers every section

    return [(section, key, param) for section, cls in config_check.pipeline_sections().items()
            for key, param in cls.get_params()]


def test_every_setting_has_a_description_ending_with_its_default():
    wrong = []
    found = described_parameters()
    assert {s for s, _, _ in found} >= {"mysql", "warehouse", "staging", "weblog", "ipinfo", "dw_etl", "quality"}
    for section, key, param in found:
        match = re.fullmatch(r"(.+) \(default (.+?)(; .+)?\)", param.description or "")
        if not (param.always_in_help and match):
            wrong.append(f"[{section}] {key}: no description ending with (default ...), or not always_in_help")
            continue
        shown = match.group(2)
        if param.parse("" if shown == "empty" else shown) != param._default:
            wrong.append(f"[{section}] {key}: the description says default {shown}, the default is {param._default!r}")
    assert wrong == []


def test_luigi_help_lists_every_setting_with_its_description(shown):
    results, _ = shown
    (_, out, _), _ = results["luigi RunJob"]
    flat = " ".join(out.split())
    missing = []
    for section, key, param in described_parameters():
        flag = f"--{section}-{key}".replace("_", "-")
        if f"{flag} {' '.join(param.description.split())}" not in re.sub(r"(--\S+) \[?[A-Z0-9_]+\]?", r"\1", flat):
            missing.append(flag)
    assert missing == []
