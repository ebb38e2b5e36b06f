"""``method="relaxation"``: a bound from the continuous relaxation's prices, plus the best of a few roundings.

The relaxation is the CVXPY continuous relaxation of the disaggregated convex MINLP
(formulations/cvxpy_models.py, exponential cones, Clarabel at 1e-10 tolerances, its defaults if
that is inaccurate), scaled by the cost of the previous placement's exact allocation so that the
conic solver's absolute tolerances act relative to the optimum.

The bound is never the conic solver's objective value: a conic optimum is accurate to the solver's
tolerances only, and on badly scaled data (penalties of 1e12 J next to mJ energies) it can be far
off in either direction. Instead the duals of the relaxation's CPU and storage rows are read as
prices ``lam[m]`` (J per cycle/s) and ``pi[m]`` (J per bit) and the Lagrangian dual function
``D(lam, pi)`` is evaluated exactly by solvers/fast_dual.py's certified pricing: weak duality makes
``D`` a lower bound of the snapshot optimum at ANY prices, so inaccurate duals only weaken the
bound. The bound is the larger of ``D`` at those prices and at zero prices (also the fallback when
the conic solver fails, reports an inaccurate or unbounded problem, or gives no duals); at the
relaxation's optimal duals ``D`` is at least the relaxation's optimum.

With a semantic menu (docs/solvers.md, "Semantic levels") the relaxation is
formulations/cvxpy_models.py's ``level_relaxation_problem`` (the DTs' hosting, one serve option per
(MU, level), failures as the DTs' own variables), scaled by the best uniform level's exact
allocation at ``placement_prev``, and ``D`` is priced with the level choice inside each MU's term
(solvers/levels.py, ``LevelPricing``): the same certified bound.

The decision is the cheapest, allocated exactly (solvers/allocation.py), of these placements that
fit the storage: each DT on its largest ``x`` (hosted) value; each requesting DT on its largest ``w``
(served-at) value, the others on their largest ``x``; the best responses at the bound's prices;
and ``placement_prev``. With none fitting, the status is ``bound_only`` (``infeasible`` if the
relaxation itself is infeasible). The status is ``optimal`` only if the rounding meets the bound
within ``gap``.
"""
from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np

from wdtnopt.snapshot import Snapshot

from wdtnopt.formulations.coefficients import allowed_hosts

from . import Solution, SolverError, fail_all_solution, make_solution, relative_gap
from .allocation import PairData, allocate, fits_storage
from .fast_dual import LagrangianData, price
from .options import RelaxationOptions


