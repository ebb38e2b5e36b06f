"""The large-scale method ``fast``: feasibility, certified bounds, and its 1% target.

Each small snapshot is also solved by the exact oracle: ``fast``'s bound must not exceed the
optimum and its objective must not beat it. The inner 1-D minimum of the Lagrangian is checked
against SciPy's bounded scalar minimizer (the slow, obvious reference).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from wdtnopt.testing import paper_snapshot, tiny_snapshot
from wdtnopt.cost import evaluate
from wdtnopt.solvers import SolverError
from wdtnopt.solvers.exact import solve_exact
from wdtnopt.solvers.fast import LagrangianData, inner_min, price, solve_fast

RTOL = 1e-7


def _small(seed: int):
    return tiny_snapshot(seed) if seed % 3 else paper_snapshot(10 + seed % 7, 2 + seed % 3, seed)


def _check_against_exact(s, f, e):
    ev = evaluate(s, f)
    assert ev.feasible, ev.summary()
    assert abs(ev.objective - f.objective) <= 1e-12 + 1e-12 * abs(f.objective)
    assert f.bound <= f.objective
    assert f.bound <= e.objective * (1 + RTOL) + 1e-12, (f.bound, e.objective)
    assert f.objective >= e.objective * (1 - RTOL) - 1e-12, (f.objective, e.objective)


@pytest.mark.parametrize("seed", range(120))
def test_small_instances_against_exact(seed):
    s = _small(seed)
    e = solve_exact(s, gap=1e-9)
    # the Lagrangian method alone, and with its continuation in exact (small snapshots, gap open)
    for f in (solve_fast(s, gap=1e-6, exact_pairs=0), solve_fast(s, gap=1e-6)):
        assert f.method == "fast"
        if e.status == "infeasible":
            assert f.status in ("infeasible", "bound_only")
            continue
        _check_against_exact(s, f, e)
        assert f.status in ("optimal", "feasible")


@pytest.mark.parametrize("seed", range(8))
def test_migrating_dts_stay_and_fail(seed):
    s = tiny_snapshot(seed, kind="migrating")
    f = solve_fast(s)
    e = solve_exact(s, gap=1e-9)
    mig = s.migrating
    assert (f.placement[mig] == s.placement_prev[mig]).all()
    assert not f.served[mig].any()
    _check_against_exact(s, f, e)


@pytest.mark.parametrize("seed", range(8))
def test_no_migration_is_exact_on_tiny_servers(seed):
    s = tiny_snapshot(seed, kind="no_migration")
    f = solve_fast(s, gap=0.0)
    e = solve_exact(s, gap=1e-9)
    assert (f.placement == s.placement_prev).all()
    _check_against_exact(s, f, e)
    # at most 6 candidates per server: exact admission, so the bound is the optimum
    assert f.objective == pytest.approx(e.objective, rel=1e-7, abs=1e-12)
    assert f.gap <= 1e-6


def test_no_migration_large_has_small_gap():
    s = paper_snapshot(300, 15, 3, allow_migration=False)
    f = solve_fast(s)
    assert evaluate(s, f).feasible
    assert (f.placement == s.placement_prev).all()
    assert f.gap <= 0.01


@pytest.mark.parametrize("seed", range(6))
def test_any_prices_give_a_valid_bound(seed):
    """Weak duality with the certified inner minima: D(lam, pi) <= optimum for random prices."""
    s = _small(seed + 100)
    e = solve_exact(s, gap=1e-9)
    if e.status == "infeasible":
        return
    ld = LagrangianData.of(s)
    rng = np.random.default_rng(seed)
    M = s.n_bss
    for scale_lam, scale_pi in [(0, 0), (1e-12, 0), (1e-11, 1e-12), (1e-10, 1e-11), (1e-13, 1e-13)]:
        lam = rng.uniform(0, 2, M) * scale_lam
        pi = rng.uniform(0, 2, M) * scale_pi
        assert price(ld, lam, pi).value <= e.objective * (1 + RTOL) + 1e-12


def test_inner_min_brackets_the_reference():
    """certified <= min_f g(f) <= achieved, with min_f g from SciPy's bounded minimizer."""
    s = paper_snapshot(60, 6, 7)
    ld = LagrangianData.of(s)
    pd = ld.pd
    n, m = ld.busy_n, ld.busy_m
    rng = np.random.default_rng(0)
    for scale in (0.0, 1e-13, 1e-12, 1e-11, 1e-10):
        lam = rng.uniform(0, 1, s.n_bss)[m] * scale
        f, energy, ach, cert = inner_min(pd, n, m, lam)
        assert (cert <= ach).all()
        assert ((f >= pd.f_min[n, m]) & (f <= pd.cpu_hz[m])).all()
        for i in rng.choice(n.size, 25, replace=False):
            g = lambda x: float(pd.energy_at_cpu(np.array([n[i]]), m[i], np.array([x]))[0] + lam[i] * x)
            lo, hi = pd.f_min[n[i], m[i]], pd.cpu_hz[m[i]]
            r = minimize_scalar(g, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6 * hi})
            ref = min(r.fun, g(lo), g(hi))
            assert cert[i] <= ref * (1 + 1e-12)
            assert ach[i] <= ref * (1 + 1e-9)  # our minimizer is at least as good as SciPy's


