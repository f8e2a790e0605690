"""The byte pipe between the extract and a streamed landing COPY (no database; the streamed landing
itself: tests/integration/test_streamed_landing.py)."""

from __future__ import annotations

import threading
import time

import pytest

from etl.staging import BytePipe


def test_byte_pipe_bounds_memory_and_hands_over_every_byte():
    pipe = BytePipe(limit_bytes=10)
    pipe.write(b"0123456789")  # full now: the next write waits for the reader
    second = threading.Thread(target=pipe.write, args=(b"abc",))
    second.start()
    time.sleep(0.2)
    assert second.is_alive()
    assert pipe.read(4) == b"0123"  # a read smaller than a chunk keeps the rest
    second.join(timeout=5)
    assert not second.is_alive()
    pipe.close()
    assert pipe.read(100) == b"456789abc"
    assert pipe.read(100) == b""


def test_byte_pipe_abort_reaches_the_reader_and_discard_frees_the_writer():
    pipe = BytePipe(limit_bytes=4)
    pipe.abort(RuntimeError("extract failed"))
    with pytest.raises(RuntimeError, match="extract failed"):
        pipe.read(1)
    pipe = BytePipe(limit_bytes=4)
    pipe.write(b"full")
    writer = threading.Thread(target=pipe.write, args=(b"more",))
    writer.start()
    pipe.discard()  # the reader gave up: the blocked writer returns, later writes are dropped
    writer.join(timeout=5)
    assert not writer.is_alive()
    pipe.write(b"dropped")
    pipe.close()
    assert pipe.read(100) == b""
