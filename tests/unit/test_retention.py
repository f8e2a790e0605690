"""Retention (etl.retention): which sequences a completed run prunes, the run folders and local staging it
removes, and reports/latest (S3 staging against moto and whole runs: tests/integration/test_retention.py)."""

from __future__ import annotations

import os

import pytest
from luigi.cmdline_parser import CmdlineParser

import luigi_dw_etl  # registers RunJob and the config sections for the command lines below
from etl import retention
from etl.config import DEFAULT_KEEP_RUNS, etl_settings
from etl.errors import ConfigError, EltError
from etl.staging import LocalStaging, partition_sequence


def test_the_newest_sequences_ending_at_the_closed_one_are_kept():
    assert retention.sequences_to_prune(range(1, 7), closed=6, keep=2) == [1, 2, 3, 4]
    assert retention.sequences_to_prune([3, 1, 2, 2], closed=3, keep=1) == [1, 2]
    assert retention.sequences_to_prune(range(1, 5), closed=4, keep=30) == []
    assert retention.sequences_to_prune(range(1, 7), closed=6, keep=2, protected=[2]) == [1, 3, 4]


def test_the_closed_sequence_and_newer_ones_are_never_pruned():
    # a sequence above the one just closed (a folder left by another numbering, say) is never chosen
    assert retention.staging_to_prune([1, 2, 5, 9], closed=5, landing_keep_sequences=1) == [1, 2]
    assert retention.runs_to_prune([4, 5, 6], closed=5, keep_runs=1) == [4]
    with pytest.raises(ValueError, match="keep = 0 must be >= 1"):
        retention.sequences_to_prune([1, 2], closed=2, keep=0)


def test_staging_keeps_what_landing_keeps():
    # landing of sequence 10 with landing_keep_sequences = 3 keeps partitions 8, 9, 10 (etl.landing)
    assert retention.staging_to_prune(range(1, 11), closed=10, landing_keep_sequences=3) == list(range(1, 8))


def test_the_run_reports_latest_points_at_are_never_pruned():
    assert retention.runs_to_prune(range(1, 6), closed=5, keep_runs=2, latest=2) == [1, 3]
    assert retention.runs_to_prune(range(1, 6), closed=5, keep_runs=2, latest=None) == [1, 2, 3]


def test_numbered_folders_are_only_numbered_real_folders(tmp_path):
    for name in ("1", "2", "10", "latest", "3x", "manual"):
        (tmp_path / name).mkdir()
    (tmp_path / "11").write_text("a file")
    (tmp_path / "12").symlink_to("2")
    assert retention.numbered_folders(tmp_path) == {1: tmp_path / "1", 2: tmp_path / "2", 10: tmp_path / "10"}
    assert retention.numbered_folders(tmp_path / "missing") == {}


