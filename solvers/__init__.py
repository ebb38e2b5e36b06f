"""Algorithms for the snapshot problem (installed as ``wdtnopt.solvers``).

``solve(snapshot, method="exact", **options) -> Solution`` is the one entry point, and the certified
one: its bound holds for every decision ``evaluate`` accepts (it adds the tolerance check of
solvers/tolerance.py). The methods' own functions (``solve_exact``, ``solve_fast``, ...) certify the
strict problem only (docs/solvers.md, "The certified entry point"). Methods:

* ``"exact"``      the decomposition oracle (HiGHS MILP master + exact per-server allocation,
                   outer-approximation cuts); certified global optimum to ``gap`` (solvers/exact.py).
* ``"pyomo"``      the Pyomo MINLP of formulations/pyomo_minlp.py with SCIP (pyscipopt).
* ``"relaxation"`` the CVXPY continuous relaxation (a lower bound) plus the best of a few roundings
                   allocated exactly (solvers/relaxation.py).
* ``"fast"``       the large-scale method: Lagrangian bound + primal repair, certified gap (solvers/fast.py).

More can be added with :func:`register_method`: a method is a callable
``(snapshot, **options) -> Solution``, given as the callable or as ``"module:attribute"`` (imported on
first use, so this module stays light: it imports numpy only).

Each built-in method takes its options as one frozen dataclass (solvers/options.py:
:class:`ExactOptions`, :class:`FastOptions`, :class:`PyomoOptions`, :class:`RelaxationOptions`), given
as keyword arguments of :func:`solve`; an unknown option is a :class:`SolverError` that names it and
lists the valid ones. The result's ``status`` is a :class:`SolveStatus`: ``optimal`` (recomputed gap
within the asked one), ``time_limit`` (stopped early: incumbent and certified bound), ``feasible``
(a decision without the asked certificate), ``bound_only`` (a bound but no decision), ``infeasible``
(no placement fits the storage). What each method's status and bound guarantee, and under which
tolerances, is in docs/solvers.md.
"""
from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import import_module
from typing import Any, Callable

import numpy as np

from wdtnopt.errors import SnapshotError, WdtnoptError


class SolveStatus(StrEnum):
    """What a :class:`Solution` proves (a ``str``: ``status == "optimal"`` works)."""

    OPTIMAL = "optimal"          # a decision and a bound with recomputed gap <= the asked gap
    TIME_LIMIT = "time_limit"    # stopped at the time limit: incumbent and certified bound
    FEASIBLE = "feasible"        # a decision and a bound, but the asked gap is not proven
    BOUND_ONLY = "bound_only"    # a certified bound but no decision (fail-all placeholder arrays)
    INFEASIBLE = "infeasible"    # no placement fits the storage


STATUSES = tuple(st.value for st in SolveStatus)


class SolverError(WdtnoptError):
    """A solver cannot run as asked (unknown method, missing back end, bad option)."""


