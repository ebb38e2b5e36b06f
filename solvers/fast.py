"""The large-scale method ``"fast"``: Lagrangian bound + per-server repair.

For N in the thousands and M in the tens, a feasible decision and a *certified* lower bound.
docs/solvers_fast.md has the full argument; in short:

Bound (Lagrangian relaxation, weak duality)
-------------------------------------------
Price each server's CPU (``lam[m] >= 0``, J per cycle/s) and storage (``pi[m] >= 0``, J per bit).
The snapshot problem of docs/model.md, section 5 without its CPU and storage couplings separates over
MUs; for ANY prices

    D(lam, pi) = sum_n min_m [ mig[n,m] + pi[m] size[n] + min(fail[n], h[n,m](lam[m])) ]
                 - sum_m lam[m] cpu_hz[m] - sum_m pi[m] storage_bits[m]      <=  optimum,

    h[n,m](lam) = min_{f_min[n,m] <= f <= cpu_hz[m]}  E_n(T[n,m] - c_n / f) + lam f

(``T = deadline - relay``, ``c`` the cycles of one update, ``mig`` the migration penalty when
m != placement_prev, ``fail`` the failure penalty of a requesting MU and 0 otherwise; pinned DTs
only see their current host, migrating ones are never served). ``g(f) = E(T - c/f) + lam f`` is
convex (E convex decreasing, ``T - c/f`` concave), so the inner minimum is a 1-D convex problem: a
safeguarded Newton iteration on its KKT condition finds ``f~``, and the *certified* value is the
tangent bound ``g(f~) + min over [f_min, cpu_hz] of g'(f~) (f - f~) <= min g``: an inexact ``f~``
only makes the bound weaker, never invalid. A final relative margin covers floating-point round-off.

Dual ascent (disaggregated bundle / column generation)
-----------------------------------------------------
D is concave and each MU's term is a minimum of functions *linear* in the prices: every option
(host m, served with CPU f, or failed) of MU n is the affine function
``mig + pi[m] size[n] + (E(f) + lam[m] f or fail[n])``. A master LP keeps, for each MU, the
options found so far and maximizes the resulting piecewise-linear model of D inside a box around
the best prices (box-step stabilization); its maximizer is priced exactly (all N x M pairs,
vectorized), which gives a new certified value of D and each MU's best option as a new row. This
is Dantzig-Wolfe column generation seen from the dual. Serious steps move the box centre when D
improves enough; null steps only enrich the model.

Primal (feasible decision)
--------------------------
Once the dual has converged (and every ``primal_every`` iterations): (1) each MU takes its best host
under the best prices, storage overflow is repaired by moving the DTs whose move costs least at
those prices; (2) a small MILP (HiGHS) picks one of the master's options per MU under every
server's CPU and storage (price-and-branch: only options near their MU's best are kept); on
small snapshots (N M <= ``TANGENT_PAIRS``) each served pair's CPU is a variable of that MILP, its
energy above tangent cuts and every server's CPU shared (``milp_cpu``), elsewhere each option keeps
the CPU it asked; every incumbent HiGHS meets is offered, its costs not being the admitted ones. Each
placement is priced by a per-server admission (:func:`admit_local`: Lagrangian start, exact
``allocate_server`` for every candidate served set, drop / add / swap moves; cached per server and
hosted set); then :func:`local_search` relocates single DTs between servers, screened by first-order
prices and accepted on the exact cost, from the best placement and, while the gap is open, from a
few other incumbents. While the gap is open after the dual has converged, up to ``extra_rounds``
more rounds run; in them the tangent MILP also gets (``extra_options="reduced_cost"``, the default)
at most ``reduced_cost_pairs`` (60) more served pairs whose Lagrangian reduced cost is within the
best decision's cost less the bound, least first, and that decision as its MIP start
(docs/solvers_fast.md, "Options by reduced cost"). A snapshot that may continue in exact leaves it
half of ``exact_time``. The best decision seen is returned through
``make_solution`` (which re-checks it with ``evaluate``). With every DT pinned the problem splits
by server (:func:`_pinned_bound`): small servers get the exact branch-and-bound admission.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from wdtnopt.snapshot import Snapshot

from . import Solution, SolveStatus, fail_all_solution, make_solution, relative_gap
from .allocation import admit_server, fits_storage, storage_capacity
from .fast_dual import SAFETY_RTOL, LagrangianData, Pricing, inner_min, price
from .fast_master import (BundleMaster, bundle_step, near_options, reduced_cost_options,
                          restricted_master_placement, storage_placement, tangent_master_placement)
from .fast_primal import PrimalPool, ServerChoice, admit_local, fit_prices, local_search, repair_storage
from .options import FastOptions

TANGENT_PAIRS = 2000
"""``milp_cpu="auto"``: snapshots with at most this many MU-server pairs (N M) get the tangent CPU
model in the restricted-master MILP (docs/solvers_fast.md, section 2); larger ones the fixed shares."""

# -- the method -------------------------------------------------------------------------------------
def solve_fast(snapshot: Snapshot, options: FastOptions | None = None, **overrides: Any) -> Solution:
    """A feasible decision and a certified lower bound for large snapshots (see module docstring).

    Parameters
    ----------
    snapshot : Snapshot
        The decision point.
    options : FastOptions, optional
        All options at once; ``overrides`` replace single fields: ``gap`` (stop when
        ``(objective - bound) / objective <= gap``), ``time_limit`` (s), ``max_iterations`` (dual
        iterations), ``box``, ``primal_every``, ``search_time`` (s), ``milp_time`` (s),
        ``milp_gap``, ``milp_cpu``, ``search_starts``, ``extra_rounds``, ``extra_options``
        (default ``"reduced_cost"``), ``reduced_cost_pairs`` (60), ``exact_max_candidates``,
        ``exact_pairs``, ``exact_time``, ``phase_share`` (solvers/options.py documents each;
        docs/solvers_fast.md, section 3).

    Returns
    -------
    Solution
        ``optimal`` when the certified dual bound is within ``gap``; ``time_limit`` when stopped by
        ``time_limit``; ``feasible`` otherwise; ``infeasible`` when the pinned DTs overfill a server;
        ``infeasible`` also when no placement fits the storage (a feasibility MILP proves it);
        ``bound_only`` when no placement that fits was found.

    Raises
    ------
    SolverError
        Unknown option or bad value.

    Notes
    -----
    Certifies the strict problem only; ``solve(snapshot, method="fast")`` also certifies the limits
    ``evaluate`` accepts (docs/solvers.md, "The certified entry point").
    """
    t0 = time.perf_counter()
    opts = FastOptions.build(options, overrides)
    if snapshot.level_ratio is not None:  # a semantic menu: the level-aware Lagrangian (solvers/levels.py)
        from .levels import solve_fast_levels
        return solve_fast_levels(snapshot, opts)
    gap, time_limit = opts.gap, opts.time_limit
    deadline = math.inf if time_limit is None else t0 + float(time_limit)
    s = snapshot
    N, M = s.n_mus, s.n_bss
    prev = s.placement_prev
    ld = LagrangianData.of(s)
    primal = PrimalPool(ld)
    stats: dict[str, Any] = {"iterations": 0, "serious_steps": 0, "master_rows": 0, "admissions": 0,
                             "pricing_s": 0.0, "master_s": 0.0, "primal_s": 0.0}

    def done(bound: float, status: str) -> Solution:
        stats["admissions"] = primal.admissions
        stats["dual_bound"] = bound
        bound = max(bound, 0.0)  # every cost is >= 0
        if primal.best_placement is None and status != "infeasible":   # infeasible, or a packing missed
            found, infeasible = storage_placement(ld, max(deadline - time.perf_counter(), 1.0))
            if infeasible:
                status, bound = "infeasible", math.inf
            elif found is not None:
                primal.offer(found)
        if primal.best_placement is None:
            st = SolveStatus.INFEASIBLE if status == "infeasible" else SolveStatus.BOUND_ONLY
            return fail_all_solution(s, bound=bound, status=st, method="fast", started=t0, stats=stats)
        placement, served, tx, cpu = primal.decision()
        if status not in ("time_limit",):
            status = "optimal" if relative_gap(primal.best_cost, bound) <= gap else "feasible"
        return make_solution(s, placement, served, tx, cpu, bound=bound, status=status, method="fast",
                             started=t0, stats=stats, gap=gap)

    pinned_load = np.bincount(prev[s.pinned], weights=s.dt_size_bits[s.pinned], minlength=M)
    if (pinned_load > storage_capacity(s)).any():
        return done(math.inf, "infeasible")  # the pinned DTs alone overfill a server
    if s.pinned.all():
        return done(_pinned_bound(ld, primal, stats, opts.exact_max_candidates), "optimal")

    def primal_from(Pr: Pricing) -> None:
        t = time.perf_counter()
        pl = repair_storage(ld, Pr.host, Pr.pair_value)
        if pl is not None:
            primal.offer(pl)
        stats["primal_s"] += time.perf_counter() - t

    t = time.perf_counter()
    P = price(ld, np.zeros(M), np.zeros(M))
    stats["pricing_s"] += time.perf_counter() - t

    def pricing(lam: np.ndarray, pi: np.ndarray) -> tuple[Pricing, None]:
        return price(ld, lam, pi), None

    def best_cost() -> float:
        return primal.best_cost if primal.best_placement is not None else math.inf

    # a snapshot that may continue in exact leaves it the rest of its window (exact_time or time_limit)
    continues = N * M <= opts.exact_pairs and s.allow_migration
    phase_end = t0 + opts.phase_share * (min(deadline, t0 + opts.exact_time) - t0) if continues else deadline
    # few DTs per server: the MILP shares each server's CPU (tangent model); many: fixed shares suffice
    tangent = opts.milp_cpu == "tangent" or (opts.milp_cpu == "auto" and N * M <= TANGENT_PAIRS)
    solved: set[tuple[int, float, float]] = set()   # (master rows, best dual value, slack): MILPs HiGHS finished
    slack = [0.3]   # the MILP keeps options within this many typical penalties of their MU's best
    starts: list[tuple[float, int, np.ndarray]] = []   # (admitted cost, order, placement) of the MILP's incumbents
    tried: list[float] = []                            # the starts searched from besides the best
    pending: list[tuple[np.ndarray, np.ndarray]] = []  # HiGHS's earlier incumbents, admitted when the gap stays open

    def admitted(placement: np.ndarray, served: np.ndarray, bound: float) -> bool:
        """A tangent MILP's incumbent, admitted and kept as a start; True once the gap to ``bound`` is closed."""
        if fits_storage(s, placement):
            starts.append((primal.offer(placement, served), len(starts), placement))
        return relative_gap(primal.best_cost, bound) <= gap

    def exchange_polish() -> None:
        """exact's exchange search (stage 1, capped moves and exchanges) from the best decision."""
        from .exact import _exchange_search

        t = time.perf_counter()
        placement, served, _, _ = primal.decision()
        sets: list = []
        found = _exchange_search(s, ld.pd, SimpleNamespace(placement=placement, served=served, cost=primal.best_cost),
                                 deadline if math.isfinite(deadline) else None, opts.exchange_candidates,
                                 kept_rounds=opts.exchange_rounds, admit_rounds=0,
                                 move_candidates=opts.exchange_candidates, served_out=sets)
        if found is not None and fits_storage(s, found):
            hint = np.zeros(N, dtype=bool)
            for S in sets:
                hint[S] = True
            primal.offer(found, hint)
        stats["exchange_s"] = stats.get("exchange_s", 0.0) + time.perf_counter() - t

    def primal_round(best: tuple[Pricing, None], budget: float, master: BundleMaster, milp_time: float) -> None:
        t = time.perf_counter()
        Pr = best[0]
        if (milp_time > opts.milp_time and not tangent and opts.exchange_candidates > 0
                and primal.best_placement is not None and time.perf_counter() < deadline):
            # an extra round of a large snapshot: moves and exchanges first (on default 1000 x 50 the
            # gap left open by the MILP and the local search is mostly the decision's, which two to
            # twenty DT moves close: docs/solvers_fast.md, "Extra rounds")
            exchange_polish()
            if relative_gap(primal.best_cost, Pr.value) <= gap:
                stats["primal_s"] += time.perf_counter() - t
                return
        primal_from(Pr)
        key = (master.n_rows, Pr.value, slack[0])
        if key in solved and tangent:   # HiGHS finished it: the next round keeps twice as many options
            slack[0] *= 2.0
            key = key[:2] + (slack[0],)
        # the same MILP again only if HiGHS stopped at its time limit; none past the caller's time
        # limit (its incumbents' admissions ran up to 0.5 s past it at 2000 x 50)
        if key not in solved and time.perf_counter() < deadline:
            limit = min(milp_time, max(phase_end - time.perf_counter(), 0.05))
            found: list = []
            t_milp = time.perf_counter()
            if tangent:   # each incumbent admitted as HiGHS finds it; HiGHS stops once one closes the gap
                more = start = None
                if milp_time > opts.milp_time and opts.extra_options == "reduced_cost" and primal.best_placement is not None:
                    # an extra round (bundle_rounds triples milp_time for each): every served pair that
                    # a decision cheaper than the best may use (or the reduced_cost_pairs cheapest of
                    # them), and the best as HiGHS's start
                    room = primal.best_cost - Pr.value
                    cap, bundle = opts.reduced_cost_pairs, None
                    if cap is not None:   # the bundle's served pairs are offered anyway: not counted in the cap
                        on, om, _, _, oserved = near_options(ld, master, Pr, slack[0])
                        bundle = on[oserved] * M + om[oserved]
                    more = reduced_cost_options(ld, Pr, room + 1e-9 * (abs(room) + abs(primal.best_cost)),
                                                limit=cap, exclude=bundle)
                    start = primal.decision()
                    start = (start[0], start[1], start[3])
                tangent_master_placement(ld, master, limit, Pr, slack=slack[0], mip_gap=opts.milp_gap,
                                         on_found=lambda pl, served: admitted(pl, served, Pr.value),
                                         options=more, start=start)
                starts.sort(key=lambda c: c[:2])
            else:
                restricted_master_placement(ld, master, limit, Pr, slack=slack[0], mip_gap=opts.milp_gap,
                                            found=found)
            if time.perf_counter() - t_milp < 0.9 * limit:
                solved.add(key)
            if found and fits_storage(s, found[-1][0]):   # HiGHS's last incumbent
                primal.offer(*found[-1])
            pending.extend(found[:-1])
        stats["admit_s"] = stats.get("admit_s", 0.0) + time.perf_counter() - t
        t1 = time.perf_counter()
        stats["moves"] = stats.get("moves", 0) + local_search(primal, min(phase_end, t1 + budget))

        def gap_open() -> bool:
            return relative_gap(primal.best_cost, Pr.value) > opts.gap and time.perf_counter() < phase_end

        if pending and gap_open():   # HiGHS's earlier incumbents: the MILP's costs are not the admitted ones
            before = primal.best_cost
            starts.extend((primal.offer(pl, served), len(starts), pl) for pl, served in pending if fits_storage(s, pl))
            pending.clear()
            if primal.best_cost < before:
                stats["moves"] += local_search(primal, min(phase_end, time.perf_counter() + budget))
            starts.sort(key=lambda c: c[:2])
        # gap still open: the search from the next cheapest incumbents too (another basin, cheaply)
        while starts and len(tried) < opts.search_starts and gap_open():
            cost, _, pl = starts.pop(0)
            if cost > primal.best_cost:
                tried.append(cost)
                stats["moves"] += local_search(primal, min(phase_end, time.perf_counter() + budget), start=pl)
        stats["search_s"] = stats.get("search_s", 0.0) + time.perf_counter() - t1
        stats["primal_s"] += time.perf_counter() - t

    out = bundle_rounds(ld, opts, (P, None), pricing, primal_round, best_cost, deadline, t0, stats,
                        stop_unimproved=not tangent)
    best_dual, status, converged = out.best_dual, out.status, out.converged
    # the prices of the bound (as relaxation keeps them), so that solve's tolerance check can price
    # the tolerant snapshot at them (weak duality: a bound there too, solvers/tolerance.py)
    stats["dual_prices"] = {"cpu_j_per_hz": out.best[0].lam.tolist(), "storage_j_per_bit": out.best[0].pi.tolist()}
    if primal.best_placement is None:  # stopped before any primal round: one cheap placement anyway
        primal_from(out.best[0])
    if primal.best_placement is None and fits_storage(s, prev):
        primal.offer(prev.copy())
    sol = done(best_dual, status)
    if (sol.status == SolveStatus.FEASIBLE and converged and N * M <= opts.exact_pairs
            and time.perf_counter() < min(deadline, t0 + opts.exact_time) and s.allow_migration):
        return _continue_in_exact(s, sol, opts, t0, deadline)
    return sol


