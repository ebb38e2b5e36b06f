"""``method="relaxation"``: the continuous relaxation's bound, plus the best of a few roundings.

The bound is the optimum of the CVXPY continuous relaxation of the disaggregated convex MINLP
(formulations/cvxpy_models.py, exponential cones, Clarabel at 1e-10 tolerances). A conic solver's
optimum is accurate to its tolerances only, so the reported bound is derated by ``BOUND_SAFETY``
(relative) to stay below the true relaxation optimum; it is a valid lower bound of the snapshot
optimum in that sense (the exact oracle's bound comes from HiGHS at 1e-9 tolerances instead). When
Clarabel reports only an inaccurate optimum (also at its default tolerances) the bound is 0.

The decision is the cheapest, allocated exactly (solvers/allocation.py), of these placements that
fit the storage: each DT on its largest ``x`` (hosted) value; each requesting DT on its largest ``w``
(served-at) value, the others on their largest ``x``; and ``placement_prev``. With none fitting,
the status is ``bound_only``; an infeasible relaxation gives ``infeasible``. The status is ``optimal``
only if the rounding meets the bound within ``gap``.
"""
from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np

from wdtnopt.snapshot import Snapshot

from . import Solution, SolverError, make_solution, relative_gap
from .allocation import PairData, allocate

BOUND_SAFETY = 1e-7
"""Relative margin taken off the conic solver's optimum so that the bound stays valid."""


def solve_relaxation(snapshot: Snapshot, *, gap: float = 1e-6, time_limit: float | None = None, threads: int = 1,
                     solver: str = "CLARABEL") -> Solution:
    """Continuous relaxation bound and the best rounding (see module docstring)."""
    t0 = time.perf_counter()
    try:
        import cvxpy as cp
    except ImportError as exc:
        raise SolverError(f"method 'relaxation' needs cvxpy: pip install cvxpy clarabel ({exc})") from None
    from wdtnopt.formulations.cvxpy_models import relaxation_problem, set_relaxation_data

    s = snapshot
    N, M = s.n_mus, s.n_bss
    stats: dict[str, Any] = {"solver": solver}
    fail_all = np.zeros(N, dtype=bool)
    levels = s.level_ratio is not None
    shift = 0.0
    if levels:   # a semantic menu: the relaxation of the virtual (MU, level) copies, tied
        from wdtnopt.formulations.cvxpy_models import level_relaxation_problem
        pp, lvl, shift = level_relaxation_problem(s)
    else:
        pp = relaxation_problem(N, M)
        set_relaxation_data(pp, s)
    from wdtnopt.formulations.cvxpy_models import TIGHT_CLARABEL

    attempts: list[dict[str, Any]] = [{}]
    if solver.upper() == "CLARABEL":
        attempts = [dict(TIGHT_CLARABEL), {}]  # tight first; Clarabel's defaults if that is inaccurate
        if time_limit is not None:
            for a in attempts:
                a["time_limit"] = float(time_limit)
    status = None
    for kwargs in attempts:
        try:
            with warnings.catch_warnings():  # "inaccurate" is read from the status below
                warnings.simplefilter("ignore", UserWarning)
                pp.problem.solve(solver=solver, **kwargs)
        except cp.error.SolverError as exc:
            raise SolverError(f"conic solver {solver!r} failed on the relaxation: {exc}") from None
        status = pp.problem.status
        if status in (cp.OPTIMAL, cp.INFEASIBLE):
            break
    stats["conic_status"] = status
    if status == cp.INFEASIBLE:
        return make_solution(s, s.placement_prev, fail_all, np.zeros(N), np.zeros(N), bound=math.inf,
                             status="infeasible", method="relaxation", started=t0, stats=stats)
    if status == cp.OPTIMAL:
        value = (float(pp.problem.value) - shift) * pp.scale
        bound = value - abs(value) * BOUND_SAFETY
    else:  # an inaccurate optimum certifies nothing: fall back to the trivial bound
        bound = 0.0
    bound = max(bound, 0.0) if math.isfinite(bound) else bound  # every cost is >= 0
    stats["relaxation_value"] = (float(pp.problem.value) - shift) * pp.scale if pp.problem.value is not None else None

    pd = None if levels else PairData.of(s)
    candidates = [s.placement_prev.copy()]
    x = pp.vars["x"].value
    w = pp.vars["w"].value
    if x is not None and levels:   # copy 0's hosting; a DT's serving summed over its copies
        x = x[lvl == 0]
        w = w.reshape(N, -1, M).sum(axis=1)
    if x is not None:
        px = np.argmax(x, axis=1)
        pw = px.copy()
        req = s.request & ~s.migrating
        has_w = req & (w.max(axis=1) > 1e-6)
        pw[has_w] = np.argmax(w[has_w], axis=1)
        candidates = [px, pw] + candidates
    best = None
    for pl in candidates:
        pl = np.where(s.pinned, s.placement_prev, pl)
        if (np.bincount(pl, weights=s.dt_size_bits, minlength=M) > s.storage_bits * (1 + 1e-12)).any():
            continue
        a = allocate(s, pl) if levels else allocate(s, pl, pair_data=pd)
        if best is None or a.cost < best.cost:
            best = a
    if best is None:
        return make_solution(s, s.placement_prev, fail_all, np.zeros(N), np.zeros(N), bound=bound,
                             status="bound_only", method="relaxation", started=t0, stats=stats)
    st = "optimal" if relative_gap(best.cost, bound) <= gap else "feasible"
    return make_solution(s, best.placement, best.served, best.tx_time, best.cpu_hz, bound=bound, status=st,
                         method="relaxation", started=t0, stats=stats, level=best.level)
