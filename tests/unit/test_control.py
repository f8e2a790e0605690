"""Watermark windows and the other etl_control decisions, against a fake warehouse connection.

The next window of an incremental table starts ``lookback_seconds`` before its committed
watermark (unbounded before the first load) and ends ``safety_lag_seconds`` before the
source clock; a resumed sequence reuses the window recorded first; a watermark of another
column stops the run. The SQL itself runs on PostgreSQL in tests/integration.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from etl import control
from etl.domain import Window
from etl.errors import MergeError
from tests.support.fakes import FakeConnection

NOW = datetime(2024, 3, 5, 12, 0, 0)  # the source clock
LAST = datetime(2024, 3, 5, 11, 0, 0)  # the committed watermark: the end of the last committed window
WATERMARK = "FROM etl_control.watermark WHERE"
RECORDED = "FROM etl_control.extract_window"


def warehouse(watermark=None, recorded=None, **more):
    """A warehouse whose etl_control holds ``watermark`` ((column, value) or None) and ``recorded`` (a row or None)."""
    answers = [(WATERMARK, [watermark] if watermark else []), (RECORDED, [recorded] if recorded else [])]
    return FakeConnection(answers + list(more.items()))


def test_the_first_window_of_a_table_is_unbounded_and_ends_the_safety_lag_before_the_source_clock():
    conn = warehouse(watermark=None)
    window = control.next_window(conn, "orders", "updated_datetime", NOW, lookback_seconds=300, safety_lag_seconds=2)
    assert window == Window(None, datetime(2024, 3, 5, 11, 59, 58), NOW)
    assert conn.ran(WATERMARK) == [["orders"]]


@pytest.mark.parametrize("lookback, lag, start, end", [
    (300, 2, datetime(2024, 3, 5, 10, 55, 0), datetime(2024, 3, 5, 11, 59, 58)),
    (0, 0, LAST, NOW),  # no look-back: the window starts exactly at the watermark
    (7200, 0, datetime(2024, 3, 5, 9, 0, 0), NOW),  # a look-back longer than the time since the last run
])
def test_the_next_window_starts_the_look_back_before_the_committed_watermark(lookback, lag, start, end):
    conn = warehouse(watermark=("updated_datetime", LAST))
    window = control.next_window(conn, "orders", "updated_datetime", NOW, lookback, lag)
    assert (window.start, window.end, window.source_clock) == (start, end, NOW)


def test_consecutive_windows_overlap_by_the_look_back_and_leave_no_gap():
    first = control.next_window(warehouse(), "orders", "updated_datetime", NOW, 300, 2)
    # the store upsert of the first window advances the watermark to its end
    later = NOW + timedelta(minutes=10)
    second = control.next_window(warehouse(watermark=("updated_datetime", first.end)), "orders", "updated_datetime",
                                 later, 300, 2)
    assert second.start == first.end - timedelta(seconds=300) < first.end < second.end
    assert second.end == later - timedelta(seconds=2)


def test_a_watermark_of_another_column_stops_the_run_with_the_reset_statement():
    conn = warehouse(watermark=("created_datetime", LAST))
    with pytest.raises(MergeError) as raised:
        control.next_window(conn, "orders", "updated_datetime", NOW, 300, 2)
    assert str(raised.value) == (
        "table 'orders': the stored watermark is for column 'created_datetime' but the metadata now says "
        "'updated_datetime'; to reset, run: DELETE FROM etl_control.watermark WHERE table_name = 'orders'")


def test_current_watermark_is_none_before_the_first_load_and_the_stored_value_after():
    assert control.current_watermark(warehouse(), "orders", "updated_datetime") is None
    assert control.current_watermark(warehouse(watermark=("updated_datetime", LAST)), "orders", "updated_datetime") == LAST


def test_a_recorded_window_keeps_its_source_clock_and_none_is_recorded_before_the_extract():
    assert control.recorded_window(warehouse(), 3, "orders") is None
    conn = warehouse(recorded=(LAST, NOW, NOW + timedelta(seconds=2)))
    assert control.recorded_window(conn, 3, "orders") == Window(LAST, NOW, NOW + timedelta(seconds=2))
    assert conn.ran(RECORDED) == [[3, "orders"]]


def test_recording_a_window_returns_the_one_recorded_first():
    """A restarted or concurrent extract of the same sequence gets the first recorded window, not its own."""
    first = (LAST - timedelta(minutes=5), LAST, LAST + timedelta(seconds=2))
    conn = warehouse(recorded=first)
    mine = Window(NOW - timedelta(minutes=5), NOW, NOW)
    assert control.record_window(conn, 3, "orders", True, "updated_datetime", mine) == Window(*first)
    assert conn.commits == 1  # the insert is committed before the window is read back
    (insert,) = conn.ran("INSERT INTO etl_control.extract_window")
    assert insert == {"seq": 3, "table": "orders", "incremental": True, "column": "updated_datetime",
                      "start": mine.start, "end": mine.end, "clock": mine.source_clock}


def test_latest_sequence_is_zero_before_the_first_run():
    assert control.latest_sequence(FakeConnection([("FROM etl_control.run", [(0,)])])) == 0
    assert control.latest_sequence(FakeConnection([("FROM etl_control.run", [(12,)])])) == 12


def test_the_committed_tail_is_read_with_exact_counts_and_is_none_without_one():
    tails = "FROM etl_control.watermark w JOIN etl_control.extract_tail"
    assert control.committed_tail(FakeConnection([(tails, [])]), "orders") is None
    conn = FakeConnection([(tails, [(LAST - timedelta(minutes=5), LAST, 3, "1152921504606846975", "abc")])])
    tail = control.committed_tail(conn, "orders")
    assert tail == control.TailFingerprint(LAST - timedelta(minutes=5), LAST, 3, Decimal(2**60 - 1), "abc")
    assert isinstance(tail.rows, int) and isinstance(tail.checksum, Decimal)
