"""The job with a bug planted in one task, to see what an unexpected exception looks like to the user.

``luigi RunJob --module tests.support.buggy_job`` runs the real task graph of
``luigi_dw_etl``; only ``CheckQuality.run`` is replaced, when this module is imported (its
one purpose), by one raising ``KeyError`` as a bug in the pipeline's code would.
"""

from __future__ import annotations

import luigi_dw_etl

BUG = "planted_bug"  # the KeyError's key


def _buggy_run(self):
    raise KeyError(BUG)


luigi_dw_etl.CheckQuality.run = _buggy_run
