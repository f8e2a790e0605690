"""Retrying a step on transient faults (classified by ``etl.errors``)."""

from __future__ import annotations

import logging
import time

from etl.errors import EltError, is_transient_mysql, is_transient_postgres

log = logging.getLogger(__name__)


def with_retries(step: str, work, attempts: int, delay_seconds: float):
    """Run ``work()``; on a transient fault retry it up to ``attempts`` more times.

    Waits ``delay_seconds``, doubling each time (exponential backoff). Transient faults are
    EltError with ``transient`` set, or raw driver errors classified by
    ``is_transient_postgres`` / ``is_transient_mysql``; anything else (bad data, SQL
    errors, configuration) is raised at once. Every step of the pipeline is idempotent,
    so running it again is safe. Returns what ``work()`` returns.
    """
    import mysql.connector
    import psycopg2

    for attempt in range(attempts + 1):
        try:
            return work()
        except (EltError, psycopg2.Error, mysql.connector.Error) as exc:
            transient = (
                exc.transient if isinstance(exc, EltError)
                else is_transient_postgres(exc) if isinstance(exc, psycopg2.Error)
                else is_transient_mysql(exc)
            )
            if not transient or attempt == attempts:
                raise
            wait = delay_seconds * (2 ** attempt)
            log.warning("%s: transient fault (%s); retry %d of %d in %.1f s",
                        step, " ".join(str(exc).split())[:300], attempt + 1, attempts, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")
