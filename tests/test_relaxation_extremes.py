"""``method="relaxation"`` at server CPUs of 1e300 and 1e-300 Hz (legal: finite and > 0), with and
without a semantic menu, under warnings as errors: the relaxation's data divided the update's cycles
by 1e-300 (c / F overflowed, a numpy warning, then CVXPY refused the data and the bound fell back on
zero prices), and with a menu the exact level allocation's cut check took a CPU share's slope it did
not use, whose square underflowed at 1e300 Hz. Reference: the brute forces of the solver tests
(enumeration with an independent allocation), outside the warnings filter."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from wdtnopt.solvers import solve
from wdtnopt.testing import paper_snapshot, tiny_snapshot

from test_solver_properties import brute_force
from test_sixg import brute_force_levels, with_menu

pytest.importorskip("cvxpy")


@pytest.mark.parametrize("cpus", [(1e300, 1e300), (1e-300, 1e-300), (1e300, 1e-300)])
@pytest.mark.parametrize("menu", [False, True])
def test_relaxation_at_extreme_server_cpus_warns_nothing_and_is_right(cpus, menu):
    base = with_menu(tiny_snapshot(3, N=4, M=2), 1) if menu else paper_snapshot(N=5, M=2, seed=1)
    s = base.replace(cpu_hz=np.array(cpus))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # the reference's own numerics are not under test
        optimum = brute_force_levels(s) if menu else brute_force(s)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = solve(s, method="relaxation")
    assert sol.status == "optimal", sol.stats
    assert sol.bound <= optimum * (1 + 1e-9)
    assert optimum * (1 - 1e-9) <= sol.objective <= optimum * (1 + 1e-6)
    if not menu:    # the conic solve ran on finite data (no fallback on zero prices)
        assert sol.stats["conic_status"] == "optimal"
