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

from . import Solution, fail_all_solution, make_solution
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


LEVEL_EXACT_OPTIONS: tuple[str, ...] = ("gap", "time_limit", "threads", "max_iterations", "verbose", "initial_cuts",
                                        "initial_first_step", "root_rounds", "use_mip_start", "highs_heuristics", "heuristic_effort",
                                        "highs_presolve", "drop_slack")
"""The :class:`ExactOptions` the oracle of this module takes (with two or more levels): the master's
(its HiGHS settings, initial cuts, root rounds, MIP start, cut dropping) and the loop's. The others
(``oracle``, the polish, the exchange search and its ``server_prices`` rows, ``hull_rounds``, ``price_cuts``,
``mip_gap_share``: its HiGHS gap is ``gap / 4``, and the fast seed) belong to the menu-free loop of
solvers/exact.py; given at other than their defaults they are refused (:func:`check_level_options`)."""

LEVEL_FAST_OPTIONS: tuple[str, ...] = ("gap", "time_limit", "threads", "max_iterations", "verbose", "box",
                                       "primal_every", "search_time", "milp_time", "milp_gap", "extra_rounds")
"""The :class:`FastOptions` :func:`solve_fast_levels` takes (with two or more levels): the bundle
loop's, the restricted-master MILP's time and gap, the local search's time (``threads`` is accepted
and ignored, as by fast itself). The others belong to parts of solvers/fast.py it does not have
(:data:`LEVEL_REFUSED_BECAUSE`); given at other than their defaults they are refused
(:func:`check_level_options`)."""

LEVEL_REFUSED_BECAUSE: dict[str, str] = {
    "milp_cpu": "its restricted-master MILP takes each option's CPU share as found (milp_cpu='fixed' is accepted)",
    "search_starts": "its local search starts from the best decision only",
    "exact_max_candidates": "it has no per-server split of a snapshot with every DT pinned",
    "exact_pairs": "it never continues in exact (exact_pairs=0 is accepted)",
    "exact_time": "it never continues in exact",
    "phase_share": "it never continues in exact",
    "extra_options": "its extra rounds' MILP takes the bundle's options only",
    "reduced_cost_pairs": "its extra rounds' MILP takes the bundle's options only",
    "exchange_candidates": "its extra rounds run no exchange search (exchange_candidates=0 is accepted)",
    "exchange_rounds": "its extra rounds run no exchange search (exchange_rounds=0 is accepted)",
}
"""Why ``fast`` with two or more levels refuses each option outside :data:`LEVEL_FAST_OPTIONS`."""

_LEVEL_ACCEPTED = {"exact": {"primal_seed": "none"},
                   "fast": {"milp_cpu": "fixed", "exact_pairs": 0, "extra_options": "found", "exchange_candidates": 0,
                            "exchange_rounds": 0}}
"""Values other than the default that say what the level path does anyway, so are accepted."""


def check_level_options(opts: ExactOptions | FastOptions) -> None:
    """Refuse the options of ``exact`` (:data:`LEVEL_EXACT_OPTIONS`) or ``fast``
    (:data:`LEVEL_FAST_OPTIONS`) that this module does not use when set to other than their defaults.

    ``primal_seed="none"`` (exact), ``milp_cpu="fixed"``, ``exact_pairs=0``,
    ``extra_options="found"``, ``exchange_candidates=0`` and ``exchange_rounds=0`` (fast) are
    accepted: they ask what this module does.

    Raises
    ------
    SolverError
        Naming each such option, why, and the ones that apply.
    """
    import dataclasses

    from . import SolverError

    exact = isinstance(opts, ExactOptions)
    applies = LEVEL_EXACT_OPTIONS if exact else LEVEL_FAST_OPTIONS
    accepted = _LEVEL_ACCEPTED[opts.method]
    default = type(opts)()
    unused = [f.name for f in dataclasses.fields(opts) if f.name not in applies
              and getattr(opts, f.name) != getattr(default, f.name)
              and not (f.name in accepted and getattr(opts, f.name) == accepted[f.name])]
    if unused:
        why = "" if exact else " (" + "; ".join(f"{u}: {LEVEL_REFUSED_BECAUSE[u]}" for u in unused) + ")"
        raise SolverError(f"method {opts.method!r}: option {', '.join(unused)} does not apply to a snapshot with a "
                          f"semantic compression menu of two or more levels{why} (its {'oracle' if exact else 'method'} "
                          f"takes {', '.join(applies)}; docs/solvers.md, \"Semantic levels\"): leave "
                          f"{'it' if len(unused) == 1 else 'them'} at the default")


