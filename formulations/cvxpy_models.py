"""CVXPY statements of the snapshot problem's convex parts (DPP: build once, re-solve with new data).

Two problems, each built for a size and filled from a snapshot through ``cp.Parameter`` values, so
re-solving with new data skips CVXPY's canonicalization (``problem.is_dpp()`` holds for both):

* :func:`allocation_problem` (K served MUs, M servers): the allocation for a fixed placement and a
  fixed served set. Variables per served MU: transmission time ``t``, compute time ``s``, CPU share
  ``phi = f / cpu_hz[m]`` and ``z`` with ``(alpha, t, z)`` in the exponential cone
  (``z >= t exp(alpha / t)``); energy ``k (z - t)`` with ``k = N0 B / g``, ``alpha = D ln2 / B``;
  ``t >= t_min``, ``t + s <= T = deadline - relay``, ``s >= (c / F) / phi``, shares of a server sum
  to at most 1 (membership matrix as a parameter).

* :func:`relaxation_problem` (N MUs, M servers): the continuous relaxation of the disaggregated
  convex MINLP of docs/model.md, section 5 (binaries relaxed to [0, 1]): ``x[n,m]`` hosted, ``w[n,m]``
  served at, perspective energy ``k (z - t)`` with ``(alpha w, t, z)`` in the exponential cone,
  ``t >= t_min w``, ``t + s <= T w``, ``s >= (c/F) w^2 / phi`` (rotated cone), CPU shares, storage,
  pinned DTs, failure and migration penalties. Its optimum is a lower bound of the snapshot optimum
  (up to the conic solver's tolerance). Exponential cones need Clarabel (or SCS, ECOS).

Objective terms are divided by a ``scale`` (J) chosen by the caller so that the conic solver's
absolute tolerances act on numbers of order one; ``scale`` multiplies them back.

Formulations state problems; solvers/ chooses the algorithms.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wdtnopt import physics
from wdtnopt.snapshot import Snapshot

from .coefficients import allowed_hosts, energy_coefficients, server_up, storage_capacity_bits


STORAGE_UNIT_BITS = 1e9
"""Storage rows are written in this many bits (so their coefficients are of order one)."""

TIGHT_CLARABEL = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10}


@dataclass
class ParamProblem:
    """A DPP CVXPY problem with its parameters and variables by name."""

    problem: Any
    params: dict[str, Any]
    vars: dict[str, Any]
    scale: float = 1.0
    constraints: dict[str, Any] = field(default_factory=dict)  # named coupling constraints (for their duals)

    def solve(self, solver: str = "CLARABEL", **kwargs: Any) -> float:
        """Solve; returns the optimal value in J (the objective times ``scale``).

        Clarabel runs at tight tolerances (1e-10) unless ``kwargs`` say otherwise: objectives can be
        small in the units of ``scale`` and its default absolute gap would show at 1e-6 relative.
        """
        if solver.upper() == "CLARABEL" and not kwargs:
            kwargs = dict(TIGHT_CLARABEL)
        self.problem.solve(solver=solver, **kwargs)
        return float(self.problem.value) * self.scale


# -- (i) fixed placement, fixed served set ---------------------------------------------------------
def allocation_problem(K: int, M: int) -> ParamProblem:
    """The allocation of K served MUs on M servers (data set by :func:`set_allocation_data`)."""
    import cvxpy as cp

    p = {
        "alpha": cp.Parameter(K, nonneg=True),
        "k": cp.Parameter(K, nonneg=True),           # N0 B / g divided by scale
        "t_min": cp.Parameter(K, nonneg=True),
        "budget": cp.Parameter(K),                   # T = deadline - relay at the host
        "work": cp.Parameter(K, nonneg=True),        # c / cpu_hz[host] (s at the whole server)
        "member": cp.Parameter((M, K), nonneg=True),  # 1 if MU k is hosted on server m
    }
    t = cp.Variable(K, name="t")
    s = cp.Variable(K, name="s", nonneg=True)
    phi = cp.Variable(K, name="phi", nonneg=True)
    z = cp.Variable(K, name="z")
    cons = [
        cp.constraints.ExpCone(p["alpha"], t, z),   # z >= t exp(alpha / t)
        t >= p["t_min"],
        t + s <= p["budget"],
        s >= cp.multiply(p["work"], cp.inv_pos(phi)),
        p["member"] @ phi <= 1,
        phi <= 1,
    ]
    obj = cp.Minimize(p["k"] @ (z - t))
    return ParamProblem(cp.Problem(obj, cons), p, {"t": t, "s": s, "phi": phi, "z": z},
                        constraints={"cpu": cons[4]})


def set_allocation_data(pp: ParamProblem, snapshot: Snapshot, placement, mus, scale: float | None = None) -> None:
    """Fill :func:`allocation_problem` for the served MUs ``mus`` at ``placement``."""
    s = snapshot
    mus = np.asarray(mus, dtype=np.int64)
    host = np.asarray(placement, dtype=np.int64)[mus]
    alpha, k = energy_coefficients(s)
    if scale is None:  # the least possible energy (each MU alone with the whole deadline): objective >= 1
        e_floor = physics.energy_for_time(np.maximum(s.deadline[mus] - s.relay[mus, host], 1e-9), s.data_bits[mus],
                                          s.bandwidth[mus], s.noise_psd[mus], s.serving_gain[mus])
        scale = float(e_floor.sum()) if mus.size and float(e_floor.sum()) > 0 else 1.0
    pp.scale = scale
    pp.params["alpha"].value = alpha[mus]
    pp.params["k"].value = k[mus] / scale
    pp.params["t_min"].value = s.t_min[mus]
    pp.params["budget"].value = s.deadline[mus] - s.relay[mus, host]
    pp.params["work"].value = s.cycles[mus] / s.cpu_hz[host]
    member = np.zeros((s.n_bss, mus.size))
    member[host, np.arange(mus.size)] = 1.0
    pp.params["member"].value = member


def solve_allocation_cvxpy(snapshot: Snapshot, placement, served, solver: str = "CLARABEL", level=None,
                           **kwargs: Any) -> tuple[float, np.ndarray, np.ndarray]:
    """Energy (J), tx_time[N] and cpu_hz[N] of the fixed-placement, fixed-served-set allocation.

    ``level`` [N] (a snapshot with a semantic menu): the allocation of those levels, i.e. the same
    problem on ``snapshot.at_levels(level)`` (data ``rho_l D``, deadline less the extraction time);
    the energy then includes the served MUs' extraction energy (docs/solvers.md, "Semantic levels").
    """
    if level is not None and snapshot.level_ratio is not None:
        level = np.asarray(level, dtype=np.int64)
        value, tx, cpu = solve_allocation_cvxpy(snapshot.at_levels(level), placement, served, solver, **kwargs)
        ext = snapshot.extraction_energy_j[np.arange(snapshot.n_mus), level]
        return value + float(ext[np.asarray(served, dtype=bool)].sum()), tx, cpu
    s = snapshot
    mus = np.flatnonzero(np.asarray(served, dtype=bool))
    tx = np.zeros(s.n_mus)
    cpu = np.zeros(s.n_mus)
    if mus.size == 0:
        return 0.0, tx, cpu
    pp = allocation_problem(mus.size, s.n_bss)
    set_allocation_data(pp, s, placement, mus)
    value = pp.solve(solver, **kwargs)
    host = np.asarray(placement)[mus]
    tx[mus] = pp.vars["t"].value
    cpu[mus] = pp.vars["phi"].value * s.cpu_hz[host]
    return value, tx, cpu


# -- (ii) continuous relaxation of the MINLP --------------------------------------------------------
def relaxation_problem(N: int, M: int) -> ParamProblem:
    """The continuous relaxation of the snapshot MINLP for N MUs and M servers."""
    import cvxpy as cp

    p = {
        "alpha": cp.Parameter((N, M), nonneg=True),      # alpha_n on every column
        "k": cp.Parameter((N, M), nonneg=True),          # k_n / scale on every column
        "t_min": cp.Parameter((N, M), nonneg=True),
        "budget": cp.Parameter((N, M), nonneg=True),     # max(T[n,m], 0)
        "work": cp.Parameter((N, M), nonneg=True),       # c_n / cpu_hz[m]
        "can_serve": cp.Parameter((N, M), nonneg=True),  # 1 if n may be served on m (requesting, not migrating, feasible)
        "can_host": cp.Parameter((N, M), nonneg=True),   # 1 if n may be hosted on m (0 off prev for pinned DTs)
        "move_cost": cp.Parameter((N, M), nonneg=True),  # migration penalty / scale if m != prev
        "fail_cost": cp.Parameter(N, nonneg=True),       # failure penalty / scale of requesting MUs
        "size": cp.Parameter(N, nonneg=True),            # dt_size / STORAGE_UNIT_BITS
        "storage": cp.Parameter(M, nonneg=True),         # storage (evaluate's tolerance) / STORAGE_UNIT_BITS
    }
    x = cp.Variable((N, M), name="x", nonneg=True)
    w = cp.Variable((N, M), name="w", nonneg=True)
    t = cp.Variable((N, M), name="t", nonneg=True)
    s = cp.Variable((N, M), name="s", nonneg=True)
    phi = cp.Variable((N, M), name="phi", nonneg=True)
    z = cp.Variable((N, M), name="z")
    q = cp.Variable((N, M), name="q", nonneg=True)  # q >= w^2 / phi
    u = cp.Variable(N, name="u", nonneg=True)  # failure: u >= 1 - sum_m w
    cpu = cp.sum(phi, axis=0) <= 1
    storage = p["size"] @ x <= p["storage"]
    cons = [
        cpu,
        storage,
        u >= 1 - cp.sum(w, axis=1),
        cp.sum(x, axis=1) == 1,
        x <= p["can_host"],
        w <= x,
        w <= p["can_serve"],
        *_serve_rows(p, w, t, s, phi, z, q),
    ]
    # failures through their own variable u, not "fail_cost (1 - sum w)": an objective far below the
    # penalties is then not the difference of large numbers
    obj = (cp.sum(cp.multiply(p["k"], z - t)) + p["fail_cost"] @ u + cp.sum(cp.multiply(p["move_cost"], x)))
    return ParamProblem(cp.Problem(cp.Minimize(obj), cons), p,
                        {"x": x, "w": w, "t": t, "s": s, "phi": phi, "z": z, "q": q, "u": u},
                        constraints={"cpu": cpu, "storage": storage})


def _serve_rows(p: dict[str, Any], w: Any, t: Any, s: Any, phi: Any, z: Any, q: Any) -> list[Any]:
    """The relaxed rows of the serve options (one per row of ``w``): perspective energy, power cap,
    deadline, compute latency and CPU share (``p``: ``alpha``, ``t_min``, ``budget``, ``work``)."""
    import cvxpy as cp

    return [
        cp.constraints.ExpCone(cp.multiply(p["alpha"], w), t, z),  # z >= t exp(alpha w / t)
        t >= cp.multiply(p["t_min"], w),
        t + s <= cp.multiply(p["budget"], w),
        s >= cp.multiply(p["work"], q),
        phi <= w,
        # q >= w^2 / phi, elementwise, as rotated cones: ||(2w, q - phi)|| <= q + phi
        cp.constraints.SOC(cp.vec(q + phi, order="F"),
                           cp.vstack([2 * cp.vec(w, order="F"), cp.vec(q - phi, order="F")]), axis=0),
    ]


def set_relaxation_data(pp: ParamProblem, snapshot: Snapshot, scale: float | None = None) -> None:
    """Fill :func:`relaxation_problem` from a snapshot (``scale``: J per objective unit)."""
    data, pp.scale = relaxation_data(snapshot, scale)
    for name, value in data.items():
        pp.params[name].value = value


COEFFICIENT_MAX = 1e300
"""The largest objective coefficient of a relaxation in units of its scale: :func:`objective_scale`."""


def objective_scale(snapshot: Snapshot, scale: float | None = None, extra_j: np.ndarray | None = None) -> float:
    """The scale (J per objective unit) of :func:`relaxation_data`: ``scale`` (default: the requests'
    failure penalties plus the migration penalties, 1 where that is 0), raised where needed so that
    no coefficient divided by it exceeds :data:`COEFFICIENT_MAX`.

    A scale is any positive number (the units cancel: the objective times the scale is the value in
    J), but the caller's choice, the cost of a known decision, is that decision's energy of about
    1e-309 J at data of 1e-300 bits (subnormal), and ``k / scale`` (``k = N0 B / g``, W) overflowed
    to inf there. The floor is ``max(k, penalties, extra_j) / COEFFICIENT_MAX`` over finite values, far
    below any scale of data of more than 1e-280 bits, where the scale is unchanged.

    Parameters
    ----------
    snapshot : Snapshot
    scale : float, optional
        The caller's scale (J), > 0.
    extra_j : ndarray, optional
        Further objective coefficients (J) divided by the scale (a menu's extraction energies).

    Returns
    -------
    float
        The scale (J), finite and > 0 whenever ``scale`` is.
    """
    s = snapshot
    if scale is None:
        scale = float(s.failure_penalty[s.request].sum() + s.migration_penalty.sum())
        scale = scale if scale > 0 else 1.0
    _, k = energy_coefficients(s)
    parts = [np.asarray(v, dtype=float).ravel() for v in (k, s.failure_penalty, s.migration_penalty,
                                                          () if extra_j is None else extra_j)]
    values = np.concatenate(parts)
    values = values[np.isfinite(values)]
    largest = float(values.max()) if values.size else 0.0
    return max(float(scale), largest / COEFFICIENT_MAX)


def relaxation_data(snapshot: Snapshot, scale: float | None = None) -> tuple[dict[str, np.ndarray], float]:
    """The values of :func:`relaxation_problem`'s parameters for a snapshot, and the scale (J, the
    caller's ``scale`` raised by :func:`objective_scale` where a coefficient over it would overflow)."""
    s = snapshot
    N, M = s.n_mus, s.n_bss
    alpha, k = energy_coefficients(s)
    scale = objective_scale(s, scale)
    budget = s.deadline[:, None] - s.relay
    tmin = np.where(np.isfinite(s.t_min), s.t_min, 0.0)
    serve = (s.request & ~s.migrating & np.isfinite(s.t_min))[:, None] & (budget >= s.t_min[:, None])
    serve &= (s.cycles[:, None] == 0) | ((s.cpu_hz[None, :] > 0) & (budget > s.t_min[:, None]))
    # the update alone, at the whole server, must end before the deadline: c / F < T, compared as
    # c < T F so that a server of 1e-300 Hz does not overflow c / F (such a pair is not servable)
    busy = s.cycles[:, None] > 0
    serve &= ~busy | (s.cycles[:, None] < budget * s.cpu_hz[None, :])
    serve &= server_up(s)[None, :]
    host = allowed_hosts(s).astype(float)
    move = np.ones((N, M)) * (s.migration_penalty / scale)[:, None]
    move[np.arange(N), s.placement_prev] = 0.0
    # c / F (s at the whole server) where the pair is servable; 0 where its w is 0 (the row is void)
    work = np.zeros((N, M))
    np.divide(np.broadcast_to(s.cycles[:, None], (N, M)), np.broadcast_to(s.cpu_hz[None, :], (N, M)), out=work,
              where=serve & busy)
    return {"alpha": np.repeat(alpha[:, None], M, axis=1), "k": np.repeat((k / scale)[:, None], M, axis=1),
            "t_min": np.repeat(tmin[:, None], M, axis=1), "budget": np.maximum(budget, 0.0), "work": work,
            "can_serve": serve.astype(float), "can_host": host, "move_cost": move,
            "fail_cost": np.where(s.request, s.failure_penalty, 0.0) / scale,
            "size": s.dt_size_bits / STORAGE_UNIT_BITS, "storage": storage_capacity_bits(s) / STORAGE_UNIT_BITS}, scale


def level_relaxation_problem(snapshot: Snapshot, scale: float | None = None) -> tuple[ParamProblem, np.ndarray, float]:
    """The continuous relaxation of the snapshot MINLP with a semantic compression menu
    (docs/solvers.md, "Semantic levels"), stated as :func:`relaxation_problem`: ``x[n,m]`` the DT's
    hosting, one serve option per (MU, level) ``k = n L + l`` of
    :func:`~wdtnopt.solvers.levels.expand` (``w``, ``t``, ``s``, ``phi``, ``z``, ``q`` of its
    level's data and deadline), ``sum_l w[(n,l),m] <= x[n,m]``, the failure ``u[n] >= 1 -
    sum_{l,m} w[(n,l),m]`` as the DT's own variable with its own penalty, and a served option's
    extraction energy ``e_ext w`` in the objective, everything divided by ``scale`` (J).

    Returns the problem (CPU and storage rows named for their duals), ``level[k]`` of each option,
    and the constant to subtract from its optimum (0: the objective is the real problem's).
    """
    import cvxpy as cp
    from wdtnopt.solvers.levels import expand

    s = snapshot
    sv, group, lvl = expand(s)
    N, M, K = s.n_mus, s.n_bss, sv.n_mus
    # one scale for the options and the DTs (each raised alike would be: the same penalties and k)
    scale = max(objective_scale(s, scale, s.extraction_energy_j), objective_scale(sv, scale))
    opt, _ = relaxation_data(sv, scale)         # the options' data (their level's data and deadline)
    p = {k: cp.Constant(opt[k]) for k in ("alpha", "k", "t_min", "budget", "work", "can_serve")}
    real, _ = relaxation_data(s, scale)         # the DTs' hosting, moves, failures and storage
    member = np.zeros((N, K))
    member[group, np.arange(K)] = 1.0
    x = cp.Variable((N, M), name="x", nonneg=True)
    u = cp.Variable(N, name="u", nonneg=True)
    w, t, sc, phi, z, q = (cp.Variable((K, M), name=name, nonneg=name != "z") for name in ("w", "t", "s", "phi", "z", "q"))
    cpu = cp.sum(phi, axis=0) <= 1
    storage = real["size"] @ x <= real["storage"]
    cons = [
        cpu,
        storage,
        u >= 1 - member @ cp.sum(w, axis=1),
        cp.sum(x, axis=1) == 1,
        x <= real["can_host"],
        member @ w <= x,
        w <= p["can_serve"],
        *_serve_rows(p, w, t, sc, phi, z, q),
    ]
    ext = s.extraction_energy_j[group, lvl] / scale
    obj = (cp.sum(cp.multiply(p["k"], z - t)) + ext @ cp.sum(w, axis=1) + real["fail_cost"] @ u
           + cp.sum(cp.multiply(real["move_cost"], x)))
    problem = cp.Problem(cp.Minimize(obj), cons)
    return (ParamProblem(problem, {}, {"x": x, "w": w, "t": t, "s": sc, "phi": phi, "z": z, "q": q, "u": u}, scale,
                         constraints={"cpu": cpu, "storage": storage}), lvl, 0.0)
