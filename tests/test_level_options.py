"""exact's options on a snapshot with a semantic menu (solvers/levels.py): the master's options are
honoured, the menu-free loop's are refused by name (they were silently ignored: a user could think
``exchange_gap`` or ``server_prices`` took effect), and with a one-level menu every option applies."""
from __future__ import annotations

import numpy as np
import pytest

from wdtnopt.errors import WdtnoptError
from wdtnopt.processes import semantic
from wdtnopt.solvers import solve
from wdtnopt.testing import tiny_snapshot

from test_sixg import brute_force_levels, with_menu


def _menu():
    return with_menu(tiny_snapshot(701, kind="tight_cpu", N=4, M=2), 1, min_accuracy=0.85)


@pytest.mark.parametrize("option, value", [("exchange_gap", 0.0), ("server_prices", (1.0,)), ("polish_rounds", 3),
                                           ("price_cuts", ()), ("mip_gap_share", 0.5), ("oracle", "cvxpy"),
                                           ("primal_seed", "fast"), ("exchange_candidates", 5), ("polish_gap", 0.1),
                                           ("hull_rounds", 2)])
def test_an_option_the_level_oracle_does_not_use_is_refused_by_name(option, value):
    with pytest.raises(WdtnoptError, match=f"option {option} does not apply to a snapshot with a semantic"):
        solve(_menu(), method="exact", **{option: value})


def test_the_level_oracle_honours_the_master_options():
    s = _menu()
    want = brute_force_levels(s)
    base = solve(s, method="exact", gap=1e-7)
    assert base.status == "optimal" and base.objective == pytest.approx(want, rel=1e-6)
    # root_rounds: no Kelley round leaves the root bound at the initial cuts' (was always 50 rounds)
    bare = solve(s, method="exact", gap=1e-7, root_rounds=0, initial_cuts=2)
    assert bare.stats["root_bound"] < base.stats["root_bound"]
    for options in ({"root_rounds": 0, "initial_cuts": 2}, {"highs_presolve": False, "use_mip_start": False},
                    {"drop_slack": 0.0}, {"primal_seed": "none"}, {"initial_first_step": 0.03, "root_rounds": 0}):
        sol = solve(s, method="exact", gap=1e-7, **options)
        assert sol.status == "optimal", options
        assert sol.objective == pytest.approx(want, rel=1e-6) and sol.bound <= want * (1 + 1e-9), options
    # the defaults, given explicitly, are accepted (and change nothing)
    same = solve(s, method="exact", gap=1e-7, exchange_gap=9e-3, primal_seed="auto")
    assert (same.objective, same.bound) == (base.objective, base.bound)


def test_a_one_level_menu_takes_every_option():
    s = tiny_snapshot(500, N=5, M=2)
    one = s.replace(**semantic.menu(s.n_mus, [1.0], [0.0], [1.0]))
    a = solve(s, method="exact", exchange_gap=0.0, server_prices=(1.0,))
    b = solve(one, method="exact", exchange_gap=0.0, server_prices=(1.0,))
    assert (a.status, a.objective, a.bound) == (b.status, b.objective, b.bound)
    assert np.array_equal(a.placement, b.placement)


@pytest.mark.parametrize("cpus", [(1e300, 1e300), (1e300, 1e-300)])
def test_the_level_oracle_at_a_server_of_1e300_hz_proves_the_optimum(cpus):
    """A server of 1e300 Hz: the incumbent's CPU shares are about 1e-293 and the master's cuts there
    useless (it ended ``feasible`` with a bound of -4.9e278); the Lagrangian bound at zero prices
    (the CPU does not bind) closes it. Reference: the brute force over levels."""
    import warnings

    s = _menu().replace(cpu_hz=np.array(cpus))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = brute_force_levels(s)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = solve(s, method="exact")
    assert sol.status == "optimal" and sol.bound <= want * (1 + 1e-9)
    assert sol.objective == pytest.approx(want, rel=1e-6)


def _huge_penalty_menu(seed: int, levels: int, penalty_j: float, storage_bound: bool):
    """A menu snapshot whose MU 0 fails at ``penalty_j`` (up to 1.5e308 J; the level master's L copies
    of it sum past the largest float) and must move its DT (migration penalty 1e300 J): its server
    is down (``storage_bound=False``), or the previous placement overflows its storage."""
    s = with_menu(tiny_snapshot(seed, N=3, M=2), seed, levels=levels)
    s = s.replace(failure_penalty=np.array([penalty_j, 1e300, 1.0]), migration_penalty=np.full(3, 1e300))
    m0 = int(s.placement_prev[0])
    if storage_bound:
        st = np.full(2, 2.0 * s.dt_size_bits.sum())
        st[m0] = 0.999 * s.dt_size_bits[0]
        return s.replace(storage_bits=st)
    up = np.ones(2, dtype=bool)
    up[m0] = False
    return s.replace(server_up=up)


