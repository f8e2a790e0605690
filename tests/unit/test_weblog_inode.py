"""A log changed in place within its fingerprint bytes (etl.weblog.files.identify): found by its
inode, then recognised by its alias fingerprint after rotation. Real files in tmp_path, no database."""

from __future__ import annotations

import gzip
import os

from etl.weblog import files
from etl.weblog.generations import COMPARED_FIELDS, unchanged_prefix
from etl.weblog.parse import parse_line
from tests.support.weblog_lines import line, one


def stored(prefix: str, lines: list[bytes]):
    """A StoredLookup holding ``lines`` parsed, keys ``<prefix>:<line number>`` from 1."""
    rows = {f"{prefix}:{n}": tuple(getattr(parse_line(raw.decode().rstrip("\n")), f) for f in COMPARED_FIELDS)
            for n, raw in enumerate(lines, start=1)}
    return lambda keys: {k: rows[k] for k in keys if k in rows}


def _logged(path, count: int, tag: str = "a") -> tuple[list[bytes], files.LogFile]:
    lines = [line(tag, i) for i in range(count)]
    path.write_bytes(b"".join(lines))
    return lines, one(path)


def test_a_log_truncated_below_its_fingerprint_bytes_keeps_its_identity_by_inode(tmp_path):
    log = tmp_path / "access.log"
    original, first = _logged(log, 60)
    file_id, nbytes = first.new_identity
    assert first.inode == f"{os.stat(log).st_dev}:{os.stat(log).st_ino}"
    os.truncate(log, len(b"".join(original[:5])))  # below the fingerprint bytes (the lines in the first 4 KiB)
    assert len(b"".join(original[:5])) < nbytes
    with open(log, "ab") as handle:
        handle.write(b"".join(line("n", i) for i in range(10)))
    now = one(log)
    assert now.inode == first.inode and not now.matches(file_id, nbytes)
    assert files.identify([now], {file_id: nbytes}) == {now.new_identity[0]: (now, now.new_identity[1])}  # no inode
    assert files.identify([now], {file_id: nbytes}, inodes={file_id: first.inode}) == {file_id: (now, nbytes)}
    assert not files.matched_by_fingerprint(now, nbytes, file_id, None)
    # then the recorded position tells it was truncated, and the store's lines say what stays
    assert files.resume_check(now, first.size, files.tail_digest(first, first.size)) == "truncated"
    assert unchanged_prefix(now, file_id, [1], 60, stored(file_id, original)) == (5, len(b"".join(original[:5])))


def test_an_identity_another_file_matches_is_never_taken_by_inode(tmp_path):
    # copytruncate: the copy keeps the content (and the identity), the original is emptied and written anew
    log = tmp_path / "access.log"
    original, first = _logged(log, 60)
    file_id, nbytes = first.new_identity
    copy = tmp_path / "access.log.1"
    copy.write_bytes(b"".join(original))
    log.write_bytes(b"".join(line("n", i) for i in range(3)))
    rotated, fresh = one(copy), one(log)
    assert fresh.inode == first.inode
    found = files.identify([rotated, fresh], {file_id: nbytes}, inodes={file_id: first.inode})
    assert found == {file_id: (rotated, nbytes), fresh.new_identity[0]: (fresh, fresh.new_identity[1])}


def test_an_inode_is_not_used_for_compressed_files_or_when_two_identities_had_it(tmp_path):
    log = tmp_path / "access.log"
    _, first = _logged(log, 60)
    file_id, nbytes = first.new_identity
    other = tmp_path / "other.log"
    _, second = _logged(other, 40, tag="o")
    other_id, other_bytes = second.new_identity
    log.write_bytes(b"".join(line("n", i) for i in range(3)))
    changed = one(log)
    # two identities recorded with the file's inode: ambiguous, a new identity
    assert list(files.identify([changed], {file_id: nbytes, other_id: other_bytes},
                               inodes={file_id: first.inode, other_id: first.inode})) == [changed.new_identity[0]]
    # an identity unknown in ``known`` is never taken
    assert list(files.identify([changed], {other_id: other_bytes}, inodes={file_id: first.inode})) \
        == [changed.new_identity[0]]
    # a compressed file with that inode (gzip written over the same inode) is not taken by inode
    with open(log, "wb") as handle:
        handle.write(gzip.compress(b"".join(line("z", i) for i in range(3))))
    packed = one(log)
    assert packed.compressed and packed.inode == first.inode
    assert list(files.identify([packed], {file_id: nbytes}, inodes={file_id: first.inode})) == [packed.new_identity[0]]


def test_the_alias_recognises_the_changed_log_after_rotation_and_compression(tmp_path):
    log = tmp_path / "access.log"
    original, first = _logged(log, 60)
    file_id, nbytes = first.new_identity
    log.write_bytes(b"".join(original[:5] + [line("n", i) for i in range(10)]))
    changed = one(log)
    alias = changed.new_identity  # what the loader records when the identity is found by inode
    with open(log, "ab") as handle:
        handle.write(line("m", 0))
    rotated = tmp_path / "access.log.1.gz"
    with gzip.open(rotated, "wb") as handle:
        handle.write(log.read_bytes())
    os.remove(log)
    packed = one(rotated)
    assert packed.inode != first.inode and not packed.matches(file_id, nbytes)
    assert list(files.identify([packed], {file_id: nbytes}, inodes={file_id: first.inode})) != [file_id]
    assert files.identify([packed], {file_id: nbytes}, aliases={file_id: alias}) == {file_id: (packed, nbytes)}
    assert files.matched_by_fingerprint(packed, nbytes, file_id, alias)
    # an alias of an identity not in ``known`` is ignored
    assert list(files.identify([packed], {}, aliases={file_id: alias})) == [packed.new_identity[0]]
