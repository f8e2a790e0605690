"""Log files that cannot be read are skipped, named, and never block (etl.weblog.discovery, files.read_blocks,
load._blocks); rejects keep a bounded prefix; paths matching nothing warn. Real files, FIFOs and links in
tmp_path; the unreadable file is read by a child process running as uid/gid 65534. No database."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import threading
from pathlib import Path

import pytest

from etl import summary
from etl.weblog import discovery, files, load
from etl.weblog.parse import REJECT_RAW_BYTES, reject_record
from tests.support.weblog_lines import corrupt_gzip, line, one, truncated_gzip

RETRIED = "Nothing of it is recorded as read: it is retried on every run"


def lines(tag: str, count: int) -> bytes:
    return b"".join(line(tag, i) for i in range(count))


def only_skip(found: discovery.Discovery) -> discovery.Skipped:
    (skip,) = found.skipped
    return skip


def test_a_gzip_truncated_in_its_first_4_kib_is_skipped_when_listed(tmp_path):
    (tmp_path / "access.log").write_bytes(lines("a", 5))
    (tmp_path / "access.log.3.gz").write_bytes(gzip.compress(lines("c", 50))[:40])
    found = discovery.scan([str(tmp_path / "access.log*")])
    assert [f.path for f in found.files] == [str(tmp_path / "access.log")]
    path = tmp_path / "access.log.3.gz"
    assert only_skip(found).message() == (
        f"log {path} skipped: a truncated or corrupt gzip file (EOFError: Compressed file ended before the "
        f"end-of-stream marker was reached); replace it with a complete copy (`gzip -t {path}` tests one); a file "
        f"still being compressed is read once it is complete. {RETRIED}")


@pytest.mark.parametrize("damage", [truncated_gzip, corrupt_gzip], ids=["truncated", "corrupt"])
@pytest.mark.parametrize("hold", [files.GZIP_HOLD_BYTES, 4096], ids=["held", "two-pass"])
def test_a_gzip_damaged_midway_yields_no_line(tmp_path, monkeypatch, damage, hold):
    monkeypatch.setattr(files, "GZIP_HOLD_BYTES", hold)  # 4096: the rest is checked, then read again
    data = lines("c", 3000)
    path = tmp_path / "access.log.3.gz"
    path.write_bytes(damage(data))
    lf = one(path)  # its first 4 KiB decompress: listed
    assert lf.compressed and data.startswith(lf.head)
    blocks = files.read_blocks(lf, 0, None, block_bytes=1024)
    with pytest.raises(files.GZIP_ERRORS):
        next(blocks)  # the very first block raises: nothing of the file was used
    path.write_bytes(gzip.compress(data))  # replaced by a complete copy: every line, once
    assert b"".join(b for _, b in files.read_blocks(one(path), 0, None, block_bytes=1024)) == data


@pytest.mark.parametrize("hold", [files.GZIP_HOLD_BYTES, 4096], ids=["held", "two-pass"])
def test_a_good_gzip_reads_the_same_blocks_and_tail_either_way(tmp_path, monkeypatch, hold):
    monkeypatch.setattr(files, "GZIP_HOLD_BYTES", hold)
    data = lines("g", 2000)
    path = tmp_path / "access.log.2.gz"
    path.write_bytes(gzip.compress(data))
    start = data.index(line("g", 700))
    tail = files.TailHash()
    blocks = list(files.read_blocks(one(path), start, None, block_bytes=4096, tail=tail))
    assert b"".join(b for _, b in blocks) == data[start:]
    assert blocks[-1][0] == len(data)
    assert tail.digest() == files.tail_digest(one(path), len(data))


def test_the_loader_skips_a_gzip_found_damaged_when_read(tmp_path):
    path = tmp_path / "access.log.3.gz"
    path.write_bytes(truncated_gzip(lines("c", 3000)))
    window = {"start_offset": 0, "end_offset": None}
    with pytest.raises(load._Unreadable) as caught:
        next(load._blocks(one(path), window, files.TailHash()))
    assert caught.value.skipped.reason == ("a truncated or corrupt gzip file (EOFError: Compressed file ended before "
                                           "the end-of-stream marker was reached)")


def test_a_fifo_is_skipped_without_being_opened(tmp_path):
    (tmp_path / "access.log").write_bytes(lines("a", 5))
    fifo = tmp_path / "access.log.pipe"
    os.mkfifo(fifo)
    result = {}
    worker = threading.Thread(target=lambda: result.update(found=discovery.scan([str(tmp_path / "access.log*")])),
                              daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "scan blocked on the FIFO"
    found = result["found"]
    assert [f.path for f in found.files] == [str(tmp_path / "access.log")]
    assert only_skip(found).message() == (
        f"log {fifo} skipped: a FIFO (named pipe), not a regular file (never opened); remove it from the log folder "
        f"or narrow [weblog] paths to the log files. {RETRIED}")
    with pytest.raises(files.NotRegularFile, match="is a FIFO"):  # a path turned into a FIFO after the check
        files.open_regular(str(fifo))


def test_a_folder_matching_the_pattern_is_skipped(tmp_path):
    (tmp_path / "access.log").write_bytes(lines("a", 5))
    (tmp_path / "access.log.d").mkdir()
    found = discovery.scan([str(tmp_path / "access.log*")])
    assert [f.path for f in found.files] == [str(tmp_path / "access.log")]
    assert only_skip(found).reason == "a directory, not a regular file (never opened)"


def test_a_link_outside_the_log_folder_is_skipped_one_inside_is_read(tmp_path):
    logs, private = tmp_path / "logs", tmp_path / "private"
    logs.mkdir()
    private.mkdir()
    (private / "secret.log").write_bytes(lines("s", 5))
    (private / "secret.log").chmod(0o600)
    (logs / "access.log.evil").symlink_to(private / "secret.log")
    (logs / "current-2025.log").write_bytes(lines("a", 5))  # not matched by the pattern itself
    (logs / "access.log").symlink_to("current-2025.log")  # a link inside the folder: read
    (logs / "access.log.1").write_bytes(lines("b", 5))
    (logs / "access.log.same").symlink_to("access.log.1")  # names a matched file again: read once, by its own name
    found = discovery.scan([str(logs / "access.log*")])
    assert sorted(f.path for f in found.files) == [str(logs / "access.log"), str(logs / "access.log.1")]
    assert only_skip(found).message() == (
        f"log {logs / 'access.log.evil'} skipped: a symbolic link to {private / 'secret.log'}, outside the log folders "
        f"({logs}); logs are read only from the folders of [weblog] paths: move the file there or remove the link. "
        f"{RETRIED}")


def test_log_folders_are_the_folders_the_patterns_name(tmp_path, monkeypatch):
    for name in ("a/logs", "b/logs", "c"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "linked").symlink_to(tmp_path / "c")
    monkeypatch.chdir(tmp_path)
    assert discovery.log_folders(["*/logs/access.log", "linked/x.log", "y.log"]) == {
        str(tmp_path / "a/logs"), str(tmp_path / "b/logs"), str(tmp_path / "c"), str(tmp_path)}


def scan_as(uid: int | None, pattern: str) -> dict:
    """``discovery.scan([pattern])`` in a forked child that first drops to ``uid`` (and gid ``uid``, no
    supplementary groups; None: stays who it is): ``{"files": [paths], "skipped": [dicts]}``."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only os calls and the scan, then _exit (no pytest teardown here)
        code = 1
        try:
            os.close(read_end)
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            found = discovery.scan([pattern])
            result = {"files": [f.path for f in found.files], "skipped": [s.as_dict() for s in found.skipped]}
            code = 0
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            result = {"error": repr(exc)}
        finally:
            os.write(write_end, json.dumps(result).encode())
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    result = json.loads(data)
    assert os.waitstatus_to_exitcode(status) == 0, result
    return result