def test_options_are_checked():
    s = tiny_snapshot(1)
    with pytest.raises(SolverError):
        solve_fast(s, gap=-1)
    for bad in (dict(time_limit=0), dict(exact_pairs=-1), dict(exact_time=0), dict(milp_gap=-1e-3),
                dict(search_starts=-1), dict(milp_cpu="linear"), dict(phase_share=0), dict(phase_share=1.5),
                dict(extra_options="all"), dict(reduced_cost_pairs=-1), dict(reduced_cost_pairs=True)):
        with pytest.raises(SolverError, match=next(iter(bad))):
            solve_fast(s, **bad)
    f = solve_fast(s, threads=4)  # options of the common interface are accepted
    assert f.bound <= f.objective


def test_time_limit_still_returns_a_certified_pair():
    s = paper_snapshot(400, 20, 1)
    f = solve_fast(s, gap=0.0, time_limit=0.5)
    assert f.status in ("time_limit", "optimal", "feasible")
    assert evaluate(s, f).feasible
    assert f.bound <= f.objective


def test_large_instance_reaches_one_percent():
    s = paper_snapshot(1000, 50, 0)
    f = solve_fast(s, gap=0.01)
    assert evaluate(s, f).feasible
    assert f.status == "optimal"
    assert f.gap <= 0.01


def test_bundle_stops_on_the_centres_value_not_the_best_seen():
    # the bundle loop once measured its steps and its stopping test from the best dual value seen;
    # a null step's slightly better value then made the model's promise look spent and the ascent
    # stopped an iteration early (here 1.6e-5 below the dual maximum). The reference maximum is the
    # Lagrangian dual at exact's root-LP prices (solvers/price_certificate.py, an LP, not a bundle).
    s = tiny_snapshot(123)
    f = solve_fast(s, gap=1e-9, exact_pairs=0)
    e = solve_exact(s, gap=1e-9)
    lagrangian_max = e.stats["lagrangian_bound"]
    assert f.stats["dual_bound"] <= e.objective * (1 + RTOL)
    assert f.stats["dual_bound"] >= lagrangian_max * (1 - 1e-6), (f.stats["dual_bound"], lagrangian_max)


@pytest.mark.parametrize("seed", range(4))
def test_small_loaded_snapshots_continue_in_exact(seed):
    # few DTs per server: the Lagrangian bound stops 1-5% below the optimum (its integrality gap),
    # so fast continues in exact's branch and bound from its own decision and bound
    from wdtnopt.testing import loaded_snapshot

    s = loaded_snapshot(20, 4, seed)
    alone = solve_fast(s, gap=0.01, exact_pairs=0)
    assert "exact_continuation" not in alone.stats
    assert alone.gap > 0.01  # the case this is for (measured: 1.5-5%)
    f = solve_fast(s, gap=0.01)
    e = solve_exact(s, gap=1e-9)
    assert f.method == "fast" and f.stats["exact_continuation"]["fast_bound"] == alone.bound
    assert f.status == "optimal" and f.gap <= 0.01
    assert f.bound >= alone.bound and f.objective <= alone.objective
    _check_against_exact(s, f, e)


