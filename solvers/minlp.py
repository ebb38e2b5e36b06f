"""``method="pyomo"``: the Pyomo MINLP of formulations/pyomo_minlp.py handed to a Pyomo solver.

The default solver is SCIP through Pyomo's ``scip_direct`` interface (``pyomo.contrib.solver``, which
drives pyscipopt in process; no SCIP executable is needed). Any other name is looked up in
``pyomo.contrib.solver``'s factory first and in the classic ``pyomo.environ.SolverFactory`` second.

SCIP's primal solution meets the constraints only to its tolerances (1e-6 absolute), so the returned
decision keeps SCIP's placement and served set and re-solves the convex allocation of that served
set exactly (``allocate(..., served=...)``): never worse, and it passes ``evaluate``. If that served set
does not fit (SCIP's round-off), the placement is kept and admission is re-solved exactly; the
previous placement's exact allocation is kept if it is cheaper. The model's scale is that
incumbent's cost, so SCIP's gap and feasibility tolerance (its default ``numerics/feastol`` 1e-6)
act relative to the optimum; the failure and energy terms have their own variables, so the objective is never a
small difference of large penalties (docs/solvers.md). The bound is SCIP's dual bound scaled back
to J (SCIP's tolerances relax the problem, so they only lower it); the status is ``optimal`` only
when the recomputed gap is within ``gap``.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np


from wdtnopt.snapshot import Snapshot

from . import Solution, SolverError, fail_all_solution, make_solution, relative_gap
from .allocation import allocate, fits_storage
from .exact import penalties_capped
from .options import PyomoOptions

SOLVER_EPSILON = 1e-9
"""SCIP's ``numerics/epsilon``: values below it are zero to SCIP. A model whose servable (MU, server)
pairs have a least transmission time ``t_min`` (s) or an energy exponent ``alpha = D ln2 / B`` (s)
below it (data below about 1e-2 bits) is not resolved: there SCIP's dual bound was up to 3 times the
optimum and it declared snapshots infeasible that a decision fits (docs/solvers.md, "What pyomo
proves at tiny data"), so its bound and infeasibility are not taken (:func:`below_solver_epsilon`)."""
NO_TIME_LIMIT_ABOVE_S = 1e20
PYOMO_MAX_LEVELS = 16
"""The largest semantic menu (levels L) the pyomo path models: on a menu of 64 levels (10 x 3,
semantic_ratio_min 1e-3; 1,920 serve pairs) SCIP 10.0 (pyscipopt 6.3) corrupted its heap at the root
node ("munmap_chunk(): invalid pointer", "malloc assertion failure") and killed the Python process
with SIGABRT or hung past its time limit, also on the model read from an .nl file without Pyomo and
with the rens/alns heuristics off (docs/solvers.md, "Large menus"); larger menus are refused."""


def below_solver_epsilon(s: Snapshot) -> bool:
    """True when a servable pair of ``s`` (with a menu: of any level) has ``t_min`` or ``alpha`` below
    :data:`SOLVER_EPSILON` (seconds): SCIP's model of it is not resolved."""
    from .allocation import PairData

    if s.level_ratio is not None:
        from .levels import expand
        s = expand(s)[0]
    pd = PairData.of(s)
    small = np.minimum(pd.t_min, pd.alpha) < SOLVER_EPSILON
    return bool((pd.servable & small[:, None]).any())
"""A ``time_limit`` above this (s; ``inf`` included) is no limit: SCIP refuses ``limits/time`` above
1e20 and left the model unsolved."""


def _contrib_solver(name: str) -> Any:
    try:
        from pyomo.contrib.solver.common.factory import SolverFactory
    except ImportError:  # pragma: no cover - very old Pyomo
        return None
    try:
        opt = SolverFactory(name)
    except Exception:
        return None
    return _released_gil(opt)


class _NoGilModel:
    """A pyscipopt model whose ``optimize`` releases the GIL (``optimizeNogil``); all else delegated."""

    def __init__(self, model: Any):
        self._model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def optimize(self) -> None:
        self._model.optimizeNogil()


def _released_gil(opt: Any) -> Any:
    """``opt`` (Pyomo's SCIP direct interface) made to run SCIP with the GIL released.

    Pyomo captures SCIP's output through a pipe whose reader is a Python thread; pyscipopt's
    ``optimize`` holds the GIL for the whole solve, so once SCIP has written a pipe's worth
    (64 KiB: e.g. SoPlex's "Cannot set feasibility tolerance" warnings, thousands of them on a snapshot
    with deadlines of 1e9 s) the write blocks and the solve never returns, whatever its time limit.
    With the GIL released the reader drains the pipe. Other solvers, and Pyomo versions without
    the model-building hook, are returned unchanged.
    """
    cls = type(opt)
    if not callable(getattr(cls, "_create_solver_model", None)) or "scip" not in cls.__name__.lower():
        return opt

    class ScipReleasingGil(cls):   # type: ignore[misc, valid-type]
        def _create_solver_model(self, *args: Any, **kwargs: Any) -> Any:
            model, *rest = super()._create_solver_model(*args, **kwargs)
            return (_NoGilModel(model) if hasattr(model, "optimizeNogil") else model, *rest)

    try:
        return ScipReleasingGil()
    except Exception:   # pragma: no cover - a constructor that needs arguments
        return opt


def solve_pyomo(snapshot: Snapshot, options: PyomoOptions | None = None, **overrides: Any) -> Solution:
    """Solve the Pyomo MINLP with ``options.solver`` (SCIP via pyscipopt by default).

    Parameters
    ----------
    snapshot : Snapshot
        The decision point.
    options : PyomoOptions, optional
        All options at once; ``overrides`` replace single fields (``gap``, ``time_limit`` in s,
        ``threads``, ``verbose`` (the solver's log), ``solver``, ...).

    Returns
    -------
    Solution
        The solver's placement and served set, re-allocated exactly; ``bound`` the solver's dual
        bound (J); ``optimal`` only when the recomputed gap is within ``gap``.

    Raises
    ------
    SolverError
        Unknown option, Pyomo or the solver missing, the solver itself failing, or a semantic menu of
        more than :data:`PYOMO_MAX_LEVELS` levels (SCIP crashed the process on one).

    Notes
    -----
    Certifies the strict problem only; ``solve(snapshot, method="pyomo")`` also certifies the limits
    ``evaluate`` accepts (docs/solvers.md, "The certified entry point").
    """
    t0 = time.perf_counter()
    opts = PyomoOptions.build(options, overrides)
    gap, time_limit, solver = opts.gap, opts.time_limit, opts.solver
    if time_limit is not None and time_limit > NO_TIME_LIMIT_ABOVE_S:   # inf: SCIP refuses the value
        time_limit = None
    try:
        import pyomo.environ as pyo  # noqa: F401
    except ImportError as exc:
        raise SolverError(f"method 'pyomo' needs Pyomo: pip install pyomo ({exc})") from None
    from wdtnopt.formulations.pyomo_minlp import build_level_model, build_model, read_decision

    s = snapshot
    if s.level_ratio is not None and s.n_levels > PYOMO_MAX_LEVELS:   # SCIP crashed the process on them
        raise SolverError(f"method 'pyomo': a semantic menu of {s.n_levels} levels is above the {PYOMO_MAX_LEVELS} it "
                          "models (SCIP aborted the process on a 64-level menu; docs/solvers.md, \"Large menus\"); "
                          "use method='exact' or 'fast' (certified bounds on any menu)")
    prev = s.placement_prev
    stats: dict[str, Any] = {"solver": solver}
    fits = fits_storage(s, prev)
    levels = s.level_ratio is not None
    # the exact allocations around SCIP (the incumbent and scale, a repaired admission) stop their
    # admission branch-and-bound at the solve's deadline with a feasible served set; SCIP gets the
    # time left (a crowded 60 x 5 snapshot ran 12 s on a 0.5 s limit: docs/reliability.md)
    deadline = None if time_limit is None else t0 + float(time_limit)

    def out(a, bound: float, status: str) -> Solution:
        return make_solution(s, a.placement, a.served, a.tx_time, a.cpu_hz, bound=bound, status=status,
                             method="pyomo", started=t0, stats=stats, gap=gap)

    incumbent = None
    if levels:   # a semantic menu: one serve option per (MU, level) (formulations/pyomo_minlp.py), scaled
        # by the best uniform level's exact allocation at the current placement (as below)
        from .levels import reduce_levels
        scale = math.inf
        for lv in range(s.n_levels if fits else 0):
            red, const = reduce_levels(s, np.full(s.n_mus, lv, dtype=np.int64))
            scale = min(scale, allocate(red, prev, deadline=deadline).cost + const)
        capped = s
        if math.isfinite(scale) and scale > 0:   # a decision's cost: failure prices capped at it
            capped = penalties_capped(s, scale, stats)
        else:
            scale = float(s.failure_penalty[s.request].sum() + s.migration_penalty.sum()) or 1.0
        mdl, group, lvl = build_level_model(capped, scale=scale)
        fixed_cost = mdl.fixed_cost
    else:
        # the incumbent at the current placement sets the model's scale (the solver's tolerances
        # act relative to it); an incumbent of cost 0 is optimal (every cost is >= 0)
        incumbent = allocate(s, prev, deadline=deadline) if fits else None
        if incumbent is not None and incumbent.cost == 0.0:
            return out(incumbent, 0.0, "optimal")
        scale = incumbent.cost if incumbent is not None else float(s.failure_penalty[s.request].sum()
                                                                   + s.migration_penalty.sum())
        scale = scale if math.isfinite(scale) and scale > 0 else 1.0
        capped = penalties_capped(s, incumbent.cost, stats) if incumbent is not None else s
        mdl = build_model(capped, scale=scale)
        fixed_cost = mdl.fixed_cost
    stats["scale"] = scale
    opt = _contrib_solver(solver)
    if opt is not None:
        avail = opt.available()
        if not avail:
            raise SolverError(f"Pyomo solver {solver!r} is not available ({avail}); for SCIP: pip install pyscipopt")
        kw: dict[str, Any] = {"rel_gap": gap / 4, "load_solutions": False, "raise_exception_on_nonoptimal_result": False,
                              "tee": opts.verbose, "threads": opts.threads}
        if deadline is not None:   # the time left, at least 10 ms
            kw["time_limit"] = max(deadline - time.perf_counter(), 0.01)
        if solver.startswith("scip"):
            # SCIP 9/10's perspective handler fails ("cannot change bounds of multi-aggregated
            # variable") on some of these models; forbidding multi-aggregation avoids it.
            # verblevel 0: SCIP's messages go through Pyomo's in-process capture, whose reader thread
            # needs the GIL that pyscipopt holds during the solve; a chatty solve filled the pipe and
            # deadlocked (seen with feastol 1e-9 on badly scaled data, so SCIP keeps its default 1e-6)
            so: dict[str, Any] = {"limits/absgap": 0.0, "display/verblevel": 4 if opts.verbose else 0}
            if opts.scip_no_multiaggr:
                so["presolving/donotmultaggr"] = True
            kw["solver_options"] = so
        try:
            res = opt.solve(mdl, **kw)
        except Exception as exc:  # the solver itself failed (numerics): a status, not a crash
            stats["solver_failed"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            if levels:   # the previous placement at its best uniform level, if it fits
                return _finish_levels(s, mdl, group, lvl, "solver_failed", False, 0.0, fits, t0, stats, gap,
                                      deadline)
            if incumbent is None:
                return fail_all_solution(s, bound=0.0, status="bound_only", method="pyomo", started=t0, stats=stats)
            return out(incumbent, 0.0, "feasible")
        tc = str(res.termination_condition).split(".")[-1]
        has_sol = str(res.solution_status).split(".")[-1] in ("feasible", "optimal")
        if has_sol:
            res.solution_loader.load_vars()
        bound = res.objective_bound
    else:
        import io

        from pyomo.common.log import LoggingIntercept
        with LoggingIntercept(io.StringIO(), "pyomo"):   # an unknown name is our one-line error, not Pyomo's traceback
            legacy = pyo.SolverFactory(solver)
        if legacy is None or not legacy.available(exception_flag=False):
            raise SolverError(f"Pyomo solver {solver!r} is not available; for SCIP: pip install pyscipopt")
        legacy.options["limits/gap"] = gap / 4
        if deadline is not None:
            legacy.options["limits/time"] = max(deadline - time.perf_counter(), 0.01)
        r = legacy.solve(mdl, tee=opts.verbose, load_solutions=False)
        tc = str(r.solver.termination_condition)
        has_sol = len(r.solution) > 0
        if has_sol:
            mdl.solutions.load_from(r)
        bound = getattr(r.problem, "lower_bound", None)
    bound = float(bound) if bound is not None and math.isfinite(float(bound)) else -math.inf
    # the model's objective leaves out the requests nobody can serve; every cost is >= 0
    bound = max(bound * scale + fixed_cost, 0.0) if bound > -math.inf else 0.0
    stats["termination"] = tc
    if below_solver_epsilon(s):   # SCIP's proofs do not hold there: its decision is kept, its bound is not
        stats["solver_bound_untrusted"] = (f"a servable pair's t_min or alpha is below SCIP's epsilon "
                                           f"({SOLVER_EPSILON:g} s); SCIP's bound {bound!r} J and {tc} not taken")
        bound = 0.0
        if "infeasible" in tc.lower():
            tc = "infeasible_not_proven"
    if "infeasible" in tc.lower() and "unbounded" not in tc.lower() and "not_proven" not in tc.lower() and fits:
        # the previous placement fits the storage, so failing every request is a decision: SCIP is wrong
        stats["infeasible_rejected"] = tc
        tc = "infeasible_not_proven"
        bound = 0.0
    if levels:
        return _finish_levels(s, mdl, group, lvl, tc, has_sol, bound, fits, t0, stats, gap, deadline)
    if "infeasible" in tc.lower() and "unbounded" not in tc.lower() and "not_proven" not in tc.lower():
        return fail_all_solution(s, bound=math.inf, status="infeasible", method="pyomo", started=t0, stats=stats)
    candidates = [] if incumbent is None else [incumbent]
    if has_sol:
        d = read_decision(mdl, s)
        placement = d["placement"]
        if fits_storage(s, placement):
            a = allocate(s, placement, served=d["served"])
            if not math.isfinite(a.cost):  # the solver's served set does not fit exactly: re-admit
                a = allocate(s, placement, deadline=deadline)
                stats["admission_repaired"] = True
            candidates.append(a)
        else:
            stats["placement_rejected"] = "storage"
    if not candidates:
        return fail_all_solution(s, bound=bound, status="bound_only", method="pyomo", started=t0, stats=stats)
    best = min(candidates, key=lambda a: a.cost)
    return out(best, bound, _status(tc, best, bound, gap, stats))


def _status(tc: str, a: Any, bound: float, gap: float, stats: dict[str, Any]) -> str:
    """SCIP's termination as a status of the decision ``a`` re-allocated exactly: ``time_limit`` also
    where an admission of ``a`` stopped at the deadline with the gap still open (SCIP's ``optimal``
    speaks of its own decision, not of one cut short; make_solution rechecks ``optimal``)."""
    stats["allocation_exact"] = bool(a.exact)
    optimal = tc.lower() in ("convergencecriteriasatisfied", "optimal")
    if not a.exact and relative_gap(a.cost, bound) > gap:
        return "time_limit"
    return "optimal" if optimal else ("time_limit" if "time" in tc.lower() else "feasible")


def _finish_levels(s: Snapshot, mdl: Any, group: np.ndarray, lvl: np.ndarray, tc: str, has_sol: bool, bound: float,
                   fits: bool, t0: float, stats: dict[str, Any], gap: float, deadline: float | None = None) -> Solution:
    """The Solution of the level model: SCIP's placement, served MUs and levels, re-allocated exactly
    on the reduced snapshot of those levels (solvers/levels.py); admissions stop at ``deadline``."""
    from wdtnopt.formulations.pyomo_minlp import read_level_decision
    from .levels import reduce_levels

    n = s.n_mus
    zeros, none = np.zeros(n), np.zeros(n, dtype=bool)
    level = np.zeros(n, dtype=np.int64)
    if "infeasible" in tc.lower() and "unbounded" not in tc.lower() and "not_proven" not in tc.lower():
        return make_solution(s, s.placement_prev, none, zeros, zeros, bound=math.inf, status="infeasible",
                             method="pyomo", started=t0, stats=stats, level=level)
    if not has_sol:
        if fits:   # no solution from the solver: the previous placement at the best uniform level
            a, lv = min(((allocate(reduce_levels(s, np.full(n, lv, dtype=np.int64))[0], s.placement_prev,
                                   deadline=deadline), lv)
                         for lv in range(s.n_levels)), key=lambda al: al[0].cost)
            stats["no_solver_solution"] = True
            return make_solution(s, a.placement, a.served, a.tx_time, a.cpu_hz, bound=bound,
                                 status="time_limit" if "time" in tc.lower() else "feasible", method="pyomo",
                                 started=t0, stats=stats, level=np.where(a.served, lv, 0), gap=gap)
        return make_solution(s, s.placement_prev, none, zeros, zeros, bound=bound, status="bound_only",
                             method="pyomo", started=t0, stats=stats, level=level)
    d = read_level_decision(mdl, s, group, lvl)
    placement, served, level = d["placement"], d["served"], d["level"]
    if not fits_storage(s, placement):
        if not fits:
            return make_solution(s, s.placement_prev, none, zeros, zeros, bound=bound, status="bound_only",
                                 method="pyomo", started=t0, stats=stats, level=level)
        placement = s.placement_prev.copy()
        stats["placement_repaired"] = True
    red, _ = reduce_levels(s, level)
    a = allocate(red, placement, served=served)
    if not math.isfinite(a.cost):
        a = allocate(red, placement, deadline=deadline)
        stats["admission_repaired"] = True
    status = _status(tc, a, bound, gap, stats)
    return make_solution(s, a.placement, a.served, a.tx_time, a.cpu_hz, bound=bound, status=status, method="pyomo",
                         started=t0, stats=stats, level=level, gap=gap)