def test_a_file_the_job_user_cannot_read_is_skipped():
    """Root reads any file, so the scan runs in a child process as uid/gid 65534 (nobody) over files it owns,
    beside one owned by root with mode 0600 (not root: the test's own user and a mode-000 file)."""
    as_root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="weblog-perm-"))  # tmp_path's parents are not searchable by nobody
    closed = folder / "access.log.1"
    try:
        (folder / "access.log").write_bytes(lines("a", 5))
        closed.write_bytes(lines("b", 5))
        if as_root:
            for path in (folder, folder / "access.log"):
                os.chown(path, 65534, 65534)
            closed.chmod(0o600)
        else:
            closed.chmod(0)
        result = scan_as(65534 if as_root else None, str(folder / "access.log*"))
        uid = 65534 if as_root else os.getuid()
        assert result == {"files": [str(folder / "access.log")], "skipped": [{
            "path": str(closed), "reason": f"the job user (uid {uid}) may not read it (Permission denied)",
            "advice": "give that user read permission (e.g. its group and chmod g+r) or exclude the file from "
                      "[weblog] paths"}]}
    finally:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


def test_a_dangling_link_is_skipped(tmp_path):
    (tmp_path / "access.log").symlink_to(tmp_path / "gone.log")
    assert only_skip(discovery.scan([str(tmp_path / "access.log*")])).reason == (
        f"a symbolic link to {tmp_path / 'gone.log'}, which does not exist")


