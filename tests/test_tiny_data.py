"""Data of 1e-12 bits (the contract allows any data > 0): the allocation's compute-time Newton
(solvers/allocation.py and solvers/fast_dual.py, ``_phi``) took ``t = T - s``, which rounds to 0 at
the power cap when ``t_min`` (~1e-19 s here) is below ``T``'s rounding unit, and divided by it. Run
with warnings as errors: no numpy RuntimeWarning, and the answers against the brute force."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from wdtnopt import Scenario, generate_trace, hindsight_bound, simulate
from wdtnopt.testing import paper_snapshot

from test_solver_properties import brute_force, check_against


def _tiny(seed: int, which: str):
    s = paper_snapshot(4, 2, seed)
    data = np.full(s.n_mus, 1e-12) if which == "all" else s.data_bits.copy()
    if which == "one":
        data[seed % s.n_mus] = 1e-12
    return s.replace(data_bits=data)


@pytest.mark.parametrize("method", ["exact", "fast", "relaxation", "pyomo"])
@pytest.mark.parametrize("seed, which", [(0, "all"), (1, "all"), (2, "one"), (3, "one")])
def test_methods_at_tiny_data_warn_nothing_and_match_the_brute_force(method, seed, which):
    s = _tiny(seed, which)
    optimum = brute_force(s)    # the reference, outside the warnings filter
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_against(s, method, optimum)


@pytest.mark.filterwarnings("error")
def test_policies_and_bounds_at_tiny_data_warn_nothing():
    sc = Scenario.paper(n_mus=6, n_bss=2, data_bits_min=1e-12, data_bits_max=1e-12)
    tr = generate_trace(sc, seed=0, slots=6)
    energies = [simulate(p, tr).energy_per_mu_slot for p in ("static", "follow", "oracle", "lyapunov")]
    for dual in ("columns", "supergradient"):
        hb = hindsight_bound(tr, iters=3, workers=1, dual=dual)
        assert hb.energy_per_mu_slot <= min(energies) * (1 + 1e-9)



# -- data of 1e-300 bits ------------------------------------------------------------------------
# ``alpha = D ln2 / B`` is then about 1e-306: the energy's slope ``k q(u)`` (``q ~ u^2 / 2``) underflows
# to 0, so the allocation's ``log(k q / c)`` was -inf and its derivative 0 / 0 (NaN in the Newton
# steps), at ``t_min`` (~1e-306 s) the derivative overflowed, ``c / f^2`` divided by an underflowed
# ``f^2``, and fast's price bisection multiplied prices of 1e295. Solved by every method but warning
# (and on the crowded snapshot exact ended ``feasible`` with bound 0, fast with bound 2e-309 against
# an optimum of 2.16e-309; with a menu exact's master, in units of its 1e-309 J incumbent, gave -inf).
_OPTIMA: dict = {}


def _at_1e_300(which: str):
    from test_sixg import with_menu
    from test_solver_properties import _crowded
    from wdtnopt.testing import tiny_snapshot

    base = {"paper": lambda: paper_snapshot(6, 2, 1), "crowded": lambda: _crowded(np.random.default_rng(0)),
            "menu": lambda: with_menu(tiny_snapshot(3, N=4, M=2), 1)}[which]()
    s = base.replace(data_bits=np.full(base.n_mus, 1e-300))
    if which not in _OPTIMA:
        from test_sixg import brute_force_levels
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # the reference's own numerics are not under test
            _OPTIMA[which] = brute_force_levels(s) if which == "menu" else brute_force(s)
    return s, _OPTIMA[which]


@pytest.mark.parametrize("which, method", [(w, m) for w in ("paper", "crowded") for m in ("exact", "fast", "relaxation")]
                         + [("menu", "exact"), ("menu", "fast"), ("menu", "relaxation")])
def test_methods_at_1e_300_bits_warn_nothing_and_are_optimal(which, method):
    from wdtnopt.solvers import solve

    s, optimum = _at_1e_300(which)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = solve(s, method=method)
    assert sol.status == "optimal", (sol.status, sol.bound, sol.objective)
    assert sol.bound <= optimum * (1 + 1e-9)
    assert optimum * (1 - 1e-9) <= sol.objective <= optimum * (1 + 1e-6)


@pytest.mark.parametrize("which", ["paper", "crowded", "menu"])
def test_pyomo_at_1e_300_bits_keeps_a_decision_and_an_honest_bound(which):
    """SCIP cannot take the model at 1e-300 bits (its coefficients pass SCIP's infinity; with a menu it
    raised "error in input data" and the result was ``bound_only`` without a decision): the previous
    placement's exact allocation (with a menu, at its best uniform level) is kept, ``feasible``."""
    pytest.importorskip("pyomo")
    pytest.importorskip("pyscipopt")
    from wdtnopt import evaluate
    from wdtnopt.solvers import solve

    s, optimum = _at_1e_300(which)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = solve(s, method="pyomo")
    assert sol.status in ("optimal", "feasible"), sol.stats
    assert not evaluate(s, sol).violations and sol.objective >= optimum * (1 - 1e-9)
    assert sol.bound <= optimum * (1 + 1e-9)
    assert sol.status == "feasible" or sol.objective <= optimum * (1 + 1e-6)