def bundle_rounds(ld: LagrangianData, opts: FastOptions, first: tuple[Pricing, Any], pricing: Callable,
                  primal_round: Callable, best_cost: Callable[[], float], deadline: float, t0: float,
                  stats: dict[str, Any], stop_unimproved: bool = False) -> "BundleOutcome":
    """fast's dual loop: the bundle method on ``D(lam, pi)`` with primal rounds, then the extra rounds.

    Shared by :func:`solve_fast` and the level-aware ``solve_fast_levels`` (solvers/levels.py), which
    differ in their pricing and primal only.

    Parameters
    ----------
    ld : LagrangianData
        The snapshot's Lagrangian data (failure and migration costs, sizes).
    opts : FastOptions
        ``gap``, ``max_iterations``, ``box``, ``primal_every``, ``search_time``, ``milp_time``,
        ``extra_rounds`` and ``verbose`` are used.
    first : (Pricing, extra)
        ``pricing`` at zero prices (the bundle's first model and its centre's value).
    pricing : callable
        ``pricing(lam, pi) -> (Pricing, extra)`` at CPU prices ``lam`` [M] (J per cycle/s) and storage
        prices ``pi`` [M] (J per bit); ``extra`` is what the caller keeps beside it (the levels).
    primal_round : callable
        ``primal_round(best, budget_s, master, milp_time_s)``: the primal from the best pricing so far.
    best_cost : callable
        The best primal cost so far (J; inf when there is none).
    deadline, t0 : float
        ``time.perf_counter()`` values: the time limit and the start.
    stats : dict
        Updated in place: ``iterations``, ``serious_steps``, ``master_rows``, ``pricing_s``,
        ``master_s``, ``extra_rounds``.
    stop_unimproved : bool, optional
        End the extra rounds after one that finds no cheaper decision (``fast``'s fixed-share MILP,
        N M above ``TANGENT_PAIRS``: a longer run of the same MILP, which on default 1000 x 50
        snapshots never found one; docs/solvers_fast.md, "Extra rounds"). False keeps every extra
        round (the tangent MILP's second extra round finds decisions its first did not).

    Returns
    -------
    BundleOutcome
        The best dual value (J), the pricing that gave it, the status, whether the bundle converged,
        the bundle master and the restricted-master MILP's last time budget (s).
    """
    s = ld.pd.snapshot
    N, M = s.n_mus, s.n_bss
    prev = s.placement_prev
    P = first[0]
    best_dual, best = P.value, first
    req_fail = ld.fail[s.request]
    top = float(req_fail.max()) if req_fail.size else 0.0   # the mean as top * mean(x / top): prices of
    ref = top * float(np.mean(req_fail / top)) if top > 0 else 1.0   # 1e308 J summed to inf (ref inf)
    master = BundleMaster(ld, ref)
    idx = np.arange(N)
    master.add_options(idx, P.host, P.cpu, P.const, P.served)
    # every MU may also fail at (or, if not requesting, stay on) its current host
    master.add_options(idx, prev, np.zeros(N), ld.fail + 0.0 * ld.mig[idx, prev], np.zeros(N, dtype=bool))
    center = np.zeros(2 * M)
    center_value = P.value  # D at the box's centre: steps and convergence are measured from it
    width = np.full(2 * M, float(opts.box))
    status = "feasible"
    converged = False
    milp_time = opts.milp_time
    for it in range(1, opts.max_iterations + 1):
        stats["iterations"] = it
        if relative_gap(best_cost(), best_dual) <= opts.gap:
            status = "optimal"
            break
        if time.perf_counter() > deadline:
            status = "time_limit"
            break
        t = time.perf_counter()
        res = master.solve(np.maximum(center - width, 0.0), center + width)
        stats["master_s"] = stats.get("master_s", 0.0) + time.perf_counter() - t
        if res is None:
            break
        lam, pi, model, _, x_hat = res
        t = time.perf_counter()
        priced = pricing(lam, pi)
        P = priced[0]
        stats["pricing_s"] = stats.get("pricing_s", 0.0) + time.perf_counter() - t
        center, center_value, width, converged = bundle_step(center, center_value, width, x_hat, model,
                                                             P.value, ref, stats)
        if P.value > best_dual:
            best_dual, best = P.value, priced
        master.add_priced(idx, P)
        stats["master_rows"] = master.n_rows
        if it % opts.primal_every == 0 or converged:
            primal_round(best, opts.search_time, master, milp_time)
        if opts.verbose:
            print(f"it {it}: D {P.value:.6g} best {best_dual:.6g} model {model:.6g} ub {best_cost():.6g} "
                  f"gap {relative_gap(best_cost(), best_dual):.4f} width {np.median(width):.3g} "
                  f"t {time.perf_counter() - t0:.2f}s")
        if converged:
            break
    # the dual is spent: give the primal a few more tries with longer MILP and search budgets
    for extra in range(1, opts.extra_rounds + 1):
        if relative_gap(best_cost(), best_dual) <= opts.gap:
            break
        if time.perf_counter() > deadline or not converged:
            break
        milp_time *= 3.0
        before = best_cost()
        primal_round(best, opts.search_time * 2, master, milp_time)
        stats["extra_rounds"] = extra
        if stop_unimproved and not best_cost() < before:
            break
    return BundleOutcome(best_dual, best, status, converged, master, milp_time)


