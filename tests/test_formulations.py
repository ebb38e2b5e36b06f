"""Formulations: CVXPY DPP problems and the Pyomo MINLP, checked against the exact oracle."""
from __future__ import annotations

import math

import numpy as np
import pytest

from wdtnopt.testing import paper_snapshot, tiny_snapshot
from wdtnopt.cost import evaluate
from wdtnopt.solvers import solve

cp = pytest.importorskip("cvxpy")


def test_cvxpy_problems_are_dpp_and_reusable() -> None:
    from wdtnopt.formulations.cvxpy_models import (allocation_problem, relaxation_problem, set_allocation_data,
                                                   set_relaxation_data)

    assert allocation_problem(4, 2).problem.is_dpp()
    pp = relaxation_problem(5, 3)
    assert pp.problem.is_dpp()
    # same problem object, new data: re-solves without rebuilding, each value a bound of its snapshot
    for seed in range(3):
        s = tiny_snapshot(seed, N=5, M=3)
        set_relaxation_data(pp, s)
        value = pp.solve()
        assert value <= solve(s).objective * (1 + 1e-6) + 1e-12
    alloc = allocation_problem(3, 2)
    s = tiny_snapshot(5, N=5, M=2)
    set_allocation_data(alloc, s, s.placement_prev, [0, 1, 2])
    assert alloc.problem.is_dpp()


@pytest.mark.parametrize("seed", range(10))
def test_relaxation_is_a_lower_bound(seed: int) -> None:
    s = tiny_snapshot(300 + seed)
    exact = solve(s, method="exact")
    relax = solve(s, method="relaxation")
    if exact.status == "infeasible":
        assert relax.status in ("infeasible", "bound_only")
        return
    assert relax.bound <= exact.objective * (1 + 1e-9) + 1e-12
    assert relax.bound <= exact.bound * (1 + 1e-6) + 1e-12
    if relax.status in ("feasible", "optimal"):
        assert not evaluate(s, relax).violations
        assert relax.objective >= exact.objective * (1 - 1e-9)


def test_relaxation_on_paper_snapshot_is_close() -> None:
    s = paper_snapshot(30, 5, seed=2)
    exact = solve(s)
    relax = solve(s, method="relaxation")
    assert relax.bound <= exact.objective
    assert relax.bound >= 0.9 * exact.objective  # the perspective relaxation is tight here
    assert relax.objective >= exact.objective * (1 - 1e-9)


# -- Pyomo MINLP + SCIP ----------------------------------------------------------------------------
def _scip_available() -> bool:
    try:
        import pyomo.environ  # noqa: F401  (registers the solver plugins)
        from pyomo.contrib.solver.common.factory import SolverFactory
        return bool(SolverFactory("scip_direct").available())
    except Exception:
        return False


def test_pyomo_model_builds_without_a_solver() -> None:
    pyo = pytest.importorskip("pyomo.environ")
    from wdtnopt.formulations.pyomo_minlp import build_model

    s = tiny_snapshot(3, N=5, M=3)
    mdl = build_model(s)
    assert mdl.nvariables() > 0 and mdl.nconstraints() > 0
    assert len(list(mdl.component_data_objects(pyo.Objective))) == 1


def test_pyomo_model_contains_the_exact_optimum() -> None:
    """The oracle's decision, written into the Pyomo model, meets every constraint at the same objective."""
    pyo = pytest.importorskip("pyomo.environ")
    from wdtnopt.formulations.pyomo_minlp import build_model

    s = tiny_snapshot(2, N=6, M=3)
    b = solve(s)
    mdl = build_model(s)
    alpha = s.data_bits * np.log(2) / s.bandwidth
    for n in range(s.n_mus):
        for m in range(s.n_bss):
            if not mdl.x[n, m].fixed:
                mdl.x[n, m].value = float(b.placement[n] == m)
    for (n, m) in mdl.P:
        on = bool(b.served[n] and b.placement[n] == m)
        mdl.w[n, m].value = float(on)
        mdl.t[n, m].value = b.tx_time[n] if on else s.t_min[n]
        mdl.phi[n, m].value = b.cpu_hz[n] / s.cpu_hz[m] if on else 0.0
        mdl.s[n, m].value = s.cycles[n] / b.cpu_hz[n] if on and s.cycles[n] > 0 else 0.0
        mdl.z[n, m].value = mdl.t[n, m].value * math.exp(alpha[n] * float(on) / mdl.t[n, m].value)
        k = s.noise_psd[n] * s.bandwidth[n] / s.serving_gain[n]
        mdl.e[n, m].value = k / mdl.scale * (mdl.z[n, m].value - mdl.t[n, m].value)
    for n in mdl.U:
        mdl.u[n].value = 0.0 if b.served[n] else 1.0
    assert pyo.value(mdl.obj) * mdl.scale + mdl.fixed_cost == pytest.approx(b.objective, rel=1e-9)
    for c in mdl.component_data_objects(pyo.Constraint, active=True):
        body = pyo.value(c.body)
        if c.upper is not None:
            assert body <= pyo.value(c.upper) + 1e-9 * max(1.0, abs(pyo.value(c.upper))), c.name
        if c.lower is not None:
            assert body >= pyo.value(c.lower) - 1e-9 * max(1.0, abs(pyo.value(c.lower))), c.name


@pytest.mark.skipif(not _scip_available(), reason="SCIP (pyscipopt) not installed")
@pytest.mark.parametrize("seed,N,M", [(1, 6, 3), (2, 6, 3), (4, 7, 2), (8, 8, 2), (12, 8, 3)])
def test_exact_equals_scip(seed: int, N: int, M: int) -> None:
    s = tiny_snapshot(seed, N=N, M=M)
    scip = solve(s, method="pyomo", gap=1e-7, time_limit=60)
    exact = solve(s, method="exact")
    assert not evaluate(s, scip).violations
    # both certify, whatever SCIP's status: each objective is within the other's bound
    assert exact.objective <= scip.objective * (1 + 1e-6) + 1e-12
    assert scip.bound <= exact.objective * (1 + 1e-6) + 1e-12
    if scip.status == "optimal":  # only then is SCIP's decision proven within its gap
        assert exact.objective == pytest.approx(scip.objective, rel=1e-6, abs=1e-12)


@pytest.mark.skipif(not _scip_available(), reason="SCIP (pyscipopt) not installed")
def test_pyomo_time_limit_gives_a_status() -> None:
    s = paper_snapshot(20, 5, seed=0)
    sol = solve(s, method="pyomo", time_limit=1.0)
    assert sol.status in ("time_limit", "optimal", "feasible", "bound_only")
    if sol.status != "bound_only":
        assert not evaluate(s, sol).violations
        assert sol.bound <= sol.objective