# -- the objective's scale at 1e-300 bits, the whole kind -----------------------------------------
# The relaxation divided ``k`` (W) by its scale, the previous placement's cost of about 1e-309 J
# (subnormal): numpy warned "overflow encountered in divide" (formulations/cvxpy_models.py) on
# paper_snapshot(5, 2, 9), tiny_snapshot(11), loaded_snapshot(8, 3, 19) and others. The brute force
# bisects the CPU price in logs (tests/test_solver_properties.py, ``_log_neg_slope``), so it is the
# optimum at these data too (it was only an upper bound while its slopes underflowed): the methods
# must match it, with a bound below it and below their own cost.
def _kind_at_1e_300():
    from test_solver_properties import _crowded
    from wdtnopt.testing import loaded_snapshot, tiny_snapshot

    cases = [("paper", paper_snapshot(5, 2, i)) for i in (4, 9, 17, 22)]
    cases += [("tiny", tiny_snapshot(i)) for i in (3, 11)]
    cases += [("loaded", loaded_snapshot(8, 3, 19)), ("loaded", loaded_snapshot(6, 2, 2))]
    cases += [("crowded", _crowded(np.random.default_rng(i))) for i in (1, 5)]
    return [(f"{g}-{k}", s.replace(data_bits=np.full(s.n_mus, 1e-300))) for k, (g, s) in enumerate(cases)]


@pytest.mark.parametrize("method", ["exact", "relaxation", "fast"])
def test_scale_at_1e_300_bits_warns_nothing_on_the_whole_kind(method):
    from wdtnopt import evaluate
    from wdtnopt.solvers import solve

    for name, s in _kind_at_1e_300():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # the reference's own numerics are not under test
            reference = brute_force(s)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sol = solve(s, method=method)
        ev = evaluate(s, sol)
        assert not ev.violations, (name, ev.violations)
        assert sol.status == "optimal", (name, sol.status, sol.stats.get("why"))
        assert sol.objective == pytest.approx(ev.objective, rel=1e-12), name
        assert 0.0 <= sol.bound <= sol.objective and sol.bound <= reference * (1 + 1e-9), (name, sol.bound, reference)
        assert reference * (1 - 1e-9) <= sol.objective <= reference * (1 + 1e-6), (name, sol.objective, reference)


