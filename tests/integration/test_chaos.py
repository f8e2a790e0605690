"""A short chaos run in CI (the long one: ``python -m tests.chaos --rounds 100``, see docs/operations.md)."""

from __future__ import annotations

import random

from tests.chaos import MISTAKES, SAFETY_LAG_SECONDS, ChaosState, chaos_round, finish

ROUNDS = 3
SEED = 169  # its plan: round 1 truncates order_lines, then sets a where_clause on it that trips the delete
# guard (rerun allowing the deletes) and keeps it for round 2, which truncates access.log in place;
# round 3 starts two RunJobs at once


def test_chaos_rounds(project):
    project.populate("--scale", "0.002", "--seed", "1")
    project.write_cfg(dw_etl={"lookback_seconds": 300, "safety_lag_seconds": SAFETY_LAG_SECONDS, "retry_delay_seconds": 0.2})
    state = ChaosState(seed=SEED, enabled=MISTAKES)
    rng = random.Random(20261122)
    for round_no in range(1, ROUNDS + 1):
        print(chaos_round(project, state, rng, round_no))
    print(finish(project, state, rng))
    # every kind of mistake was made and checked, and the delete guard stopped two of them
    assert set(state.mistakes) == set(MISTAKES), state.mistakes
    assert state.guard_trips == 2 and state.kills >= 1 and state.rows_compared > 0, state
