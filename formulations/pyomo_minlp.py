"""The snapshot MINLP (docs/model.md, section 5) as a Pyomo model, in the disaggregated convex form.

Any Pyomo MINLP solver can take it; ``wdtnopt.solve(snapshot, method="pyomo")`` uses SCIP through
Pyomo's ``scip_direct`` interface (``pyomo.contrib.solver``, backed by pyscipopt; no SCIP executable
needed).

Sets: MUs ``n``, servers ``m``; pairs ``P`` = (n, m) where n requests, is not migrating, may be hosted
on m and can meet its deadline there. Variables:

* ``x[n,m]`` binary: DT n hosted on m (fixed to ``placement_prev`` for pinned DTs);
* ``w[n,m]`` binary, (n, m) in P: n served at m (``w <= x``);
* ``t[n,m]`` transmission time, ``s[n,m]`` compute time, ``phi[n,m]`` CPU share of ``cpu_hz[m]``,
  ``z[n,m]`` epigraph of the perspective ``t exp(a w / t)`` with ``a = D ln2 / B``.

Constraints, for (n, m) in P (``T = deadline - relay[n,m]``, ``c`` cycles, ``F = cpu_hz[m]``):

    t >= t_min                          power cap (also when not served: keeps t exp(a w / t) tame)
    t + s <= T w + t_min (1 - w)        deadline
    s phi >= (c / F) w^2                compute latency c w^2 / f (rotated second-order cone)
    z >= t exp(a w / t)                 exponential-cone perspective; energy = (N0 B / g)(z - t)
    sum_n phi[n,m] <= 1                 CPU
    sum_n dt_size[n] x[n,m] <= storage[m]
    sum_m x[n,m] = 1;  w[n,m] <= x[n,m]

Objective (divided by ``scale``, J): served energy ``e >= (k / scale)(z - t)`` + failure penalties
``penalty u`` with ``u >= 1 - sum_m w`` (its own variable, so that a small objective is never the
difference of large penalties) + migration penalties of moved DTs. With ``w = 1`` the constraints
are exactly those of docs/model.md, section 5; with ``w = 0`` they force ``t = t_min``, ``s = 0``
and zero energy. The continuous relaxation is convex.

Why ``t >= t_min`` even for a pair that is not served: a first version used a tiny ``t = 1e-6 s``
there, and SCIP then reasoned about ``exp(a w / t)`` over boxes where it overflows and returned an
"optimal" bound above a feasible point's value. With ``t >= t_min`` the exponent stays below
``ln(1 + SNR at p_max)`` on the whole box.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from wdtnopt.snapshot import Snapshot

from .coefficients import allowed_hosts, energy_coefficients, server_up, storage_capacity_bits


def servable_pairs(s: Snapshot) -> list[tuple[int, int]]:
    """(n, m) pairs that may be served: requesting, not migrating, host allowed, deadline reachable."""
    budget = s.deadline[:, None] - s.relay
    ok = (s.request & ~s.migrating & np.isfinite(s.t_min))[:, None] & (budget >= s.t_min[:, None])
    ok &= (s.cycles[:, None] == 0) | ((s.cpu_hz[None, :] > 0) & (budget > s.t_min[:, None]))
    with np.errstate(divide="ignore", invalid="ignore"):
        fmin = np.where(s.cycles[:, None] > 0, s.cycles[:, None] / (budget - s.t_min[:, None]), 0.0)
    ok &= fmin <= s.cpu_hz[None, :]
    ok &= allowed_hosts(s) & server_up(s)[None, :]
    return [(int(n), int(m)) for n, m in zip(*np.nonzero(ok))]


def build_model(snapshot: Snapshot, scale: float | None = None) -> Any:
    """The Pyomo ``ConcreteModel`` of the snapshot MINLP.

    The objective is in units of ``model.scale`` J and leaves out ``model.fixed_cost`` (J, the
    penalties of requests no server can serve): the snapshot objective is
    ``scale * obj + fixed_cost``. Pass ``scale`` near the optimum (the cost of a known decision):
    the solver's absolute tolerances then act on the objective relative to it.
    """
    return _build(snapshot, snapshot, np.arange(snapshot.n_mus), None, scale)


def _build(s: Snapshot, sv: Snapshot, group: np.ndarray, ext: np.ndarray | None, scale: float | None) -> Any:
    """The model on the DTs of ``s`` whose serve options are the MUs ``k`` of ``sv`` (``group[k]``:
    the DT of k; without a menu ``sv = s`` and k = n); ``ext[k]`` (J): an energy paid when k is
    served (the extraction energy of a level), None for none."""
    import pyomo.environ as pyo

    N, M = s.n_mus, s.n_bss
    if scale is None:
        scale = float(s.failure_penalty[s.request].sum() + s.migration_penalty.sum())
        scale = scale if scale > 0 else 1.0
    alpha, k = energy_coefficients(sv)
    budget = sv.deadline[:, None] - sv.relay
    pairs = servable_pairs(sv)

    mdl = pyo.ConcreteModel(name="wdtn_snapshot")
    mdl.scale = scale
    mdl.N = pyo.RangeSet(0, N - 1)
    mdl.M = pyo.RangeSet(0, M - 1)
    mdl.P = pyo.Set(initialize=pairs, dimen=2)
    mdl.x = pyo.Var(mdl.N, mdl.M, domain=pyo.Binary)
    hosts = allowed_hosts(s)
    for n in range(N):
        if s.pinned[n]:
            for m in range(M):
                mdl.x[n, m].fix(1 if m == s.placement_prev[n] else 0)
        else:
            for m in np.flatnonzero(~hosts[n]):  # no DT moves onto a down server
                mdl.x[n, int(m)].fix(0)
    mdl.w = pyo.Var(mdl.P, domain=pyo.Binary)

    def t_bounds(_, n, m):
        return (float(sv.t_min[n]), max(float(budget[n, m]), float(sv.t_min[n])))

    mdl.t = pyo.Var(mdl.P, bounds=t_bounds)
    mdl.s = pyo.Var(mdl.P, bounds=lambda _, n, m: (0.0, max(float(budget[n, m]), 0.0)))
    mdl.phi = pyo.Var(mdl.P, bounds=(0.0, 1.0))

    def z_bounds(_, n, m):
        # z <= T exp(alpha / t_min): the largest perspective value on the feasible set
        hi = max(float(budget[n, m]), float(sv.t_min[n])) * float(np.exp(alpha[n] / sv.t_min[n]))
        return (0.0, hi)

    mdl.z = pyo.Var(mdl.P, bounds=z_bounds)

    mdl.assign = pyo.Constraint(mdl.N, rule=lambda mm, n: sum(mm.x[n, m] for m in mm.M) == 1)
    cap = storage_capacity_bits(s)
    mdl.storage = pyo.Constraint(mdl.M, rule=lambda mm, m: sum(float(s.dt_size_bits[n]) / 1e9 * mm.x[n, m] for n in mm.N)
                                 <= float(cap[m]) / 1e9)
    if ext is None:
        mdl.host = pyo.Constraint(mdl.P, rule=lambda mm, n, m: mm.w[n, m] <= mm.x[n, m])
    else:   # a DT is served at its host through at most one of its options (levels)
        at: dict[tuple[int, int], list[int]] = {}
        for (kk, m) in pairs:
            at.setdefault((int(group[kk]), m), []).append(kk)
        mdl.H = pyo.Set(initialize=sorted(at), dimen=2)
        mdl.host = pyo.Constraint(mdl.H, rule=lambda mm, n, m: sum(mm.w[kk, m] for kk in at[n, m]) <= mm.x[n, m])
    # power cap: the lower bound t >= t_min of mdl.t
    mdl.deadline = pyo.Constraint(mdl.P, rule=lambda mm, n, m: mm.t[n, m] + mm.s[n, m]
                                  <= float(budget[n, m]) * mm.w[n, m] + float(sv.t_min[n]) * (1 - mm.w[n, m]))

    def compute_rule(mm, n, m):
        if sv.cycles[n] == 0:
            return pyo.Constraint.Skip
        return mm.s[n, m] * mm.phi[n, m] >= float(sv.cycles[n] / sv.cpu_hz[m]) * mm.w[n, m] ** 2

    mdl.compute = pyo.Constraint(mdl.P, rule=compute_rule)
    mdl.share_off = pyo.Constraint(mdl.P, rule=lambda mm, n, m: mm.phi[n, m] <= mm.w[n, m])
    mdl.cpu = pyo.Constraint(mdl.M, rule=lambda mm, m: sum(mm.phi[n, mm_] for (n, mm_) in pairs if mm_ == m) <= 1
                             if any(mm_ == m for (_, mm_) in pairs) else pyo.Constraint.Skip)
    mdl.perspective = pyo.Constraint(mdl.P, rule=lambda mm, n, m: mm.z[n, m]
                                     >= mm.t[n, m] * pyo.exp(float(alpha[n]) * mm.w[n, m] / mm.t[n, m]))
    # energy epigraph in objective units: the solver's feasibility tolerance then acts on the energy
    # relative to ``scale``, not on z (whose value is far above z - t when the SNR is small)
    e_hi = {(n, m): float(k[n] / scale) * max(z_bounds(None, n, m)[1] - float(sv.t_min[n]), 0.0) for (n, m) in pairs}
    mdl.e = pyo.Var(mdl.P, bounds=lambda _, n, m: (0.0, e_hi[n, m] if np.isfinite(e_hi[n, m]) else None))
    mdl.energy = pyo.Constraint(mdl.P, rule=lambda mm, n, m: mm.e[n, m]
                                >= float(k[n] / scale) * (mm.z[n, m] - mm.t[n, m]))

    req = s.request
    servable = sorted({int(group[n]) for n, _ in pairs})
    # failure of a servable request as its own variable u >= 1 - sum_m w (not "penalty (1 - w)"):
    # an objective far below the penalties is then not the difference of large numbers
    mdl.U = pyo.Set(initialize=servable)
    mdl.u = pyo.Var(mdl.U, bounds=(0.0, 1.0))
    mdl.fail = pyo.Constraint(mdl.U, rule=lambda mm, n: mm.u[n] + sum(mm.w[nn, m] for (nn, m) in pairs
                                                                        if group[nn] == n) >= 1)
    never = float(s.failure_penalty[req & ~np.isin(np.arange(N), servable)].sum())
    mdl.fixed_cost = never  # J: requests that cannot be served anywhere (not in the objective)
    energy = sum(mdl.e[n, m] for (n, m) in pairs)
    if ext is not None:   # the extraction energy of the served level, in objective units
        energy = energy + sum(float(ext[n] / scale) * mdl.w[n, m] for (n, m) in pairs if ext[n] > 0)
    failures = sum(float(s.failure_penalty[n] / scale) * mdl.u[n] for n in servable)
    moves = sum(float(s.migration_penalty[n] / scale) * (1 - mdl.x[n, int(s.placement_prev[n])])
                for n in range(N) if not s.pinned[n])
    mdl.obj = pyo.Objective(expr=energy + failures + moves, sense=pyo.minimize)
    return mdl


def read_decision(mdl: Any, snapshot: Snapshot) -> dict[str, np.ndarray]:
    """placement, served, tx_time and cpu_hz from a solved model (rounded binaries)."""
    import pyomo.environ as pyo

    s = snapshot
    N, M = s.n_mus, s.n_bss
    placement = np.array([max(range(M), key=lambda m: pyo.value(mdl.x[n, m])) for n in range(N)], dtype=np.int64)
    served = np.zeros(N, dtype=bool)
    tx = np.zeros(N)
    cpu = np.zeros(N)
    for (n, m) in mdl.P:
        if m == placement[n] and pyo.value(mdl.w[n, m]) > 0.5:
            served[n] = True
            tx[n] = pyo.value(mdl.t[n, m])
            cpu[n] = pyo.value(mdl.phi[n, m]) * s.cpu_hz[m]
    return {"placement": placement, "served": served, "tx_time": tx, "cpu_hz": cpu}


def build_level_model(snapshot: Snapshot, scale: float | None = None) -> tuple[Any, np.ndarray, np.ndarray]:
    """The MINLP of a snapshot with a semantic compression menu (docs/solvers.md, "Semantic levels").

    The model of :func:`build_model` with one serve option per (MU, level) pair: ``x[n,m]`` is the
    DT's placement as before; ``w[k,m]``, ``t``, ``s``, ``phi``, ``z``, ``e`` belong to the option
    ``k = n L + l`` of :func:`~wdtnopt.solvers.levels.expand` (its level's data and deadline less
    the extraction time), ``sum_l w[(n,l),m] <= x[n,m]`` (one level, at the host), the failure
    ``u[n] >= 1 - sum_{l,m} w[(n,l),m]`` is the DT's own variable with its own penalty, and a served
    option pays its extraction energy ``e_ext w``. The scale and ``fixed_cost`` are as in
    :func:`build_model` (pass ``scale`` near the optimum). Returns ``(model, group, level)`` with
    ``group[k]``, ``level[k]`` the MU and level of option k.
    """
    from wdtnopt.solvers.levels import expand

    s = snapshot
    sv, group, lvl = expand(s)
    ext = s.extraction_energy_j[group, lvl]
    return _build(s, sv, group, ext, scale), group, lvl


def read_level_decision(mdl: Any, snapshot: Snapshot, group: np.ndarray, lvl: np.ndarray) -> dict[str, np.ndarray]:
    """placement, served, level, tx_time and cpu_hz from a solved :func:`build_level_model` (rounded)."""
    import pyomo.environ as pyo

    s = snapshot
    N, M = s.n_mus, s.n_bss
    placement = np.array([max(range(M), key=lambda m: pyo.value(mdl.x[n, m])) for n in range(N)], dtype=np.int64)
    served = np.zeros(N, dtype=bool)
    level = np.zeros(N, dtype=np.int64)
    tx = np.zeros(N)
    cpu = np.zeros(N)
    for (k, m) in mdl.P:
        n = int(group[k])
        if m == placement[n] and not served[n] and pyo.value(mdl.w[k, m]) > 0.5:
            served[n], level[n] = True, int(lvl[k])
            tx[n] = pyo.value(mdl.t[k, m])
            cpu[n] = pyo.value(mdl.phi[k, m]) * s.cpu_hz[m]
    return {"placement": placement, "served": served, "level": level, "tx_time": tx, "cpu_hz": cpu}
