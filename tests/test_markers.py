"""Unit tests of the execution sequence rule, atomic markers and the staging CSV dialect."""

from __future__ import annotations

import csv
import io
import os

from etl.markers import latest_sequence_on_disk, read_json, resolve_sequence, write_json_atomic
from etl.staging import LocalStaging, write_raw_batches


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
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    assert [p.name for p in path.parent.iterdir()] == ["b.json"]
    assert read_json(tmp_path / "none.json") == {}


def test_staging_csv_distinguishes_null_and_empty(tmp_path):
    buf = io.StringIO()
    rows = [(b"1", None, b"", b'q"uote', b"a,b\nc", "é".encode()), (b"2", b"\\N", b"NULL", None, b"", b"")]
    n, invalid = write_raw_batches(buf, ["a", "b", "c", "d", "e", "f"], 9, [rows[:1], rows[1:]])
    assert (n, invalid) == (2, {})
    text = buf.getvalue()
    assert text.splitlines()[1] == '9,"1",,"","q""uote","a,b'
    assert '9,"2","\\N","NULL",,"",""' in text
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[1][4] == 'q"uote' and parsed[1][5] == "a,b\nc" and parsed[1][6] == "é"


def test_staging_rewrite_replaces_only_its_own_sequence(tmp_path):
    staging = LocalStaging(tmp_path)
    for seq in (1, 2):
        with staging.write_part("mysql", "t", seq) as handle:
            handle.write(f"seq {seq}\n")
    with staging.write_part("mysql", "t", 2) as handle:
        handle.write("again\n")
    assert staging.part_path("mysql", "t", 1).read_text() == "seq 1\n"
    assert staging.part_path("mysql", "t", 2).read_text() == "again\n"
    assert str(staging.part_path("mysql", "t", 2)).endswith("mysql/t/execution_sequence=2/part-00000.csv")
    try:
        with staging.write_part("mysql", "t", 3) as handle:
            handle.write("partial")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert list(staging.partition_dir("mysql", "t", 3).iterdir()) == []


def test_zero_and_partial_dates_become_null_and_are_counted():
    buf = io.StringIO()
    rows = [
        (b"1", b"0000-00-00", b"2024-01-31 10:00:00"),
        (b"2", b"2024-00-10", b"0000-00-00 00:00:00"),
        (b"3", b"2024-02-00", b"2024-02-29 23:59:59.000001"),
        (b"4", b"2000-10-10", None),
    ]
    n, invalid = write_raw_batches(buf, ["id", "d", "dt"], 1, [rows], date_columns=[1, 2])
    assert (n, invalid) == (4, {"d": 3, "dt": 1})
    lines = buf.getvalue().splitlines()[1:]
    assert lines == ['1,"1",,"2024-01-31 10:00:00"', '1,"2",,', '1,"3",,"2024-02-29 23:59:59.000001"', '1,"4","2000-10-10",']
