"""Fast allocation (solvers/allocation.py) against its slow references and CVXPY."""
from __future__ import annotations

import math

import numpy as np
import pytest

from wdtnopt.testing import one_cell, paper_snapshot, tiny_snapshot
from wdtnopt import physics
from wdtnopt.cost import evaluate
from wdtnopt.solvers.allocation import (PairData, admit_server, allocate, allocate_server, energy_curvature,
                                        energy_slope, reference_admit_server, reference_allocate_server)


def test_energy_derivatives_match_physics() -> None:
    rng = np.random.default_rng(0)
    D, B, N0, g = rng.uniform(5e5, 1.5e6, 50), rng.uniform(1e6, 2e7, 50), 2e-20, rng.uniform(1e-13, 1e-10, 50)
    t = rng.uniform(0.01, 0.3, 50)
    alpha, k = D * physics.LN2 / B, N0 * B / g
    h = 1e-6 * t
    e = lambda tt: physics.energy_for_time(tt, D, B, N0, g)
    fd1 = (e(t + h) - e(t - h)) / (2 * h)
    h2 = 1e-4 * t
    fd2 = (e(t + h2) - 2 * e(t) + e(t - h2)) / h2**2
    np.testing.assert_allclose(-energy_slope(t, alpha, k), fd1, rtol=1e-6)
    np.testing.assert_allclose(energy_curvature(t, alpha, k), fd2, rtol=1e-5)
    # tiny exponents: the series branch
    t_big = alpha / 1e-6
    np.testing.assert_allclose(energy_slope(t_big, alpha, k), k * 0.5e-12, rtol=1e-5)


def _server_sets(s, pd):
    for m in range(s.n_bss):
        cand = np.flatnonzero(pd.servable[:, m])
        if cand.size:
            yield m, cand


@pytest.mark.parametrize("seed", range(40))
def test_fast_allocation_equals_reference(seed: int) -> None:
    s = tiny_snapshot(seed, N=6)
    pd = PairData.of(s)
    for m, cand in _server_sets(s, pd):
        fast = allocate_server(pd, m, cand)
        ref_e, _, _ = reference_allocate_server(pd, m, cand)
        if not math.isfinite(ref_e):
            assert not fast.feasible
            continue
        assert fast.feasible
        assert fast.energy == pytest.approx(ref_e, rel=1e-9)
        assert fast.cpu_hz.sum() <= pd.cpu_hz[m] * (1 + 1e-12)
        assert (fast.tx_time >= pd.t_min[cand] * (1 - 1e-12)).all()


@pytest.mark.parametrize("seed", range(15))
def test_exact_admission_equals_enumeration(seed: int) -> None:
    s = tiny_snapshot(100 + seed, N=6, M=2)
    pd = PairData.of(s)
    req = np.flatnonzero(s.request & ~s.migrating)
    for m in range(s.n_bss):
        fast = admit_server(pd, m, req)
        ref_cost, ref_set = reference_admit_server(pd, m, req)
        assert fast.cost == pytest.approx(ref_cost, rel=1e-9, abs=1e-15)


def test_admission_many_candidates_tight_cpu() -> None:
    """Twelve candidates on a scarce CPU: the branch-and-bound agrees with enumeration (4096 sets)."""
    s = paper_snapshot(40, 1, seed=3, cpu_hz=3e9, request_prob=0.4, failure_penalty=0.004)
    pd = PairData.of(s)
    req = np.flatnonzero(s.request & ~s.migrating)[:12]
    fast = admit_server(pd, 0, req)
    ref_cost, _ = reference_admit_server(pd, 0, req)
    assert fast.cost == pytest.approx(ref_cost, rel=1e-9)
    assert 0 < fast.alloc.mus.size < req.size  # a real admission decision


@pytest.mark.parametrize("seed", range(12))
def test_fast_allocation_equals_cvxpy(seed: int) -> None:
    """Random fixed placement, the served set fixed too: fast KKT allocation == Clarabel to 1e-6."""
    from wdtnopt.formulations.cvxpy_models import solve_allocation_cvxpy

    s = paper_snapshot(12 + seed, 3, seed=seed) if seed % 2 else tiny_snapshot(seed, N=6, kind="tight_cpu")
    rng = np.random.default_rng(seed)
    placement = np.where(s.pinned, s.placement_prev, rng.integers(0, s.n_bss, s.n_mus))
    a = allocate(s, placement)               # exact admission picks a feasible served set
    if not a.served.any():
        pytest.skip("nothing served in this draw")
    fixed = allocate(s, placement, served=a.served)
    ev = evaluate(s, {"placement": placement, "served": fixed.served, "tx_time": fixed.tx_time, "cpu_hz": fixed.cpu_hz})
    assert {v.kind for v in ev.violations} <= {"storage_capacity"}  # random placement, storage not enforced
    value, tx, cpu = solve_allocation_cvxpy(s, placement, a.served)
    assert ev.energy_total == pytest.approx(value, rel=1e-6)
    assert ev.energy_total <= value * (1 + 1e-7)  # never worse than the conic one (up to its tolerance)


