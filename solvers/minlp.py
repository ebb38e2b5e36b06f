"""``method="pyomo"``: the Pyomo MINLP of formulations/pyomo_minlp.py handed to a Pyomo solver.

The default solver is SCIP through Pyomo's ``scip_direct`` interface (``pyomo.contrib.solver``, which
drives pyscipopt in process; no SCIP executable is needed). Any other name is looked up in
``pyomo.contrib.solver``'s factory first and in the classic ``pyomo.environ.SolverFactory`` second.

SCIP's primal solution meets the constraints only to its tolerances (1e-6 absolute), so the returned
decision keeps SCIP's placement and served set and re-solves the convex allocation of that served
set exactly (``allocate(..., served=...)``): never worse, and it passes ``evaluate``. If that served set
does not fit (SCIP's round-off), the placement is kept and admission is re-solved exactly. The
bound is SCIP's dual bound (scaled back to J).
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from wdtnopt.snapshot import Snapshot

from . import Solution, SolverError, make_solution
from .allocation import allocate

SCIP_NO_MULTAGGR = True


def _contrib_solver(name: str) -> Any:
    try:
        from pyomo.contrib.solver.common.factory import SolverFactory
    except ImportError:  # pragma: no cover - very old Pyomo
        return None
    try:
        return SolverFactory(name)
    except Exception:
        return None


def solve_pyomo(snapshot: Snapshot, *, gap: float = 1e-6, time_limit: float | None = None, threads: int = 1,
                solver: str = "scip_direct", tee: bool = False) -> Solution:
    """Solve the Pyomo MINLP with ``solver`` (SCIP via pyscipopt by default)."""
    t0 = time.perf_counter()
    try:
        import pyomo.environ as pyo  # noqa: F401
    except ImportError as exc:
        raise SolverError(f"method 'pyomo' needs Pyomo: pip install pyomo ({exc})") from None
    from wdtnopt.formulations.pyomo_minlp import build_level_model, build_model, read_decision

    s = snapshot
    prev = s.placement_prev
    fits = bool((np.bincount(prev, weights=s.dt_size_bits, minlength=s.n_bss) <= s.storage_bits * (1 + 1e-12)).all())
    levels = s.level_ratio is not None
    if levels:   # a semantic menu: the MINLP of the virtual (MU, level) copies (solvers/levels.py)
        mdl, group, lvl = build_level_model(s)
    else:
        mdl = build_model(s)
    opt = _contrib_solver(solver)
    if opt is not None:
        avail = opt.available()
        if not avail:
            raise SolverError(f"Pyomo solver {solver!r} is not available ({avail}); for SCIP: pip install pyscipopt")
        opts: dict[str, Any] = {"rel_gap": gap, "load_solutions": False, "raise_exception_on_nonoptimal_result": False,
                                "tee": tee, "threads": threads}
        if time_limit is not None:
            opts["time_limit"] = float(time_limit)
        if solver.startswith("scip"):
            # SCIP 9/10's perspective handler fails ("cannot change bounds of multi-aggregated
            # variable") on some of these models; forbidding multi-aggregation avoids it.
            opts["solver_options"] = {"presolving/donotmultaggr": True} if SCIP_NO_MULTAGGR else {}
        try:
            res = opt.solve(mdl, **opts)
        except Exception as exc:  # the solver itself failed: a status, not a crash
            raise SolverError(f"Pyomo solver {solver!r} failed: {exc}") from None
        tc = str(res.termination_condition).split(".")[-1]
        has_sol = str(res.solution_status).split(".")[-1] in ("feasible", "optimal")
        if has_sol:
            res.solution_loader.load_vars()
        bound = res.objective_bound
        bound = -math.inf if bound is None else float(bound) * mdl.scale
    else:
        legacy = pyo.SolverFactory(solver)
        if legacy is None or not legacy.available(exception_flag=False):
            raise SolverError(f"Pyomo solver {solver!r} is not available; for SCIP: pip install pyscipopt")
        legacy.options["limits/gap"] = gap
        if time_limit is not None:
            legacy.options["limits/time"] = float(time_limit)
        r = legacy.solve(mdl, tee=tee, load_solutions=False)
        tc = str(r.solver.termination_condition)
        has_sol = len(r.solution) > 0
        if has_sol:
            mdl.solutions.load_from(r)
        lb = getattr(r.problem, "lower_bound", None)
        bound = float(lb) * mdl.scale if lb is not None and math.isfinite(float(lb)) else -math.inf
    stats = {"termination": tc, "solver": solver}
    if levels:
        return _finish_levels(s, mdl, group, lvl, tc, has_sol, bound, fits, t0, stats)
    if "infeasible" in tc.lower() and not "unbounded" in tc.lower():
        return make_solution(s, prev, np.zeros(s.n_mus, bool), np.zeros(s.n_mus), np.zeros(s.n_mus), bound=math.inf,
                             status="infeasible", method="pyomo", started=t0, stats=stats)
    if not has_sol:
        status = "bound_only"
        return make_solution(s, prev, np.zeros(s.n_mus, bool), np.zeros(s.n_mus), np.zeros(s.n_mus), bound=bound,
                             status=status, method="pyomo", started=t0, stats=stats)
    d = read_decision(mdl, s)
    placement = d["placement"]
    if not (np.bincount(placement, weights=s.dt_size_bits, minlength=s.n_bss) <= s.storage_bits * (1 + 1e-9)).all():
        if not fits:
            return make_solution(s, prev, np.zeros(s.n_mus, bool), np.zeros(s.n_mus), np.zeros(s.n_mus), bound=bound,
                                 status="bound_only", method="pyomo", started=t0, stats=stats)
        placement = prev.copy()
        stats["placement_repaired"] = True
    a = allocate(s, placement, served=d["served"])
    if not math.isfinite(a.cost):
        a = allocate(s, placement)
        stats["admission_repaired"] = True
    optimal = tc.lower() in ("convergencecriteriasatisfied", "optimal")
    status = "optimal" if optimal else ("time_limit" if "time" in tc.lower() else "feasible")
    return make_solution(s, a.placement, a.served, a.tx_time, a.cpu_hz, bound=bound, status=status, method="pyomo",
                         started=t0, stats=stats)


def _finish_levels(s: Snapshot, mdl: Any, group: np.ndarray, lvl: np.ndarray, tc: str, has_sol: bool, bound: float,
                   fits: bool, t0: float, stats: dict[str, Any]) -> Solution:
    """The Solution of the level model: SCIP's placement, served MUs and levels, re-allocated exactly
    on the reduced snapshot of those levels (solvers/levels.py)."""
    from wdtnopt.formulations.pyomo_minlp import read_decision
    from .levels import expand, reduce_levels

    n = s.n_mus
    zeros, none = np.zeros(n), np.zeros(n, dtype=bool)
    level = np.zeros(n, dtype=np.int64)
    if "infeasible" in tc.lower() and "unbounded" not in tc.lower():
        return make_solution(s, s.placement_prev, none, zeros, zeros, bound=math.inf, status="infeasible",
                             method="pyomo", started=t0, stats=stats, level=level)
    if not has_sol:
        return make_solution(s, s.placement_prev, none, zeros, zeros, bound=bound, status="bound_only",
                             method="pyomo", started=t0, stats=stats, level=level)
    d = read_decision(mdl, expand(s)[0])
    placement = d["placement"][lvl == 0]
    served = np.zeros(n, dtype=bool)
    served[group[d["served"]]] = True
    level[group[d["served"]]] = lvl[d["served"]]
    if not (np.bincount(placement, weights=s.dt_size_bits, minlength=s.n_bss) <= s.storage_bits * (1 + 1e-9)).all():
        if not fits:
            return make_solution(s, s.placement_prev, none, zeros, zeros, bound=bound, status="bound_only",
                                 method="pyomo", started=t0, stats=stats, level=level)
        placement = s.placement_prev.copy()
        stats["placement_repaired"] = True
    red, _ = reduce_levels(s, level)
    a = allocate(red, placement, served=served)
    if not math.isfinite(a.cost):
        a = allocate(red, placement)
        stats["admission_repaired"] = True
    optimal = tc.lower() in ("convergencecriteriasatisfied", "optimal")
    status = "optimal" if optimal else ("time_limit" if "time" in tc.lower() else "feasible")
    return make_solution(s, a.placement, a.served, a.tx_time, a.cpu_hz, bound=bound, status=status, method="pyomo",
                         started=t0, stats=stats, level=level)