class InvalidDecisionError(RuntimeError):
    """A method produced a decision that ``evaluate`` rejects (a defect of the method, not of the input).

    ``violations`` lists ``evaluate``'s :class:`~wdtnopt.cost.Violation` records.
    """

    def __init__(self, method: str, violations: list[Any]):
        self.method = method
        self.violations = list(violations)
        super().__init__(f"{method} solver produced an invalid decision: "
                         + "; ".join(str(v) for v in self.violations[:5]))


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
    status: SolveStatus
    solve_time_s: float
    method: str = "exact"
    stats: dict[str, Any] = field(default_factory=dict)  # method-specific counters (iterations, nodes)
    level: np.ndarray | None = None  # [N] semantic compression level (snapshots with a menu only)
    asked_gap: float | None = None   # the relative gap the method was asked (None: not recorded)

    def __post_init__(self) -> None:
        self.status = SolveStatus(self.status)

    @property
    def success(self) -> bool:
        """True when the asked certificate was proven (``status == "optimal"``)."""
        return self.status is SolveStatus.OPTIMAL

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists, floats; ``inf`` as the string "inf")."""
        out: dict[str, Any] = {}
        for name in ("placement", "served", "tx_time", "power", "cpu_hz", "energy"):
            out[name] = np.asarray(getattr(self, name)).tolist()
        for name in ("objective", "bound", "gap", "solve_time_s"):
            out[name] = _num_out(getattr(self, name))
        out["status"] = str(self.status)
        out["method"] = self.method
        out["stats"] = {k: _num_out(v) if isinstance(v, float) else v for k, v in self.stats.items()}
        if self.level is not None:
            out["level"] = np.asarray(self.level).tolist()
        if self.asked_gap is not None:
            out["asked_gap"] = _num_out(self.asked_gap)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Solution":
        """Inverse of :meth:`to_dict`, checking that the stored certificate is consistent.

        Parameters
        ----------
        d : dict
            As written by :meth:`to_dict` (``asked_gap`` may be absent: files written before it was
            recorded).

        Returns
        -------
        Solution

        Raises
        ------
        SolverError
            (a ``ValueError``) naming the field: a missing or malformed field, arrays of different
            lengths, or a certificate that contradicts itself (:func:`certificate_problems`: a bound
            above the objective, a gap that is negative or not the one of the objective and bound,
            ``optimal`` beyond ``asked_gap``, an objective that does not fit the status); a
            placement or level that is not whole numbers, a served flag that is not true/false or
            0/1, a number given as a string other than "inf", "-inf", "nan" or as true/false.
        """
        if not isinstance(d, dict):
            raise SolverError(f"invalid solution: expected a JSON object (Solution.to_dict), got {type(d).__name__}")

        def get(name: str, conv: Any, default: Any = ...) -> Any:
            if name not in d and default is not ...:
                return default
            if name not in d:
                raise SolverError(f"invalid solution: {name}: missing")
            try:
                return conv(d[name])
            except (TypeError, ValueError) as exc:
                raise SolverError(f"invalid solution: {name}: {exc}") from None

        def arr(dtype: Any) -> Any:
            return lambda v: np.asarray(v, dtype=dtype)

        sol = cls(
            placement=get("placement", _ints_in), served=get("served", _flags_in),
            tx_time=get("tx_time", arr(float)), power=get("power", arr(float)),
            cpu_hz=get("cpu_hz", arr(float)), energy=get("energy", arr(float)),
            objective=get("objective", _num_in), bound=get("bound", _num_in), gap=get("gap", _num_in),
            status=get("status", lambda v: SolveStatus(str(v))), solve_time_s=get("solve_time_s", _num_in),
            method=str(d.get("method", "")), stats=get("stats", dict, {}),
            level=None if d.get("level") is None else get("level", _ints_in),
            asked_gap=None if d.get("asked_gap") is None else get("asked_gap", _num_in))
        problems = certificate_problems(sol)
        if problems:
            name, msg = problems[0]
            raise SolverError(f"invalid solution: {name}: {msg}")
        return sol


GAP_ROUNDOFF_RTOL = 1e-9
"""A stored ``gap`` may differ from the one recomputed from ``objective`` and ``bound`` by this much
(relative, and absolute below 1): a file edited by hand or written with fewer digits."""


def certificate_problems(sol: Solution) -> list[tuple[str, str]]:
    """What contradicts itself in ``sol``'s arrays and certificate, as ``(field, message)`` pairs.

    The certificate of a :class:`Solution` is consistent when (docs/solvers.md, "Statuses and the
    Solution"): the arrays (and ``level``) all have one length N, ``placement >= 0`` (and ``level``),
    ``tx_time``, ``power``, ``cpu_hz``, ``energy`` finite and >= 0; ``objective``
    is finite for ``optimal``, ``time_limit`` and ``feasible`` and ``inf`` for ``bound_only`` and
    ``infeasible``; ``bound`` is not NaN and not above ``objective`` (beyond
    :data:`BOUND_ROUNDOFF_RTOL`); ``gap`` is ``relative_gap(objective, bound)`` (within
    :data:`GAP_ROUNDOFF_RTOL`, exactly ``inf`` where that is ``inf``; so never negative); ``asked_gap``, when recorded, is >= 0 and an
    ``optimal`` status has ``gap <= asked_gap``. Every :class:`Solution` that :func:`make_solution`
    builds passes. Returns ``[]`` when consistent.
    """
    out: list[tuple[str, str]] = []
    n = np.asarray(sol.placement).shape
    if len(n) != 1:
        return [("placement", f"expected a list of N host indices, got shape {n}")]
    for name in ("served", "tx_time", "power", "cpu_hz", "energy") + (("level",) if sol.level is not None else ()):
        shape = np.asarray(getattr(sol, name)).shape
        if shape != n:
            out.append((name, f"expected {n[0]} values (one per MU, as placement), got shape {shape}"))
    if n[0] and int(np.min(sol.placement)) < 0:
        out.append(("placement", "expected server indices >= 0"))
    if sol.level is not None and np.asarray(sol.level).size and int(np.min(sol.level)) < 0:
        out.append(("level", "expected level indices >= 0"))
    for name in ("tx_time", "power", "cpu_hz", "energy"):
        v = np.asarray(getattr(sol, name), dtype=float)
        if v.size and not (np.isfinite(v) & (v >= 0)).all():
            out.append((name, f"expected finite numbers >= 0, got {float(v[~(np.isfinite(v) & (v >= 0))][0])!r}"))
    obj, bound, gap, status = float(sol.objective), float(sol.bound), float(sol.gap), sol.status
    no_decision = status in (SolveStatus.INFEASIBLE, SolveStatus.BOUND_ONLY)
    if no_decision and obj != math.inf:
        out.append(("objective", f"a {status.value} solution has no decision: expected inf, got {obj!r}"))
    if not no_decision and not (math.isfinite(obj) and obj >= 0):
        out.append(("objective", f"a {status.value} solution has a decision: expected a finite number >= 0, "
                                 f"got {obj!r}"))
    if math.isnan(bound):
        out.append(("bound", "expected a number (a certified lower bound), got nan"))
    elif math.isfinite(obj) and bound > obj + BOUND_ROUNDOFF_RTOL * abs(obj):
        out.append(("bound", f"a lower bound cannot exceed the objective: bound {bound!r} > objective {obj!r}"))
    if math.isnan(gap) or gap < 0:
        out.append(("gap", f"expected a number >= 0, got {gap!r}"))
    elif not math.isnan(bound) and not out:
        want = relative_gap(obj, bound)
        if not (gap == want or (math.isfinite(want) and abs(gap - want) <= GAP_ROUNDOFF_RTOL * max(1.0, abs(want)))):
            out.append(("gap", f"expected (objective - bound) / objective = {want!r}, got {gap!r}"))
    asked = sol.asked_gap
    if asked is not None and (math.isnan(float(asked)) or float(asked) < 0):
        out.append(("asked_gap", f"expected a number >= 0, got {asked!r}"))
    elif asked is not None and status is SolveStatus.OPTIMAL and not gap <= float(asked) * (1 + GAP_ROUNDOFF_RTOL):
        out.append(("status", f"'optimal' needs gap <= asked_gap, got gap {gap!r} > asked_gap {float(asked)!r}"))
    return out


def _num_out(x: Any) -> Any:
    x = float(x)
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf" if x < 0 else "nan")


def _num_in(x: Any) -> float:
    # a JSON number, or one of the strings _num_out writes ("1", "0.5" or true are no certificate)
    if isinstance(x, bool) or (isinstance(x, str) and x not in ("inf", "-inf", "nan")):
        raise ValueError(f"expected a number (or \"inf\", \"-inf\", \"nan\"), got {x!r}")
    return float(x)


def _ints_in(x: Any) -> np.ndarray:
    # JSON integers (whole floats too); 0.7 was truncated to 0, a different decision
    a = np.asarray(x)
    whole = a.dtype.kind in "iu" or (a.dtype.kind == "f" and np.isfinite(a).all() and (a == np.round(a)).all())
    if a.size and (a.dtype.kind == "b" or not whole):
        raise ValueError(f"expected a list of integers, got {a.ravel()[:3].tolist()!r} (first values)")
    return a.astype(np.int64)


def _flags_in(x: Any) -> np.ndarray:
    # JSON true/false (or 0/1); "no" and 2 read as True
    a = np.asarray(x)
    if a.size and not (a.dtype.kind == "b" or (a.dtype.kind in "iu" and ((a == 0) | (a == 1)).all())):
        raise ValueError(f"expected a list of true/false, got {a.ravel()[:3].tolist()!r} (first values)")
    return a.astype(bool)


def relative_gap(objective: float, bound: float) -> float:
    """``(objective - bound) / |objective|``; 0 when the bound reaches the objective (also 0 = 0)."""
    if not math.isfinite(objective):
        return math.inf
    if bound >= objective:
        return 0.0
    if objective == 0:
        return math.inf
    return (objective - bound) / abs(objective)


BOUND_ROUNDOFF_RTOL = 1e-9
"""A bound above the decision's objective by at most this (relative) is round-off and is lowered to
the objective; further above, the bound is not trusted (replaced by the trivial bound 0)."""


def make_solution(snapshot: Any, placement, served, tx_time, cpu_hz, *, bound: float, status: str,
                  method: str, started: float, stats: dict[str, Any] | None = None,
                  gap: float | None = None, level=None) -> Solution:
    """Assemble a :class:`Solution`, recomputing cost with ``evaluate``.

    ``level`` [N]: the semantic compression levels of a snapshot with a menu (None: none chosen).
    The status is made true here for every method: ``optimal`` with a recomputed gap above the
    asked ``gap`` becomes ``feasible`` (``stats["status_downgraded"]`` says why). A bound above the
    objective beyond :data:`BOUND_ROUNDOFF_RTOL` cannot be a lower bound: it is replaced by 0 (every
    cost is >= 0), the status is at most ``feasible`` and ``stats["bound_rejected"]`` keeps it.

    Raises
    ------
    InvalidDecisionError
        ``evaluate`` reports a violated constraint of the decision (a defect of the method).
    """
    from wdtnopt import physics
    from wdtnopt.cost import Decision, evaluate

    s = snapshot
    stats = dict(stats or {})
    status = SolveStatus(status)
    placement = np.asarray(placement, dtype=np.int64)
    served = np.asarray(served, dtype=bool)
    tx = np.where(served, np.asarray(tx_time, dtype=float), 0.0)
    cpu = np.where(served, np.asarray(cpu_hz, dtype=float), 0.0)
    if level is not None:
        level = np.asarray(level, dtype=np.int64)
    ev = evaluate(s, Decision(placement=placement, served=served, tx_time=tx, cpu_hz=cpu, level=level))
    if status in (SolveStatus.INFEASIBLE, SolveStatus.BOUND_ONLY):
        objective = math.inf
    else:
        if ev.violations:
            raise InvalidDecisionError(method, ev.violations)
        objective = ev.objective
    power = np.zeros(s.n_mus)
    if served.any():
        g = s.serving_gain
        data = s.data_bits if level is None else s.at_levels(level).data_bits
        power[served] = physics.power_for_time(tx[served], data[served], s.bandwidth[served],
                                               s.noise_psd[served], g[served])
    bound = float(bound)
    if math.isnan(bound):
        bound = 0.0
        stats["bound_rejected"] = "nan"
    if math.isfinite(objective) and bound > objective:
        if bound <= objective + BOUND_ROUNDOFF_RTOL * abs(objective):
            bound = objective  # round-off of the certificate
        else:
            stats["bound_rejected"] = bound
            bound = 0.0
            if status is SolveStatus.OPTIMAL:
                status = SolveStatus.FEASIBLE
    gap_now = relative_gap(objective, bound)
    if status is SolveStatus.OPTIMAL and gap is not None and not gap_now <= gap:
        status = SolveStatus.FEASIBLE
        stats["status_downgraded"] = f"recomputed gap {gap_now:.3g} above the asked {gap:.3g}"
    return Solution(placement=placement, served=served, tx_time=tx, power=power, cpu_hz=cpu,
                    energy=np.asarray(ev.energy, dtype=float), objective=float(objective), bound=bound,
                    gap=gap_now, status=status, solve_time_s=time.perf_counter() - started, method=method,
                    stats=stats, level=level, asked_gap=None if gap is None else float(gap))


def fail_all_solution(snapshot: Any, *, bound: float, status: str, method: str, started: float,
                      stats: dict[str, Any] | None = None, level=None) -> Solution:
    """The decision-less :class:`Solution` (``infeasible`` or ``bound_only``): everyone fails at
    ``placement_prev``, ``objective = inf`` (``level``: as :func:`make_solution`'s)."""
    n = snapshot.n_mus
    return make_solution(snapshot, snapshot.placement_prev, np.zeros(n, dtype=bool), np.zeros(n), np.zeros(n),
                         bound=bound, status=status, method=method, started=started, stats=stats, level=level)


# -- method registry -----------------------------------------------------------------------------
LEVEL_METHODS: tuple[str, ...] = ("exact", "pyomo", "relaxation", "fast")
"""Methods that take a snapshot with a semantic compression menu (they choose the levels)."""

_METHODS: dict[str, str | Callable[..., Solution]] = {
    "exact": "wdtnopt.solvers.exact:solve_exact",
    "pyomo": "wdtnopt.solvers.minlp:solve_pyomo",
    "relaxation": "wdtnopt.solvers.relaxation:solve_relaxation",
    "fast": "wdtnopt.solvers.fast:solve_fast",
}


_BUILTIN_METHODS = dict(_METHODS)


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
        Fields of the method's frozen options dataclass (solvers/options.py: ``ExactOptions``,
        ``FastOptions``, ``PyomoOptions``, ``RelaxationOptions``), e.g. ``gap`` (relative optimality
        gap, default 1e-6; fast 1e-2), ``time_limit`` (s, None = none; pyomo 300), ``threads``, ``max_iterations``,
        ``verbose``; or ``options=`` an instance. Both together: each keyword replaces that field
        of the instance, the other fields are the instance's (every built-in method; docs/solvers.md,
        "Options"). An option the method does not declare is an error naming it and listing the
        valid ones.

    Returns
    -------
    Solution
        ``placement [N]``, ``served [N]`` (bool), ``tx_time [N]`` (s), ``power [N]`` (W),
        ``cpu_hz [N]`` (cycles/s), ``energy [N]`` (J), ``objective`` (J, ``evaluate``'s objective of
        the decision), ``bound`` (J, a certified lower bound of every decision ``evaluate``
        accepts, within its tolerance: docs/solvers.md, "The certified entry point"), ``gap``,
        ``status`` (a :class:`SolveStatus`, true: ``optimal`` only within the asked gap) and
        ``solve_time_s`` (s). An infeasible snapshot gives status ``"infeasible"``, not an
        exception.

    Raises
    ------
    SolverError
        If ``method`` is unknown, an option is not one of the method's (named, with the valid ones
        listed) or has a bad value, the method's back end is not installed, or the snapshot's
        semantic menu is one the method does not take (pyomo: more than 16 levels). A numerical
        failure of a back end is a status or a fallback, never an exception.
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
    started = time.perf_counter()
    sol = target(snapshot, **options)
    if _METHODS.get(method) == _BUILTIN_METHODS.get(method) and isinstance(sol, Solution):
        # evaluate's tolerance can change what is feasible: the bound then comes from the tolerant
        # snapshot (solvers/tolerance.py; docs/solvers.md, "What each method guarantees")
        from .tolerance import certify_tolerant

        again = {k: v for k, v in options.items() if k != "warm"}   # a warm start is for its own snapshots
        limit = options.get("time_limit", getattr(options.get("options"), "time_limit", None))

        def solve_on(s: Any, start: Solution) -> Solution | None:
            if limit is not None:   # the second solve gets what is left of the time limit
                left = float(limit) - (time.perf_counter() - started)
                if left <= 0:
                    return None
                again["time_limit"] = left
            if method == "exact" and getattr(s, "level_ratio", None) is None:
                from .tolerance import exact_from   # started from the strict solve's decision

                return exact_from(s, start, again)
            return target(s, **again)

        sol = certify_tolerant(snapshot, sol, solve_on, _asked_gap(method, options))
    return _record_asked_gap(sol, method, options)


