"""Generations of an access log's identity (etl.weblog.files, etl.weblog.generations): keys,
tail digests, truncation and rewrite detection, and the lines a new generation keeps. No database."""

from __future__ import annotations

import gzip
import os

import pytest

from etl.weblog import files
from etl.weblog.generations import COMPARED_FIELDS, generation_of, unchanged_prefix
from tests.support.weblog_lines import line, one


class Store:
    """A store of parsed lines by key (what store_weblog.access holds), as a StoredLookup; counts the keys asked."""

    def __init__(self):
        self.rows: dict[str, tuple] = {}
        self.asked = 0

    def load(self, prefix: str, lines: list[bytes], first_line: int = 1) -> None:
        from etl.weblog.parse import RejectedLine, parse_line

        for n, raw in enumerate(lines, start=first_line):
            try:
                parsed = parse_line(raw.decode().rstrip("\n"))
            except RejectedLine:
                continue
            self.rows[f"{prefix}:{n}"] = tuple(getattr(parsed, f) for f in COMPARED_FIELDS)

    def __call__(self, keys: list[str]) -> dict[str, tuple]:
        self.asked += len(keys)
        return {k: self.rows[k] for k in keys if k in self.rows}


def test_generation_zero_keys_stay_as_before_and_later_generations_get_a_suffix():
    assert files.key_prefix("0123456789abcdef", 0) == "0123456789abcdef"
    assert files.key_prefix("0123456789abcdef", None) == "0123456789abcdef"  # positions recorded before generations
    assert files.key_prefix("0123456789abcdef", 1) == "0123456789abcdef.g1"
    assert files.key_prefix("0123456789abcdef", 12) == "0123456789abcdef.g12"


@pytest.mark.parametrize("start", [0, 1, 4000, 4096, 5000, 20000])
def test_the_tail_fed_while_reading_equals_the_tail_digest_at_the_offset_reached(tmp_path, start):
    content = b"".join(line("t", i) for i in range(200))  # about 24 KiB
    start = content.rfind(b"\n", 0, start) + 1 if start else 0  # a line boundary, as recorded offsets are
    plain = tmp_path / "access.log"
    plain.write_bytes(content)
    packed = tmp_path / "access.log.1.gz"
    with gzip.open(packed, "wb") as handle:
        handle.write(content)
    for log in (one(plain), one(packed)):
        tail = files.TailHash()
        assert tail.digest() == files._digest(b"")
        offsets = []
        for offset, _ in files.read_blocks(log, start, None, block_bytes=3000, tail=tail):
            offsets.append(offset)
            assert tail.digest() == files._digest(content[max(0, offset - files.TAIL_BYTES):offset])
        assert offsets[-1] == len(content)
        assert tail.digest() == files.tail_digest(one(plain), len(content)) == files.tail_digest(log, len(content))
    # a window that reads nothing: the digest of the bytes before its start
    tail = files.TailHash()
    assert list(files.read_blocks(one(plain), len(content), None, tail=tail)) == []
    assert tail.digest() == files._digest(content[-files.TAIL_BYTES:])
    assert files.tail_digest(one(plain), len(content) + 1) is None  # shorter than the offset


def test_resume_check_tells_growth_and_rotation_from_truncation_and_rewrite(tmp_path):
    lines = [line("a", i) for i in range(100)]
    path = tmp_path / "access.log"
    path.write_bytes(b"".join(lines))
    offset = path.stat().st_size
    tail = files.tail_digest(one(path), offset)

    assert files.resume_check(one(path), offset, tail) is None  # unchanged
    with open(path, "ab") as handle:
        handle.write(line("b", 1))
    assert files.resume_check(one(path), offset, tail) is None  # grown
    rotated = tmp_path / "access.log.1"
    os.rename(path, rotated)
    assert files.resume_check(one(rotated), offset, tail) is None  # renamed

    rotated.write_bytes(b"".join(lines[:50]) + b"".join(line("c", i) for i in range(20)))
    assert one(rotated).size < offset
    assert files.resume_check(one(rotated), offset, tail) == "truncated"
    assert files.resume_check(one(rotated), offset, None) == "truncated"  # no tail recorded: the size still tells

    # rewritten in place: same first lines, same size, one line changed before the offset
    rewritten = b"".join(lines[:90]) + lines[90].replace(b"/a/90", b"/z/90") + b"".join(lines[91:]) + line("b", 1)
    rotated.write_bytes(rewritten)
    assert one(rotated).size > offset
    assert files.resume_check(one(rotated), offset, tail) == "rewritten"
    assert files.resume_check(one(rotated), offset, None) is None  # a position recorded before tail digests: not checked

    packed = tmp_path / "access.log.1.gz"
    with gzip.open(packed, "wb") as handle:
        handle.write(rewritten[:1000])
    assert files.resume_check(one(packed), offset, tail) is None  # compressed copies are not checked (no read)


