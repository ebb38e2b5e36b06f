"""``method="pyomo"`` with failure prices far above the energies: the model's prices are capped at a
known decision's cost (the same optimum, a valid bound), so SCIP no longer reports 'optimal' on a
model whose 2e13 objective coefficients left its bound 15.7% below the optimum (the shared 1e12
case ended ``feasible`` at gap 0.157)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wdtnopt import Snapshot
from wdtnopt.testing import tiny_snapshot

from test_solver_properties import brute_force

CASES = Path(__file__).parent / "data" / "solver_cases"


def test_pyomo_proves_the_1e12_penalty_case():
    pytest.importorskip("pyomo")
    pytest.importorskip("pyscipopt")
    from wdtnopt.solvers import solve

    s = Snapshot.load(CASES / "penalty_1e12_2x2.json")
    optimum = brute_force(s)
    assert optimum == pytest.approx(0.05410175601868296, rel=1e-9)   # tests/data/solver_cases/README.md
    sol = solve(s, method="pyomo")
    assert sol.status == "optimal", (sol.gap, sol.stats)
    assert sol.bound <= optimum * (1 + 1e-9) and sol.objective == pytest.approx(optimum, rel=1e-6)
    assert sol.stats["penalty_cap"] < 1e12


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_capped_penalties_keep_the_optimum(seed):
    """The argument of ``penalties_capped``, checked by the brute force: prices of 1e3-1e12 J capped
    at the previous placement's exact cost give the same optimum."""
    from wdtnopt.solvers.allocation import allocate, fits_storage
    from wdtnopt.solvers.minlp import penalties_capped

    s = tiny_snapshot(900 + seed, N=4, M=2)
    rng = np.random.default_rng(seed)
    s = s.replace(failure_penalty=10.0 ** rng.uniform(3, 12, s.n_mus))
    assert fits_storage(s, s.placement_prev)
    ub = allocate(s, s.placement_prev).cost
    stats: dict = {}
    capped = penalties_capped(s, ub, stats)
    assert stats["penalty_cap"] == ub and capped.failure_penalty.max() <= ub
    assert brute_force(capped) == pytest.approx(brute_force(s), rel=1e-12)