def solve_exact_levels(snapshot: Snapshot, *, gap: float = 1e-6, time_limit: float | None = None,
                       threads: int = 1, max_iterations: int = 10_000, verbose: bool = False,
                       options: ExactOptions | None = None) -> Solution:
    """Certified optimum over placements, served sets *and* semantic levels (module docstring).

    Parameters
    ----------
    snapshot : Snapshot with a menu
    gap, time_limit, threads, max_iterations, verbose
        as :func:`wdtnopt.solvers.exact.solve_exact` (relative gap; seconds or None)
    options : ExactOptions, optional
        All options at once (then the five above are read from it): with one level all of them
        apply (the menu-free oracle runs); with more, those of :data:`LEVEL_EXACT_OPTIONS`.

    Returns
    -------
    Solution
        with ``level [N]``; statuses as for ``exact``

    Raises
    ------
    SolverError
        a negative ``gap`` or a ``time_limit`` that is not > 0; with two or more levels, an option
        outside :data:`LEVEL_EXACT_OPTIONS` at other than its default
    """
    from .exact import _Master, _round_end, _round_outcome, _round_start

    t0 = time.perf_counter()
    if options is None:   # the method's one validation of its options
        options = ExactOptions(gap=gap, time_limit=time_limit, threads=threads, max_iterations=max_iterations,
                               verbose=verbose)
    opts = options
    gap, time_limit, threads, max_iterations, verbose = (opts.gap, opts.time_limit, opts.threads,
                                                         opts.max_iterations, opts.verbose)
    s = snapshot
    N, M, L = s.n_mus, s.n_bss, s.n_levels
    if L == 1:
        # one level is no choice: today's oracle on the reduced snapshot (for the menu {1.0} that is
        # the menu-free snapshot itself, so the solution is today's bit for bit)
        from .exact import solve_exact
        red, const = reduce_levels(s, np.zeros(N, dtype=np.int64))
        sol = solve_exact(red, opts)
        return make_solution(s, sol.placement, sol.served, sol.tx_time, sol.cpu_hz, bound=sol.bound + const,
                             status=sol.status, method="exact", started=t0, stats=sol.stats,
                             level=np.zeros(N, dtype=np.int64))
    check_level_options(opts)
    prev = s.placement_prev
    prev_fits = bool((np.bincount(prev, weights=s.dt_size_bits, minlength=M) <= s.storage_bits * (1 + 1e-12)).all())
    stats: dict[str, Any] = {"iterations": 0, "cuts": 0, "milp_nodes": 0, "allocations": 0, "levels": L,
                             "rescales": 0}

    def fail_all(bound: float, status: str) -> Solution:
        return fail_all_solution(s, bound=bound, status=status, method="exact", started=t0, stats=stats,
                                 level=np.zeros(N, np.int64))

    if not prev_fits and (not s.allow_migration or s.pinned.all()):
        return fail_all(math.inf, "infeasible")
    best: dict[str, Any] | None = None
    ub = math.inf
    # the admissions stop at the solve's deadline with a feasible served set (an upper bound still),
    # as exact's do: the L admissions at the previous placement had none (15 s on a 0.5 s limit)
    deadline = None if time_limit is None else t0 + time_limit

    def consider(placement: np.ndarray, level: np.ndarray) -> bool:
        """Exact admission + allocation of fixed placement and levels (an upper bound); True if better."""
        nonlocal best, ub
        cost, decision = _admit_at(s, placement, level, deadline)
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
    # the Lagrangian dual function at zero CPU and storage prices (fast's certified pricing with the
    # level choice inside each MU's term: a lower bound at any prices); it closes snapshots whose CPU
    # and storage do not bind before any master is built: a master in units of an incumbent of
    # 1e-309 J (data of 1e-300 bits) or with CPU shares of 1e-293 (servers of 1e300 Hz) is not usable
    from .fast_dual import price
    lp = LevelPricing(s)
    zero_prices = max(float(price(lp.ld, np.zeros(M), np.zeros(M), serve=lp.serve).value), 0.0)
    stats["zero_price_bound"] = zero_prices
    if best is not None and zero_prices >= ub - gap * abs(ub):
        return _finish(s, best, zero_prices, "optimal", t0, stats)
    from .exact import follow_incumbent, master_ref, penalties_capped

    class LevelMaster(_Master):
        """The master of the virtual snapshot; ``fold`` (units of ref, 0 unless set): the shift moved
        into its objective, whose bounds are then the real problem's."""
        fold = 0.0

        def derate(self, bound_j: float) -> float:
            # the tolerance term is stated with the master's own objective (the real one plus fold)
            if self.fold == 0.0 or not math.isfinite(bound_j):
                return super().derate(bound_j)
            own = (bound_j / self.ref + self.fold) * self.ref
            return super().derate(own if math.isfinite(own) else np.finfo(float).max)

    group, lvl = np.repeat(np.arange(N), L), np.tile(np.arange(L), N)

    def build(carry: dict | None) -> tuple[LevelMaster, float]:
        """The master in units of the incumbent's cost ``ub`` (of the penalties while there is none),
        with the cut shares ``carry`` of an earlier master, and its ``shift`` (J, its objective minus
        the real one). It prices the penalties above ``ub`` at it (penalties_capped: the same optimum,
        a valid bound); whole, penalties of 1e12 J made its objective less ``shift`` a difference of
        large numbers, a bound of 0.0078125 J over an optimum of 0.0078013 J."""
        sc = penalties_capped(s, ub, stats)
        sv = expand(sc)[0]
        ref = master_ref(s, ub)
        master = LevelMaster(PairData.of(sv), ref, opts, carry)
        if not opts.highs_presolve:
            master.h.setOptionValue("presolve", "off")
        _tie(master, group, lvl, M)
        # the master's objective minus the real one, J (the master's constant: every copy's penalty)
        with np.errstate(over="ignore"):
            true_offset = float(sc.failure_penalty[sc.request].sum())
        shift = master.penalty_total * ref - true_offset
        reach = 4.0 * ((master.penalty_total + 1.0) * ref + (ub if math.isfinite(ub) else 0.0))
        if not (math.isfinite(shift) and math.isfinite(reach)):
            # penalties near 1e308 J: L copies of each make the master's objective overflow in J, so the
            # shift is subtracted in its units inside its objective (whose bounds are then the real ones)
            true_units = float((sc.failure_penalty[sc.request] / ref).sum())
            master.fold = master.penalty_total - true_units
            master.offset -= master.fold
            master._push_costs()
            shift = 0.0
        master.initial_cuts()
        return master, shift

    master, shift = build(None)

    def virtual(b: dict[str, Any]):
        """The incumbent as virtual arrays (for the MIP start and the cuts at its allocation)."""
        from types import SimpleNamespace
        served = b["served"][group] & (b["level"][group] == lvl)
        return SimpleNamespace(placement=b["placement"][group], served=served,
                               tx_time=np.where(served, b["tx_time"][group], 0.0),
                               cpu_hz=np.where(served, b["cpu_hz"][group], 0.0))

    def take_incumbent() -> None:
        master.take_incumbent(virtual(best))

    root_deadline = None if time_limit is None else t0 + time_limit
    if best is not None:
        take_incumbent()
    lb = master.kelley_root(opts.root_rounds, root_deadline) - shift
    stats["root_bound"] = lb
    target_gap = max(gap / 4, 1e-9)
    status = "optimal"
    closed = best is not None and lb >= ub - gap * abs(ub)
    for it in range(0 if closed else max_iterations):
        res = _round_start(master, stats, it, time_limit, t0, target_gap)
        stop, lb = _round_outcome(res, stats, lb, shift)
        if stop == "infeasible":
            if best is None:
                return fail_all(math.inf, "infeasible")
            break
        if stop is not None:
            status = stop
            break
        xv = res["x"]
        placement = master.placement_of(xv)[lvl == 0]
        level = np.zeros(N, dtype=np.int64) if best is None else best["level"].copy()
        new_cuts, sets = master.cut_served_sets(allocate_server, xv, stats)
        served_v = np.zeros(N * L, dtype=bool)
        for _, S, _ in sets:
            served_v[S] = True
        feasible = all(a.feasible for _, _, a in sets)
        level[group[served_v]] = lvl[served_v]
        load = np.bincount(placement, weights=s.dt_size_bits, minlength=M)
        # exact admission at the master's placement and levels: at most the cost of its assignment
        rebuilt = False
        if feasible and (load <= s.storage_bits * (1 + 1e-10)).all() and consider(placement, level):
            # the master follows the incumbent's scale as exact's does (follow_incumbent): its
            # objective in units of the incumbent, or rebuilt at its scale with the cut shares so far
            # (the derating term is proportional to the objective's unit: a master left in units of
            # penalties of 1e306 J ended 'feasible' at relative gaps up to 1)
            if follow_incumbent(master, ub, stats["rescales"]):
                stats["rescales"] += 1
                master, shift = build(master.cuts)
                rebuilt = True
            take_incumbent()
            if rebuilt:
                lb = max(lb, master.kelley_root(opts.root_rounds, root_deadline) - shift)
        stop, target_gap = _round_end(master, stats, it, lb, ub, best is not None, gap, max(new_cuts, int(rebuilt)),
                                      target_gap, verbose, t0)
        if rebuilt:
            target_gap = max(gap / 4, 1e-9)
        if stop is not None:
            status = stop
            break
    else:
        if not closed:
            status = "feasible"
    lb = zero_prices if math.isnan(lb) else max(lb, zero_prices)   # max(nan, x) is nan (a bound of 0)
    if best is None:
        return fail_all(lb, "bound_only")
    if status != "optimal" and lb >= ub - gap * abs(ub):
        status = "optimal"
    return _finish(s, best, lb, status, t0, stats)


