"""A newcomer's pass (8b): leftovers of pass 8, each checked against an independent reference (a
hand-computed case, the plain definition) and failing before its fix."""
from __future__ import annotations

import numpy as np
import pytest

from cli_runner import run_cli
from wdtnopt import DecisionError, Scenario, evaluate
from wdtnopt.testing import paper_snapshot


def test_evaluate_refuses_a_served_of_2_and_keeps_0_1_as_false_true():
    # served=[2, 0] was read as [True, False]; only booleans or 0/1 are flags (docs/solvers.md)
    s = paper_snapshot(N=2, M=2, seed=0, request_prob=1.0)
    base = {"placement": [0, 1], "tx_time": [0.001, 0.0]}
    as_bool = evaluate(s, {**base, "served": [True, False]})
    as_int = evaluate(s, {**base, "served": [1, 0]})
    np.testing.assert_array_equal(as_int.served, as_bool.served)
    assert as_int.objective == as_bool.objective
    with pytest.raises(DecisionError, match=r"served: expected booleans.*got 2 for MU 0"):
        evaluate(s, {**base, "served": [2, 0]})
    with pytest.raises(DecisionError, match=r"served: .*got -1 for MU 1"):
        evaluate(s, {**base, "served": np.array([0, -1])})
