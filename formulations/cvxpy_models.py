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
        cp.constraints.ExpCone(cp.multiply(p["alpha"], w), t, z),  # z >= t exp(alpha w / t)
        t >= cp.multiply(p["t_min"], w),
        t + s <= cp.multiply(p["budget"], w),
        s >= cp.multiply(p["work"], q),
        phi <= w,
    ]
    # q >= w^2 / phi, elementwise, as rotated cones: ||(2w, q - phi)|| <= q + phi
    cons.append(cp.constraints.SOC(cp.vec(q + phi, order="F"),
                                   cp.vstack([2 * cp.vec(w, order="F"), cp.vec(q - phi, order="F")]), axis=0))
    # failures through their own variable u, not "fail_cost (1 - sum w)": an objective far below the
    # penalties is then not the difference of large numbers
    obj = (cp.sum(cp.multiply(p["k"], z - t)) + p["fail_cost"] @ u + cp.sum(cp.multiply(p["move_cost"], x)))
    return ParamProblem(cp.Problem(cp.Minimize(obj), cons), p,
                        {"x": x, "w": w, "t": t, "s": s, "phi": phi, "z": z, "q": q, "u": u},
                        constraints={"cpu": cpu, "storage": storage})


def set_relaxation_data(pp: ParamProblem, snapshot: Snapshot, scale: float | None = None) -> None:
    """Fill :func:`relaxation_problem` from a snapshot (``scale``: J per objective unit)."""
    s = snapshot
    N, M = s.n_mus, s.n_bss
    alpha, k = energy_coefficients(s)
    if scale is None:
        scale = float(s.failure_penalty[s.request].sum() + s.migration_penalty.sum())
        scale = scale if scale > 0 else 1.0
    pp.scale = scale
    budget = s.deadline[:, None] - s.relay
    tmin = np.where(np.isfinite(s.t_min), s.t_min, 0.0)
    serve = (s.request & ~s.migrating & np.isfinite(s.t_min))[:, None] & (budget >= s.t_min[:, None])
    serve &= (s.cycles[:, None] == 0) | ((s.cpu_hz[None, :] > 0) & (budget > s.t_min[:, None]))
    serve &= server_up(s)[None, :]
    host = allowed_hosts(s).astype(float)
    move = np.ones((N, M)) * (s.migration_penalty / scale)[:, None]
    move[np.arange(N), s.placement_prev] = 0.0
    with np.errstate(divide="ignore"):
        work = np.where(s.cpu_hz[None, :] > 0, s.cycles[:, None] / np.where(s.cpu_hz > 0, s.cpu_hz, 1.0)[None, :], 0.0)
    pp.params["alpha"].value = np.repeat(alpha[:, None], M, axis=1)
    pp.params["k"].value = np.repeat((k / scale)[:, None], M, axis=1)
    pp.params["t_min"].value = np.repeat(tmin[:, None], M, axis=1)
    pp.params["budget"].value = np.maximum(budget, 0.0)
    pp.params["work"].value = work
    pp.params["can_serve"].value = serve.astype(float)
    pp.params["can_host"].value = host
    pp.params["move_cost"].value = move
    pp.params["fail_cost"].value = np.where(s.request, s.failure_penalty, 0.0) / scale
    pp.params["size"].value = s.dt_size_bits / STORAGE_UNIT_BITS
    pp.params["storage"].value = storage_capacity_bits(s) / STORAGE_UNIT_BITS


def level_relaxation_problem(snapshot: Snapshot, scale: float | None = None) -> tuple[ParamProblem, np.ndarray, float]:
    """The continuous relaxation of the snapshot MINLP with a semantic compression menu
    (docs/solvers.md, "Semantic levels"): :func:`relaxation_problem` of the virtual snapshot with
    one MU per (MU, level), plus the rows that tie the copies of a DT (equal ``x``, at most one unit
    of ``w`` over its copies). Returns the problem, ``level[k]`` of each copy, and the constant
    ``shift`` (in objective units) to subtract from its optimum to get the real problem's value.
    """
    import cvxpy as cp
    from wdtnopt.solvers.levels import expand

    s = snapshot
    sv, group, lvl = expand(s)
    if scale is None:
        scale = float(s.failure_penalty[s.request].sum() + s.migration_penalty.sum())
        scale = scale if scale > 0 else 1.0
    pp = relaxation_problem(sv.n_mus, s.n_bss)
    set_relaxation_data(pp, sv, scale)
    x, w = pp.vars["x"], pp.vars["w"]
    first = np.flatnonzero(lvl == 0)                      # copy 0 of every DT, in MU order
    extra = [x[k] == x[first[group[k]]] for k in np.flatnonzero(lvl > 0)]
    member = np.zeros((s.n_mus, sv.n_mus))
    member[group, np.arange(sv.n_mus)] = 1.0
    extra.append(member @ cp.sum(w, axis=1) <= 1)
    problem = cp.Problem(pp.problem.objective, pp.problem.constraints + extra)
    # the virtual failure term prices every requesting copy; the real one every requesting MU once
    shift = float((sv.failure_penalty[sv.request].sum() - s.failure_penalty[s.request].sum()) / scale)
    return ParamProblem(problem, pp.params, pp.vars, scale, constraints=pp.constraints), lvl, shift
