"""Unit tests of the execution sequence rule, atomic markers and the staging CSV dialect."""

from __future__ import annotations

import os

from etl.markers import latest_sequence_on_disk, read_json, resolve_sequence, write_json_atomic
from etl.staging import LocalStaging


def test_resolve_sequence():
    assert resolve_sequence(0, lambda s: True) == 1
    assert resolve_sequence(4, lambda s: True) == 5
    assert resolve_sequence(4, lambda s: False) == 4  # resume the incomplete run
    asked = []
    resolve_sequence(7, lambda s: asked.append(s) or True)
    assert asked == [7]


def test_latest_sequence_on_disk(tmp_path):
    assert latest_sequence_on_disk(tmp_path / "missing") == 0
    for name in ("1", "2", "10", "tmp", "3x"):
        (tmp_path / name).mkdir()
    (tmp_path / "11").write_text("a file, not a sequence folder")
    assert latest_sequence_on_disk(tmp_path) == 10


def test_write_json_atomic(tmp_path):
    path = tmp_path / "a" / "b.json"
    write_json_atomic(path, {"rows": 3})
    assert read_json(path) == {"rows": 3}
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"  # private (etl.private)
    assert [p.name for p in path.parent.iterdir()] == ["b.json"]
    assert read_json(tmp_path / "none.json") == {}


def test_staging_rewrite_replaces_only_its_own_sequence(tmp_path):
    staging = LocalStaging(tmp_path)
    for seq in (1, 2):
        with staging.write_parts("mysql", "t", seq) as parts:
            parts.part(0).write(f"seq {seq}\n".encode())
    with staging.write_parts("mysql", "t", 2) as parts:
        parts.part(0).write(b"again\n")
    assert staging.part_path("mysql", "t", 1).read_text() == "seq 1\n"
    assert staging.part_path("mysql", "t", 2).read_text() == "again\n"
    assert str(staging.part_path("mysql", "t", 2)).endswith("mysql/t/execution_sequence=2/part-00000.csv")
    try:
        with staging.write_parts("mysql", "t", 3) as parts:
            parts.part(0).write(b"partial")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert list(staging.partition_dir("mysql", "t", 3).iterdir()) == []