@dataclass
class BundleOutcome:
    """What :func:`bundle_rounds` ends with."""

    best_dual: float        # the best dual value D(lam, pi) seen (J), a certified lower bound
    best: tuple             # (Pricing, extra) at the prices of best_dual
    status: str             # "optimal", "time_limit" or "feasible"
    converged: bool         # the bundle's model met its value at the centre
    master: BundleMaster    # the bundle master (its options feed the restricted-master MILP)
    milp_time: float        # the restricted-master MILP's last time budget (s)


def _continue_in_exact(s: Snapshot, sol: Solution, opts: FastOptions, t0: float, deadline: float) -> Solution:
    """Small snapshot, Lagrangian gap above ``gap``: exact's branch and bound from fast's decision and bound.

    The Lagrangian bound cannot pass the relaxation's integrality gap (few DTs per server); exact's
    master closes it. Its bound starts at fast's, its incumbent at fast's decision (docs/solvers_fast.md,
    "Small loaded snapshots").
    """
    import dataclasses

    from .exact import continue_exact
    from .options import ExactOptions

    limit = min(deadline, t0 + opts.exact_time) - t0
    ex = continue_exact(s, sol, ExactOptions(gap=opts.gap, time_limit=limit, threads=opts.threads), t0)
    if not (ex.objective <= sol.objective and ex.bound >= sol.bound):  # exact starts from both: not expected
        return sol
    stats = dict(sol.stats)
    stats["exact_continuation"] = {k: ex.stats.get(k) for k in ("iterations", "milp_nodes", "cuts", "rescales")}
    stats["exact_continuation"].update(status=str(ex.status), fast_bound=sol.bound, fast_objective=sol.objective,
                                       wall_s=ex.solve_time_s - sol.solve_time_s)
    status = ex.status
    if status == SolveStatus.TIME_LIMIT and time.perf_counter() < t0 + (opts.time_limit or math.inf) - 1e-3:
        status = SolveStatus.FEASIBLE  # stopped by exact_time, not by the caller's time_limit
    return dataclasses.replace(ex, method="fast", status=status, stats=stats)