@pytest.mark.parametrize("penalty_j", [1e300, 1e306, 1.5e308])
@pytest.mark.parametrize("seed,levels", [(0, 2), (1, 3), (2, 3)])
def test_failure_penalties_near_1e308_j_give_a_finite_master_bound_without_warnings(seed, levels, penalty_j):
    """The level master prices each of a MU's L virtual copies at its failure penalty: its constant
    (L x 1e308 J) overflowed numpy's sum (a RuntimeWarning) and its bound less the shift was NaN
    (only the Lagrangian bound at zero prices kept the answer right). Now the shift is taken in the
    master's units; its root bound is finite and, as the final bound, at most the optimum. References:
    the brute force over levels (all servers up, storage binding); with a server down, which the
    brute force ignores, a decision scored by ``evaluate``."""
    import warnings

    from wdtnopt.cost import evaluate

    for storage_bound in (True, False):
        s = _huge_penalty_menu(seed, levels, penalty_j, storage_bound)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sol = solve(s, method="exact")
        # the master runs unless the Lagrangian bound at zero prices closes the snapshot first
        root = sol.stats.get("root_bound", -np.inf if penalty_j < 1e308 else None)
        assert root is not None and np.isfinite(sol.bound)
        assert root == -np.inf or np.isfinite(root), (storage_bound, root)
        assert root <= sol.objective and sol.bound <= sol.objective
        assert sol.objective == pytest.approx(evaluate(s, sol).objective, rel=1e-12)
        if storage_bound:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                want = brute_force_levels(s)
            assert sol.bound <= want * (1 + 1e-9) and root <= want * (1 + 1e-9)
            assert sol.objective == pytest.approx(want, rel=1e-6)
            # proven, as the menu-free master proves it (the level master left in units of the
            # penalties ended 'feasible' at gaps of 0.002 to 1 from 1e306 J: follow_incumbent)
            assert sol.status == "optimal" and sol.gap <= 1e-6, (sol.status, sol.gap)
        else:
            # moving MU 0's DT to the up server and failing all: 1e300 J of migration plus the penalties
            # of MUs 1 and 2 unless served -- no decision is cheaper than its migration alone
            moved = s.placement_prev.copy()
            moved[0] = 1 - moved[0]
            fail_rest = evaluate(s, {"placement": moved, "served": np.zeros(3, bool),
                                     "tx_time": np.zeros(3), "cpu_hz": np.zeros(3)}).objective
            assert 1e300 <= sol.objective <= fail_rest and sol.bound <= sol.objective


def _moved_start_menu(seed: int, penalty_j: float):
    """A menu snapshot whose previous placement overflows server ``placement_prev[0]`` (no first
    incumbent: the level master starts in units of the summed penalties) and whose optimum serves
    every MU at some level, orders of magnitude below those penalties."""
    s = tiny_snapshot(seed, N=4, M=2, kind="tight_cpu")
    st = np.full(2, 2.0 * s.dt_size_bits.sum())
    st[int(s.placement_prev[0])] = 0.999 * s.dt_size_bits[0]
    s = s.replace(failure_penalty=np.full(4, penalty_j), migration_penalty=np.full(4, 1e-3), storage_bits=st)
    return with_menu(s, seed, levels=2)


@pytest.mark.parametrize("penalty_j", [1e6, 1e306])
@pytest.mark.parametrize("seed", [2, 3, 5, 7])
def test_the_level_master_follows_the_incumbents_scale(seed, penalty_j):
    """The level master was built in units of the first incumbent (here of the summed penalties) and
    kept them: HiGHS's tolerance term, proportional to that unit, swamped an optimum of 0.01 J and
    exact ended 'feasible' at relative gaps of 0.32-0.71 where the menu-free master certifies. It now
    follows the incumbent as exact's master does (rebuilt at its scale, or its objective rescaled).
    Reference: the brute force over levels x placements x served sets."""
    import warnings

    s = _moved_start_menu(seed, penalty_j)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = brute_force_levels(s)
    sol = solve(s, method="exact")
    assert want < 1.0 < penalty_j                       # the optimum serves everyone
    assert sol.status == "optimal" and sol.objective == pytest.approx(want, rel=1e-6)
    assert sol.bound <= want * (1 + 1e-9) and sol.objective - sol.bound <= 1e-6 * sol.objective
    assert sol.stats["rescales"] >= 1


