"""fast's extra rounds: options by Lagrangian reduced cost, and the best decision as a MIP start.

``reduced_cost_options(ld, P, T)`` claims that a decision cheaper than ``D(P) + T`` uses only the
options it returns (docs/solvers_fast.md, section 2, "Options by reduced cost"). Checked against
brute force: on tiny snapshots every placement that fits the storage, with its exact admission and
with other served sets, at several prices. The MIP start is checked by decoding it back, and the
certificate of fast with either option set against exact's optimum.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from wdtnopt.solvers.allocation import allocate, fits_storage
from wdtnopt.solvers.exact import solve_exact
from wdtnopt.solvers.fast import LagrangianData, price, solve_fast
from wdtnopt.solvers.fast_master import BundleMaster, reduced_cost_options, tangent_master_placement
from wdtnopt.testing import loaded_snapshot, tiny_snapshot


def _options_of(placement: np.ndarray, served: np.ndarray) -> set[tuple[int, int, bool]]:
    return {(n, int(placement[n]), bool(served[n])) for n in range(placement.size)}


def _returned(ld, P, threshold: float) -> set[tuple[int, int, bool]]:
    on, om, _, _, oserved = reduced_cost_options(ld, P, threshold, failures=True)
    return set(zip(on.tolist(), om.tolist(), oserved.tolist()))


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 5, 6, 7, 8, 10, 11])   # (4 and 9: 7-16 s of enumeration)
def test_every_decision_uses_only_options_within_its_reduced_cost_room(seed):
    """Brute force over every placement of a tiny snapshot that fits the storage and allowed hosts,
    each with its optimal served set and with every served set of at most two DTs the servers' CPU
    admits: at zero, random and large prices, each of the decision's options (n on its host, served
    or failed) has reduced cost at most the decision's cost less D(P), so it is among the options
    returned for that room. Every reduced cost is >= 0 and each MU's best option has 0: a negative
    room returns nothing, a room of 0 at least one option of every MU."""
    s = tiny_snapshot(seed)
    N, M = s.n_mus, s.n_bss
    ld = LagrangianData.of(s)
    rng = np.random.default_rng(seed)
    prices = [price(ld, np.zeros(M), np.zeros(M))]
    for scale in (1e-12, 1e-10, 1e-8):
        prices.append(price(ld, rng.uniform(0, scale, M), rng.uniform(0, scale * 1e-6, M)))
    checked = 0
    for placement in itertools.product(range(M), repeat=N):
        placement = np.array(placement)
        if not (ld.allowed[np.arange(N), placement].all() and fits_storage(s, placement)):
            continue
        best = allocate(s, placement)
        decisions = [best]
        servable = np.flatnonzero(ld.serve[np.arange(N), placement])
        for k in range(min(servable.size, 2) + 1):
            for subset in itertools.combinations(servable.tolist(), k):
                served = np.zeros(N, dtype=bool)
                served[list(subset)] = True
                a = allocate(s, placement, served)
                if np.isfinite(a.cost) and np.array_equal(a.served, served):
                    decisions.append(a)
        for a in decisions:
            for P in prices:
                room = a.cost - P.value
                assert room >= -1e-12 * abs(a.cost)
                options = _options_of(a.placement, a.served)
                assert options <= _returned(ld, P, room + 1e-12 * abs(a.cost)), (a.cost, P.value)
                checked += 1
    assert checked > 0
    for P in prices:
        assert not _returned(ld, P, -1e-9)
        assert {n for n, _, _ in _returned(ld, P, 1e-15)} == set(range(N))


@pytest.mark.parametrize("seed", range(6))
def test_exact_optimum_is_within_the_options_at_its_room(seed):
    """The optimum (exact, gap 1e-9) of a loaded 12 x 3 snapshot uses only options with reduced cost at
    most ``optimum - D(P)``, at zero prices and at prices where the servers are priced (random, up
    to the scale of a failure penalty per server); and the filter drops options (it is not
    vacuous): at that room fewer options come back than at an infinite one."""
    s = loaded_snapshot(12, 3, seed)
    e = solve_exact(s, gap=1e-9)
    ld = LagrangianData.of(s)
    rng = np.random.default_rng(seed)
    M = s.n_bss
    scale = float(s.failure_penalty.max())
    prices = [price(ld, np.zeros(M), np.zeros(M)),
              price(ld, rng.uniform(0, scale, M) / s.cpu_hz, rng.uniform(0, scale, M) / s.storage_bits)]
    dropped = 0
    for P in prices:
        room = e.objective - P.value
        options = _options_of(e.placement, e.served)
        kept = _returned(ld, P, room + 1e-12 * abs(e.objective))
        assert options <= kept
        dropped += len(_returned(ld, P, np.inf)) - len(kept)
    assert dropped > 0


def _served_reduced_cost(ld, P, pair: tuple[int, int], hi: float) -> float:
    """A served pair's reduced cost, by bisection on the uncapped filter's threshold (the least
    threshold at which it is returned), independent of the cap's sorting."""
    lo = 0.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        on, om, _, _, oserved = reduced_cost_options(ld, P, mid)
        if pair in set(zip(on[oserved].tolist(), om[oserved].tolist())):
            hi = mid
        else:
            lo = mid
    return hi


