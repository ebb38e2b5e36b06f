"""exact's open-root steps (docs/solvers.md, "Exact oracle", Loop 3a/3b): price cuts at the pairs'
best responses to the root's CPU prices, and the local-search start. Neither may change what is
certified: the optimum against the brute force of tests/test_solver_properties.py, and the same
optimum with both switched off."""
from __future__ import annotations

import numpy as np
import pytest

from wdtnopt.solvers import SolverError, solve
from wdtnopt.solvers import exact
from wdtnopt.solvers.allocation import PairData
from wdtnopt.solvers.options import ExactOptions
from wdtnopt.testing import loaded_snapshot, paper_snapshot

from test_solver_properties import _crowded, brute_force, check_against


def test_shares_at_slope_are_the_best_responses_to_the_price() -> None:
    """``-e'(p) = lam`` inside ``[pmin, 1]`` (checked by a central difference of the energy law
    through ``PairData.energy_at_cpu``), an end where the slope never reaches ``lam``."""
    s = paper_snapshot(N=12, M=3, seed=0)
    pd = PairData.of(s)
    master = exact._Master(pd, 1.0, ExactOptions())
    ns, ms = master.pair_columns()[:2]
    pmin = pd.f_min[ns, ms] / pd.cpu_hz[ms]
    for lam in (1e-6, 1e-4, 1e-2, 1.0):
        p = master.shares_at_slope(ns, ms, np.full(ns.size, lam))
        assert np.all((p >= pmin * (1 - 1e-12)) & (p <= 1.0))
        for n, m, q, lo in zip(ns, ms, p, pmin):
            F = float(pd.cpu_hz[m])
            h = 1e-6 * q

            def e(share):
                return float(pd.energy_at_cpu(np.array([n]), int(m), np.array([share * F]))[0])

            if lo * (1 + 1e-6) < q < 1 - 1e-6:   # interior: the slope equals the price
                slope = -(e(q + h) - e(q - h)) / (2 * h)
                assert slope == pytest.approx(lam, rel=1e-4)
            elif q >= 1 - 1e-6:                   # even the whole server is worth more than lam
                assert -(e(1.0) - e(1.0 - h)) / h >= lam * (1 - 1e-4)
            else:                                 # at the least share the slope is already below lam
                assert -(e(lo + h) - e(lo)) / h <= lam * (1 + 1e-4)


def test_open_roots_against_the_brute_force() -> None:
    """Crowded snapshots (CPU-short server, every DT on it): the open-root steps run on most and the
    certificate still holds against the brute force."""
    opened = polished = 0
    for seed in range(30):
        s = _crowded(np.random.default_rng(seed))
        check_against(s, "exact", brute_force(s))
        stats = solve(s, method="exact").stats
        opened += stats.get("price_cuts", 0) > 0
        polished += stats.get("polish_cost") is not None
    assert opened >= 3 and polished >= 3, (opened, polished)


@pytest.mark.parametrize("make", [lambda k: paper_snapshot(N=30, M=5, seed=k), lambda k: loaded_snapshot(20, 4, k)])
def test_price_cuts_and_polish_change_no_optimum(make) -> None:
    for k in range(3):
        s = make(k)
        a = solve(s, method="exact")
        b = solve(s, method="exact", price_cuts=(), polish_rounds=0)
        assert a.status == b.status == "optimal"
        assert a.objective == pytest.approx(b.objective, rel=1e-6)
        assert a.bound <= b.objective * (1 + 1e-9) and b.bound <= a.objective * (1 + 1e-9)


def test_bad_open_root_options_name_their_field() -> None:
    ExactOptions(price_cuts=())   # allowed: none
    with pytest.raises(SolverError, match="price_cuts"):
        ExactOptions(price_cuts=(1.0, -2.0))
    with pytest.raises(SolverError, match="price_cuts"):
        ExactOptions(price_cuts=[1.0])
    with pytest.raises(SolverError, match="polish_rounds"):
        ExactOptions(polish_rounds=1.5)
    with pytest.raises(SolverError, match="mip_gap_share"):
        ExactOptions(mip_gap_share=1.0)


def test_the_open_root_steps_are_deterministic() -> None:
    """The polish is capped by rounds, not by a clock: two solves give the same numbers."""
    s = paper_snapshot(N=30, M=5, seed=1)
    a, b = solve(s, method="exact"), solve(s, method="exact")
    assert a.stats.get("polish_cost") is not None and a.stats["price_cuts"] > 0
    assert np.array_equal(a.placement, b.placement) and np.array_equal(a.served, b.served)
    assert a.objective == b.objective and a.bound == b.bound
    assert a.stats["milp_nodes"] == b.stats["milp_nodes"] and a.stats["polish_cost"] == b.stats["polish_cost"]