def test_a_truncated_and_appended_file_keeps_its_first_lines(tmp_path):
    lines = [line("a", i) for i in range(100)]
    store = Store()
    store.load("fid", lines)
    path = tmp_path / "access.log"
    path.write_bytes(b"".join(lines[:50]) + b"".join(line("new", i) for i in range(20)))
    kept = unchanged_prefix(one(path), "fid", [1], 100, store, block_bytes=1000)  # blocks of a few lines
    assert kept == (50, len(b"".join(lines[:50])))
    # only truncated, nothing appended: every line is kept
    path.write_bytes(b"".join(lines[:50]))
    assert unchanged_prefix(one(path), "fid", [1], 100, store) == (50, path.stat().st_size)
    # the file holds more than was read: at most the lines read are compared
    path.write_bytes(b"".join(lines) + line("more", 1))
    assert unchanged_prefix(one(path), "fid", [1], 70, store) == (70, len(b"".join(lines[:70])))
    assert unchanged_prefix(one(path), "fid", [1], 0, store) == (0, 0)


def test_a_rewritten_file_keeps_the_lines_before_the_first_changed_one(tmp_path):
    lines = [line("a", i) for i in range(100)]
    store = Store()
    store.load("fid", lines)
    path = tmp_path / "access.log"
    changed = lines[:30] + [line("x", i) for i in range(30, 100)]
    changed[40] = lines[40]  # the same line again after a changed one: the new generation has begun already
    path.write_bytes(b"".join(changed))
    assert unchanged_prefix(one(path), "fid", [1], 100, store) == (30, len(b"".join(lines[:30])))
    assert store.asked <= 100  # one block: each line's key once (one generation)


def test_lines_are_compared_with_the_latest_generation_holding_them(tmp_path):
    first = [line("a", i) for i in range(100)]
    second = first[:50] + [line("b", i) for i in range(50, 80)]  # generation 1 began at line 51
    store = Store()
    store.load("fid", first)
    store.load("fid.g1", second[50:], first_line=51)
    path = tmp_path / "access.log"
    path.write_bytes(b"".join(second[:60]) + line("c", 60))  # generation 1 truncated to 60 lines, then one new
    assert unchanged_prefix(one(path), "fid", [1, 51], 80, store) == (60, len(b"".join(second[:60])))
    # line 55 as generation 0 had it is not what generation 1 stored there: changed
    path.write_bytes(b"".join(first[:60]))
    assert unchanged_prefix(one(path), "fid", [1, 51], 80, store) == (50, len(b"".join(first[:50])))


def test_rejected_lines_count_as_unchanged_only_when_no_row_was_stored(tmp_path):
    lines = [line("a", i) for i in range(10)]
    lines[3] = b"not a log line\n"
    store = Store()
    store.load("fid", lines)
    assert "fid:4" not in store.rows and "fid:5" in store.rows
    path = tmp_path / "access.log"
    path.write_bytes(b"".join(lines[:6]) + line("n", 1))
    assert unchanged_prefix(one(path), "fid", [1], 10, store) == (6, len(b"".join(lines[:6])))
    # a stored line that no longer parses: changed
    broken = lines[:2] + [b"garbage\n"] + lines[3:]
    path.write_bytes(b"".join(broken))
    assert unchanged_prefix(one(path), "fid", [1], 10, store) == (2, len(b"".join(lines[:2])))
    # a line rejected before, a request now: changed
    fixed = lines[:3] + [line("a", 3)] + lines[4:]
    path.write_bytes(b"".join(fixed))
    assert unchanged_prefix(one(path), "fid", [1], 10, store) == (3, len(b"".join(lines[:3])))


def test_a_line_rejected_in_a_later_generation_is_not_compared_with_an_earlier_one(tmp_path):
    """60 lines; truncated to 40, then a malformed line and 30 requests (generation 1 from line 41, its line 41
    rejected); truncated again to 55 lines: lines 1-55 are all unchanged (41 is rejected in generation 1 too)."""
    first = [line("a", i) for i in range(60)]
    second = first[:40] + [b"not a log line\n"] + [line("b", i) for i in range(30)]
    store = Store()
    store.load("fid", first)
    store.load("fid.g1", second[40:], first_line=41)
    assert "fid.g1:41" not in store.rows and "fid:41" in store.rows
    path = tmp_path / "access.log"
    path.write_bytes(b"".join(second[:55]) + line("c", 1))
    assert unchanged_prefix(one(path), "fid", [1, 41], 71, store) == (55, len(b"".join(second[:55])))
    assert files.key_prefix("fid", generation_of(40, [1, 41])) == "fid" and generation_of(41, [1, 41]) == 1
