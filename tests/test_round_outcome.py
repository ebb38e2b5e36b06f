"""One reading of a master run for exact's loop and the level master's loop (solvers/exact.py
``_round_outcome``): what each HiGHS outcome stops with, and that the level solver says why it
stopped as exact does (docs/solvers.md, "Semantic levels")."""
from __future__ import annotations

import math

import numpy as np
import pytest

from wdtnopt import Scenario, generate_trace, solve
from wdtnopt.solvers import exact
from wdtnopt.solvers.highs import MasterOutcome


def _res(status: MasterOutcome, x, bound: float = 1.0, infeasible: bool = False) -> dict:
    return {"status": status, "raw_status": f"raw {status.value}", "bound": bound, "x": x,
            "infeasible": infeasible, "nodes": 0}


def test_each_outcome() -> None:
    stats: dict = {}
    assert exact._round_outcome(None, stats, 0.5) == ("time_limit", 0.5)
    assert exact._round_outcome(_res(MasterOutcome.INFEASIBLE, None, infeasible=True), stats, 0.5) == ("infeasible", 0.5)
    assert stats == {}
    x = np.ones(3)
    assert exact._round_outcome(_res(MasterOutcome.OPTIMAL, x, bound=2.0), stats, 0.5, shift=0.25) == (None, 1.75)
    assert exact._round_outcome(_res(MasterOutcome.OPTIMAL, x, bound=0.1), stats, 0.5) == (None, 0.5)
    assert exact._round_outcome(_res(MasterOutcome.TIME_LIMIT, None, bound=0.7), stats, 0.5) == ("time_limit", 0.7)
    assert stats == {"highs_status": "raw time_limit"}
    assert exact._round_outcome(_res(MasterOutcome.OTHER, None, bound=0.6), stats, 0.5) == ("feasible", 0.6)
    assert stats["why"] == "the HiGHS master returned no solution (raw other)"


@pytest.mark.parametrize("outcome, status", [(MasterOutcome.OTHER, "feasible"), (MasterOutcome.TIME_LIMIT, "time_limit")])
def test_levels_stop_when_highs_returns_no_solution(monkeypatch, outcome, status) -> None:
    """A master run without a solution (HiGHS gave up, or ran out of time) ends the level solver with
    its incumbent, a true bound, and HiGHS's status in the stats (as exact's own loop)."""
    snap = generate_trace(Scenario.paper(n_mus=12, n_bss=3, semantic_levels=3, semantic_ratio_min=0.3,
                                         semantic_cycles_per_bit=3.0, request_prob=0.8), seed=1, slots=1).snapshot(0)
    ref = solve(snap, method="exact")
    assert ref.status == "optimal"

    def gave_up(self, time_limit, mip_gap, use_start=True):
        return _res(outcome, None, bound=-math.inf)

    monkeypatch.setattr(exact._Master, "run", gave_up)
    sol = solve(snap, method="exact")
    assert sol.status == status
    assert sol.stats["highs_status"] == f"raw {outcome.value}"
    assert ("why" in sol.stats) == (status == "feasible")
    assert sol.bound <= ref.objective * (1 + 1e-9) and sol.objective >= ref.objective * (1 - 1e-9)
