"""The hindsight bound's dual by column generation (wdtnopt/bounds_columns.py, docs/longterm.md).

References: the brute force of tests/test_solvers_bruteforce.py (enumeration + SLSQP, independent
of the solvers) for each slot's minimum, and a dynamic programme over brute-forced served sets for
the relaxed trace problem itself.
"""
import dataclasses
import itertools

import numpy as np
import pytest

from wdtnopt import Scenario, generate_trace, hindsight_bound
from wdtnopt.solvers.fast_dual import price

from test_longterm import relaxed   # the slot problem the bound relaxes each slot to

TINY = Scenario.paper(n_mus=4, n_bss=2, request_prob=0.6)
BIG = 1.0   # J per failure: far above any serve energy, so a brute force with it serves every such MU


def relaxed_trace_optimum(tr, eps):
    """min total energy over per-slot decisions (migration relaxed) with F_n <= eps R_n, by brute force.

    Per slot and served set S: the least energy of a decision serving at least S (brute force with
    failure price BIG on S, 0 elsewhere); then a dynamic programme over slots on the failure counts.
    Every such decision is feasible for the relaxed trace problem, and every decision of a policy
    is one of them, so this is the relaxed optimum the bound must stay below."""
    from test_solvers_bruteforce import brute_force

    n = tr.n_mus
    allowed = np.floor(eps * tr.request.sum(axis=0) + 1e-9).astype(int)
    states = {tuple([0] * n): 0.0}
    for t in range(tr.slots):
        req = np.flatnonzero(tr.request[t])
        nxt: dict[tuple[int, ...], float] = {}
        for r in range(len(req) + 1):
            for served in itertools.combinations(req, r):
                mu = np.zeros(n)
                mu[list(served)] = BIG
                e = brute_force(relaxed(tr, t, mu))
                if e >= BIG:          # this set cannot be served at once
                    continue
                failed = np.zeros(n, int)
                failed[[i for i in req if i not in served]] = 1
                for st, v in states.items():
                    new = tuple(np.array(st) + failed)
                    if all(a <= b for a, b in zip(new, allowed)) and v + e < nxt.get(new, np.inf):
                        nxt[new] = v + e
        states = nxt
    return min(states.values()) if states else np.inf


@pytest.mark.parametrize("seed", [0, 1])
def test_every_point_is_below_the_brute_force_dual_function(seed):
    """Each priced point's G (the sum of the slots' Lagrangian bounds) is below the sum of the
    brute-force slot minima at its multipliers: weak duality, checked point by point."""
    from test_solvers_bruteforce import brute_force

    tr = generate_trace(TINY, seed=seed, slots=5)
    hb = hindsight_bound(tr, iters=6, eps=0.3)
    assert hb.method == "columns" and hb.points
    for p in hb.points:
        exact = sum(brute_force(relaxed(tr, t, p.mu)) for t in range(tr.slots))
        assert p.G <= exact * (1 + 1e-7) + 1e-15


@pytest.mark.parametrize("seed,iters", [(2, 1), (4, 2), (6, 1)])
def test_few_steps_give_a_positive_bound_below_the_relaxed_optimum(seed, iters):
    """One or two dual evaluations already give a meaningful bound: positive, and below the
    brute-force optimum of the relaxed trace problem (hence below every policy meeting eps)."""
    tr = generate_trace(TINY, seed=seed, slots=5)
    eps = 0.34
    hb = hindsight_bound(tr, iters=iters, eps=eps)
    optimum = relaxed_trace_optimum(tr, eps)
    assert 0.0 < hb.total_energy <= optimum * (1 + 1e-7)
    # and it is most of it: the Lagrangian dual of this tiny problem is tight to a few percent
    assert hb.total_energy >= 0.5 * optimum


def test_converged_point_beats_random_prices():
    """At convergence the best point maximizes Phi(mu, lam, pi): no random price vector (priced
    independently, slot by slot) gives a larger bound."""
    tr = generate_trace(Scenario.paper(n_mus=8, n_bss=3), seed=4, slots=12)
    hb = hindsight_bound(tr, iters=40)
    cd = hb._columns.cd
    target = hb.targets(hb.eps)
    best = hb.total_energy
    rng = np.random.default_rng(0)
    _, point = hb.best_point(hb.eps)
    lam0, pi0 = point.slot_prices
    for k in range(20):
        mu = point.mu * rng.uniform(0.5, 1.5, tr.n_mus)
        lam = lam0 * rng.uniform(0.5, 1.5, lam0.shape) + (k % 2) * rng.uniform(0, 1e-12, lam0.shape)
        pi = pi0 * rng.uniform(0.5, 1.5, pi0.shape)
        G = sum(price(dataclasses.replace(ld, fail=mu[r]), lam[i], pi[i]).value
                for i, (ld, r) in enumerate(zip(cd.lds, cd.req)))
        assert G - float(mu @ target) <= best * (1 + 1e-6)


def test_forced_failures_raise_the_targets():
    """A MU that no server can serve in some slot fails there under every policy: the targets are
    raised to those failures (a weaker, still valid constraint), so the bound stays finite."""
    tr = generate_trace(Scenario.paper(n_mus=30), seed=0, slots=40)
    hb = hindsight_bound(tr, iters=3)
    forced = hb.forced_failures
    assert (forced > 0.05 * hb.requests).any()          # on this trace MU 21 has one such request
    assert (hb.targets(0.05) >= forced).all() and (hb.targets(0.05) >= 0.05 * hb.requests).all()
    assert hb.mu.max() < 1.0                             # no multiplier driven to the elastic cap


