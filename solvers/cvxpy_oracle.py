"""The CVXPY subproblem oracle of the exact decomposition (``ExactOptions(oracle="cvxpy")``).

The default oracle is the KKT allocation of solvers/allocation.py. This one solves the same convex
problem, the allocation of one server for a fixed served set, as the DPP-parametrized CVXPY
problem of formulations/cvxpy_models.py (:func:`allocation_problem`, exponential and power cones,
Clarabel at 1e-10 tolerances): one problem per number of served MUs, built once and re-solved with
new parameter values (no re-canonicalization). It lets users cross-check the two and runs the
"HiGHS master + CVXPY oracle" design end to end.

The conic solution is made exactly feasible before it is used (CPU shares scaled to the server's
CPU, each transmission time the deadline's remainder ``T - c / f``, at least ``t_min``), and its
energy is recomputed by the energy law, so the oracle's allocations are true decisions (upper
bounds); its inaccuracy can only weaken the cuts the master gets, never invalidate them (a tangent
of a convex function at any point is below it). Servers with a set that cannot fit (sum of least
CPUs above the CPU) are rejected before any solve, as in the KKT oracle.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from . import SolverError
from .allocation import PairData, ServerAllocation, allocate_server, trivial_allocation


class CvxpyAllocator:
    """``allocate_server``'s contract (``(pd, m, mus) -> ServerAllocation``) through CVXPY + Clarabel.

    Problems are cached by the number of busy served MUs (DPP: only parameter values change).
    Sets whose conic solve fails or is inaccurate fall back to the KKT oracle (counted in
    ``fallbacks``).
    """

    def __init__(self, solver: str = "CLARABEL"):
        try:
            import cvxpy  # noqa: F401
        except ImportError as exc:
            raise SolverError(f"oracle='cvxpy' needs cvxpy: pip install cvxpy clarabel ({exc})") from None
        self.solver = solver
        self.problems: dict[int, Any] = {}
        self.solves = 0
        self.fallbacks = 0

    def __call__(self, pd: PairData, m: int, mus, *, rtol: float = 1e-13) -> ServerAllocation:
        mus = np.asarray(mus, dtype=np.int64)
        done = trivial_allocation(pd, m, mus)
        if done is not None:
            return done
        T = pd.budget[mus, m]
        c = pd.cycles[mus]
        t = T.copy()
        f = np.zeros(mus.size)
        busy = np.flatnonzero(c > 0)
        price = 0.0
        if busy.size:
            got = self._solve(pd, m, mus[busy])
            if got is None:
                self.fallbacks += 1
                return allocate_server(pd, m, mus, rtol=rtol)
            t[busy], f[busy], price = got
        energy = float(pd.energy(mus, t).sum())
        return ServerAllocation(mus, t, f, energy, price)

    def _solve(self, pd: PairData, m: int, mus: np.ndarray):
        import cvxpy as cp

        from wdtnopt.formulations.cvxpy_models import TIGHT_CLARABEL, allocation_problem, set_allocation_data

        s = pd.snapshot
        K = mus.size
        pp = self.problems.get(K)
        if pp is None:
            pp = self.problems[K] = allocation_problem(K, s.n_bss)
        placement = s.placement_prev.copy()
        placement[mus] = m
        set_allocation_data(pp, s, placement, mus)
        self.solves += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                pp.problem.solve(solver=self.solver, **(TIGHT_CLARABEL if self.solver.upper() == "CLARABEL" else {}))
        except cp.error.SolverError:
            return None
        if pp.problem.status != cp.OPTIMAL or pp.vars["phi"].value is None:
            return None
        F = float(pd.cpu_hz[m])
        fmin = pd.f_min[mus, m]
        f = np.maximum(np.asarray(pp.vars["phi"].value, dtype=float) * F, fmin)
        free = f > fmin
        excess = float(f.sum()) - F
        if excess > 0:  # scale the shares above the least ones back into the CPU
            room = F - float(fmin[~free].sum())
            if not free.any() or room <= 0:
                return None
            f[free] = np.nextafter(f[free] * room / float(f[free].sum()), 0)
            f = np.maximum(f, fmin)
            if float(f.sum()) > F:
                return None
        T = pd.budget[mus, m]
        t = np.maximum(T - pd.cycles[mus] / f, pd.t_min[mus])
        dual = pp.constraints["cpu"].dual_value
        price = float(np.asarray(dual, dtype=float)[m]) * pp.scale / F if dual is not None else math.nan
        return t, f, price


__all__ = ["CvxpyAllocator"]
