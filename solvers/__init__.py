"""Algorithms for the snapshot problem (installed as ``wdtnopt.solvers``).

``solve(snapshot, method="exact", **options) -> Solution`` is the one entry point. Methods:

* ``"exact"``      the decomposition oracle (HiGHS MILP master + exact per-server allocation,
                   outer-approximation cuts); certified global optimum to ``gap`` (solvers/exact.py).
* ``"pyomo"``      the Pyomo MINLP of formulations/pyomo_minlp.py with SCIP (pyscipopt).
* ``"relaxation"`` the CVXPY continuous relaxation (a lower bound) plus the best of a few roundings
                   allocated exactly (solvers/relaxation.py).
* ``"fast"``       the large-scale method: Lagrangian bound + primal repair, certified gap (solvers/fast.py).

More can be added with :func:`register_method`: a method is a callable
``(snapshot, **options) -> Solution``, given as the callable or as ``"module:attribute"`` (imported on
first use, so this module stays light: it imports numpy only).

Statuses: ``optimal`` (gap within the asked one), ``time_limit`` (stopped early: incumbent and certified
bound), ``feasible`` (a decision without the asked certificate), ``bound_only`` (a bound but no
decision), ``infeasible`` (no placement fits the storage).
"""
from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Callable

import numpy as np

from wdtnopt.errors import SnapshotError, WdtnoptError

STATUSES = ("optimal", "time_limit", "feasible", "bound_only", "infeasible")


class SolverError(WdtnoptError):
    """A solver cannot run as asked (unknown method, missing back end, bad option)."""


@dataclass
class Solution:
    """A decision for one snapshot with its cost and certificate (arrays of length N, SI units).

    ``objective`` is ``evaluate``'s objective of the decision; ``bound`` a certified lower bound of
    the snapshot's optimum (``-inf`` if none); ``gap = (objective - bound) / objective`` (0 when both
    are 0). When ``status`` is ``infeasible`` or ``bound_only`` the arrays hold the fail-all decision
    at ``placement_prev`` and ``objective`` is ``inf``.
    """

    placement: np.ndarray       # [N] host server of each DT
    served: np.ndarray          # [N] bool: requested and synchronized
    tx_time: np.ndarray         # [N] s (0 if not served)
    power: np.ndarray           # [N] W
    cpu_hz: np.ndarray          # [N] cycles/s given to the DT on its host
    energy: np.ndarray          # [N] J
    objective: float
    bound: float
    gap: float
    status: str
    solve_time_s: float
    method: str = "exact"
    stats: dict[str, Any] = field(default_factory=dict)  # method-specific counters (iterations, nodes)
    level: np.ndarray | None = None  # [N] semantic compression level (snapshots with a menu only)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists, floats; ``inf`` as the string "inf")."""
        out: dict[str, Any] = {}
        for name in ("placement", "served", "tx_time", "power", "cpu_hz", "energy"):
            out[name] = np.asarray(getattr(self, name)).tolist()
        for name in ("objective", "bound", "gap", "solve_time_s"):
            out[name] = _num_out(getattr(self, name))
        out["status"] = self.status
        out["method"] = self.method
        out["stats"] = {k: _num_out(v) if isinstance(v, float) else v for k, v in self.stats.items()}
        if self.level is not None:
            out["level"] = np.asarray(self.level).tolist()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Solution":
        return cls(
            placement=np.asarray(d["placement"], dtype=np.int64), served=np.asarray(d["served"], dtype=bool),
            tx_time=np.asarray(d["tx_time"], dtype=float), power=np.asarray(d["power"], dtype=float),
            cpu_hz=np.asarray(d["cpu_hz"], dtype=float), energy=np.asarray(d["energy"], dtype=float),
            objective=_num_in(d["objective"]), bound=_num_in(d["bound"]), gap=_num_in(d["gap"]),
            status=str(d["status"]), solve_time_s=_num_in(d["solve_time_s"]), method=str(d.get("method", "")),
            stats=dict(d.get("stats", {})),
            level=None if d.get("level") is None else np.asarray(d["level"], dtype=np.int64))


def _num_out(x: Any) -> Any:
    x = float(x)
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf" if x < 0 else "nan")


def _num_in(x: Any) -> float:
    return float(x)


def relative_gap(objective: float, bound: float) -> float:
    """``(objective - bound) / |objective|``; 0 when the bound reaches the objective (also 0 = 0)."""
    if not math.isfinite(objective):
        return math.inf
    if bound >= objective:
        return 0.0
    if objective == 0:
        return math.inf
    return (objective - bound) / abs(objective)


