"""The look-back overlap plans (etl.overlap), against a fake MySQL source: what an extract reads.

An incremental window ``[start, end)`` starts ``lookback_seconds`` before the previous end
``E``. The overlap ``[start, E)`` is not read again when the tail recorded by the previous
extract (rows and checksum of the same span, same hash version) equals MySQL's fingerprint
of it now; otherwise the whole window is read. The real fingerprints (MySQL's hash equal to
the one of the staged lines): tests/integration/test_overlap.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from etl import overlap
from etl.control import TailFingerprint
from etl.domain import SourceColumn, Window
from tests.support.fakes import FakeConnection
from tests.support.sqltext import META

SOURCE_TYPES = {
    "order_no": SourceColumn("order_no", "varchar", "varchar(20)", char_length=20),
    "order_line_no": SourceColumn("order_line_no", "int", "int(11)"),
    "quantity": SourceColumn("quantity", "int", "int(11)"),
    "updated_datetime": SourceColumn("updated_datetime", "datetime", "datetime", datetime_precision=0),
}
LOOKBACK = 300
E = datetime(2024, 3, 5, 12, 0, 0)  # the end of the previous window (the committed watermark)
S = timedelta(seconds=1)
VERSION = overlap.fingerprint_version(META, SOURCE_TYPES)
PREVIOUS = TailFingerprint(E - 300 * S, E, rows=3, checksum=Decimal(123456789), version=VERSION)
WINDOW = Window(E - 300 * S, E + 600 * S, E + 602 * S)  # the next window: from E - lookback to the new end
COUNT = "SELECT COUNT(*) FROM"
FINGERPRINT = "SELECT COALESCE(SUM("


def source(count=None, fingerprint=None) -> FakeConnection:
    """A MySQL source answering the overlap's row count and fingerprint with the given rows."""
    return FakeConnection([(COUNT, [count] if count else []), (FINGERPRINT, [fingerprint] if fingerprint else [])])


def plan(window, previous, src):
    return overlap.plan(META, "shop", SOURCE_TYPES, window, LOOKBACK, previous, src)


def test_a_first_extract_reads_everything_and_mysql_fingerprints_just_its_tail():
    src = source(fingerprint=(7, Decimal(99)))
    result = plan(Window(None, E, E + 2 * S), None, src)
    assert result.read_window == Window(None, E, E + 2 * S)
    assert result.tail == (E - 300 * S, E)
    assert result.flagged is None  # nothing to hash in Python: MySQL summed the tail already
    assert result.fingerprint() == TailFingerprint(E - 300 * S, E, 7, Decimal(99), VERSION)
    assert src.ran(FINGERPRINT) == [[E - 300 * S, E, E - 300 * S, E, E - 300 * S, E]]


def test_without_a_previous_tail_the_whole_window_is_read_and_its_tail_flagged():
    src = source()
    result = plan(WINDOW, None, src)
    assert result.read_window == WINDOW
    assert result.tail == result.flagged == (E + 300 * S, E + 600 * S)
    assert (result.rows, result.checksum) == (0, 0)
    assert src.statements == []  # nothing to verify: no query


def test_a_window_shorter_than_the_look_back_is_its_own_tail():
    result = plan(Window(E - 300 * S, E - 200 * S, E), None, source())
    assert result.tail == (E - 300 * S, E - 200 * S)  # the tail never starts before the window


@pytest.mark.parametrize("previous", [
    replace(PREVIOUS, version="0123456789abcdef"),  # other columns, types or where_clause
    replace(PREVIOUS, start=E - 200 * S),  # recorded with another look-back setting
    replace(PREVIOUS, end=E + 700 * S),  # ends after this window
    replace(PREVIOUS, end=E - 300 * S),  # ends where this window starts: no overlap
], ids=["other-version", "other-look-back", "ends-after-the-window", "empty-overlap"])
def test_a_tail_that_does_not_describe_the_overlap_is_not_compared(previous):
    src = source(count=(3,), fingerprint=(3, Decimal(123456789)))
    result = plan(WINDOW, previous, src)
    assert result.read_window == WINDOW and result.flagged == (E + 300 * S, E + 600 * S)
    assert src.statements == []