def test_dual_argument_is_checked():
    tr = generate_trace(TINY, seed=0, slots=2)
    with pytest.raises(ValueError, match="dual"):
        hindsight_bound(tr, dual="bundle")
    with pytest.raises(ValueError, match="dual"):
        hindsight_bound(generate_trace(Scenario.paper(n_mus=3, n_bss=2, semantic_levels=2), seed=0, slots=2),
                        dual="columns")


def test_bench_bound_smoke(tmp_path):
    """benchmarks/bench_bound.py at its smoke preset: the three methods on one trace and dual budget;
    the new ones are at least the method before (same targets, same budget)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "b.json"
    subprocess.run([sys.executable, str(root / "benchmarks" / "bench_bound.py"), "--preset", "smoke", "--json", str(out)],
                   check=True, capture_output=True, cwd=root)
    res = json.loads(out.read_text())["results"]
    assert set(res) == {"cold", "warm", "columns"}
    assert res["columns"]["value"] >= res["cold"]["value"] > 0
    assert res["warm"]["value"] >= res["cold"]["value"] * (1 - 1e-3)
    assert res["columns"]["evaluations"] <= 4


def test_a_failed_master_still_gives_a_valid_point(monkeypatch):
    """If the restricted master is not solved, one point at the uniform failure price with free CPU
    and storage is priced instead: still below the brute-force dual function."""
    from test_solvers_bruteforce import brute_force
    from wdtnopt.bounds_columns import ColumnDual

    monkeypatch.setattr(ColumnDual, "master", lambda self: None)
    tr = generate_trace(TINY, seed=0, slots=4)
    hb = hindsight_bound(tr, iters=3, eps=0.3)
    assert len(hb.points) == 1
    p = hb.points[0]
    assert p.G <= sum(brute_force(relaxed(tr, t, p.mu)) for t in range(tr.slots)) * (1 + 1e-7) + 1e-15
    assert hb.total_energy >= 0.0


def test_columns_refuses_the_climbs_options_instead_of_ignoring_them():
    from wdtnopt import Scenario, generate_trace, hindsight_bound
    from wdtnopt.errors import WdtnoptError

    tr = generate_trace(Scenario.paper(n_mus=4, n_bss=2), seed=1, slots=3)
    for kwargs, name in (({"mu0": 1e-3}, "mu0"), ({"step": 1e-3}, "step"), ({"warm_start": False}, "warm_start")):
        with pytest.raises(WdtnoptError, match=name):
            hindsight_bound(tr, iters=2, dual="columns", **kwargs)
    assert hindsight_bound(tr, iters=2, dual="auto", mu0=1e-3).energy_per_mu_slot >= 0.0   # auto: the climb


def test_a_scheduler_goes_to_the_supergradient_climb(monkeypatch):
    """The columns dual has no slot solves to distribute: with a Dask scheduler, 'columns' is refused
    and 'auto' climbs over slots solved through the scheduler's pool."""
    from wdtnopt import Scenario, generate_trace, hindsight_bound
    from wdtnopt import parallel
    from wdtnopt.errors import WdtnoptError

    tr = generate_trace(Scenario.paper(n_mus=4, n_bss=2), seed=1, slots=3)
    with pytest.raises(WdtnoptError, match="scheduler"):
        hindsight_bound(tr, iters=2, dual="columns", scheduler="tcp://127.0.0.1:1")
    seen = []
    real = parallel.StickyPool

    def pool(workers, scheduler):   # the scheduler reached the pool; run the slots here instead
        seen.append(scheduler)
        return real(1, None)

    monkeypatch.setattr(parallel, "StickyPool", pool)
    hb = hindsight_bound(tr, iters=2, scheduler="tcp://127.0.0.1:1")
    assert seen == ["tcp://127.0.0.1:1"] and hb.method == "exact" and hb.energy_per_mu_slot >= 0.0


def test_gap_with_no_climb_per_policy_computes_the_bound_with_its_own_budget():
    from wdtnopt import Scenario, gap, generate_trace, hindsight_bound, simulate
    from wdtnopt.errors import WdtnoptError

    tr = generate_trace(Scenario.paper(n_mus=6, n_bss=2), seed=0, slots=8)
    r = simulate("static", tr)
    rep = gap([r], tr, iters=0)
    ref = hindsight_bound(tr).value_at(r.failure_ratio_per_mu)[0] / (tr.n_mus * tr.slots)
    assert rep.rows[0].bound_per_mu_slot == pytest.approx(ref, rel=1e-9)
    assert rep.rows[0].bound_per_mu_slot <= r.energy_per_mu_slot
    with pytest.raises(WdtnoptError, match="iters"):
        gap([r], tr, iters=-1)


def test_a_one_level_menu_is_covered_and_bounded_as_no_menu():
    """semantic_levels = 1 is the single level of ratio 1 with no extraction cost: the same slot
    problems as no menu, so the column dual covers it and gives the same bound (it fell back to the
    weaker supergradient climb: 0.579 vs 0.696 mJ on seed 0)."""
    from wdtnopt import simulate
    from wdtnopt.bounds_columns import covers

    for seed in (0, 1):
        plain = generate_trace(Scenario.paper(n_mus=4, n_bss=2), seed=seed, slots=6)
        one = generate_trace(Scenario.paper(n_mus=4, n_bss=2, semantic_levels=1), seed=seed, slots=6)
        assert covers(one) and not covers(generate_trace(Scenario.paper(n_mus=4, n_bss=2, semantic_levels=2),
                                                         seed=seed, slots=2))
        b_one = hindsight_bound(one, iters=4)
        assert b_one.energy_per_mu_slot == hindsight_bound(plain, iters=4).energy_per_mu_slot
        for p in ("static", "follow", "oracle"):
            r = simulate(p, one)
            assert b_one.value_at(r.failure_ratio_per_mu)[0] <= r.energy_per_mu.sum() * (1 + 1e-9)