def make_solution(snapshot: Any, placement, served, tx_time, cpu_hz, *, bound: float, status: str,
                  method: str, started: float, stats: dict[str, Any] | None = None, level=None) -> Solution:
    """Assemble a :class:`Solution`, recomputing cost with ``evaluate``; refuse a decision it rejects.

    ``level`` [N]: the semantic compression levels of a snapshot with a menu (None: none chosen)."""
    from wdtnopt import physics
    from wdtnopt.cost import Decision, evaluate

    s = snapshot
    placement = np.asarray(placement, dtype=np.int64)
    served = np.asarray(served, dtype=bool)
    tx = np.where(served, np.asarray(tx_time, dtype=float), 0.0)
    cpu = np.where(served, np.asarray(cpu_hz, dtype=float), 0.0)
    if level is not None:
        level = np.asarray(level, dtype=np.int64)
    ev = evaluate(s, Decision(placement=placement, served=served, tx_time=tx, cpu_hz=cpu, level=level))
    if status in ("infeasible", "bound_only"):
        objective = math.inf
    else:
        if ev.violations:
            raise RuntimeError(f"{method} solver produced an invalid decision: "
                               + "; ".join(str(v) for v in ev.violations[:5]))
        objective = ev.objective
    power = np.zeros(s.n_mus)
    if served.any():
        g = s.serving_gain
        data = s.data_bits if level is None else s.at_levels(level).data_bits
        power[served] = physics.power_for_time(tx[served], data[served], s.bandwidth[served],
                                               s.noise_psd[served], g[served])
    bound = float(bound)
    if math.isfinite(objective):
        bound = min(bound, objective)  # a bound above the objective is round-off of the certificate
    return Solution(placement=placement, served=served, tx_time=tx, power=power, cpu_hz=cpu,
                    energy=np.asarray(ev.energy, dtype=float), objective=float(objective), bound=bound,
                    gap=relative_gap(objective, bound), status=status,
                    solve_time_s=time.perf_counter() - started, method=method, stats=dict(stats or {}), level=level)


# -- method registry -----------------------------------------------------------------------------
LEVEL_METHODS: tuple[str, ...] = ("exact", "pyomo", "relaxation", "fast")
"""Methods that take a snapshot with a semantic compression menu (they choose the levels)."""

_METHODS: dict[str, str | Callable[..., Solution]] = {
    "exact": "wdtnopt.solvers.exact:solve_exact",
    "pyomo": "wdtnopt.solvers.minlp:solve_pyomo",
    "relaxation": "wdtnopt.solvers.relaxation:solve_relaxation",
    "fast": "wdtnopt.solvers.fast:solve_fast",
}


def register_method(name: str, target: str | Callable[..., Solution]) -> None:
    """Make ``solve(snapshot, method=name)`` call ``target`` (a callable or ``"module:attribute"``)."""
    _METHODS[name] = target


def methods() -> tuple[str, ...]:
    return tuple(_METHODS)


def solve(snapshot: Any, method: str = "exact", **options: Any) -> Solution:
    """Solve one snapshot problem (docs/model.md, section 5) with ``method``; see this module's docstring.

    Parameters
    ----------
    snapshot : Snapshot
        The decision point (N MUs, M servers; SI units).
    method : str, optional
        ``"exact"`` (default), ``"fast"``, ``"relaxation"``, ``"pyomo"`` or a name added with
        :func:`register_method`.
    **options
        Options of the method. Common ones: ``gap`` (relative optimality gap, default 1e-6),
        ``time_limit`` (s, None = none), ``threads``. An option the method does not declare is an
        error.

    Returns
    -------
    Solution
        ``placement [N]``, ``served [N]`` (bool), ``tx_time [N]`` (s), ``power [N]`` (W),
        ``cpu_hz [N]`` (cycles/s), ``energy [N]`` (J), ``objective`` (J, ``evaluate``'s objective of
        the decision), ``bound`` (J, a certified lower bound), ``gap``, ``status`` (one of
        ``STATUSES``) and ``solve_time_s`` (s). An infeasible snapshot gives status
        ``"infeasible"``, not an exception.

    Raises
    ------
    SolverError
        If ``method`` is unknown, an option is not one of the method's, or the method's back end
        is not installed.
    SnapshotError
        If ``snapshot`` is not a :class:`~wdtnopt.Snapshot`.
    """
    from wdtnopt.snapshot import Snapshot

    if not isinstance(snapshot, Snapshot):
        raise SnapshotError([("snapshot", "expected a wdtnopt.Snapshot (Snapshot.from_dict reads a dict), "
                                          f"got {type(snapshot).__name__}")])
    target = _METHODS.get(method)
    if target is None:
        raise SolverError(f"unknown method {method!r}: choose one of {', '.join(sorted(_METHODS))}")
    if getattr(snapshot, "level_ratio", None) is not None and method not in LEVEL_METHODS:
        raise SolverError(f"method {method!r} does not choose semantic compression levels yet: use one of "
                          f"{', '.join(LEVEL_METHODS)}, or a snapshot without a menu (docs/model.md, section 13)")
    if isinstance(target, str):
        module, attr = target.split(":")
        target = getattr(import_module(module), attr)
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):  # pragma: no cover - builtins
        sig = None
    if sig is not None and not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        unknown = sorted(set(options) - set(sig.parameters))
        if unknown:
            known = [p for p in sig.parameters if p != "snapshot"]
            raise SolverError(f"method {method!r} has no option {', '.join(map(repr, unknown))}: "
                              f"choose from {', '.join(known)}")
    return target(snapshot, **options)


__all__ = ["Solution", "SolverError", "solve", "register_method", "methods", "make_solution", "relative_gap",
           "STATUSES"]