def test_fast_says_infeasible_exactly_when_no_placement_fits_the_storage():
    """fast, with no placement found, proves infeasibility by a feasibility MILP instead of returning
    ``bound_only`` with a huge finite bound (7.4e27 on one_cell with 1-bit storage); the truth is a
    brute force over every placement of the DTs that may move."""
    import itertools

    import wdtnopt
    from wdtnopt.solvers.allocation import fits_storage
    from wdtnopt import Snapshot
    from wdtnopt import testing as T

    rng = np.random.default_rng(7)
    seen = set()
    for k in range(24):
        d = T.paper_snapshot(4, 2, k % 6).to_dict()
        size = np.asarray(d["dt_size_bits"], float)
        d["storage_bits"] = list(rng.uniform(0.2, 1.6, 2) * size.sum() / 2)
        s = Snapshot.from_dict(d)
        hosts = [range(2) if not s.pinned[n] else [int(s.placement_prev[n])] for n in range(4)]
        truth = any(fits_storage(s, np.array(p)) for p in itertools.product(*hosts))
        r = wdtnopt.solve(s, method="fast")
        assert (r.status == "infeasible") == (not truth), (k, r.status)
        if truth:
            assert r.status in ("optimal", "feasible") and np.isfinite(r.objective)
        seen.add(truth)
    assert seen == {True, False}
    r = wdtnopt.solve(T.one_cell(storage_bits=[1, 1]), method="fast")
    assert r.status == "infeasible" and r.bound == float("inf")


def test_fast_says_infeasible_when_every_server_has_zero_storage():
    """With every capacity 0 the feasibility MILP's sizes were scaled by 1e-300 to 1e308, which HiGHS
    drops as infinite; it then "found" a placement that fits_storage refused, and fast said
    ``bound_only`` where exact (and a brute force: no placement fits) says ``infeasible``."""
    import wdtnopt
    from wdtnopt import testing as T

    s = T.one_cell(storage_bits=[0.0, 0.0])
    assert wdtnopt.solve(s, method="exact").status == "infeasible"
    r = wdtnopt.solve(s, method="fast")
    assert r.status == "infeasible" and r.bound == float("inf")
    # DTs of zero size fit anywhere: then the same snapshot is feasible
    r = wdtnopt.solve(T.one_cell(storage_bits=[0.0, 0.0], dt_size_bits=[0.0, 0.0]), method="fast")
    assert r.status == "optimal" and np.isfinite(r.objective)


@pytest.mark.parametrize("milp_cpu", ["fixed", "tangent"])
@pytest.mark.parametrize("seed", range(3))
def test_restricted_master_incumbents_are_placements_at_or_above_the_optimum(seed, milp_cpu, monkeypatch):
    """Every improving solution of the restricted-master MILP (either CPU model) is offered to the
    primal (its costs are estimates, so an early incumbent may admit cheaper than the last): the
    fixed-share MILP's through ``found``, the tangent MILP's through ``on_found`` as HiGHS finds them.
    Each is a placement on allowed hosts whose exactly admitted cost is at least exact's certified
    optimum, whose served set fits every server's CPU (allocate_server finds it feasible), and the
    last one is what the MILP returns."""
    from wdtnopt.solvers import fast as fast_mod
    from wdtnopt.solvers import fast_master
    from wdtnopt.solvers.allocation import allocate_server
    from wdtnopt.solvers.fast_primal import PrimalPool
    from wdtnopt.testing import loaded_snapshot

    s = loaded_snapshot(20, 4, seed)
    calls = []
    name = {"fixed": "restricted_master_placement", "tangent": "tangent_master_placement"}[milp_cpu]
    real = getattr(fast_master, name)

    def spy(ld, master, time_limit, Pr, **kw):
        seen = []
        inner = kw.get("on_found")
        if inner is not None:
            def on_found(placement, served):
                seen.append((placement.copy(), served.copy()))
                return inner(placement, served)

            kw["on_found"] = on_found
        res = real(ld, master, time_limit, Pr, **kw)
        calls.append((ld, res, seen if inner is not None else list(kw.get("found") or [])))
        return res

    monkeypatch.setattr(fast_mod, name, spy)
    f = solve_fast(s, gap=1e-6, exact_pairs=0, milp_cpu=milp_cpu)
    e = solve_exact(s, gap=1e-9)
    assert calls and all(found for _, _, found in calls)
    _check_against_exact(s, f, e)
    for ld, res, found in calls:
        assert np.array_equal(found[-1][0], res[0]) and np.array_equal(found[-1][1], res[1])
        for placement, served in found:
            n = np.arange(s.n_mus)
            assert ld.allowed[n, placement].all()
            assert not (served & ~(s.request & ~s.migrating)).any()
            for m in range(s.n_bss):
                assert allocate_server(ld.pd, m, np.flatnonzero(served & (placement == m))).feasible
            pool = PrimalPool(ld)
            cost = pool.offer(placement, served)
            assert cost >= e.objective * (1 - RTOL) - 1e-12
            assert f.objective <= cost * (1 + 1e-12)   # fast kept the best admitted one (or better)


