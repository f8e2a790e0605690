"""Transient faults are retried with backoff, other errors are not (a run surviving killed
connections: tests/integration/test_retries.py)."""

from __future__ import annotations

import time

import psycopg2
import pytest

from etl.errors import EltError, LoadError
from etl.retries import with_retries


def flaky(failures: list):
    calls = []

    def work():
        calls.append(time.monotonic())
        if failures:
            raise failures.pop(0)
        return "done"

    return work, calls


def test_transient_faults_are_retried_with_backoff():
    work, calls = flaky([LoadError("dropped", transient=True), psycopg2.OperationalError("server closed the connection")])
    assert with_retries("step", work, attempts=3, delay_seconds=0.05) == "done"
    assert len(calls) == 3
    assert calls[2] - calls[1] >= 0.09  # the second wait is doubled


def test_logic_errors_are_not_retried():
    work, calls = flaky([LoadError("value too long for type character varying(5)")])
    with pytest.raises(LoadError):
        with_retries("step", work, attempts=3, delay_seconds=0.01)
    assert len(calls) == 1


def test_retries_end():
    work, calls = flaky([EltError("gone", transient=True)] * 5)
    with pytest.raises(EltError):
        with_retries("step", work, attempts=2, delay_seconds=0.01)
    assert len(calls) == 3