@pytest.mark.parametrize("seed", range(3))
def test_capped_options_are_the_least_reduced_costs_outside_the_excluded(seed):
    """``limit`` keeps the served pairs of least reduced cost (each pair's reduced cost found by
    bisection on the uncapped filter), ``exclude`` leaves pairs out before the cap, and the uncapped
    call with ``exclude`` is the full set less those pairs."""
    s = loaded_snapshot(12, 3, seed)
    ld = LagrangianData.of(s)
    M = s.n_bss
    rng = np.random.default_rng(seed)
    scale = float(s.failure_penalty.max())
    P = price(ld, rng.uniform(0, scale, M) / s.cpu_hz, np.zeros(M))
    room = 2.0 * scale
    on, om, _, _, _ = reduced_cost_options(ld, P, room)
    everything = list(zip(on.tolist(), om.tolist()))
    assert len(everything) >= 8
    rc = {p: _served_reduced_cost(ld, P, p, room) for p in everything}
    excluded = everything[::3]
    keys = np.array([n * M + m for n, m in excluded])
    on, om, _, _, oserved = reduced_cost_options(ld, P, room, exclude=keys)
    assert oserved.all() and set(zip(on.tolist(), om.tolist())) == set(everything) - set(excluded)
    rest = sorted(set(everything) - set(excluded), key=rc.get)
    for limit in (0, 1, 3, len(rest) // 2, len(rest), len(rest) + 5):
        on, om, _, _, _ = reduced_cost_options(ld, P, room, limit=limit, exclude=keys)
        kept = set(zip(on.tolist(), om.tolist()))
        assert len(kept) == on.size == min(limit, len(rest)) and kept <= set(rest)
        dropped = set(rest) - kept
        if kept and dropped:   # (bisection to 2^-60 of the room: ties within that are either way)
            assert max(rc[p] for p in kept) <= min(rc[p] for p in dropped) + 1e-15 * room


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mip_start_is_the_tangent_milps_first_incumbent(seed):
    """A decision handed to the tangent MILP as ``start`` (with the reduced-cost options that
    contain it) is HiGHS's first improving solution: decoded back, the same placement and served set.
    HiGHS checks a start's feasibility, so the CPU shares and energies set for it satisfy every row."""
    s = loaded_snapshot(20, 4, seed)
    ld = LagrangianData.of(s)
    f = solve_fast(s, gap=1e-6, exact_pairs=0, extra_rounds=0)
    P = price(ld, np.zeros(s.n_bss), np.zeros(s.n_bss))
    master = BundleMaster(ld, 0.01)
    idx = np.arange(s.n_mus)
    master.add_priced(idx, P)
    master.add_options(idx, s.placement_prev, np.zeros(s.n_mus), ld.fail.copy(), np.zeros(s.n_mus, dtype=bool))
    options = reduced_cost_options(ld, P, f.objective - P.value + 1e-9, failures=True)
    seen = []

    def on_found(placement, served):
        seen.append((placement.copy(), served.copy()))
        return True

    res = tangent_master_placement(ld, master, 30.0, P, slack=0.3, mip_gap=0.0, on_found=on_found,
                                   options=options, start=(f.placement, f.served, f.cpu_hz), heuristic_effort=0.0)
    assert res is not None and seen
    assert np.array_equal(seen[0][0], f.placement) and np.array_equal(seen[0][1], f.served)


@pytest.mark.parametrize("extra_options, more", [("reduced_cost", {"reduced_cost_pairs": None}), ("found", {}),
                                                  ("reduced_cost", {"reduced_cost_pairs": 2})])
@pytest.mark.parametrize("seed", range(2))
def test_fast_keeps_its_certificate_with_either_option_set(seed, extra_options, more, monkeypatch):
    """fast on loaded snapshots whose gap stays open (so the extra rounds run), with each option set
    of the extra rounds: bound <= exact's optimum <= objective, the decision re-checked by evaluate;
    with ``"reduced_cost"`` the extra rounds' MILPs got the reduced-cost options (at most
    ``reduced_cost_pairs`` served pairs beside the bundle's) and a start."""
    from wdtnopt.cost import evaluate
    from wdtnopt.solvers import fast as fast_mod

    calls = []
    real = fast_mod.tangent_master_placement

    def spy(*a, **kw):
        options = kw.get("options")
        calls.append((options is not None, kw.get("start") is not None))
        if options is not None and more.get("reduced_cost_pairs") is not None:
            assert options[4].all() and options[0].size <= more["reduced_cost_pairs"]
        return real(*a, **kw)

    monkeypatch.setattr(fast_mod, "tangent_master_placement", spy)
    s = loaded_snapshot(16, 4, 20 + seed)
    f = solve_fast(s, gap=1e-6, exact_pairs=0, extra_options=extra_options, milp_time=0.2, **more)
    e = solve_exact(s, gap=1e-9)
    assert evaluate(s, f).feasible
    assert f.bound <= e.objective * (1 + 1e-7) + 1e-12
    assert f.objective >= e.objective * (1 - 1e-7) - 1e-12
    assert len(calls) >= 2   # the gap 1e-6 stays open: the extra rounds ran
    assert calls[0] == (False, False)
    assert all(c == ((True, True) if extra_options == "reduced_cost" else (False, False)) for c in calls[1:])


def test_bench_fast_loaded_alternates_variants_per_seed(capsys):
    """benchmarks/bench_fast_loaded.py ``--variant``: each seed once per variant, in turn, each row
    labelled, one summary line per variant; the two option sets give certified rows (bound <=
    objective) on the same snapshot."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_fast_loaded.py"
    spec = importlib.util.spec_from_file_location("bench_fast_loaded", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = mod.main(["--size", "12x3", "--seeds", "2", "--variant", 'old={"extra_options": "found"}',
                     "--variant", "new={}"])
    out = capsys.readouterr().out.strip().splitlines()
    assert [(json.loads(x)["seed"], json.loads(x)["variant"]) for x in out[:4]] == [
        (0, "old"), (0, "new"), (1, "old"), (1, "new")]
    assert out[-2].endswith("[old]") and out[-1].endswith("[new]")
    assert all(r["bound"] <= r["objective"] for r in rows)