def _finish(s: Snapshot, b: dict[str, Any], bound: float, status: str, t0: float, stats: dict[str, Any]) -> Solution:
    return make_solution(s, b["placement"], b["served"], b["tx_time"], b["cpu_hz"], bound=bound, status=status,
                         method="exact", started=t0, stats=stats, level=b["level"])


def allocate_levels(snapshot: Snapshot, placement, *, gap: float = 1e-7, time_limit: float | None = None,
                    deadline: float | None = None) -> Any:
    """Optimal admission, levels and allocation for a fixed ``placement`` (a snapshot with a menu).

    ``deadline`` (a ``time.perf_counter()`` value, as :func:`~wdtnopt.solvers.allocation.allocate`'s):
    the oracle gets the time left (at least 1 ns) as its ``time_limit``; stopped there, the result is
    feasible with ``exact`` False and a certified ``bound``.

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
    if deadline is not None:   # the caller's deadline (relaxation's rounded placements), dropped before
        left = max(deadline - time.perf_counter(), 1e-9)
        time_limit = left if time_limit is None else min(time_limit, left)
    sol = solve_exact_levels(fixed, gap=gap, time_limit=time_limit)
    moved = float(s.migration_penalty[placement != s.placement_prev].sum())
    req = s.request & ~s.migrating
    per_mu = np.where(sol.served, sol.energy, s.failure_penalty)[req]
    server_cost = np.bincount(placement[req], weights=per_mu, minlength=s.n_bss)
    return Allocation(placement, sol.served, sol.tx_time, sol.cpu_hz, sol.objective + moved, server_cost,
                      exact=sol.status == "optimal", bound=sol.bound + moved, level=sol.level)


# -- the large-scale method with levels: fast's dual machinery, the level choice in the pricing -----
class LevelPricing:
    """The per-MU Lagrangian subproblem of ``fast`` with the level choice inside it.

    With the CPU and storage couplings priced, MU n's term is
    ``min_m [mig + pi_m size + min(fail, min_l h_{n,l,m}(lam_m) + e_ext[n, l])]`` where
    ``h_{n,l,m}`` is fast's inner minimum (solvers/fast_dual.py, ``inner_min``) on the virtual copy
    ``(n, l)`` of :func:`expand` (its level's data and deadline). :meth:`serve` gives, for every
    real pair (n, m), the best level's achieved value, the minimum over levels of the certified
    tangent bounds (a lower bound of the minimum over levels), its CPU and its energy plus extraction;
    ``fast_dual.price(self.ld, lam, pi, serve=self.serve)`` then prices the real MUs exactly as
    fast does: any prices give a certified lower bound of the menu problem (weak duality).

    ``ld`` is the real snapshot's :class:`~wdtnopt.solvers.fast_dual.LagrangianData` (hosts,
    migration and failure costs, sizes: none depends on the level) without serve pairs of its own.
    """

    def __init__(self, s: Snapshot):
        import dataclasses

        from .fast_dual import LagrangianData

        sv, _, _ = expand(s)
        self.ldv = LagrangianData.of(sv)
        _, self.fold = _servable_levels(s)
        empty = np.empty(0, dtype=np.int64)
        self.ld = dataclasses.replace(LagrangianData.of(s), busy_n=empty, busy_m=empty, idle_n=empty, idle_m=empty,
                                      idle_energy=np.empty(0))
        self.n, self.L, self.m = s.n_mus, s.n_levels, s.n_bss
        self.level = np.zeros((self.n, self.m), dtype=np.int64)   # best level per pair at the last prices

    def serve(self, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(achieved, certified, CPU, energy) [N, M] of each pair's best level at CPU prices ``lam``."""
        from .fast_dual import inner_min

        N, L, M = self.n, self.L, self.m
        K = N * L
        ach = np.full((K, M), np.inf)
        lb = np.full((K, M), np.inf)
        cpu = np.zeros((K, M))
        energy = np.zeros((K, M))
        v = self.ldv
        if v.busy_n.size:
            f, e, a, b = inner_min(v.pd, v.busy_n, v.busy_m, lam[v.busy_m])
            ach[v.busy_n, v.busy_m], lb[v.busy_n, v.busy_m] = a, b
            cpu[v.busy_n, v.busy_m], energy[v.busy_n, v.busy_m] = f, e
        if v.idle_n.size:
            ach[v.idle_n, v.idle_m] = lb[v.idle_n, v.idle_m] = energy[v.idle_n, v.idle_m] = v.idle_energy
        fold = self.fold.reshape(K)[:, None]
        ach, lb, energy = (x.__add__(fold).reshape(N, L, M) for x in (ach, lb, energy))
        best = np.argmin(ach, axis=1)                                              # [N, M]
        pick = lambda a: np.take_along_axis(a, best[:, None, :], 1)[:, 0]  # noqa: E731
        self.level = best
        return pick(ach), lb.min(axis=1), pick(cpu.reshape(N, L, M)), pick(energy)