def _pinned_bound(ld: LagrangianData, primal: PrimalPool, stats: dict[str, Any], exact_max_candidates: int) -> float:
    """Every DT pinned: the problem splits by server. Primal and bound per server.

    Servers with few admissible requests get the exact admission (bound = cost); the others the
    local-search admission and the bound ``max_lam sum_{n on m} min(fail_n, h_nm(lam)) - lam cpu_hz[m]``
    (each server's own 1-D Lagrangian dual, maximized by bisection on its supergradient
    ``cpu use - cpu_hz[m]``, vectorized over servers; any lam gives a valid bound).
    """
    s = ld.pd.snapshot
    M = s.n_bss
    prev = s.placement_prev
    pd = ld.pd
    exact = np.zeros(M, dtype=bool)
    exact_cost = np.zeros(M)
    for m in range(M):
        hosted = np.flatnonzero(primal.req & (prev == m))
        n_cand = int((pd.servable[hosted, m]).sum())
        if n_cand <= exact_max_candidates:
            r = admit_server(pd, m, hosted)
            primal.cache[(m, hosted.tobytes())] = ServerChoice(r.alloc, r.cost, r.nodes)
            exact[m] = True
            exact_cost[m] = r.cost
    primal.offer(prev.copy())
    fixed = np.bincount(prev, weights=np.where(s.request & s.migrating, s.failure_penalty, 0.0), minlength=M)
    best = np.where(exact, exact_cost + fixed, -np.inf)
    if not exact.all():
        zero = np.zeros(M)
        hi = np.full(M, 1e-6)
        P = price(ld, hi, zero)
        for _ in range(60):  # a price where every server's best responses fit its CPU
            over = P.cpu_use > s.cpu_hz
            if not over.any():
                break
            hi = np.where(over, hi * 100.0, hi)
            P = price(ld, hi, zero)
        lo = np.zeros(M)

        def per_server(Pr: Pricing, lam: np.ndarray) -> np.ndarray:
            return np.bincount(prev, weights=Pr.theta_lb, minlength=M) - lam * s.cpu_hz

        for lam in (lo, hi):
            best = np.maximum(best, np.where(exact, best, per_server(price(ld, lam, zero), lam)))
        for _ in range(50):
            mid = np.where(lo > 0, np.sqrt(lo * hi), hi * 1e-12)
            P = price(ld, mid, zero)
            best = np.maximum(best, np.where(exact, best, per_server(P, mid)))
            over = P.cpu_use > s.cpu_hz
            lo = np.where(over, mid, lo)
            hi = np.where(over, hi, mid)
        stats["iterations"] = 50
    total = float(best.sum())
    return total - SAFETY_RTOL * float(np.abs(best).sum())


__all__ = ["solve_fast", "FastOptions", "LagrangianData", "Pricing", "inner_min", "price", "SAFETY_RTOL", "BundleMaster",
           "restricted_master_placement", "tangent_master_placement", "TANGENT_PAIRS", "PrimalPool", "ServerChoice",
           "admit_local", "fit_prices", "local_search", "repair_storage"]
