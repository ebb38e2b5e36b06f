"""The exact oracle with semantic compression levels (docs/solvers.md, section "Semantic levels").

Reduction
---------
For a *fixed* level ``l_n`` per MU, the snapshot problem with a menu is the menu-free problem on the
reduced snapshot (:func:`reduce_levels`): data ``rho_l D``, deadline shortened by the extraction time
``t_ext``, and the extraction energy ``e_ext`` folded into the failure penalty
``p' = p - e_ext`` (serving changes the cost by ``E + e_ext - p = E - p'``), plus the constant
``sum_{requesting n} e_ext[n, l_n]``. A level is *servable* only if it is on the MU's menu, its
extraction fits the deadline and ``e_ext <= p`` (else failing is never dearer than serving at it).

The level *choice* is one more discrete decision. :func:`expand` makes one virtual MU ``k = (n, l)``
per level, each with the reduced data of its level; the MILP master of solvers/exact.py is built on
the virtual MUs and then tied back to the real ones by linear rows: every copy of a DT has the same
placement (only copy 0 carries the DT's storage and migration penalty), and at most one copy is
served. Every row and every tangent cut is the same as in the menu-free master, so the master is a
relaxation and HiGHS's dual bound (shifted by the constant the virtual penalties leave out) is a
certified lower bound. Each master solution's served assignment (placement, served copies) is
allocated exactly per server and gets outer-approximation cuts; so, as in solvers/exact.py, an
assignment is revisited only once the bound has reached the incumbent, and the loop ends with
``bound >= objective (1 - gap)``.

With no menu the exact oracle never enters this module (its path is untouched).
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from wdtnopt.snapshot import PER_MU, REQUIRED, Snapshot

from . import Solution, make_solution
from .allocation import PairData, allocate, allocate_server
from .highs import RowBatch
from .options import ExactOptions, FastOptions


def _servable_levels(s: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """[N, L] levels that can be worth serving, and the extraction energy folded for them (0 elsewhere)."""
    t_ext, e_ext = s.extraction_time_s, s.extraction_energy_j
    ok = s.level_allowed & (t_ext < s.deadline[:, None]) & (e_ext <= s.failure_penalty[:, None])
    return ok, np.where(ok, e_ext, 0.0)


def reduce_levels(s: Snapshot, level: np.ndarray) -> tuple[Snapshot, float]:
    """The menu-free snapshot of fixed levels and the constant to add to its objective (see module
    docstring); an unservable level leaves its MU unservable (deadline -1) at its full penalty.

    Parameters
    ----------
    s : Snapshot with a menu
    level : array [N] of int, the level of every MU

    Returns
    -------
    (Snapshot, float)
        the reduced snapshot and ``sum_{requesting n} e_ext[n, level_n]`` over servable levels (J)
    """
    level = np.asarray(level, dtype=np.int64)
    ok, fold = _servable_levels(s)
    rows = np.arange(s.n_mus)
    at = s.at_levels(level)
    fields = {f: getattr(at, f) for f in REQUIRED}
    good = ok[rows, level]
    fields["deadline"] = np.where(good, at.deadline, -1.0)
    fields["failure_penalty"] = s.failure_penalty - fold[rows, level]
    for name in ("deadline", "failure_penalty"):
        fields[name].setflags(write=False)
    const = float(fold[rows, level][s.request].sum())
    return Snapshot._trusted(**fields), const


def expand(s: Snapshot) -> tuple[Snapshot, np.ndarray, np.ndarray]:
    """The virtual snapshot of one MU per (MU, level), ``k = n L + l``.

    Copy 0 of a DT carries its storage and migration penalty, the others none; each copy has its
    level's data, deadline less the extraction time (-1 if unservable) and penalty ``p - e_ext``.

    Parameters
    ----------
    s : Snapshot with a menu of L levels

    Returns
    -------
    (Snapshot, ndarray, ndarray)
        the virtual snapshot of ``N L`` MUs, ``group [N L]`` (its MU) and ``lvl [N L]`` (its level)
    """
    n, L = s.n_mus, s.n_levels
    group = np.repeat(np.arange(n), L)
    lvl = np.tile(np.arange(L), n)
    ok, fold = _servable_levels(s)
    fields: dict[str, Any] = {f: getattr(s, f)[group] if f in PER_MU else getattr(s, f) for f in REQUIRED}
    fields["data_bits"] = s.level_ratio[group, lvl] * s.data_bits[group]
    fields["deadline"] = np.where(ok[group, lvl], s.deadline[group] - s.extraction_time_s[group, lvl], -1.0)
    fields["failure_penalty"] = s.failure_penalty[group] - fold[group, lvl]
    fields["dt_size_bits"] = np.where(lvl == 0, s.dt_size_bits[group], 0.0)
    fields["migration_penalty"] = np.where(lvl == 0, s.migration_penalty[group], 0.0)
    for v in fields.values():
        if isinstance(v, np.ndarray):
            v.setflags(write=False)
    return Snapshot._trusted(**fields), group, lvl


def _admit_at(s: Snapshot, placement: np.ndarray, level: np.ndarray,
              deadline: float | None = None) -> tuple[float, dict[str, Any]]:
    """Exact admission + allocation at a fixed placement and fixed levels: its cost and decision."""
    red, const = reduce_levels(s, level)
    a = allocate(red, placement, deadline=deadline)
    return a.cost + const, {"placement": placement.copy(), "served": a.served, "tx_time": a.tx_time,
                            "cpu_hz": a.cpu_hz, "level": level.copy()}


def _tie(master: Any, group: np.ndarray, lvl: np.ndarray, n_bss: int) -> None:
    """Rows that make the virtual master a model of the real problem: equal placement of every copy
    of a DT, at most one served copy."""
    import highspy

    inf = highspy.kHighsInf
    rows = RowBatch()
    row = rows.add

    first = {int(g): int(k) for k, g in reversed(list(enumerate(group)))}
    for k in master.free:
        k0 = first[int(group[k])]
        if k != k0:
            for m in range(n_bss):
                row(0.0, 0.0, [(master.x[k, m], 1.0), (master.x[k0, m], -1.0)])
    served_cols: dict[int, list[tuple[int, float]]] = {}
    for (k, m), j in master.y.items():
        served_cols.setdefault(int(group[k]), []).append((j, 1.0))
    for cols in served_cols.values():
        if len(cols) > 1:
            row(-inf, 1.0, cols)
    master.n_base_rows += rows.add_to(master.h)


def solve_exact_levels(snapshot: Snapshot, *, gap: float = 1e-6, time_limit: float | None = None,
                       threads: int = 1, max_iterations: int = 10_000, verbose: bool = False) -> Solution:
    """Certified optimum over placements, served sets *and* semantic levels (module docstring).

    Parameters
    ----------
    snapshot : Snapshot with a menu
    gap, time_limit, threads, max_iterations, verbose
        as :func:`wdtnopt.solvers.exact.solve_exact` (relative gap; seconds or None)

    Returns
    -------
    Solution
        with ``level [N]``; statuses as for ``exact``

    Raises
    ------
    SolverError
        a negative ``gap`` or a ``time_limit`` that is not > 0
    """
    from .exact import _eta_values, _Master
    from .options import ExactOptions

    t0 = time.perf_counter()
    ExactOptions(gap=gap, time_limit=time_limit)   # the method's one validation of its options
    s = snapshot
    N, M, L = s.n_mus, s.n_bss, s.n_levels
    if L == 1:
        # one level is no choice: today's oracle on the reduced snapshot (for the menu {1.0} that is
        # the menu-free snapshot itself, so the solution is today's bit for bit)
        from .exact import solve_exact
        red, const = reduce_levels(s, np.zeros(N, dtype=np.int64))
        sol = solve_exact(red, gap=gap, time_limit=time_limit, threads=threads, max_iterations=max_iterations,
                          verbose=verbose)
        return make_solution(s, sol.placement, sol.served, sol.tx_time, sol.cpu_hz, bound=sol.bound + const,
                             status=sol.status, method="exact", started=t0, stats=sol.stats,
                             level=np.zeros(N, dtype=np.int64))
    sv, group, lvl = expand(s)
    pd = PairData.of(sv)
    prev = s.placement_prev
    prev_fits = bool((np.bincount(prev, weights=s.dt_size_bits, minlength=M) <= s.storage_bits * (1 + 1e-12)).all())
    stats: dict[str, Any] = {"iterations": 0, "cuts": 0, "milp_nodes": 0, "allocations": 0, "levels": L}
    zeros = np.zeros(N)
    if not prev_fits and (not s.allow_migration or s.pinned.all()):
        return make_solution(s, prev, np.zeros(N, bool), zeros, zeros, bound=math.inf, status="infeasible",
                             method="exact", started=t0, stats=stats, level=np.zeros(N, np.int64))
    true_offset = float(s.failure_penalty[s.request].sum())

    best: dict[str, Any] | None = None
    ub = math.inf

    def consider(placement: np.ndarray, level: np.ndarray) -> bool:
        """Exact admission + allocation of fixed placement and levels (an upper bound); True if better."""
        nonlocal best, ub
        cost, decision = _admit_at(s, placement, level)
        stats["allocations"] += 1
        if cost < ub:
            ub, best = cost, decision
            return True
        return False

    if prev_fits:
        for l in range(L):
            consider(prev, np.full(N, l, dtype=np.int64))
    if ub == 0.0:
        return _finish(s, best, 0.0, "optimal", t0, stats)
    ref = ub if math.isfinite(ub) else float(s.failure_penalty[s.request].sum() + s.migration_penalty.sum())
    if not ref > 0:
        ref = 1.0
    master = _Master(pd, ref, ExactOptions(threads=threads))
    _tie(master, group, lvl, M)
    shift = master.penalty_total * ref - true_offset   # the master's objective minus the real one
    master.initial_cuts()

    def virtual(b: dict[str, Any]):
        """The incumbent as virtual arrays (for the MIP start and the cuts at its allocation)."""
        from types import SimpleNamespace
        served = b["served"][group] & (b["level"][group] == lvl)
        return SimpleNamespace(placement=b["placement"][group], served=served,
                               tx_time=np.where(served, b["tx_time"][group], 0.0),
                               cpu_hz=np.where(served, b["cpu_hz"][group], 0.0))

    def take_incumbent() -> None:
        v = virtual(best)
        master.set_incumbent(v.placement, v.served, v.cpu_hz, _eta_values(master, v))
        for k in np.flatnonzero(v.served):
            m = int(v.placement[k])
            if (k, m) in master.phi:
                master.add_cuts(int(k), m, [v.cpu_hz[k] / pd.cpu_hz[m]])

    if best is not None:
        take_incumbent()
    lb = master.kelley_root(50, None if time_limit is None else t0 + time_limit) - shift
    stats["root_bound"] = lb
    target_gap = max(gap / 4, 1e-9)
    status = "optimal"
    closed = best is not None and lb >= ub - gap * abs(ub)
    for it in range(0 if closed else max_iterations):
        stats["iterations"] = it + 1
        left = None if time_limit is None else time_limit - (time.perf_counter() - t0)
        if left is not None and left <= 0:
            status = "time_limit"
            break
        res = master.run(left, target_gap)
        stats["milp_nodes"] += res.get("nodes", 0)
        if res["infeasible"]:
            if best is None:
                return make_solution(s, prev, np.zeros(N, bool), zeros, zeros, bound=math.inf, status="infeasible",
                                     method="exact", started=t0, stats=stats, level=np.zeros(N, np.int64))
            break
        lb = max(lb, res["bound"] - shift)
        xv = res["x"]
        if xv is None:
            status = "time_limit" if res["status"] == master.hs.HighsModelStatus.kTimeLimit else "feasible"
            break
        vplace = np.array(sv.placement_prev)
        for k in master.free:
            vplace[k] = int(np.argmax(xv[master.x[k]]))
        placement = vplace[lvl == 0]
        level = np.zeros(N, dtype=np.int64) if best is None else best["level"].copy()
        new_cuts = 0
        feasible = True
        served_v = np.zeros(sv.n_mus, dtype=bool)
        for m in range(M):
            S = [k for (k, mm) in master.pairs if mm == m and xv[master.y[k, mm]] > 0.5]
            if not S:
                continue
            served_v[S] = True
            a, added = master.cut_server(allocate_server, m, S, xv)
            new_cuts += added
            stats["allocations"] += 1
            feasible &= a.feasible
        level[group[served_v]] = lvl[served_v]
        load = np.bincount(placement, weights=s.dt_size_bits, minlength=M)
        # exact admission at the master's placement and levels: at most the cost of its assignment
        if feasible and (load <= s.storage_bits * (1 + 1e-10)).all() and consider(placement, level):
            take_incumbent()
        stats["cuts"] = master.n_cuts
        if verbose:
            print(f"iter {it}: lb {lb:.10g} ub {ub:.10g} new cuts {new_cuts} t {time.perf_counter() - t0:.3f}s")
        if best is not None and lb >= ub - gap * abs(ub):
            status = "optimal"
            break
        if new_cuts == 0:
            if target_gap <= 1e-12:
                status = "feasible"
                break
            target_gap = max(target_gap / 100, 1e-12)
    else:
        if not closed:
            status = "feasible"
    if best is None:
        return make_solution(s, prev, np.zeros(N, bool), zeros, zeros, bound=lb, status="bound_only",
                             method="exact", started=t0, stats=stats, level=np.zeros(N, np.int64))
    return _finish(s, best, lb, status, t0, stats)


def _finish(s: Snapshot, b: dict[str, Any], bound: float, status: str, t0: float, stats: dict[str, Any]) -> Solution:
    return make_solution(s, b["placement"], b["served"], b["tx_time"], b["cpu_hz"], bound=bound, status=status,
                         method="exact", started=t0, stats=stats, level=b["level"])


def allocate_levels(snapshot: Snapshot, placement, *, gap: float = 1e-7, time_limit: float | None = None) -> Any:
    """Optimal admission, levels and allocation for a fixed ``placement`` (a snapshot with a menu).

    ``gap`` 1e-7: the exact master's bound is derated by what HiGHS's tolerances can be worth
    (docs/solvers.md, "The exact bound under HiGHS's tolerances"), 1e-8 to 3e-8 of the objective here.

    The oracle of this module on the snapshot with its DTs pinned at ``placement`` (its master has
    no placement columns), plus the migration penalties of the DTs ``placement`` moves. Returns an
    :class:`~wdtnopt.solvers.allocation.Allocation` with ``level`` set and a certified ``bound``.
    """
    from .allocation import Allocation

    s = snapshot
    placement = np.asarray(placement, dtype=np.int64)
    fixed = s.replace(placement_prev=placement, allow_migration=False)
    sol = solve_exact_levels(fixed, gap=gap, time_limit=time_limit)
    moved = float(s.migration_penalty[placement != s.placement_prev].sum())
    req = s.request & ~s.migrating
    per_mu = np.where(sol.served, sol.energy, s.failure_penalty)[req]
    server_cost = np.bincount(placement[req], weights=per_mu, minlength=s.n_bss)
    return Allocation(placement, sol.served, sol.tx_time, sol.cpu_hz, sol.objective + moved, server_cost,
                      exact=sol.status == "optimal", bound=sol.bound + moved, level=sol.level)


# -- the large-scale method with levels: Lagrangian bound + level-wise primal ----------------------
def _price_levels(s: Snapshot, ldv: Any, L: int, fold: np.ndarray, lam: np.ndarray, pi: np.ndarray) -> dict[str, Any]:
    """The Lagrangian of the level problem at CPU prices ``lam`` and storage prices ``pi``.

    With the CPU and storage couplings dualized the problem separates over MUs; MU n's term is
    ``min_m [mig + pi_m size + min(fail, min_l h_{n,l,m}(lam_m) + e_ext[n, l])]`` with
    ``h = min_f E_{n,l}(T - c_l / f) + lam f`` of its level's data (solvers/fast.py computes ``h``
    and its certified tangent lower bound for the virtual copies). Any prices give a lower bound
    ``D = sum_n term_n - lam . cpu_hz - pi . storage_bits`` (weak duality).
    """
    from .fast import SAFETY_RTOL, inner_min

    N, M = s.n_mus, s.n_bss
    K = N * L
    ach = np.full((K, M), np.inf)
    lb = np.full((K, M), np.inf)
    cpu = np.zeros((K, M))
    if ldv.busy_n.size:
        f, _, a, b = inner_min(ldv.pd, ldv.busy_n, ldv.busy_m, lam[ldv.busy_m])
        ach[ldv.busy_n, ldv.busy_m], lb[ldv.busy_n, ldv.busy_m], cpu[ldv.busy_n, ldv.busy_m] = a, b, f
    if ldv.idle_n.size:
        ach[ldv.idle_n, ldv.idle_m] = ldv.idle_energy
        lb[ldv.idle_n, ldv.idle_m] = ldv.idle_energy
    ach = (ach + fold.reshape(K)[:, None]).reshape(N, L, M)
    lb = (lb + fold.reshape(K)[:, None]).reshape(N, L, M).min(axis=1)
    best_l = np.argmin(ach, axis=1)                                               # [N, M]
    ach_n = np.take_along_axis(ach, best_l[:, None, :], 1)[:, 0]
    prev = s.placement_prev
    allowed = ~s.pinned[:, None] | (np.arange(M)[None, :] == prev[:, None])
    mig = np.where(np.arange(M)[None, :] != prev[:, None], s.migration_penalty[:, None], 0.0)
    fail = np.where(s.request, s.failure_penalty, 0.0)[:, None]
    base = np.where(allowed, mig + pi[None, :] * s.dt_size_bits[:, None], np.inf)
    theta = (base + np.minimum(lb, fail)).min(axis=1)
    lin = float(lam @ s.cpu_hz + pi @ s.storage_bits)
    value = float(theta.sum()) - lin - SAFETY_RTOL * (float(np.abs(theta).sum()) + lin)
    host = np.argmin(base + np.minimum(ach_n, fail), axis=1)
    idx = np.arange(N)
    served = ach_n[idx, host] < fail[:, 0]
    level = np.where(served, best_l[idx, host], 0)
    f_used = np.where(served, cpu.reshape(N, L, M)[idx, level, host], 0.0)
    return {"value": value, "host": host, "level": level,
            "cpu_use": np.bincount(host, weights=f_used, minlength=M),
            "storage_use": np.bincount(host, weights=s.dt_size_bits, minlength=M)}


def solve_fast_levels(snapshot: Snapshot, *, gap: float = 0.01, time_limit: float | None = None,
                      max_iters: int = 100, search_time: float = 5.0, **ignored: Any) -> Solution:
    """``method="fast"`` for a snapshot with a semantic menu: a certified Lagrangian bound
    (:func:`_price_levels`, maximized by projected subgradient steps with Polyak step sizes) and the
    best decision found by exact admission at fixed levels (:func:`reduce_levels`) on the best
    responses' placements and levels (repaired to the previous host where storage overflows) and on
    the previous placement at every uniform level. Status ``optimal`` when the certified gap is at
    most ``gap``, else ``feasible`` (or ``time_limit``). ``search_time`` (s): budget of each exact
    admission (past it the admission keeps its best served sets: still feasible).
    """
    from .fast import LagrangianData

    t0 = time.perf_counter()
    FastOptions(gap=gap, time_limit=time_limit)
    s = snapshot
    N, M, L = s.n_mus, s.n_bss, s.n_levels
    prev = s.placement_prev
    sv, _, _ = expand(s)
    ldv = LagrangianData.of(sv)
    _, fold = _servable_levels(s)
    stats: dict[str, Any] = {"iterations": 0, "levels": L}
    best: dict[str, Any] | None = None
    ub = math.inf

    def consider(placement: np.ndarray, level: np.ndarray) -> None:
        nonlocal best, ub
        if (np.bincount(placement, weights=s.dt_size_bits, minlength=M) > s.storage_bits * (1 + 1e-12)).any():
            return
        stop = time.perf_counter() + search_time
        if time_limit is not None:
            stop = min(stop, t0 + time_limit)
        cost, decision = _admit_at(s, placement, level, stop)
        if cost < ub:
            ub, best = cost, decision

    for l in range(L):
        consider(prev, np.full(N, l, dtype=np.int64))
    lam, pi = np.zeros(M), np.zeros(M)
    lb = -math.inf
    status = "feasible"
    for it in range(max_iters):
        stats["iterations"] = it + 1
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            status = "time_limit"
            break
        r = _price_levels(s, ldv, L, fold, lam, pi)
        lb = max(lb, r["value"])
        if it % 10 == 0 or it == max_iters - 1:
            placement = r["host"].copy()
            over = np.bincount(placement, weights=s.dt_size_bits, minlength=M) > s.storage_bits
            placement[over[placement]] = prev[over[placement]]   # repair: overfull servers send DTs home
            consider(placement, r["level"])
        if best is not None and lb >= ub - gap * abs(ub):
            status = "optimal"
            break
        # projected subgradient step on (lam, pi), Polyak size towards the incumbent, scaled per server
        g_lam = (r["cpu_use"] - s.cpu_hz) / np.maximum(s.cpu_hz, 1.0)
        g_pi = (r["storage_use"] - s.storage_bits) / np.maximum(s.storage_bits, 1.0)
        norm = float(g_lam @ g_lam + g_pi @ g_pi)
        if norm == 0.0:
            status = "optimal" if best is not None and lb >= ub - gap * abs(ub) else status
            break
        target = ub if math.isfinite(ub) else abs(r["value"]) + 1.0
        step = max(target - r["value"], 1e-12 * max(abs(target), 1e-300)) / norm
        lam = np.maximum(lam + step * g_lam / np.maximum(s.cpu_hz, 1.0), 0.0)
        pi = np.maximum(pi + step * g_pi / np.maximum(s.storage_bits, 1.0), 0.0)
    stats["bound"] = lb
    zeros = np.zeros(N)
    if best is None:
        return make_solution(s, prev, np.zeros(N, bool), zeros, zeros, bound=max(lb, 0.0), status="bound_only",
                             method="fast", started=t0, stats=stats, level=np.zeros(N, np.int64))
    sol = make_solution(s, best["placement"], best["served"], best["tx_time"], best["cpu_hz"], bound=max(lb, 0.0),
                        status=status, method="fast", started=t0, stats=stats, level=best["level"])
    return sol