class _LevelPrimal:
    """Fast's primal (per-server admission, local search) at fixed levels: one
    :class:`~wdtnopt.solvers.fast_primal.PrimalPool` per level vector, on the reduced snapshot of
    those levels (:func:`reduce_levels`, whose cost plus its constant is the menu problem's cost)."""

    def __init__(self, s: Snapshot):
        self.s = s
        self.pools: dict[bytes, tuple[Any, float, np.ndarray]] = {}
        self.best_cost = math.inf
        self.best: tuple[Any, float, np.ndarray] | None = None

    def pool(self, level: np.ndarray) -> tuple[Any, float, np.ndarray]:
        from .fast_dual import LagrangianData
        from .fast_primal import PrimalPool

        key = level.tobytes()
        if key not in self.pools:
            red, const = reduce_levels(self.s, level)
            self.pools[key] = (PrimalPool(LagrangianData.of(red)), const, level.copy())
        return self.pools[key]

    def _note(self, entry: tuple[Any, float, np.ndarray]) -> None:
        pool, const, _ = entry
        if pool.best_placement is not None and pool.best_cost + const < self.best_cost:
            self.best_cost, self.best = pool.best_cost + const, entry

    def offer(self, placement: np.ndarray, level: np.ndarray, served_hint: np.ndarray | None = None) -> None:
        """The placement at the given levels (levels of MUs that are not served do not matter)."""
        s = self.s
        level = np.where(s.request & ~s.migrating, level, 0).astype(np.int64)
        entry = self.pool(level)
        entry[0].offer(placement, served_hint)
        self._note(entry)

    def search(self, deadline: float) -> int:
        """fast's local search from the best decision (at its levels)."""
        from .fast_primal import local_search

        if self.best is None:
            return 0
        moves = local_search(self.best[0], deadline)
        self._note(self.best)
        return moves

    @property
    def admissions(self) -> int:
        return sum(p.admissions for p, _, _ in self.pools.values())

    def decision(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        pool, _, level = self.best
        placement, served, tx, cpu = pool.decision()
        return placement, served, tx, cpu, np.where(served, level, 0)


def solve_fast_levels(snapshot: Snapshot, options: FastOptions | None = None, **overrides: Any) -> Solution:
    """``method="fast"`` for a snapshot with a semantic menu: fast's own method (solvers/fast.py)
    with the level choice inside the per-MU Lagrangian subproblem (:class:`LevelPricing`).

    The bound is fast's certified dual value ``D(lam, pi)`` maximized by its bundle master
    (``BundleMaster``: each option is a host with its best level's CPU and cost, affine in the
    prices as before); the primal is fast's -- storage repair of the best responses and the
    restricted-master MILP for placements, each priced by the per-server admission at the levels the
    best prices choose for the MUs on their hosts (:class:`_LevelPrimal`), then local search.
    Statuses as :func:`~wdtnopt.solvers.fast.solve_fast`; with one level every option applies (fast
    runs on the reduced snapshot), with more those of :data:`LEVEL_FAST_OPTIONS`.

    Parameters
    ----------
    snapshot : Snapshot with a menu
    options : FastOptions, optional; ``overrides`` replace single fields

    Returns
    -------
    Solution
        with ``level [N]`` (0 for MUs not served)

    Raises
    ------
    SolverError
        Unknown option or bad value; with two or more levels, an option outside
        :data:`LEVEL_FAST_OPTIONS` at other than its default (:func:`check_level_options`).
    """
    from . import SolveStatus, relative_gap
    from .allocation import fits_storage, storage_capacity
    from .fast import bundle_rounds
    from .fast_dual import price
    from .fast_master import restricted_master_placement, storage_placement
    from .fast_primal import repair_storage

    t0 = time.perf_counter()
    opts = FastOptions.build(options, overrides)
    gap = opts.gap
    deadline = math.inf if opts.time_limit is None else t0 + float(opts.time_limit)
    s = snapshot
    N, M, L = s.n_mus, s.n_bss, s.n_levels
    if L == 1:   # no choice: fast on the reduced snapshot (for the menu {1.0}: today's fast, bit for bit)
        from .fast import solve_fast
        red, const = reduce_levels(s, np.zeros(N, dtype=np.int64))
        sol = solve_fast(red, opts)
        return make_solution(s, sol.placement, sol.served, sol.tx_time, sol.cpu_hz, bound=sol.bound + const,
                             status=sol.status, method="fast", started=t0, stats=sol.stats, gap=gap,
                             level=np.zeros(N, dtype=np.int64))
    check_level_options(opts)
    prev = s.placement_prev
    lp = LevelPricing(s)
    ld = lp.ld
    primal = _LevelPrimal(s)
    stats: dict[str, Any] = {"iterations": 0, "serious_steps": 0, "master_rows": 0, "levels": L}

    def lprice(lam: np.ndarray, pi: np.ndarray) -> tuple[Any, np.ndarray]:
        P = price(ld, lam, pi, serve=lp.serve)
        return P, lp.level

    def done(bound: float, status: str) -> Solution:
        stats["admissions"] = primal.admissions
        stats["dual_bound"] = bound
        bound = max(bound, 0.0)  # every cost is >= 0
        if primal.best is None and status != "infeasible":   # infeasible, or a packing missed (as fast's done)
            found, infeasible = storage_placement(ld, max(deadline - time.perf_counter(), 1.0))
            if infeasible:
                status, bound = "infeasible", math.inf
            elif found is not None:
                primal.offer(found, first[1][idx, found])
        if primal.best is None:
            st = SolveStatus.INFEASIBLE if status == "infeasible" else SolveStatus.BOUND_ONLY
            return fail_all_solution(s, bound=bound, status=st, method="fast", started=t0, stats=stats,
                                     level=np.zeros(N, dtype=np.int64))
        placement, served, tx, cpu, level = primal.decision()
        if status != "time_limit":
            status = "optimal" if relative_gap(primal.best_cost, bound) <= gap else "feasible"
        return make_solution(s, placement, served, tx, cpu, bound=bound, status=status, method="fast",
                             started=t0, stats=stats, gap=gap, level=level)

    pinned_load = np.bincount(prev[s.pinned], weights=s.dt_size_bits[s.pinned], minlength=M)
    if (pinned_load > storage_capacity(s)).any():
        return done(math.inf, "infeasible")
    idx = np.arange(N)

    def primal_round(best: tuple[Any, np.ndarray], budget: float, master: Any, milp_time: float) -> None:
        Pr, level = best
        pl = repair_storage(ld, Pr.host, Pr.pair_value)
        if pl is not None:
            primal.offer(pl, level[idx, pl])
        if not s.pinned.all():
            res = restricted_master_placement(ld, master, min(milp_time, max(deadline - time.perf_counter(), 0.05)), Pr,
                                              mip_gap=opts.milp_gap)
            if res is not None and fits_storage(s, res[0]):
                primal.offer(res[0], level[idx, res[0]], res[1])
        stats["moves"] = stats.get("moves", 0) + primal.search(min(deadline, time.perf_counter() + budget))

    first = lprice(np.zeros(M), np.zeros(M))
    if fits_storage(s, prev):
        primal.offer(prev.copy(), first[1][idx, prev])
    # fast's bundle loop (solvers/fast.py), with the level pricing
    out = bundle_rounds(ld, opts, first, lprice, primal_round, lambda: primal.best_cost, deadline, t0, stats)
    if (primal.best is None or not out.converged) and time.perf_counter() <= deadline:
        # stopped early: at least the best responses' placements
        primal_round(out.best, 0.0, out.master, out.milp_time)
    return done(out.best_dual, out.status)