def solve_relaxation(snapshot: Snapshot, options: RelaxationOptions | None = None, **overrides: Any) -> Solution:
    """Continuous relaxation bound and the best rounding (see module docstring).

    Parameters
    ----------
    snapshot : Snapshot
        The decision point.
    options : RelaxationOptions, optional
        All options at once; ``overrides`` replace single fields (``gap``, ``time_limit`` in s,
        ``solver``, ...).

    Returns
    -------
    Solution
        The best rounding allocated exactly (an admission still searching at ``time_limit`` stops
        with a feasible served set: the decision is feasible, its allocation not proven optimal,
        ``stats["allocation_exact"]`` False), the relaxation's derated bound (0 when the conic
        solver is inaccurate or fails), ``optimal`` only when the recomputed gap is within ``gap``,
        else ``time_limit`` when the conic solver was stopped by ``time_limit`` (one limit for the whole
        solve: the retry with Clarabel's defaults gets only the time left), else ``feasible``.

    Raises
    ------
    SolverError
        Unknown option, cvxpy missing, or ``solver`` not an installed CVXPY solver.

    Notes
    -----
    Certifies the strict problem only; ``solve(snapshot, method="relaxation")`` also certifies the limits
    ``evaluate`` accepts (docs/solvers.md, "The certified entry point").
    """
    t0 = time.perf_counter()
    opts = RelaxationOptions.build(options, overrides)
    gap, time_limit, solver = opts.gap, opts.time_limit, opts.solver
    # the exact allocations (the incumbent, the scale, the rounded placements) stop their admission
    # branch-and-bound at the solve's deadline with a feasible served set: a crowded server's search
    # had run 35 s past a 0.05 s limit (docs/reliability.md, time-limit overshoot)
    deadline = None if time_limit is None else t0 + time_limit
    try:
        import cvxpy as cp
    except ImportError as exc:
        raise SolverError(f"method 'relaxation' needs cvxpy: pip install cvxpy clarabel ({exc})") from None
    if solver.upper() not in cp.installed_solvers():   # a misspelt name is bad input, not a failed solve
        raise SolverError(f"method 'relaxation': solver {solver!r} is not an installed CVXPY solver; "
                          f"installed: {', '.join(cp.installed_solvers())}")
    from wdtnopt.formulations.cvxpy_models import (STORAGE_UNIT_BITS, TIGHT_CLARABEL, relaxation_problem,
                                                   set_relaxation_data)
    from .exact import penalties_capped

    s = snapshot
    N, M = s.n_mus, s.n_bss
    stats: dict[str, Any] = {"solver": solver}
    levels = s.level_ratio is not None
    shift = 0.0
    prev = s.placement_prev
    pd = None if levels else PairData.of(s)
    incumbent = None
    serve = None
    if levels:   # a semantic menu: one serve option per (MU, level); the pricing minimizes over levels
        from wdtnopt.formulations.cvxpy_models import level_relaxation_problem
        from .levels import LevelPricing, reduce_levels
        lp = LevelPricing(s)
        ld, serve = lp.ld, lp.serve
        scale = math.inf   # the best uniform level's exact allocation at the previous placement
        for lv in range(s.n_levels if fits_storage(s, prev) else 0):
            red, const = reduce_levels(s, np.full(N, lv, dtype=np.int64))
            scale = min(scale, allocate(red, prev, deadline=deadline).cost + const)
        # penalties above a known decision's cost priced at it (the same optimum, a valid bound):
        # 1e308 J over a scale of mJ overflowed to infinite coefficients
        capped = penalties_capped(s, scale, stats)
        if not (math.isfinite(scale) and scale > 0):
            scale = float(s.failure_penalty[s.request].sum() + s.migration_penalty.sum()) or 1.0
        pp, lvl, shift = level_relaxation_problem(capped, scale)
    else:
        ld = LagrangianData.of(s, pd)
        # the previous placement's exact allocation: a candidate, and the relaxation's scale (the
        # conic solver's absolute tolerances then act relative to the optimum)
        incumbent = allocate(s, prev, pair_data=pd, deadline=deadline) if fits_storage(s, prev) else None
        scale = incumbent.cost if incumbent is not None else float(s.failure_penalty[s.request].sum()
                                                                   + s.migration_penalty.sum())
        scale = scale if math.isfinite(scale) and scale > 0 else 1.0
        pp = relaxation_problem(N, M)
        capped = penalties_capped(s, incumbent.cost, stats) if incumbent is not None else s   # as above
        set_relaxation_data(pp, capped, scale=scale)

    attempts: list[dict[str, Any]] = [{}]
    clarabel = solver.upper() == "CLARABEL"
    if clarabel:
        attempts = [dict(TIGHT_CLARABEL), {}]  # tight first; Clarabel's defaults if that is inaccurate
    status = None
    stats["conic_attempts"] = 0
    for kwargs in attempts:
        if clarabel and time_limit is not None:   # the time left of the solve's limit, not a new one
            left = time_limit - (time.perf_counter() - t0)
            if left <= 0 and stats["conic_attempts"]:
                break
            kwargs["time_limit"] = max(left, 1e-9)
        stats["conic_attempts"] += 1
        try:
            with warnings.catch_warnings():  # "inaccurate" is read from the status below
                warnings.simplefilter("ignore", UserWarning)
                pp.problem.solve(solver=solver, **kwargs)
        except (cp.error.SolverError, ValueError) as exc:  # a numerical failure (ValueError: data
            # CVXPY will not pass on, e.g. c / cpu_hz overflowing at cpu_hz = 1e-300): the trivial prices
            status = f"solver failed: {exc}".splitlines()[0]
            continue
        status = pp.problem.status
        if status in (cp.OPTIMAL, cp.INFEASIBLE, cp.USER_LIMIT):   # a retry would start the limit over
            break
    stats["conic_status"] = status
    value = pp.problem.value if status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) else None
    stats["relaxation_value"] = (float(value) - shift) * pp.scale if value is not None else None
    rounded = [prev.copy()]
    # the bound: the Lagrangian dual function at the relaxation's CPU and storage prices, priced
    # exactly (solvers/fast_dual.py, a certified value at ANY prices; with a menu the level choice is
    # a min inside each MU's term), so the conic solver's tolerances never enter it; without duals
    # (failure, infeasible) the prices are 0
    lam, pi = np.zeros(M), np.zeros(M)
    dual = price(ld, lam, pi, serve=serve)
    cpu_dual, sto_dual = pp.constraints["cpu"].dual_value, pp.constraints["storage"].dual_value
    if value is not None and cpu_dual is not None and sto_dual is not None:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):   # (a dual over 1e-50 Hz: inf, priced 0)
            lam = np.where(s.cpu_hz > 0, np.asarray(cpu_dual, dtype=float) * pp.scale / s.cpu_hz, 0.0)
        pi = np.asarray(sto_dual, dtype=float) * pp.scale / STORAGE_UNIT_BITS
        lam = np.where(np.isfinite(lam), np.maximum(lam, 0.0), 0.0)
        pi = np.where(np.isfinite(pi), np.maximum(pi, 0.0), 0.0)
        at_duals = price(ld, lam, pi, serve=serve)
        if at_duals.value > dual.value:
            dual = at_duals
    bound = max(dual.value, 0.0)  # every cost is >= 0
    stats["dual_prices"] = {"cpu_j_per_hz": dual.lam.tolist(), "storage_j_per_bit": dual.pi.tolist()}
    rounded.append(dual.host)

    candidates = [] if incumbent is None else [incumbent]
    x = pp.vars["x"].value if status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) else None
    w = pp.vars["w"].value if x is not None else None
    if x is not None and levels:   # a DT's serving summed over its levels
        w = w.reshape(N, -1, M).sum(axis=1)
    if x is not None and np.isfinite(x).all() and np.isfinite(w).all():
        px = np.argmax(x, axis=1)
        pw = px.copy()
        req = s.request & ~s.migrating
        has_w = req & (w.max(axis=1) > 1e-6)
        pw[has_w] = np.argmax(w[has_w], axis=1)
        rounded = [px, pw] + rounded
    hosts = allowed_hosts(s)
    for pl in rounded:
        pl = np.where(hosts[np.arange(N), pl], pl, prev)  # pinned DTs, and none onto a down server
        if fits_storage(s, pl):
            candidates.append(allocate(s, pl, pair_data=pd, deadline=deadline))   # pd None with a menu
    if not candidates:
        st = "infeasible" if status == cp.INFEASIBLE else "bound_only"
        return fail_all_solution(s, bound=math.inf if st == "infeasible" else bound, status=st,
                                 method="relaxation", started=t0, stats=stats)
    best = min(candidates, key=lambda a: a.cost)
    stats["allocation_exact"] = bool(best.exact)
    timed_out = status == cp.USER_LIMIT or (time_limit is not None and time.perf_counter() - t0 >= time_limit)
    st = "optimal" if relative_gap(best.cost, bound) <= gap else ("time_limit" if timed_out else "feasible")
    return make_solution(s, best.placement, best.served, best.tx_time, best.cpu_hz, bound=bound, status=st,
                         method="relaxation", started=t0, stats=stats, gap=gap, level=best.level)
