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
    import pyomo.environ as pyo

    s = snapshot
    N, M = s.n_mus, s.n_bss
    if scale is None:
        scale = float(s.failure_penalty[s.request].sum() + s.migration_penalty.sum())
        scale = scale if scale > 0 else 1.0
    alpha, k = energy_coefficients(s)
    budget = s.deadline[:, None] - s.relay
    pairs = servable_pairs(s)

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
        return (float(s.t_min[n]), max(float(budget[n, m]), float(s.t_min[n])))

    mdl.t = pyo.Var(mdl.P, bounds=t_bounds)
    mdl.s = pyo.Var(mdl.P, bounds=lambda _, n, m: (0.0, max(float(budget[n, m]), 0.0)))
    mdl.phi = pyo.Var(mdl.P, bounds=(0.0, 1.0))

    def z_bounds(_, n, m):
        # z <= T exp(alpha / t_min): the largest perspective value on the feasible set
        hi = max(float(budget[n, m]), float(s.t_min[n])) * float(np.exp(alpha[n] / s.t_min[n]))
        return (0.0, hi)

    mdl.z = pyo.Var(mdl.P, bounds=z_bounds)

    mdl.assign = pyo.Constraint(mdl.N, rule=lambda mm, n: sum(mm.x[n, m] for m in mm.M) == 1)
    cap = storage_capacity_bits(s)
    mdl.storage = pyo.Constraint(mdl.M, rule=lambda mm, m: sum(float(s.dt_size_bits[n]) / 1e9 * mm.x[n, m] for n in mm.N)
                                 <= float(cap[m]) / 1e9)
    mdl.host = pyo.Constraint(mdl.P, rule=lambda mm, n, m: mm.w[n, m] <= mm.x[n, m])
    # power cap: the lower bound t >= t_min of mdl.t
    mdl.deadline = pyo.Constraint(mdl.P, rule=lambda mm, n, m: mm.t[n, m] + mm.s[n, m]
                                  <= float(budget[n, m]) * mm.w[n, m] + float(s.t_min[n]) * (1 - mm.w[n, m]))

    def compute_rule(mm, n, m):
        if s.cycles[n] == 0:
            return pyo.Constraint.Skip
        return mm.s[n, m] * mm.phi[n, m] >= float(s.cycles[n] / s.cpu_hz[m]) * mm.w[n, m] ** 2

    mdl.compute = pyo.Constraint(mdl.P, rule=compute_rule)
    mdl.share_off = pyo.Constraint(mdl.P, rule=lambda mm, n, m: mm.phi[n, m] <= mm.w[n, m])
    mdl.cpu = pyo.Constraint(mdl.M, rule=lambda mm, m: sum(mm.phi[n, mm_] for (n, mm_) in pairs if mm_ == m) <= 1
                             if any(mm_ == m for (_, mm_) in pairs) else pyo.Constraint.Skip)
    mdl.perspective = pyo.Constraint(mdl.P, rule=lambda mm, n, m: mm.z[n, m]
                                     >= mm.t[n, m] * pyo.exp(float(alpha[n]) * mm.w[n, m] / mm.t[n, m]))
    # energy epigraph in objective units: the solver's feasibility tolerance then acts on the energy
    # relative to ``scale``, not on z (whose value is far above z - t when the SNR is small)
    e_hi = {(n, m): float(k[n] / scale) * max(z_bounds(None, n, m)[1] - float(s.t_min[n]), 0.0) for (n, m) in pairs}
    mdl.e = pyo.Var(mdl.P, bounds=lambda _, n, m: (0.0, e_hi[n, m] if np.isfinite(e_hi[n, m]) else None))
    mdl.energy = pyo.Constraint(mdl.P, rule=lambda mm, n, m: mm.e[n, m]
                                >= float(k[n] / scale) * (mm.z[n, m] - mm.t[n, m]))

    req = s.request
    servable = sorted({n for n, _ in pairs})
    # failure of a servable request as its own variable u >= 1 - sum_m w (not "penalty (1 - w)"):
    # an objective far below the penalties is then not the difference of large numbers
    mdl.U = pyo.Set(initialize=servable)
    mdl.u = pyo.Var(mdl.U, bounds=(0.0, 1.0))
    mdl.fail = pyo.Constraint(mdl.U, rule=lambda mm, n: mm.u[n] + sum(mm.w[n, m] for (nn, m) in pairs if nn == n) >= 1)
    never = float(s.failure_penalty[req & ~np.isin(np.arange(N), servable)].sum())
    mdl.fixed_cost = never  # J: requests that cannot be served anywhere (not in the objective)
    energy = sum(mdl.e[n, m] for (n, m) in pairs)
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

    :func:`build_model` of the virtual snapshot with one MU per (MU, level) (each with its level's
    data, deadline less the extraction time, and the extraction energy folded into its penalty),
    plus the rows that tie the copies of a DT (same placement, at most one served) and the objective
    of the real problem: energy + ``sum_{requesting n} p_n - sum_k served_k p'_k`` + migrations.
    Returns ``(model, group, level)`` with ``group[k]``, ``level[k]`` the MU and level of copy k.
    """
    import pyomo.environ as pyo
    from wdtnopt.solvers.levels import expand

    s = snapshot
    sv, group, lvl = expand(s)
    if scale is None:
        scale = float(s.failure_penalty[s.request].sum() + s.migration_penalty.sum())
        scale = scale if scale > 0 else 1.0
    mdl = build_model(sv, scale)
    first = {int(g): int(k) for k, g in reversed(list(enumerate(group)))}
    ties = [(k, first[int(group[k])], m) for k in range(sv.n_mus) if k != first[int(group[k])] and not sv.pinned[k]
            for m in range(s.n_bss)]
    mdl.tie = pyo.Constraint(range(len(ties)), rule=lambda mm, i: mm.x[ties[i][0], ties[i][2]] == mm.x[ties[i][1], ties[i][2]])
    copies: dict[int, list[tuple[int, int]]] = {}
    for (k, m) in mdl.P:
        copies.setdefault(int(group[k]), []).append((k, m))
    mdl.one_level = pyo.Constraint(sorted(copies), rule=lambda mm, n: sum(mm.w[k, m] for k, m in copies[n]) <= 1)
    mdl.obj.deactivate()
    k_e = sv.noise_psd * sv.bandwidth / sv.serving_gain
    energy = sum(float(k_e[k] / scale) * (mdl.z[k, m] - mdl.t[k, m]) for (k, m) in mdl.P)
    failures = float(s.failure_penalty[s.request].sum() / scale) - sum(
        float(sv.failure_penalty[k] / scale) * mdl.w[k, m] for (k, m) in mdl.P)
    moves = sum(float(sv.migration_penalty[k] / scale) * (1 - mdl.x[k, int(sv.placement_prev[k])])
                for k in range(sv.n_mus) if not sv.pinned[k])
    mdl.level_obj = pyo.Objective(expr=energy + failures + moves, sense=pyo.minimize)
    return mdl, group, lvl
