"""The exact oracle against an independent brute force on tiny snapshots.

The brute force shares nothing with the solvers but ``physics`` and ``evaluate``: it enumerates every
placement and every served set, and allocates the CPU of each server for each served set with SciPy
SLSQP (finite-difference gradients of ``physics.energy_for_time``).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import minimize

from wdtnopt.testing import tiny_snapshot
from wdtnopt import physics
from wdtnopt.cost import evaluate
from wdtnopt.solvers import solve


def _energy(s, n, t):
    return physics.energy_for_time(t, s.data_bits[n], s.bandwidth[n], s.noise_psd[n], s.serving_gain[n])


def slsqp_allocation(s, m: int, served: tuple[int, ...]) -> float:
    """Least energy of serving ``served`` on server m (inf if impossible), by SLSQP on CPU shares."""
    if not served:
        return 0.0
    idx = np.array(served)
    F = float(s.cpu_hz[m])
    T = s.deadline[idx] - s.relay[idx, m]
    tmin = s.t_min[idx]
    c = s.cycles[idx]
    if np.any(~np.isfinite(tmin)) or np.any(T < tmin) or np.any((c > 0) & (T <= tmin)):
        return math.inf
    busy = c > 0
    base = float(_energy(s, idx[~busy], T[~busy]).sum())
    if not busy.any():
        return base
    if F <= 0:
        return math.inf
    ib = idx[busy]
    Tb, tb, cb = T[busy], tmin[busy], c[busy]
    lo = cb / ((Tb - tb) * F)          # least CPU share meeting the deadline at t_min
    if lo.sum() > 1 + 1e-12:
        return math.inf
    if ib.size == 1:
        return base + float(_energy(s, ib, np.maximum(Tb - cb / F, tb)).sum())

    def total(p):
        t = np.maximum(Tb - cb / (F * np.maximum(p, 1e-300)), tb)
        return float(_energy(s, ib, t).sum())

    scale = total(np.full(ib.size, 1.0 / ib.size) if (lo <= 1.0 / ib.size).all() else lo + (1 - lo.sum()) / ib.size)
    scale = scale if scale > 0 else 1.0

    def fun(p):
        return total(p) / scale

    def jac(p):
        g = np.empty_like(p)
        for i in range(p.size):
            h = 1e-7 * max(p[i], 1e-3)
            a, b = p.copy(), p.copy()
            a[i] += h
            b[i] = max(b[i] - h, lo[i])
            g[i] = (fun(a) - fun(b)) / (a[i] - b[i])
        return g

    best = math.inf
    starts = [lo + (1 - lo.sum()) * w for w in (np.full(ib.size, 1.0 / ib.size), cb / cb.sum())]
    for x0 in starts:
        r = minimize(fun, x0, jac=jac, method="SLSQP", bounds=list(zip(lo, np.ones(ib.size))),
                     constraints=[{"type": "ineq", "fun": lambda p: 1.0 - p.sum(), "jac": lambda p: -np.ones_like(p)}],
                     options={"ftol": 1e-15, "maxiter": 500})
        p = np.clip(r.x, lo, 1.0)
        if p.sum() > 1:
            p = lo + (p - lo) * (1 - lo.sum()) / max((p - lo).sum(), 1e-300)
        best = min(best, total(p))
    return base + best


def brute_force(s, server_best=None) -> float:
    """Minimum objective over every placement and served set (inf if nothing fits the storage).

    ``server_best(m, hosted)``: the least cost of server m for its requesting hosted DTs (default:
    every served subset allocated by SLSQP); tests/test_sixg.py passes one that also picks levels."""
    N, M = s.n_mus, s.n_bss
    req = np.flatnonzero(s.request & ~s.migrating)
    value: dict[tuple[int, tuple[int, ...]], float] = {}

    def subsets(m: int, hosted: tuple[int, ...]) -> float:
        best = math.inf
        for r in range(len(hosted) + 1):
            for sub in itertools.combinations(hosted, r):
                cost = slsqp_allocation(s, m, sub) + sum(float(s.failure_penalty[i]) for i in hosted if i not in sub)
                best = min(best, cost)
        return best

    def server_value(m: int, hosted: tuple[int, ...]) -> float:
        key = (m, hosted)
        if key not in value:
            value[key] = (server_best or subsets)(m, hosted)
        return value[key]

    choices = [[int(s.placement_prev[n])] if s.pinned[n] else list(range(M)) for n in range(N)]
    fixed = float(s.failure_penalty[s.request & s.migrating].sum())
    best = math.inf
    for pl in itertools.product(*choices):
        pl = np.array(pl)
        if (np.bincount(pl, weights=s.dt_size_bits, minlength=M) > s.storage_bits).any():
            continue
        cost = fixed + float(s.migration_penalty[pl != s.placement_prev].sum())
        for m in range(M):
            cost += server_value(m, tuple(int(i) for i in req if pl[i] == m))
        best = min(best, cost)
    return best


KINDS = ("plain", "tight_storage", "tight_cpu", "migrating", "no_migration", "cheap_fail", "zero_cycles", "edge")
CASES = [(seed, kind) for kind in KINDS for seed in range(6)]


@pytest.mark.parametrize("seed,kind", CASES)
def test_exact_equals_brute_force(seed: int, kind: str) -> None:
    s = tiny_snapshot(1000 + seed, kind=kind, N=4 + seed % 3, M=1 + (seed + 1) % 3)
    want = brute_force(s)
    sol = solve(s, method="exact", gap=1e-7)
    if not math.isfinite(want):
        assert sol.status == "infeasible"
        return
    assert sol.status == "optimal"
    ev = evaluate(s, sol)
    assert not ev.violations
    assert sol.objective == ev.objective
    assert sol.bound <= sol.objective
    assert sol.objective == pytest.approx(want, rel=1e-6, abs=1e-12)
    # the brute force is an upper bound (SLSQP may stop short); the oracle may not beat the bound
    assert sol.objective <= want * (1 + 1e-6) + 1e-12