def test_an_ordinary_menu_snapshot_is_certified_after_the_incumbent_halves():
    """tiny_snapshot(102, tight_cpu) with a three-level menu: the master's incumbent fell below half
    its objective unit, which stayed put, and exact ended 'feasible' (the gap left was HiGHS's
    tolerance term in the old unit); with the objective rescaled in place it is proven optimal."""
    import warnings

    s = with_menu(tiny_snapshot(102, N=5, M=2, kind="tight_cpu"), 2, levels=3, min_accuracy=0.85)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = brute_force_levels(s)
    sol = solve(s, method="exact")
    assert sol.status == "optimal" and sol.objective == pytest.approx(want, rel=1e-6)
    assert sol.bound <= want * (1 + 1e-9)


@pytest.mark.parametrize("option, value, why", [
    ("milp_cpu", "tangent", "CPU share as found"), ("search_starts", 0, "best decision only"),
    ("exact_max_candidates", 3, "every DT pinned"), ("exact_pairs", 10, "never continues in exact"),
    ("exact_time", 2.0, "never continues in exact"), ("phase_share", 0.3, "never continues in exact"),
    ("reduced_cost_pairs", 5, "bundle's options only"), ("exchange_candidates", 100, "no exchange search"),
    ("exchange_rounds", 5, "no exchange search")])
def test_a_fast_option_the_level_method_does_not_use_is_refused_by_name_and_why(option, value, why):
    """fast with two or more levels read 11 of its 17 options; the others (tangent MILP, search
    starts, the pinned split, the continuation in exact) were silently ignored."""
    with pytest.raises(WdtnoptError, match=f"method 'fast': option {option} does not apply to a snapshot "
                                           f"with a semantic compression menu of two or more levels .*{why}"):
        solve(_menu(), method="fast", **{option: value})


def test_fast_with_levels_honours_its_options_and_accepts_what_it_does_anyway(monkeypatch):
    """milp_gap reaches the restricted-master MILP (it asked HiGHS 1e-4 whatever was set);
    milp_cpu='fixed', exact_pairs=0, extra_options='found', exchange_candidates=0 and exchange_rounds=0
    say what the level method does and are accepted, as are the defaults given explicitly. Every bound stays below the brute force over levels."""
    from wdtnopt.solvers import fast_master

    s = _menu()
    want = brute_force_levels(s)
    asked = []
    real = fast_master.restricted_master_placement

    def spy(*args, **kwargs):
        asked.append(kwargs.get("mip_gap"))
        return real(*args, **kwargs)

    monkeypatch.setattr(fast_master, "restricted_master_placement", spy)
    base = solve(s, method="fast", gap=1e-9, max_iterations=20, primal_every=1)
    assert asked and set(asked) == {2e-3}          # the default milp_gap
    asked.clear()
    sol = solve(s, method="fast", gap=1e-9, max_iterations=20, primal_every=1, milp_gap=0.25)
    assert asked and set(asked) == {0.25}
    for kw in ({"milp_cpu": "fixed", "exact_pairs": 0, "threads": 1, "extra_options": "found"},
               {"search_starts": 3, "exact_time": 9.5, "extra_options": "reduced_cost"},
               {"exchange_candidates": 0, "exchange_rounds": 0}, {"exchange_candidates": 400, "exchange_rounds": 60}):
        again = solve(s, method="fast", gap=1e-9, max_iterations=20, primal_every=1, **kw)
        assert (again.objective, again.bound) == (base.objective, base.bound), kw
    for x in (base, sol):
        assert x.bound <= want * (1 + 1e-9) and x.objective >= want * (1 - 1e-9)


def test_a_one_level_menu_takes_every_fast_option():
    s = tiny_snapshot(500, N=5, M=2)
    one = s.replace(**semantic.menu(s.n_mus, [1.0], [0.0], [1.0]))
    kw = {"search_starts": 0, "milp_cpu": "tangent", "exact_pairs": 0}
    a, b = solve(s, method="fast", **kw), solve(one, method="fast", **kw)
    assert (a.status, a.objective, a.bound) == (b.status, b.objective, b.bound)
    assert np.array_equal(a.placement, b.placement)


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_an_overfull_menu_snapshot_is_infeasible_with_levels_set(method):
    """Every DT pinned (no migration) and its server's storage below their sizes: no decision exists
    (by hand), so both level methods say 'infeasible' with an infinite bound and a level per MU."""
    s = _menu()
    m0 = int(s.placement_prev[0])
    st = np.full(s.n_bss, 10.0 * s.dt_size_bits.sum())
    st[m0] = 0.5 * s.dt_size_bits[s.placement_prev == m0].sum()
    s = s.replace(storage_bits=st, allow_migration=False)
    sol = solve(s, method=method)
    assert sol.status == "infeasible" and sol.bound == np.inf and sol.objective == np.inf
    assert not sol.served.any() and np.array_equal(sol.level, np.zeros(s.n_mus, dtype=np.int64))