def test_a_changed_row_count_reads_the_whole_window_without_hashing_the_overlap():
    src = source(count=(4,))  # a row committed late into the overlap
    result = plan(WINDOW, PREVIOUS, src)
    assert result.read_window == WINDOW
    assert src.ran(COUNT) == [[E - 300 * S, E]]
    assert src.ran(FINGERPRINT) == []  # the count alone decided


def test_a_silent_change_in_the_overlap_reads_the_whole_window():
    """Same row count, another checksum: a value changed without moving the watermark."""
    src = source(count=(3,), fingerprint=(3, Decimal(123456788)))
    result = plan(WINDOW, PREVIOUS, src)
    assert result.read_window == WINDOW and result.flagged == (E + 300 * S, E + 600 * S)


def test_an_unchanged_overlap_is_not_read_again():
    src = source(count=(3,), fingerprint=(3, Decimal(123456789)))
    result = plan(WINDOW, PREVIOUS, src)
    assert result.read_window == Window(E, E + 600 * S, E + 602 * S)  # reading starts at the previous end
    assert result.tail == result.flagged == (E + 300 * S, E + 600 * S)
    assert (result.rows, result.checksum) == (0, 0)  # the new tail lies wholly in what is read
    assert src.ran(FINGERPRINT) == [[E - 300 * S, E, E - 300 * S, E, E - 300 * S, E]]


def test_the_part_of_the_new_tail_inside_a_verified_overlap_is_counted_by_mysql():
    """A window shorter than the look-back: its tail starts inside the overlap, which is not read."""
    window = Window(E - 300 * S, E + 100 * S, E + 102 * S)
    src = source(count=(3,), fingerprint=(3, Decimal(123456789), 2, Decimal(777)))
    result = plan(window, PREVIOUS, src)
    assert result.read_window == Window(E, E + 100 * S, E + 102 * S)
    assert result.tail == (E - 200 * S, E + 100 * S)
    assert (result.rows, result.checksum) == (2, 777)  # [E - 200 s, E) from MySQL; the rest hashed from the staged lines
    lo, hi = E - 300 * S, E - 200 * S
    assert src.ran(FINGERPRINT) == [[lo, E, lo, E, hi, E, hi, E, lo, E]]


def test_hashing_passes_the_batches_through_and_adds_only_the_flagged_rows():
    result = overlap.TailPlan(WINDOW, E + 300 * S, E + 600 * S, VERSION, rows=2, checksum=10)
    batches = [[(b"7,A,1,5,2024-03-05 12:05:01", b"1"), (b"7,B,1,5,2024-03-05 12:01:00", b"0")],
               [(b"7,C,2,,2024-03-05 12:09:59", b"1"), (b"7,D,1,1,", None)]]
    assert list(result.hashing(iter(batches), prefix_bytes=len(b"7,"))) == batches
    expected = 10 + overlap.row_fingerprint(b"A,1,5,2024-03-05 12:05:01") + overlap.row_fingerprint(b"C,2,,2024-03-05 12:09:59")
    assert result.fingerprint() == TailFingerprint(E + 300 * S, E + 600 * S, 4, Decimal(expected), VERSION)


def test_the_row_hash_is_the_first_60_bits_of_the_md5_of_the_staged_text():
    assert overlap.row_fingerprint(b"") == 0xD41D8CD98F00B20  # MD5 d41d8cd98f00b204e9800998ecf8427e
    assert overlap.row_fingerprint(b"A,1") != overlap.row_fingerprint(b"A,2")
    assert all(overlap.row_fingerprint(bytes([i])) < 2**60 for i in range(256))


def test_the_hash_version_changes_with_the_filter_the_columns_and_how_a_column_is_staged():
    assert len(VERSION) == 16 and VERSION == overlap.fingerprint_version(META, dict(SOURCE_TYPES))
    assert overlap.fingerprint_version(replace(META, where_clause="is_test = 1"), SOURCE_TYPES) != VERSION
    assert overlap.fingerprint_version(replace(META, columns=("order_no", "order_line_no", "updated_datetime")),
                                       SOURCE_TYPES) != VERSION
    quoted = {**SOURCE_TYPES, "quantity": SourceColumn("quantity", "varchar", "varchar(10)", char_length=10)}
    assert overlap.fingerprint_version(META, quoted) != VERSION  # staged quoted now: other text, other hashes
