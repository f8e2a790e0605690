"""Files the job writes are owner-only (or owner+group) whatever the umask (etl.private and its callers)."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from etl import private
from etl.markers import write_json_atomic
from etl.reports import ReportResult, write_outputs
from etl.staging import LocalStaging


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def umask_000():
    """The process umask 000 (every folder 0777, file 0666 unless the code says otherwise); restored after,
    with the owner-only policy."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)
        private._policy["mask"] = private.OWNER_ONLY_MASK


def test_make_dirs_creates_every_missing_folder_owner_only(tmp_path, umask_000):
    existing = tmp_path / "a"
    existing.mkdir(mode=0o755)
    made = private.make_dirs(existing / "b" / "c")
    assert made == existing / "b" / "c" and made.is_dir()
    assert (mode(existing), mode(existing / "b"), mode(made)) == (0o755, 0o700, 0o700)
    private.make_dirs(made)  # existing: nothing to do
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError):
        private.make_dirs(tmp_path / "file")


def test_open_private_creates_0600_and_tightens_an_existing_file_of_ours(tmp_path, umask_000):
    with private.open_private(tmp_path / "new.csv", "w", encoding="utf-8") as handle:
        handle.write("a\n")
    assert mode(tmp_path / "new.csv") == 0o600
    loose = tmp_path / "loose.log"
    loose.write_bytes(b"old\n")
    os.chmod(loose, 0o666)
    with private.open_private(loose, "ab") as handle:
        handle.write(b"new\n")
    assert (mode(loose), loose.read_bytes()) == (0o600, b"old\nnew\n")
    with pytest.raises(ValueError, match="open_private writes only"):
        private.open_private(loose, "rb")


def test_group_readable_policy_and_the_umask_it_sets(tmp_path, umask_000):
    private.apply(group_readable=True)
    assert (private.dir_mode(), private.file_mode()) == (0o750, 0o640)
    assert os.umask(0o027) == 0o027
    private.make_dirs(tmp_path / "g")
    with private.open_private(tmp_path / "g" / "f", "wb"):
        pass
    assert (mode(tmp_path / "g"), mode(tmp_path / "g" / "f")) == (0o750, 0o640)
    os.umask(0o077)  # a stricter umask of the user's is kept
    private.apply(group_readable=True)
    assert os.umask(0) == 0o077
    private.apply(group_readable=False)
    assert (os.umask(0), private.dir_mode(), private.file_mode()) == (0o077, 0o700, 0o600)


def test_markers_staging_and_reports_are_private_under_umask_000(tmp_path, umask_000):
    write_json_atomic(tmp_path / "output" / "1" / "x.json", {"rows": 1})
    staging = LocalStaging(tmp_path / "staging")
    with staging.write_parts("mysql", "t", 1) as parts:
        parts.part(0, b"h\n").write(b"1\n")
    result = ReportResult("sql_top_login_countries", ["rank", "country", "user_count"], [(1, "DE", 2)])
    write_outputs([result], tmp_path / "reports" / "1", "one")
    write_outputs([result], tmp_path / "reports" / "2", "two", previous=tmp_path / "reports" / "1")  # the copied chart
    entries = sorted(p for p in tmp_path.rglob("*"))
    assert [p.name for p in entries if p.is_file()] == [
        "x.json", "dashboard.html", "dashboard.sections.json", "sql_top_login_countries.csv",
        "sql_top_login_countries.png", "dashboard.html", "dashboard.sections.json", "sql_top_login_countries.csv",
        "sql_top_login_countries.png", "part-00000.csv"]
    assert {str(p.relative_to(tmp_path)): mode(p) for p in entries if mode(p) not in (0o700, 0o600)} == {}
    assert {mode(p) for p in entries if p.is_dir()} == {0o700}


def test_tighten_folders_closes_an_open_tree_and_leaves_links_and_shared_folders(tmp_path, umask_000, caplog):
    root = tmp_path / "staging"
    (root / "mysql").mkdir(parents=True, mode=0o777)
    os.chmod(root, 0o777)
    (root / "mysql" / "part.csv").write_text("x")
    os.chmod(root / "mysql" / "part.csv", 0o666)
    outside = tmp_path / "outside.txt"
    outside.write_text("not the job's")
    os.chmod(outside, 0o644)
    (root / "link").symlink_to(outside)
    tight = tmp_path / "output"
    tight.mkdir(mode=0o700)
    (tight / "old.json").write_text("{}")
    os.chmod(tight / "old.json", 0o644)  # unreachable to others through its 0700 folder: left alone
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    with caplog.at_level(logging.WARNING, logger="etl.private"):
        warnings = private.tighten_folders([root, tight, tmp_path / "missing", shared, ""])
    assert (mode(root), mode(root / "mysql"), mode(root / "mysql" / "part.csv")) == (0o700, 0o700, 0o600)
    assert (mode(outside), mode(tight / "old.json"), mode(shared)) == (0o644, 0o644, 0o1777)
    assert warnings == [f"state folder {shared} is mode 1777 and it is a shared folder: others may read or replace "
                        f"the job's files there; point the setting at a folder of the job's own, or have its owner run "
                        f"chmod go-rwx {shared}"]
    assert f"state folder {root} was mode 0777 (open to others): now 0700, with 2 entries below it tightened" in caplog.text


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_tighten_folders_warns_about_a_folder_of_another_user(tmp_path):
    other = tmp_path / "theirs"
    other.mkdir()
    os.chmod(other, 0o777)
    os.chown(other, 65534, 65534)
    warnings = private.tighten_folders([other])
    assert mode(other) == 0o777
    assert warnings == [f"state folder {other} is mode 0777 and it is owned by uid 65534, not by this user (uid 0): "
                        f"others may read or replace the job's files there; point the setting at a folder of the job's "
                        f"own, or have its owner run chmod go-rwx {other}"]


def test_a_task_built_by_the_luigi_command_sets_the_umask(umask_000):
    """Any task the command line names (here one table's extract, run alone) sets the umask as it is built,
    before anything is written or a worker forked; a task built in code (a test) leaves the umask alone."""
    from luigi.cmdline_parser import CmdlineParser

    import luigi_dw_etl as job

    job.ExtractMySQLTable(table="companies", execution_sequence=41)
    assert os.umask(0) == 0
    with CmdlineParser.global_instance(["ExtractMySQLTable", "--table", "companies", "--execution-sequence", "42"]):
        job.ExtractMySQLTable(table="companies", execution_sequence=42)
    assert (os.umask(0), private.file_mode()) == (0o077, 0o600)
    with CmdlineParser.global_instance(["ExtractMySQLTable", "--table", "companies", "--execution-sequence", "43",
                                        "--dw-etl-group-readable", "true"]):
        job.ExtractMySQLTable(table="companies", execution_sequence=43)
    assert (os.umask(0), private.file_mode()) == (0o027, 0o640)
