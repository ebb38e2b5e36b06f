"""The per-server convex hull (solvers/server_hull.py): exact pricing and Fenchel cuts.

The pricing ``min_S E_m(S) - b.1_S`` is checked against enumeration of every served set, each
allocated by the independent KKT bisection of tests/test_solver_properties.py (``server_energy``);
the cuts are checked to hold at every served set and to reach the hull's value (an LP over every
served set) at points inside the hull; exact with the cuts (``hull_rounds``) against the brute force.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from wdtnopt.solvers import solve
from wdtnopt.solvers.allocation import PairData
from wdtnopt.solvers.server_hull import price_server, reference_hull_value, separate_fenchel
from wdtnopt.testing import paper_snapshot

from test_solver_properties import _crowded, brute_force, check_against, server_energy


def _server(seed: int, k: int = 8):
    """A server short of CPU with ``k`` candidates that need CPU: many sets do not fit (least CPUs)."""
    s = paper_snapshot(40, 1, seed=seed, cpu_hz=3e9, request_prob=0.8, failure_penalty=0.004)
    pd = PairData.of(s)
    cand = np.flatnonzero(s.request & ~s.migrating & pd.servable[:, 0] & (s.cycles > 0))[:k]
    energies = {}
    for r in range(cand.size + 1):
        for S in itertools.combinations(cand.tolist(), r):
            energies[S] = server_energy(s, 0, S)
    return s, pd, cand, energies


@pytest.mark.parametrize("seed, k", [(2, 8), (4, 6), (5, 8)])
def test_pricing_equals_enumeration(seed: int, k: int) -> None:
    s, pd, cand, energies = _server(seed, k)
    assert cand.size == k
    assert any(not math.isfinite(e) for e in energies.values())   # the CPU rules some sets out
    e_max = max(e for e in energies.values() if math.isfinite(e))
    rng = np.random.default_rng(seed)
    for _ in range(6):
        w = np.zeros(s.n_mus)
        w[cand] = rng.uniform(-0.3, 1.0, cand.size) * e_max / 3
        best = min(e - w[list(S)].sum() for S, e in energies.items() if math.isfinite(e))
        pr = price_server(pd, 0, w, cand)
        assert pr.exact
        assert pr.value == pytest.approx(best, rel=1e-7, abs=1e-12 * e_max)
        assert pr.bound <= best                                  # a certified lower bound
        S = tuple(pr.served.tolist())
        assert pr.energy == pytest.approx(energies[S], rel=1e-7)   # the set it names costs its value
        assert (w[pr.served] > 0).all()


def test_pricing_of_no_weight_is_the_empty_set() -> None:
    s, pd, cand, _ = _server(2, 4)
    pr = price_server(pd, 0, np.zeros(s.n_mus), cand)
    assert pr.value == 0.0 and pr.served.size == 0 and pr.exact


@pytest.mark.parametrize("seed", [2, 5])
def test_fenchel_cut_holds_at_every_set_and_reaches_the_hull(seed: int) -> None:
    s, pd, cand, energies = _server(seed, 7)
    rng = np.random.default_rng(seed)
    feasible = [(S, e) for S, e in energies.items() if math.isfinite(e)]
    e_max = max(e for _, e in feasible)
    for trial in range(3):
        # a point inside the hull: a random mixture of feasible sets (and the empty set)
        z = rng.dirichlet(np.ones(len(feasible)) * 0.3)
        y = np.zeros(s.n_mus)
        for (S, _), zi in zip(feasible, z):
            y[list(S)] += zi * 0.9
        cut = separate_fenchel(pd, 0, y, cand)
        assert cut is not None and cut.exact
        coef = dict(zip(cut.mus.tolist(), cut.coef.tolist()))
        for S, e in feasible:                  # valid at every served set
            assert e >= cut.const + sum(coef.get(n, 0.0) for n in S) - 1e-12 * e_max
        hull = reference_hull_value(pd, 0, y, cand)
        assert cut.point_value <= hull * (1 + 1e-9)
        assert cut.point_value == pytest.approx(hull, rel=1e-6)
    # outside the hull (every candidate fully served does not fit): the cut still holds
    y = np.zeros(s.n_mus)
    y[cand] = 1.0
    cut = separate_fenchel(pd, 0, y, cand)
    coef = dict(zip(cut.mus.tolist(), cut.coef.tolist()))
    for S, e in feasible:
        assert e >= cut.const + sum(coef.get(n, 0.0) for n in S) - 1e-12 * e_max


def test_exact_with_hull_cuts_holds_against_the_brute_force() -> None:
    rowed = 0
    for seed in range(20):
        s = _crowded(np.random.default_rng(seed))
        check_against(s, "exact", brute_force(s), hull_rounds=3)
        rowed += solve(s, method="exact", hull_rounds=3).stats.get("hull_rows", 0) > 0
    assert rowed >= 1


def test_exact_with_hull_cuts_changes_no_optimum() -> None:
    s = paper_snapshot(N=30, M=5, seed=3)
    a = solve(s, method="exact", hull_rounds=2)
    b = solve(s, method="exact")
    assert a.stats.get("hull_rows", 0) > 0
    assert a.status == b.status == "optimal"
    assert a.objective == pytest.approx(b.objective, rel=1e-6)
    assert a.bound <= b.objective * (1 + 1e-9)
    assert a.stats["root_bound"] >= a.stats["lagrangian_root_bound"]


def test_lagrangian_hull_bound_is_below_the_brute_force() -> None:
    """Random multipliers, and a few supergradient steps from the penalties: never above the optimum."""
    from wdtnopt.solvers.server_hull import lagrangian_hull_bound
    from wdtnopt.testing import tiny_snapshot

    snaps = [_crowded(np.random.default_rng(seed)) for seed in range(8)]
    snaps += [tiny_snapshot(300 + seed, N=4) for seed in range(8)]
    rng = np.random.default_rng(0)
    tight = 0
    for s in snaps:
        opt = brute_force(s)
        pd = PairData.of(s)
        mu = s.failure_penalty.astype(float).copy()
        best = -math.inf
        for step in range(8):
            r = lagrangian_hull_bound(pd, mu)
            assert r.exact
            assert r.bound <= opt * (1 + 1e-9) + 1e-300, (r.bound, opt)
            best = max(best, r.bound)
            mu = np.maximum(mu - 0.5 ** step * s.failure_penalty.mean() * r.supergradient, 0.0)
        r = lagrangian_hull_bound(pd, rng.uniform(0, 2, s.n_mus) * s.failure_penalty)
        assert r.bound <= opt * (1 + 1e-9) + 1e-300
        tight += best >= 0.5 * opt
    assert tight >= 4   # not a trivial bound
