"""The hindsight bound's warm starts: repriced masters, price certificates and skipped slots.

Every figure is checked against the brute force of tests/test_solvers_bruteforce.py (enumeration +
SLSQP, independent of the solvers) or against cold solves.
"""
import numpy as np
import pytest

from wdtnopt import Scenario, generate_trace, hindsight_bound
from wdtnopt.bounds import _Evaluator
from wdtnopt.solvers import solve
from wdtnopt.solvers.exact import ExactWarmStart

from test_longterm import relaxed   # the slot problem the bound relaxes each slot to

TINY = Scenario.paper(n_mus=4, n_bss=2, request_prob=0.7)


def test_price_certificate_is_below_the_optimum_at_any_prices():
    """A certificate computed at one price vector bounds the brute-force optimum at many others,
    and equals the solve's root LP bound (or more) at its own prices."""
    from test_solvers_bruteforce import brute_force

    rng = np.random.default_rng(0)
    tr = generate_trace(TINY, seed=4, slots=6)
    checked = 0
    for t in range(tr.slots):
        mu0 = rng.uniform(0.001, 0.02, 4)
        w = ExactWarmStart()
        sol = solve(relaxed(tr, t, mu0), method="exact", gap=1e-6, warm=w)
        cert = w.certificate
        if cert is None:
            continue
        assert cert.bound(mu0) >= sol.stats["root_bound"] - 1e-9 * abs(sol.stats["root_bound"]) - 1e-15
        assert cert.bound(mu0) <= sol.objective * (1 + 1e-9) + 1e-15
        for _ in range(4):
            mu = mu0 * rng.uniform(0.2, 3.0, 4)
            assert cert.bound(mu) <= brute_force(relaxed(tr, t, mu)) * (1 + 1e-7) + 1e-15
            checked += 1
    assert checked >= 12


def test_repriced_master_gives_the_cold_optimum():
    """Re-solving one warm master at a sequence of prices certifies the same optima as cold solves,
    and a snapshot that differs in another field gets a fresh master."""
    rng = np.random.default_rng(1)
    tr = generate_trace(Scenario.paper(n_mus=8, n_bss=3), seed=2, slots=3)
    for t in range(tr.slots):
        w = ExactWarmStart()
        for k in range(4):
            mu = rng.uniform(0.001, 0.02, 8)
            cold = solve(relaxed(tr, t, mu), method="exact", gap=1e-7)
            warm = solve(relaxed(tr, t, mu), method="exact", gap=1e-7, warm=w)
            assert warm.status == cold.status == "optimal"
            assert warm.objective == pytest.approx(cold.objective, rel=2e-7)
            assert warm.bound <= cold.objective * (1 + 1e-9)
        assert w.reused == 3
    other = relaxed(tr, 0, np.full(8, 0.01))
    w = ExactWarmStart()
    solve(other, method="exact", warm=w)
    moved = other.replace(storage_bits=other.storage_bits * 2)
    solve(moved, method="exact", warm=w)
    assert w.reused == 0 and w.solves == 2


def test_skipped_slots_keep_the_bound_valid_and_within_the_gap():
    """Along a dual climb most slots are certified by earlier points instead of solved; every
    point's G stays below the brute-force dual function and within the inner gap of it."""
    from test_solvers_bruteforce import brute_force

    tr = generate_trace(TINY, seed=5, slots=8)
    ev = _Evaluator(tr, "exact", {"gap": 1e-3}, 1, None, False)
    rng = np.random.default_rng(2)
    mu = np.full(4, 0.01)
    for k in range(6):
        point = ev(mu)
        exact = sum(brute_force(relaxed(tr, t, mu)) for t in range(tr.slots))
        assert point.G <= exact * (1 + 1e-7) + 1e-15
        assert point.G >= exact * (1 - 1e-3) - 1e-15
        mu = mu * (1 + 0.05 * rng.standard_normal(4)) if k % 2 else mu * 1.02
    assert ev.skipped > 0


def test_warm_and_cold_bounds_agree():
    """Same dual budget: the warm-started bound is within the inner gap of the cold one (and in
    these runs not below it), with fewer slot solves."""
    tr = generate_trace(Scenario.paper(n_mus=6, n_bss=2), seed=3, slots=12)
    cold = hindsight_bound(tr, iters=6, warm_start=False)
    warm = hindsight_bound(tr, iters=6, dual="supergradient")
    assert warm.total_energy >= cold.total_energy * (1 - 1e-3)
    assert warm._evaluator.solves < cold._evaluator.solves
