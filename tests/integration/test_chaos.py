"""A short chaos run in CI (the long one: ``python -m tests.chaos --rounds 100``, see README)."""

from __future__ import annotations

import random

from tests.chaos import SAFETY_LAG_SECONDS, ChaosState, chaos_round

ROUNDS = 6


def test_chaos_rounds(project):
    project.populate("--scale", "0.002", "--seed", "1")
    project.write_cfg(dw_etl={"lookback_seconds": 300, "safety_lag_seconds": SAFETY_LAG_SECONDS, "retry_delay_seconds": 0.2})
    state = ChaosState()
    rng = random.Random(20261122)
    for round_no in range(1, ROUNDS + 1):
        print(chaos_round(project, state, rng, round_no))
    assert state.kills >= 1 and state.rows_compared > 0