@pytest.mark.parametrize("seed", range(4))
def test_loaded_snapshots_keep_the_certificate_with_any_phase_split(seed):
    """fast's own phase leaves the continuation the rest of ``exact_time`` after ``phase_share`` of it;
    a tiny one (the phase ends at once) or a huge one, or a share of 5% or 100%, changes how far the
    primal gets, never the certificate:
    bound <= exact's optimum <= objective, and the Lagrangian bound is the same."""
    from wdtnopt.testing import loaded_snapshot

    s = loaded_snapshot(16, 4, 10 + seed)
    e = solve_exact(s, gap=1e-9)
    runs = [solve_fast(s, gap=0.01, exact_time=t, exact_pairs=p) for t in (1e-3, 1e3) for p in (0, 2000)]
    runs += [solve_fast(s, gap=0.01, phase_share=share) for share in (0.05, 1.0)]
    for f in runs:
        _check_against_exact(s, f, e)
    alone = [f for f in runs if "exact_continuation" not in f.stats]
    assert alone and len({f.stats["dual_bound"] for f in runs}) == 1


@pytest.mark.parametrize("seed", range(3))
def test_local_search_from_a_given_start_never_passes_the_optimum(seed):
    """``local_search(start=...)`` searches from that placement (here an arbitrary one that fits the
    storage: the feasibility MILP's), not the pool's best, and offers its end point, also into an
    empty pool (its acceptance test once scaled by the pool's infinite best cost and took no move):
    strictly below the start's admitted cost and at least exact's optimum."""
    import math

    from wdtnopt.solvers.allocation import fits_storage
    from wdtnopt.solvers.fast_master import storage_placement
    from wdtnopt.solvers.fast_primal import PrimalPool, local_search
    from wdtnopt.testing import loaded_snapshot

    s = loaded_snapshot(16, 4, 20 + seed)
    ld = LagrangianData.of(s)
    start, infeasible = storage_placement(ld, 10.0)
    assert not infeasible and fits_storage(s, start)
    e = solve_exact(s, gap=1e-9)
    pool = PrimalPool(ld)
    start_cost, _ = pool.cost(start)
    assert pool.best_placement is None
    assert local_search(pool, math.inf, start=start) > 0
    assert fits_storage(s, pool.best_placement)
    assert e.objective * (1 - RTOL) - 1e-12 <= pool.best_cost < start_cost


def test_energy_tangents_are_the_slope_and_stay_below_the_convex_energy():
    """The tangent cuts of the tangent restricted master: ``energy_tangents`` gives ``e_n(f)`` (the
    allocation's ``energy_at_cpu``) and its slope (a central difference of it), and every tangent lies
    below ``e_n`` on ``[f_min, cpu_hz]`` (convexity), including MUs with no cycles (constant energy)."""
    from wdtnopt.solvers.allocation import PairData
    from wdtnopt.solvers.fast_master import energy_tangents
    from wdtnopt.testing import loaded_snapshot

    s = loaded_snapshot(20, 4, 3)
    pd = PairData.of(s)
    n, m = np.nonzero(pd.servable)
    assert n.size > 20
    rng = np.random.default_rng(0)
    checked = 0
    for i in range(n.size):
        lo, hi = (pd.f_min[n[i], m[i]], pd.cpu_hz[m[i]]) if pd.cycles[n[i]] > 0 else (0.0, pd.cpu_hz[m[i]])
        f = lo + (hi - lo) * rng.uniform(0.05, 0.95)
        e, de = energy_tangents(pd, n[i:i + 1], m[i:i + 1], np.array([f]))
        assert e[0] == pytest.approx(float(pd.energy_at_cpu(n[i:i + 1], int(m[i]), f)[0]), rel=1e-12)
        h = 1e-5 * f
        if pd.cycles[n[i]] > 0:
            fd = (pd.energy_at_cpu(n[i:i + 1], int(m[i]), f + h) - pd.energy_at_cpu(n[i:i + 1], int(m[i]), f - h)) / (2 * h)
            assert de[0] == pytest.approx(float(fd[0]), rel=1e-4, abs=1e-12 * abs(e[0]) / f)
            assert de[0] < 0
        else:
            assert de[0] == 0
        g = np.linspace(max(lo, 1e-9 * hi), hi, 50)
        assert (e[0] + de[0] * (g - f) <= pd.energy_at_cpu(np.full(50, n[i]), int(m[i]), g) * (1 + 1e-12) + 1e-15).all()
        checked += 1
    assert checked == n.size