def _asked_gap(method: str, options: dict[str, Any]) -> float | None:
    """The gap ``method`` was asked in ``options`` (its default for a built-in method), or None."""
    asked = options.get("gap", getattr(options.get("options"), "gap", None))
    if asked is None and _METHODS.get(method) == _BUILTIN_METHODS.get(method) and method in OPTIONS:
        asked = OPTIONS[method].gap     # the method's default (the built-in method, not a replacement)
    return float(asked) if isinstance(asked, (int, float)) and not isinstance(asked, bool) else None


def _record_asked_gap(sol: Solution, method: str, options: dict[str, Any]) -> Solution:
    """Keep the gap ``method`` was asked in ``sol.asked_gap`` (so a saved solution states the tolerance
    its status refers to) and hold every method to ``optimal`` only within it: above it the status
    is ``feasible`` (``stats["status_downgraded"]``), as :func:`make_solution` does."""
    if not isinstance(sol, Solution):
        return sol
    asked = _asked_gap(method, options)
    if asked is not None and (sol.asked_gap is None or asked < sol.asked_gap):   # a method's own looser one is not the ask
        sol.asked_gap = asked
    if sol.asked_gap is not None and sol.status is SolveStatus.OPTIMAL and not sol.gap <= sol.asked_gap:
        sol.status = SolveStatus.FEASIBLE
        sol.stats["status_downgraded"] = f"recomputed gap {sol.gap:.3g} above the asked {sol.asked_gap:.3g}"
    return sol


from .options import ExactOptions, FastOptions, PyomoOptions, RelaxationOptions, SolverOptions  # noqa: E402

OPTIONS: dict[str, type[SolverOptions]] = {"exact": ExactOptions, "fast": FastOptions, "pyomo": PyomoOptions,
                                           "relaxation": RelaxationOptions}
"""The options dataclass of each built-in method."""

__all__ = ["Solution", "SolveStatus", "SolverError", "InvalidDecisionError", "solve", "register_method", "methods",
           "make_solution", "fail_all_solution", "relative_gap", "STATUSES", "SolverOptions", "ExactOptions",
           "FastOptions", "PyomoOptions", "RelaxationOptions", "OPTIONS"]