def _run_folder(root, sequence: int, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / str(sequence) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_old_run_folders_are_removed_and_counted(tmp_path):
    output, rejects = tmp_path / "output", tmp_path / "rejects"
    for sequence in (1, 2, 3, 4):
        _run_folder(output, sequence, {"RunJob.json": b"{}", "mysql_t.extract.json": b"x" * sequence})
    _run_folder(rejects, 2, {"access.log.rejects.jsonl": b"12345"})
    (output / "notes").mkdir()
    removed, problems = retention.prune_runs({"output": str(output), "rejects": str(rejects),
                                              "completed": str(tmp_path / "none")}, 4, 2, None)
    assert problems == []
    assert removed == {"output": {"folders": 2, "files": 4, "bytes": 2 + 1 + 2 + 2, "sequences": [1, 2]},
                       "rejects": {"folders": 1, "files": 1, "bytes": 5, "sequences": [2]},
                       "completed": {"folders": 0, "files": 0, "bytes": 0, "sequences": []}}
    assert sorted(p.name for p in output.iterdir()) == ["3", "4", "notes"]
    assert list(rejects.iterdir()) == []


def test_latest_is_an_atomically_replaced_relative_link(tmp_path):
    for sequence in (1, 2):
        _run_folder(tmp_path, sequence, {"dashboard.html": f"run {sequence}".encode()})
    link = retention.publish_latest(tmp_path, 1)
    assert link == tmp_path / "latest" and os.readlink(link) == "1"
    retention.publish_latest(tmp_path, 2)
    assert os.readlink(link) == "2" and (link / "dashboard.html").read_text() == "run 2"
    assert retention.latest_target(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "2", "latest"]  # no temporary link left


def test_latest_refuses_a_run_without_dashboard_and_a_folder_made_by_hand(tmp_path):
    _run_folder(tmp_path, 1, {"dashboard.html": b"run 1"})
    (tmp_path / "2").mkdir()
    with pytest.raises(EltError, match=f"^{tmp_path / '2'} has no dashboard.html, so {tmp_path / 'latest'} was not "
                                       "moved to it; to rebuild that run's reports delete its report markers "
                                       r"\(completed/2/reports/\) and output/2/RunJob.json, and run RunJob again$"):
        retention.publish_latest(tmp_path, 2)
    (tmp_path / "latest").mkdir()
    with pytest.raises(EltError, match=f"^{tmp_path / 'latest'} is not the symbolic link this job maintains "
                                       r"\(latest -> <sequence>\), so it was not updated; move it away"):
        retention.publish_latest(tmp_path, 1)
    assert retention.latest_target(tmp_path) is None


def _stage(staging: LocalStaging, source: str, table: str, sequence: int, data: bytes) -> None:
    with staging.write_parts(source, table, sequence) as parts:
        parts.part(0).write(data)


def test_local_staging_partitions_and_their_pruning(tmp_path):
    staging = LocalStaging(tmp_path / "staging")
    for sequence in (1, 2, 3):
        _stage(staging, "mysql", "orders", sequence, b"o" * sequence)
        _stage(staging, "weblog", "access", sequence, b"w" * 10)
    (tmp_path / "staging" / "mysql" / "orders" / "README").write_text("not a partition")
    (tmp_path / "staging" / "mysql" / "orders" / "execution_sequence=x").mkdir()
    assert staging.partitions() == {("mysql", "orders", 1): (1, 1), ("mysql", "orders", 2): (1, 2),
                                    ("mysql", "orders", 3): (1, 3), ("weblog", "access", 1): (1, 10),
                                    ("weblog", "access", 2): (1, 10), ("weblog", "access", 3): (1, 10)}
    counts, problems = retention.prune_staging(staging, 3, 2)
    assert (counts, problems) == ({"partitions": 2, "files": 2, "bytes": 11, "sequences": [1]}, [])
    assert sorted(staging.partitions()) == [("mysql", "orders", 2), ("mysql", "orders", 3),
                                            ("weblog", "access", 2), ("weblog", "access", 3)]
    assert (tmp_path / "staging" / "mysql" / "orders" / "README").exists()
    assert LocalStaging(tmp_path / "missing").partitions() == {}
    assert partition_sequence("execution_sequence=12") == 12
    assert partition_sequence("execution_sequence=1x") is None


def test_the_summary_line_says_what_was_removed_and_kept():
    runs = {"output": {"folders": 2, "files": 40, "bytes": 12345}, "completed": {"folders": 2, "files": 8, "bytes": 80}}
    staged = {"partitions": 14, "files": 14, "bytes": 3456789}
    assert retention.describe(runs, staged, 5, 3, 2, "reports/latest") == (
        "retention: removed 4 run folder(s) (output 2, completed 2; 48 files, 12,425 bytes) and 14 staging "
        "partition(s) (14 files, 3,456,789 bytes); kept runs 3..5 (keep_runs 3) and staging of sequences 4..5 "
        "(landing_keep_sequences 2); reports/latest -> 5")


@pytest.mark.parametrize("value", ["0", "-3"])
def test_keep_runs_below_1_is_refused(value):
    with CmdlineParser.global_instance([luigi_dw_etl.RunJob.task_family, "--dw-etl-keep-runs", value]):
        with pytest.raises(ConfigError) as error:
            etl_settings()
    assert str(error.value).splitlines()[1] == (
        f"  [dw_etl] keep_runs = '{value}' (set by the command line flag --dw-etl-keep-runs) must be an integer between "
        "1 and 2147483647 (the runs whose numbered folders output/, completed/, reports/ and rejects/ keep; default 30)")


def test_keep_runs_defaults_to_30():
    with CmdlineParser.global_instance([luigi_dw_etl.RunJob.task_family]):
        assert etl_settings().keep_runs == DEFAULT_KEEP_RUNS == 30
