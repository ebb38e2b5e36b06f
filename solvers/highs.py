"""The one HiGHS layer of the solvers (``exact``'s MILP master, ``fast``'s dual LP and MILP).

* :func:`new_highs` / :func:`quiet_highs`: a ``highspy.Highs`` without its banner and log, with the
  tolerances every master uses (:data:`FEASIBILITY_TOL`).
* :func:`run_model`: run, map HiGHS's model status to a :class:`MasterOutcome`, and read the primal
  solution, the objective and the dual bound into a typed :class:`MasterResult`.
* :class:`RowBatch`: constraint rows gathered in HiGHS's row-wise (CSR) form, added in one call.

highspy is imported on first use only.
"""
from __future__ import annotations

import math
import os
import sys
import threading
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

FEASIBILITY_TOL = 1e-9
"""Primal, dual and MIP feasibility tolerance of every master (absolute, in the master's scaled units)."""

_BANNER_SHOWN = False


class RowBatch:
    """Constraint rows ``lo <= sum_j a_j x_j <= hi`` gathered in HiGHS's row-wise (CSR) form.

    ``add`` appends one row; :meth:`add_to` adds every gathered row to a model in one
    ``addRows`` call; the arrays themselves (``lo``, ``hi``, ``starts``, ``idx``, ``val``) are what
    a ``HighsLp`` built at once takes. Infinite bounds may be given as ``math.inf``.
    """

    def __init__(self) -> None:
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.starts: list[int] = []
        self.idx: list[int] = []
        self.val: list[float] = []

    def __len__(self) -> int:
        return len(self.lo)

    def add(self, lo: float, hi: float, coefs: list[tuple[int, float]]) -> None:
        """Append the row ``lo <= sum(a * x[j] for j, a in coefs) <= hi``."""
        self.lo.append(lo)
        self.hi.append(hi)
        self.starts.append(len(self.idx))
        for j, a in coefs:
            self.idx.append(int(j))
            self.val.append(a)

    def add_to(self, h: Any) -> int:
        """Add the gathered rows to the ``highspy.Highs`` model ``h``; returns how many."""
        if self.lo:
            h.addRows(len(self.lo), np.array(self.lo), np.array(self.hi), len(self.idx),
                      np.array(self.starts, dtype=np.int32), np.array(self.idx, dtype=np.int32),
                      np.array(self.val))
        return len(self.lo)


def new_highs() -> Any:
    """``highspy.Highs()`` without the banner HiGHS prints on stdout at its first construction."""
    global _BANNER_SHOWN
    import highspy

    if _BANNER_SHOWN:
        return highspy.Highs()
    _BANNER_SHOWN = True
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no real stdout (embedded interpreter): let it print
        return highspy.Highs()
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            return highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


_SCHEDULER = threading.local()


def _size_scheduler(threads: int) -> None:
    """HiGHS runs every model of a calling thread on one task scheduler, sized by the ``threads`` of
    the first model run there; a model asking for another count afterwards does not run (model
    status ``kNotset``: no solution, no bound). So the scheduler is reset when the count changes."""
    import highspy

    if getattr(_SCHEDULER, "threads", threads) != threads:
        highspy.Highs.resetGlobalScheduler(True)
    _SCHEDULER.threads = threads


def quiet_highs(threads: int = 1, *, seed: int = 0, heuristics: bool = False,
                heuristic_effort: float | None = None) -> Any:
    """A silent ``Highs`` with ``threads``, a fixed ``seed`` and tolerances :data:`FEASIBILITY_TOL`.

    ``heuristics`` switches HiGHS's RINS / RENS / feasibility-jump / root reduced-cost heuristics;
    ``heuristic_effort`` (0..1) sets ``mip_heuristic_effort`` when given.
    """
    h = new_highs()
    h.setOptionValue("output_flag", False)
    _size_scheduler(int(threads))
    h.setOptionValue("threads", int(threads))
    h.setOptionValue("random_seed", int(seed))
    if heuristic_effort is not None:
        h.setOptionValue("mip_heuristic_effort", float(heuristic_effort))
    for opt in ("mip_heuristic_run_rins", "mip_heuristic_run_rens", "mip_heuristic_run_feasibility_jump",
                "mip_heuristic_run_root_reduced_cost"):
        h.setOptionValue(opt, bool(heuristics))
    for opt in ("primal_feasibility_tolerance", "dual_feasibility_tolerance", "mip_feasibility_tolerance"):
        h.setOptionValue(opt, FEASIBILITY_TOL)
    return h


class MasterOutcome(Enum):
    """HiGHS's model status, reduced to what a caller acts on."""

    OPTIMAL = "optimal"          # solved to the asked MIP gap (or LP optimal)
    INFEASIBLE = "infeasible"    # proven infeasible
    TIME_LIMIT = "time_limit"    # stopped at the time limit
    OTHER = "other"              # iteration/node limits, unbounded, numerical trouble, ...


def outcome_of(status: Any) -> MasterOutcome:
    """Map a ``highspy.HighsModelStatus`` to a :class:`MasterOutcome`."""
    import highspy

    ms = highspy.HighsModelStatus
    if status == ms.kOptimal:
        return MasterOutcome.OPTIMAL
    if status == ms.kInfeasible:
        return MasterOutcome.INFEASIBLE
    if status == ms.kTimeLimit:
        return MasterOutcome.TIME_LIMIT
    return MasterOutcome.OTHER


@dataclass
class MasterResult:
    """One HiGHS run: outcome, primal columns (None if none), objective and dual bound (scaled units)."""

    outcome: MasterOutcome
    raw_status: str
    x: np.ndarray | None
    objective: float          # HiGHS's objective value of ``x`` (inf without one)
    bound: float              # HiGHS's dual bound (MIP) or LP optimum; -inf if none
    nodes: int = 0

    @property
    def infeasible(self) -> bool:
        return self.outcome is MasterOutcome.INFEASIBLE


def run_model(h: Any, *, time_limit: float | None = None, mip: bool = True) -> MasterResult:
    """Run ``h`` (with ``time_limit`` s if given) and read its result into a :class:`MasterResult`."""
    h.setOptionValue("time_limit", float(time_limit) if time_limit is not None else math.inf)
    h.run()
    status = h.getModelStatus()
    out = outcome_of(status)
    info = h.getInfo()
    x = None
    if out is not MasterOutcome.INFEASIBLE and (info.primal_solution_status >= 2 or out is MasterOutcome.OPTIMAL):
        x = np.asarray(h.getSolution().col_value, dtype=float)
    objective = float(info.objective_function_value) if x is not None else math.inf
    if mip:
        b = info.mip_dual_bound
        bound = float(b) if b is not None and math.isfinite(b) else -math.inf
        nodes = int(info.mip_node_count)
    else:
        bound = objective if out is MasterOutcome.OPTIMAL else -math.inf
        nodes = 0
    return MasterResult(out, str(status), x, objective, bound, nodes)


__all__ = ["FEASIBILITY_TOL", "new_highs", "quiet_highs", "MasterOutcome", "MasterResult", "outcome_of", "run_model"]