def test_tangent_cpus_start_at_the_least_cpu_and_crowd_near_it():
    """The tangent MILP's CPUs per pair: ``f_min`` first, then ``f_min + (cpu_hz - f_min) r_j`` with
    ``r_j`` geometric from ``first_step`` to 1 (hand-computed for 4 points: r = 0.01, 0.1, 1), so the
    last is the server's CPU; a MU without cycles (``f_min`` 0) starts at 1e-6 of the server's CPU."""
    from wdtnopt.solvers.fast_master import tangent_cpus

    g = tangent_cpus(np.array([1e9, 0.0]), np.array([3e9, 2e9]), 4, first_step=0.01)
    np.testing.assert_allclose(g[0], [1e9, 1e9 + 2e7, 1e9 + 2e8, 3e9], rtol=1e-12)
    np.testing.assert_allclose(g[1], [2e3, 2e3 + (2e9 - 2e3) * 0.01, 2e3 + (2e9 - 2e3) * 0.1, 2e9], rtol=1e-12)
    assert (np.diff(tangent_cpus(np.array([1.0, 2.0]), np.array([5.0, 9.0]), 6), axis=1) > 0).all()


@pytest.mark.parametrize("seed", [0, 2])
def test_tangent_milp_stops_at_the_incumbent_that_closes_the_gap(seed, monkeypatch):
    """With ``on_found``, the tangent MILP hands each improving incumbent over as HiGHS finds it and
    stops once ``on_found`` says the caller's gap is closed: told never, it hands over several and
    returns the last it handed over (HiGHS's final solution, model status optimal); told so at the
    first incumbent, HiGHS ends interrupted, having handed over that one only, and a placement on
    allowed hosts comes back. (HiGHS stops at its next interrupt check: on seed 1 of the same size
    its second and last incumbent comes before one, so that MILP ends optimal; seeds 0 and 2 meet 3
    and 4 incumbents with checks between them.)"""
    import math

    import highspy

    from wdtnopt.solvers import fast_master
    from wdtnopt.solvers.fast_master import BundleMaster, tangent_master_placement
    from wdtnopt.testing import loaded_snapshot

    statuses = []
    real_run = fast_master.run_model

    def run_model(h, **kw):
        r = real_run(h, **kw)
        statuses.append(h.getModelStatus())
        return r

    monkeypatch.setattr(fast_master, "run_model", run_model)

    s = loaded_snapshot(20, 4, seed)
    ld = LagrangianData.of(s)
    P = price(ld, np.zeros(s.n_bss), np.zeros(s.n_bss))
    master = BundleMaster(ld, 0.01)
    idx = np.arange(s.n_mus)
    master.add_priced(idx, P)
    master.add_options(idx, s.placement_prev, np.zeros(s.n_mus), ld.fail.copy(), np.zeros(s.n_mus, dtype=bool))
    for stop in (False, True):
        seen = []

        def on_found(placement, served):
            seen.append((placement.copy(), served.copy()))
            return stop

        res = tangent_master_placement(ld, master, 30.0, P, slack=math.inf, mip_gap=0.0, on_found=on_found)
        assert res is not None and seen
        assert ld.allowed[idx, res[0]].all()
        if stop:
            assert len(seen) == 1 and statuses[-1] == highspy.HighsModelStatus.kInterrupt
        else:
            assert len(seen) >= 2 and statuses[-1] == highspy.HighsModelStatus.kOptimal
            assert np.array_equal(seen[-1][0], res[0]) and np.array_equal(seen[-1][1], res[1])


def test_bench_fast_loaded_smoke_splits_the_gap_into_primal_and_bound(capsys):
    """benchmarks/bench_fast_loaded.py's smoke preset: one JSON line per seed and a summary; the
    primal's and the bound's parts add up to fast alone's gap, each >= 0 (exact's best lies between
    fast alone's bound and objective: the certificate), and a seed counts as met exactly when its gap
    is <= 1% within the wall budget."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_fast_loaded.py"
    spec = importlib.util.spec_from_file_location("bench_fast_loaded", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = mod.main(["--smoke"])
    out = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 2 and [json.loads(x)["seed"] for x in out[:2]] == [0, 1]
    assert out[-1].startswith(f"# {sum(r['met'] for r in rows)} of 2 <= gap within 10 s")
    for r in rows:
        assert r["met"] == (r["gap"] <= 0.01 and r["wall_s"] <= 10.0)
        assert r["primal_part"] >= -1e-12 and r["bound_part"] >= -1e-9
        assert r["primal_part"] + r["bound_part"] == pytest.approx(
            (r["alone_objective"] - r["alone_bound"]) / r["alone_objective"], abs=1e-12)
        assert r["phase_bound"] <= r["bound"] and r["objective"] <= r["phase_objective"]