@pytest.mark.parametrize("seed", range(20))
def test_allocate_decision_is_valid_and_costed(seed: int) -> None:
    s = tiny_snapshot(200 + seed)
    rng = np.random.default_rng(seed)
    placement = np.where(s.pinned, s.placement_prev, rng.integers(0, s.n_bss, s.n_mus))
    a = allocate(s, placement)
    ev = evaluate(s, {"placement": placement, "served": a.served, "tx_time": a.tx_time, "cpu_hz": a.cpu_hz})
    kinds = {v.kind for v in ev.violations}
    assert kinds <= {"storage_capacity"}  # allocate does not check storage (the placement is given)
    assert ev.objective == pytest.approx(a.cost, rel=1e-12, abs=1e-15)


def test_single_user_takes_the_whole_cpu_and_zero_cycles_need_none() -> None:
    s = tiny_snapshot(7, N=4, M=1, kind="zero_cycles")
    pd = PairData.of(s)
    cand = np.flatnonzero(pd.servable[:, 0])
    busy = cand[s.cycles[cand] > 0]
    if busy.size:
        one = allocate_server(pd, 0, busy[:1])
        assert one.cpu_hz[0] == pytest.approx(s.cpu_hz[0])
    idle = cand[s.cycles[cand] == 0]
    if idle.size:
        a = allocate_server(pd, 0, idle)
        assert (a.cpu_hz == 0).all()
        np.testing.assert_allclose(a.tx_time, pd.budget[idle, 0])


def test_power_caps_bind_when_cpu_is_exactly_enough() -> None:
    """sum f_min == F: every MU at t_min, still feasible and matching the reference."""
    for seed in range(50):                     # the first tiny snapshot with 3 servable MUs that need CPU
        s = tiny_snapshot(seed, N=5, M=1)
        pd = PairData.of(s)
        cand = np.flatnonzero(pd.servable[:, 0] & (s.cycles > 0))[:3]
        if cand.size == 3:
            break
    assert cand.size == 3
    F = float(pd.f_min[cand, 0].sum())
    s2 = s.replace(cpu_hz=np.array([F]))
    pd2 = PairData.of(s2)
    a = allocate_server(pd2, 0, cand)
    assert a.feasible
    np.testing.assert_allclose(a.tx_time, pd2.t_min[cand], rtol=1e-9)
    s3 = s.replace(cpu_hz=np.array([F * 0.999]))
    assert not allocate_server(PairData.of(s3), 0, cand).feasible


def test_large_server_allocation_is_consistent() -> None:
    """200 MUs on one server: the price solve converges and fills the CPU."""
    s = paper_snapshot(1000, 5, seed=1, cpu_hz=1e12)
    s = s.replace(bandwidth=np.full(s.n_mus, 4e6), noise_psd=np.full(s.n_mus, 2e-20))
    pd = PairData.of(s)
    for m in range(s.n_bss):
        cand = np.flatnonzero(pd.servable[:, m] & (s.assoc == m))
        a = allocate_server(pd, m, cand)
        assert a.feasible and cand.size > 50
        assert a.cpu_hz.sum() == pytest.approx(s.cpu_hz[m], rel=1e-9)
        assert a.cpu_hz.sum() <= s.cpu_hz[m] * (1 + 1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_grouped_newton_equals_nested_price_solve(seed: int) -> None:
    """The joint Newton path (all servers at once) and the nested safeguarded path agree."""
    from wdtnopt.solvers.allocation import _price_solve, _price_solve_groups

    s = paper_snapshot(60, 3, seed=seed, cpu_hz=6e9)
    pd = PairData.of(s)
    placement = s.assoc
    mus = np.flatnonzero(pd.servable[np.arange(s.n_mus), placement] & (s.cycles > 0))
    host = placement[mus]
    servers, group = np.unique(host, return_inverse=True)
    fits = np.bincount(group, weights=pd.f_min[mus, host]) <= s.cpu_hz[servers]
    keep = fits[group]
    mus, host, group = mus[keep], host[keep], np.unique(host[keep], return_inverse=True)[1]
    servers = np.unique(host)
    args = (pd.budget[mus, host], pd.t_min[mus], pd.cycles[mus], pd.alpha[mus], pd.k[mus])
    t, f, prices = _price_solve_groups(*args, group, s.cpu_hz[servers].astype(float))
    for g, m in enumerate(servers):
        idx = np.flatnonzero(group == g)
        t2, f2, p2 = _price_solve(*(a[idx] for a in args), float(s.cpu_hz[m]), 1e-13)
        e1 = pd.energy(mus[idx], t[idx]).sum()
        e2 = pd.energy(mus[idx], t2).sum()
        assert e1 == pytest.approx(e2, rel=1e-10)
        assert f[idx].sum() <= s.cpu_hz[m] * (1 + 1e-12)


def test_empty_served_set_costs_the_failures() -> None:
    """A fixed served set with nobody in it: every request fails (no error from an empty server sum)."""
    s = one_cell()
    a = allocate(s, s.placement_prev, served=np.zeros(2, bool))
    assert not a.served.any() and a.cost == pytest.approx(0.5)      # MU 0 requests and fails
    assert allocate(one_cell(request=[False, False]), s.placement_prev, served=np.zeros(2, bool)).cost == 0.0