def test_reject_records_keep_a_bounded_prefix_and_the_length():
    long = b"x" * (REJECT_RAW_BYTES - 1) + "é".encode() + b"tail" * 1000
    record = reject_record("/logs/access.log", 7, "too few fields", long)
    assert record == {"file": "/logs/access.log", "line_no": 7, "reason": "too few fields",
                      "raw": "x" * (REJECT_RAW_BYTES - 1), "raw_bytes": len(long), "raw_truncated": True}
    assert reject_record("f", 1, "r", b"bad \xff line")["raw"] == "bad \ufffd line"
    short = reject_record("f", 1, "r", b"y" * REJECT_RAW_BYTES)
    assert (len(short["raw"]), short["raw_bytes"], short["raw_truncated"]) == (REJECT_RAW_BYTES, REJECT_RAW_BYTES, False)


def test_paths_matching_no_file_name_the_patterns_and_the_folder_they_resolve_against(tmp_path):
    (tmp_path / "logs").mkdir()
    assert discovery.scan([f"{tmp_path}/lgs/access.log*", f"{tmp_path}/logs/acess.log*"]).matched == 0
    why = f"the folder of {tmp_path}/luigi.cfg, which sets [weblog] paths"
    assert discovery.no_match_message(["lgs/access.log*", "logs/acess.log*"], str(tmp_path), why) == (
        f"[weblog] paths = lgs/access.log* logs/acess.log* matches no file (relative patterns resolve against "
        f"{tmp_path}, {why}; folder lgs does not exist): no access logs are read. Fix the patterns, or set "
        "[weblog] paths empty to read no logs")


def test_the_run_summary_lists_skipped_logs_and_paths_matching_nothing(tmp_path):
    folder = tmp_path / "1"
    folder.mkdir()
    skip = discovery.Skipped("/logs/access.log.3.gz", "a truncated or corrupt gzip file (EOFError: x)", "replace it")
    (folder / "weblog_access.extract.json").write_text(json.dumps(
        {"rows": 0, "lines": 0, "rejected": 0, "skipped": [skip.as_dict()], "no_match": "[weblog] paths = x matches no file"}))
    collected = summary.collect(tmp_path, 1, [], None, weblog=True)
    assert collected["warnings"] == [
        "access logs: [weblog] paths = x matches no file",
        f"access logs: log /logs/access.log.3.gz skipped: a truncated or corrupt gzip file (EOFError: x); replace it. "
        f"{RETRIED}"]
    assert "\nWARNING access logs: log /logs/access.log.3.gz skipped: " in summary.render(collected)