def test_relaxation_scale_floor_only_where_a_coefficient_would_overflow():
    """``objective_scale`` keeps the caller's scale on ordinary data (the model unchanged bit for bit)
    and raises a subnormal one at 1e-300 bits to a finite scale with every coefficient <= 1e300."""
    from wdtnopt.formulations.cvxpy_models import COEFFICIENT_MAX, objective_scale, relaxation_data
    from wdtnopt.formulations.coefficients import energy_coefficients

    for seed in range(3):
        s = paper_snapshot(30, 5, seed)
        assert objective_scale(s, 1.7e-3) == 1.7e-3
        assert objective_scale(s) == float(s.failure_penalty[s.request].sum() + s.migration_penalty.sum())
        tiny = s.replace(data_bits=np.full(s.n_mus, 1e-300))
        data, scale = relaxation_data(tiny, 1e-309)
        _, k = energy_coefficients(tiny)
        assert scale == max(1e-309, float(k[np.isfinite(k)].max()) / COEFFICIENT_MAX)
        for name in ("k", "fail_cost", "move_cost"):
            assert np.isfinite(data[name]).all() and data[name].max() <= COEFFICIENT_MAX * (1 + 1e-15), name


# -- the brute force itself at tiny data, and what pyomo proves there --------------------------------
@pytest.mark.parametrize("data_bits", [1e-6, 1e-100, 1e-200, 1e-290, 1e-300])
def test_the_brute_force_server_energy_at_tiny_data_is_the_closed_form(data_bits):
    """Below a few bits ``alpha / t`` is negligible next to 1, so ``E_n(t) = k t (e^{alpha/t} - 1)`` is
    ``k alpha = N0 D ln2 / g`` (to 1e-12 here, whatever the CPU split) as long as every MU transmits
    for much longer than ``alpha``: four MUs crowding one server. The reference's price bisection in J s
    (floored at 1e-300) returned splits at the least CPU of some MUs, whose transmission then takes
    ``t_min`` at full power: 3.7 to 37 times this from 1e-100 bits down."""
    import math

    from test_solver_properties import _crowded, server_energy

    s = _crowded(np.random.default_rng(0))
    s = s.replace(data_bits=np.full(s.n_mus, data_bits))
    served = tuple(range(s.n_mus))
    g = s.gain[np.arange(s.n_mus), s.assoc]
    want = float(np.sum(s.noise_psd * s.data_bits * math.log(2) / g))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the reference's own numerics are not under test
        got = server_energy(s, 0, served)
    assert got == pytest.approx(want, rel=1e-9 if data_bits > 1e-290 else 1e-6)


@pytest.mark.parametrize("data_bits", [1e-3, 1e-12])
@pytest.mark.parametrize("which", ["paper", "tiny"])
def test_pyomo_below_scip_epsilon_claims_nothing_it_cannot_prove(which, data_bits):
    """Below about 1e-2 bits the model's least transmission times and energy exponents are below SCIP's
    epsilon (1e-9): SCIP declared tiny_snapshot(2) infeasible (a decision fits: the previous placement)
    and bounded paper_snapshot(5, 2, 2) at 0.03 J over an optimum of 0.01 J. Its decision is kept
    (exactly re-allocated), its bound and infeasibility are not: the contract's checks against the
    brute force hold. At 1 bit the model is resolved and SCIP's bound is taken as before."""
    pytest.importorskip("pyomo")
    pytest.importorskip("pyscipopt")
    from test_solver_properties import brute_force, check_against
    from wdtnopt.solvers import solve
    from wdtnopt.testing import tiny_snapshot

    base = paper_snapshot(5, 2, 2) if which == "paper" else tiny_snapshot(2, N=4, M=2)
    s = base.replace(data_bits=np.full(base.n_mus, data_bits))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimum = brute_force(s)
        check_against(s, "pyomo", optimum)
        sol = solve(s, method="pyomo")
    assert "solver_bound_untrusted" in sol.stats and sol.status == "feasible" and sol.bound == 0.0
    resolved = base.replace(data_bits=np.full(base.n_mus, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = solve(resolved, method="pyomo")
        optimum = brute_force(resolved)
    assert "solver_bound_untrusted" not in sol.stats and sol.bound <= optimum * (1 + 1e-9)
    assert which == "tiny" or (sol.status == "optimal" and sol.bound > 0.0)   # SCIP proves paper_snapshot(5, 2, 2)
