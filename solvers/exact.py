"""The exact oracle: HiGHS MILP master + exact per-server allocation, certified global optimum.

Design (docs/solvers.md has the full argument)
----------------------------------------------
The snapshot MINLP (docs/model.md, section 5) is written in disaggregated form over (MU, server) pairs:
``x[n,m]`` DT n hosted on m, ``y[n,m]`` n served on m, ``phi[n,m] = f/cpu_hz[m]`` its CPU share. The
energy of a served pair is a convex function of its share, ``e_nm(phi) = E_n(T_nm - c_n/(F_m phi))``,
and its perspective ``y e_nm(phi / y)`` is bounded below by every tangent cut

    eta[n,m] >= e_nm(p) y + e_nm'(p) (phi - p y)        (any p in [phi_min, 1]).

The *master* is the MILP with ``eta`` and finitely many such cuts: a relaxation of the snapshot
problem (each cut under-estimates the convex energy; everything else is exact: assignment, storage,
CPU shares, migration and failure costs). Hence HiGHS's dual bound of the master is a valid lower
bound of the snapshot optimum, at every iteration.

Each iteration takes the master's placement, computes its exact cost with the per-server exact
admission + allocation of solvers/allocation.py (an upper bound), and adds cuts: the Kelley cut at
the master's own shares, and the outer-approximation cuts at the optimal allocation of the master's
served sets and of the exact admission's served sets. By the KKT conditions, after the OA cuts of a
served assignment are in, the master's value for that assignment is at least its true cost; so an
assignment is revisited only if the bound has caught up with the incumbent, and the loop ends after
finitely many iterations with ``bound >= objective (1 - gap)``.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from wdtnopt.snapshot import Snapshot

from wdtnopt.formulations.coefficients import allowed_hosts

from . import Solution, SolveStatus, fail_all_solution, make_solution
from .price_certificate import PriceCertificate

from .allocation import (PairData, admit_server, allocate, allocate_server, fits_storage,
                         remembered_allocations, storage_capacity)
from .fast_dual import LagrangianData, price
from .fast_master import energy_tangents, tangent_cpus
from .fast_primal import move_estimates, repair_storage
from .highs import MasterOutcome, quiet_highs, run_model
from .options import ExactOptions


def capped_prices(s: Snapshot, cap: float) -> tuple[np.ndarray, np.ndarray]:
    """``[N]`` failure and migration prices of ``s`` (J), each lowered to ``cap`` where above it.

    With ``cap`` the cost of a known decision (``>= OPT``) the capped problem has the same optimum
    and any lower bound of it bounds ``OPT``: no decision costs more under the capped prices, and one
    paying a capped price costs at least ``cap`` under them (the argument of
    :func:`penalties_capped`). ``cap = inf`` leaves them whole.
    """
    fail, move = s.failure_penalty.astype(float), s.migration_penalty.astype(float)
    if math.isfinite(cap) and cap > 0:
        fail, move = np.minimum(fail, cap), np.minimum(move, cap)
    return fail, move


def penalties_capped(s: Snapshot, ub: float, stats: dict[str, Any]) -> Snapshot:
    """``s`` with every failure and migration penalty above ``ub`` (J, the cost of a known decision)
    lowered to ``ub`` (:func:`capped_prices`); ``s`` itself when none is above it.

    The same optimum and a valid bound: no decision costs more under the capped prices, a decision
    failing a capped request costs at least ``ub >= OPT`` under them, and the others cost the same,
    so the capped problem's minimum is ``OPT`` and any lower bound of it bounds ``OPT``. Prices of
    1e12 J next to energies of mJ (tests/data/solver_cases/penalty_1e12_2x2.json) put objective
    coefficients of 2e13 in SCIP's model, which then reported 'optimal' at a bound 15.7% below the
    optimum; capped, SCIP proves it. A request that no server can serve fails in the known decision
    too, so its penalty is at most ``ub`` and stays whole. Migration penalties likewise (a decision
    moving a capped DT costs at least ``ub`` under the capped prices); penalties near 1e308 J divided
    by a model scale of mJ overflowed to infinite objective coefficients before. ``stats["penalty_cap"]``
    records ``ub`` when a price was lowered.
    """
    p, q = s.failure_penalty, s.migration_penalty
    if not (math.isfinite(ub) and ub > 0 and ((p > ub).any() or (q > ub).any())):
        return s
    stats["penalty_cap"] = ub
    fail, move = capped_prices(s, ub)
    return s.replace(failure_penalty=fail, migration_penalty=move)


def master_ref(s: Snapshot, ub: float) -> float:
    """The unit (J) a master of ``s`` is built in: the cost ``ub`` of the incumbent where there is one,
    else the requesting MUs' failure penalties plus every migration penalty, else 1 (exact's master
    and the level master's, solvers/levels.py). A snapshot's penalties sum to a float (its
    validation); should that sum still overflow, the largest penalty is the scale."""
    if math.isfinite(ub):
        ref = ub
    else:
        with np.errstate(over="ignore"):
            ref = float(s.failure_penalty[s.request].sum() + s.migration_penalty.sum())
        if not math.isfinite(ref):
            ref = float(max(s.failure_penalty[s.request].max(initial=0.0), s.migration_penalty.max(initial=0.0)))
    return ref if ref > 0 else 1.0


def _in_units(prices: np.ndarray, ref: float) -> float:
    """``sum(prices) / ref``; each price divided first where the sum in J would overflow (the level
    master's virtual copies of penalties near 1e308 J), else exactly that quotient."""
    with np.errstate(over="ignore"):
        total = float(prices.sum())
    return total / ref if math.isfinite(total) else float((prices / ref).sum())


class _Master:
    """The MILP master of one snapshot (columns, rows and cuts in units of ``ref`` J; the objective in
    units of ``obj_ref`` J, which :meth:`rescale` moves to the incumbent's cost in place).

    ``price_cap`` (J, the cost of a known decision; default none): failure and migration penalties
    above it are priced at it (:func:`capped_prices`), the same optimum and a valid bound, and no
    penalty of 1e308 J overflows to an infinite cost when divided by an incumbent of mJ."""

    def __init__(self, pd: PairData, ref: float, opts: ExactOptions, carry: "dict | None" = None,
                 price_cap: float = math.inf):
        import highspy

        self.hs = highspy
        s = pd.snapshot
        self.pd, self.s, self.ref, self.obj_ref = pd, s, ref, ref
        fail_price, move_price = capped_prices(s, price_cap)
        N, M = s.n_mus, s.n_bss
        pinned = s.pinned
        self.free = np.flatnonzero(~pinned)
        # columns: x[n, m] of the unpinned DTs (n-major; 0 on hosts they may not take: down
        # servers), then per servable pair (n, m) y and, if it needs CPU, phi and eta, then u[n]
        hosts = allowed_hosts(s)
        F = self.free.size
        x_cost = self._move_costs(move_price)
        self.x = -np.ones((N, M), dtype=np.int64)
        self.x[self.free] = np.arange(F * M, dtype=np.int64).reshape(F, M)
        req = s.request & ~s.migrating
        ok = pd.servable & hosts & req[:, None]
        pn, pm = (v.astype(np.int64) for v in np.nonzero(ok))
        self.pairs = list(zip(pn.tolist(), pm.tolist()))
        cpu = pd.cycles[pn] > 0
        width = 1 + 2 * cpu.astype(np.int64)
        y_col = F * M + np.cumsum(width) - width
        y_cost = np.zeros(pn.size)
        if (~cpu).any():  # no CPU: energy is the constant E(T) when served
            y_cost[~cpu] = pd.energy(pn[~cpu], pd.budget[pn[~cpu], pm[~cpu]]) / ref
        n_pair_cols = int(width.sum())
        # failure of a servable request: u[n] >= 1 - sum_m y[n, m], cost failure_penalty[n]. Written
        # with its own column (not as -penalty y + constant) so that an objective far below the
        # penalties is not the difference of large numbers (penalties of 1e12 J next to mJ energies).
        can_serve = np.unique(pn)
        u_col = F * M + n_pair_cols + np.arange(can_serve.size, dtype=np.int64)
        ncol = F * M + n_pair_cols + can_serve.size
        costs = np.zeros(ncol)
        lower = np.zeros(ncol)
        upper = np.ones(ncol)
        is_int = np.zeros(ncol, dtype=bool)
        costs[:F * M] = x_cost.ravel()
        upper[:F * M] = hosts[self.free].ravel().astype(float)
        is_int[:F * M] = True
        costs[y_col] = y_cost
        is_int[y_col] = True
        phi_col, eta_col = y_col[cpu] + 1, y_col[cpu] + 2
        costs[eta_col] = 1.0                     # eta is in units of ref already
        upper[eta_col] = math.inf
        costs[u_col] = fail_price[can_serve] / ref
        integer = np.flatnonzero(is_int)
        keys = self.pairs
        self.y = dict(zip(keys, y_col.tolist()))
        cpu_keys = [k for k, c in zip(keys, cpu.tolist()) if c]
        self.phi = dict(zip(cpu_keys, phi_col.tolist()))
        self.eta = dict(zip(cpu_keys, eta_col.tolist()))
        self.u = dict(zip(can_serve.tolist(), u_col.tolist()))
        never = s.request.copy()
        never[can_serve] = False
        self.offset = _in_units(fail_price[never], ref)
        # every requesting MU's penalty (units of ref): the objective's constant if failures were
        # written as penalty (1 - sum_m y); the level master's shift is stated with it
        self.penalty_total = _in_units(fail_price[s.request], ref)
        self.ncol = ncol

        # rows, in this order: one host per DT, the failure rows, storage per server, per pair
        # (y <= x, phi <= y, pmin y <= phi), CPU per server; gathered as (row, column, value) triples
        r_lo: list[np.ndarray] = []
        r_hi: list[np.ndarray] = []
        trip: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []   # (row within block, col, value)

        def block(lo, hi, rr, cc, vv) -> int:
            first = sum(a.size for a in r_lo)
            r_lo.append(np.asarray(lo, dtype=float))
            r_hi.append(np.asarray(hi, dtype=float))
            trip.append((first + np.asarray(rr, dtype=np.int64), np.asarray(cc, dtype=np.int64),
                         np.asarray(vv, dtype=float)))
            return first

        block(np.ones(F), np.ones(F), np.repeat(np.arange(F), M), np.arange(F * M), np.ones(F * M))
        u_row_of = np.full(N, -1, dtype=np.int64)
        u_row_of[can_serve] = np.arange(can_serve.size)
        rr = np.concatenate((np.arange(can_serve.size), u_row_of[pn]))
        cc = np.concatenate((u_col, y_col))
        order = np.argsort(rr, kind="stable")   # each failure row: u first, then its y's by server
        block(np.ones(can_serve.size), np.full(can_serve.size, math.inf), rr[order], cc[order], np.ones(rr.size))
        self.storage_rows: dict[int, tuple[int, float]] = {}   # server -> (row, its scale)
        self.cpu_rows: dict[int, int] = {}
        pinned_load = np.bincount(s.placement_prev[pinned], weights=s.dt_size_bits[pinned], minlength=M)
        self.storage_room = storage_capacity(s) - pinned_load
        sized = self.free[s.dt_size_bits[self.free] > 0]
        for m in range(M):
            if sized.size:
                cap = float(s.storage_bits[m])
                if cap <= 0:
                    cap = 1.0
                first = block([-math.inf], [float(self.storage_room[m]) / cap], np.zeros(sized.size),
                              self.x[sized, m], s.dt_size_bits[sized].astype(float) / cap)
                self.storage_rows[m] = (first, cap)
        x_of = self.x[pn, pm]
        on_x = x_of >= 0
        n_rows = on_x.astype(np.int64) + 2 * cpu.astype(np.int64)   # rows of each pair, in order
        first_row = np.cumsum(n_rows) - n_rows
        k_x, k_c = np.flatnonzero(on_x), np.flatnonzero(cpu)
        pmin = pd.f_min[pn[k_c], pm[k_c]] / pd.cpu_hz[pm[k_c]]   # pairs with CPU rows only (cpu_hz > 0 there)
        r_x = first_row[k_x]
        r_c = first_row[k_c] + on_x[k_c]
        phi_of = np.zeros(pn.size, dtype=np.int64)
        phi_of[k_c] = phi_col
        rr = np.concatenate((r_x, r_x, r_c, r_c, r_c + 1, r_c + 1))
        cc = np.concatenate((y_col[k_x], x_of[k_x], phi_of[k_c], y_col[k_c], phi_of[k_c], y_col[k_c]))
        vv = np.concatenate((np.ones(k_x.size), -np.ones(k_x.size), np.ones(k_c.size), -np.ones(k_c.size),
                             -np.ones(k_c.size), pmin))
        order = np.argsort(rr, kind="stable")
        total = int(n_rows.sum())
        block(np.full(total, -math.inf), np.zeros(total), rr[order], cc[order], vv[order])
        for m in range(M):
            on = k_c[pm[k_c] == m]
            if on.size:
                self.cpu_rows[m] = block([-math.inf], [1.0], np.zeros(on.size), phi_of[on], np.ones(on.size))
        row_lo = np.concatenate(r_lo) if r_lo else np.empty(0)
        row_hi = np.concatenate(r_hi) if r_hi else np.empty(0)
        rows_r = np.concatenate([t[0] for t in trip])
        rows_c = np.concatenate([t[1] for t in trip])
        rows_v = np.concatenate([t[2] for t in trip])
        n_all_rows = row_lo.size
        row_start = np.searchsorted(rows_r, np.arange(n_all_rows + 1))   # triples are in row order

        h = quiet_highs(opts.threads, heuristics=opts.highs_heuristics, heuristic_effort=opts.heuristic_effort)
        h.setOptionValue("dual_feasibility_tolerance", DUAL_TOL)
        # the tolerance HiGHS reports it enforces (the bound's derating term is built from it)
        self.dual_tol = float(h.getOptionValue("dual_feasibility_tolerance")[1])
        self.base_reliability = int(h.getOptionValue("mip_pscost_minreliable")[1])   # HiGHS's own
        self.h = h
        self.opts = opts
        inf = highspy.kHighsInf
        lp = highspy.HighsLp()
        lp.num_col_ = self.ncol
        lp.num_row_ = n_all_rows
        lp.col_cost_ = costs
        lp.col_lower_ = lower
        lp.col_upper_ = np.where(np.isinf(upper), inf, upper)
        lp.row_lower_ = np.where(np.isinf(row_lo), -inf, row_lo)
        lp.row_upper_ = np.where(np.isinf(row_hi), inf, row_hi)
        lp.offset_ = self.offset
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = row_start.astype(np.int32)
        lp.a_matrix_.index_ = rows_c.astype(np.int32)
        lp.a_matrix_.value_ = rows_v
        integrality = [highspy.HighsVarType.kContinuous] * self.ncol
        for j in integer:
            integrality[j] = highspy.HighsVarType.kInteger
        lp.integrality_ = integrality
        self.integer = np.array(integer, dtype=np.int32)
        h.passModel(lp)
        self.col_cost = costs.copy()
        self.cuts: dict[tuple[int, int], list[float]] = {p: [] for p in self.phi}
        self.slack_top: dict[tuple[int, int], float] = {p: 0.0 for p in self.phi}  # sum of cut rows' most slack
        # each pair's energy at its least share (ref units): no tangent cut exceeds it where phi >= pmin y
        self.e_ends = self._energy_at_ends()
        self.e_top = {p: e[0] for p, e in self.e_ends.items()}
        # per pair with a share: its y, phi and eta columns and its energy at its least share and at 1
        self.pair_info = {p: (self.y[p], self.phi[p], self.eta[p], *self.e_ends[p]) for p in self.phi}
        # the parts of the derating weight (see `derate`) that the cuts do not change
        self.n_yx_rows = sum(1 for n, m in self.pairs if self.x[n, m] >= 0)
        self.derate_base = (2.0 * self.free.size + 6.0 * len(self.u) + 2.0 * M + self.n_yx_rows
                            + 2.0 * len(self.phi))
        self.n_base_rows = n_all_rows
        self.cut_rows: list[tuple[tuple[int, int], float]] = []  # (pair, share) of each cut row, in order
        self.n_cuts = 0
        self.incumbent = None
        self.keep_duals = False              # keep the last root LP's row duals (price_certificate)
        self.root_duals: np.ndarray | None = None
        self.carry = carry                   # cut shares of an earlier master of this snapshot
        self.n_server_rows = 0               # rows of `server_rows`, and the most their slacks sum to
        self.server_slack = 0.0

    def _energy_at_ends(self) -> dict[tuple[int, int], tuple[float, float]]:
        """Each pair's energy (units of ref) at its least share and at share 1, as ``e_and_slope``
        gives it, for all pairs at once."""
        if not self.phi:
            return {}
        pd = self.pd
        ns, ms = (np.array(v) for v in zip(*self.phi))
        F = pd.cpu_hz[ms].astype(float)
        c = pd.cycles[ns].astype(float)
        out = []
        for p in (pd.f_min[ns, ms] / F, np.ones(ns.size)):
            with np.errstate(divide="ignore"):   # f_min / F below the smallest float: c / 0 = inf, t = t_min
                t = np.maximum(pd.budget[ns, ms] - c / (F * p), pd.t_min[ns])
            out.append(pd.energy(ns, t) / self.ref)
        return {(int(n), int(m)): (float(lo), float(hi)) for n, m, lo, hi in zip(ns, ms, *out)}

    # -- scale and the bound's derating term -----------------------------------------------------
    def _push_costs(self) -> None:
        """Hand HiGHS the objective in units of ``obj_ref`` (costs are kept in units of ``ref``)."""
        w = self.ref / self.obj_ref
        idx = np.arange(self.ncol, dtype=np.int32)
        self.h.changeColsCost(self.ncol, idx, self.col_cost * w)
        self.h.changeObjectiveOffset(self.offset * w)

    def rescale(self, obj_ref: float) -> None:
        """Measure the objective in units of ``obj_ref`` J (in place: rows, cuts, basis kept).

        HiGHS's tolerances act on the objective's units; the bound's derating term (:meth:`derate`)
        is proportional to them, so the objective is kept in units of the incumbent's cost.
        """
        if obj_ref > 0 and math.isfinite(obj_ref) and obj_ref != self.obj_ref:
            self.obj_ref = float(obj_ref)
            self._push_costs()

    def derate(self, bound_j: float) -> float:
        """How far (J) a HiGHS bound ``bound_j`` of this master can lie above the master's true
        optimum, from HiGHS's dual feasibility tolerance and the master's coefficients.

        A branch-and-bound node's reported value exceeds the node's optimum ``x*`` by at most
        ``sum_j |r_j| |x*_j - x_j|`` over the nonbasic columns and row slacks whose reduced costs
        ``r_j`` have the wrong sign, each by at most ``dual_tol`` (in objective units). The moves are
        bounded by the master's structure (docs/solvers.md, "The exact bound under HiGHS's
        tolerances"): 2 per DT over its ``x`` (one host), 2 per request over each of ``y`` and
        ``phi`` and 1 over ``u``, 1 per failure row, storage row, CPU row, ``y <= x`` row and
        ``phi`` row, ``2 H`` over the ``eta`` columns with ``H = min(v, sum_n max_m e_nm(pmin)) / ref``
        (``v``: the node's value, J; a pair's optimal eta is at most its energy at its least share,
        and a request is served on one server), over the cut rows of a request
        ``max_m sum_c (e_nm(pmin) - a_c - b_c) / sigma_c`` (a cut row ``eta >= a y + b phi``
        divided by ``sigma``: its slack where ``y <= 1``, ``phi <= y`` and ``eta <= e(pmin) y``),
        and over each row of :meth:`server_rows` the most its slack can be.
        ``v`` is taken as ``bound_j`` (a node of larger value has a larger reported value, and
        ``dual_tol`` << 1).
        """
        if not math.isfinite(bound_j):
            return 0.0
        cut: dict[int, float] = {}
        top: dict[int, float] = {}
        for (n, m), sl in self.slack_top.items():
            cut[n] = max(cut.get(n, 0.0), sl)
            top[n] = max(top.get(n, 0.0), self.e_top[n, m])
        v = max(bound_j, 0.0) / self.ref
        eta = min(v, sum(top.values()))                      # the most all eta can sum to, rows' units
        # a caller's rows (level ties)
        extra = self.h.getNumRow() - self.n_base_rows - len(self.cut_rows) - self.n_server_rows
        weight = (self.derate_base + 2.0 * max(extra, 0) + sum(cut.values()) + 2.0 * eta
                  + self.server_slack)
        return self.dual_tol * self.obj_ref * weight * (1.0 + 1e-12)

    def safe(self, bound_j: float) -> float:
        """``bound_j`` less :meth:`derate` (a lower bound of the master's optimum under HiGHS's tolerances)."""
        return bound_j - self.derate(bound_j) if math.isfinite(bound_j) else bound_j

    def _move_costs(self, move_price: np.ndarray) -> np.ndarray:
        """``[F, M]`` objective costs (units of ref) of the unpinned DTs' hosts: ``move_price`` off the
        previous host, 0 on it."""
        s = self.s
        prev_f = s.placement_prev[self.free]
        return np.where(np.arange(s.n_bss)[None, :] != prev_f[:, None],
                        (move_price[self.free] / self.ref)[:, None], 0.0)

    def reprice(self, pd: PairData, price_cap: float = math.inf) -> None:
        """Take the failure penalties of ``pd``'s snapshot (everything else unchanged), priced at
        most ``price_cap`` (J, a known decision's cost of that snapshot): only the objective
        coefficients of the failure columns ``u``, of the moves ``x`` (through the cap) and the
        offset depend on them, so every row and cut stays valid and HiGHS keeps its basis."""
        s = pd.snapshot
        self.pd, self.s = pd, s
        w = self.ref / self.obj_ref
        fail_price, move_price = capped_prices(s, price_cap)
        if self.u:
            idx = np.array(list(self.u.values()), dtype=np.int32)
            costs = np.array([float(fail_price[n]) / self.ref for n in self.u])
            self.col_cost[idx] = costs
            self.h.changeColsCost(idx.size, idx, costs * w)
        if self.free.size:
            x_idx = self.x[self.free].ravel()
            moves = self._move_costs(move_price).ravel()
            changed = moves != self.col_cost[x_idx]
            if changed.any():
                self.col_cost[x_idx[changed]] = moves[changed]
                self.h.changeColsCost(int(changed.sum()), x_idx[changed].astype(np.int32), moves[changed] * w)
        never = s.request.copy()
        never[list(self.u)] = False
        self.offset = _in_units(fail_price[never], self.ref)
        self.h.changeObjectiveOffset(self.offset * w)
        self.incumbent = None

    def price_certificate(self) -> "PriceCertificate | None":
        """The :class:`PriceCertificate` at the CPU and storage prices of the last root LP's duals
        (None if there are none)."""
        y = self.root_duals
        if y is None:
            return None
        s = self.s
        M = s.n_bss
        lam, pi = np.zeros(M), np.zeros(M)
        for m, r in self.cpu_rows.items():       # sum_n phi[n, m] <= 1: price per unit share
            if r < y.size:
                lam[m] = max(-float(y[r]), 0.0) * self.obj_ref / float(self.pd.cpu_hz[m])
        for m, (r, cap) in self.storage_rows.items():   # sum_n size_n / cap x[n, m] <= room / cap
            if r < y.size:
                pi[m] = max(-float(y[r]), 0.0) * self.obj_ref / cap
        return PriceCertificate.at(self.pd, lam, pi)

    # -- cuts ----------------------------------------------------------------------------------
    def e_and_slope(self, n: int, m: int, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``e_nm(p)`` and ``d e_nm / d p`` (scaled by 1/ref) at CPU shares ``p``."""
        p = np.asarray(p, dtype=float)
        return self.e_and_slope_pairs(np.full(p.size, n), np.full(p.size, m), p)

    def e_at(self, n: int, m: int, p: float) -> float:
        """``e_nm(p)`` (scaled by 1/ref) at one CPU share ``p`` (without the slope, which overflows at a
        share whose square underflows: a server of 1e300 Hz)."""
        pd = self.pd
        c = float(pd.cycles[n])
        t = max(float(pd.budget[n, m]) - c / (float(pd.cpu_hz[m]) * p), float(pd.t_min[n]))
        return float(pd.energy(np.array([n]), np.array([t]))[0]) / self.ref

    def e_and_slope_pairs(self, ns: np.ndarray, ms: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``e_nm(p)`` and ``d e_nm / d p`` (scaled by 1/ref) for pairs ``(ns[i], ms[i])`` at shares ``p[i]``."""
        # fast's tangents in the share (one definition; a slope past the largest float is -inf, its
        # limit, which add_cuts_many skips)
        p = np.asarray(p, dtype=float)
        e, de = energy_tangents(self.pd, ns, ms, self.pd.cpu_hz[ms].astype(float) * p, share=p)
        with np.errstate(over="ignore"):
            return e / self.ref, de / self.ref

    def add_cuts(self, n: int, m: int, points) -> int:
        """Tangent cuts of the perspective at shares ``points``; returns how many were new."""
        pts = np.asarray(points, dtype=float).ravel()
        return self.add_cuts_many(np.full(pts.size, n), np.full(pts.size, m), pts)

    def add_cuts_many(self, ns, ms, points) -> int:
        """Tangent cuts of the perspective of pairs ``(ns[i], ms[i])`` at shares ``points[i]`` (each
        clipped to ``[pmin, 1]``; a share within 1e-12 relative of one the pair already has is skipped),
        added in one HiGHS call, pairs in order of first appearance, shares ascending. Returns how many
        were new."""
        pd = self.pd
        ns = np.asarray(ns, dtype=np.int64).ravel()
        ms = np.asarray(ms, dtype=np.int64).ravel()
        if ns.size == 0:
            return 0
        pmin_all = pd.f_min[ns, ms] / pd.cpu_hz[ms]
        pts_all = np.clip(np.asarray(points, dtype=float).ravel(), pmin_all, 1.0)
        key = ns * pd.cpu_hz.size + ms
        # pairs in order of first appearance, each pair's shares ascending, exact repeats dropped
        _, first = np.unique(key, return_index=True)
        rank = np.empty(key.size, dtype=np.int64)
        rank_of_key = dict(zip(key[first].tolist(), np.argsort(np.argsort(first)).tolist()))
        rank[:] = [rank_of_key[k] for k in key.tolist()]
        order = np.lexsort((pts_all, rank))
        r_s, p_s = rank[order], pts_all[order]
        keep = np.ones(order.size, dtype=bool)
        keep[1:] = (r_s[1:] != r_s[:-1]) | (p_s[1:] != p_s[:-1])
        order = order[keep]
        n_v, m_v, p_v = ns[order], ms[order], pts_all[order]
        # a share within 1e-12 relative of one the pair already has is not new
        ok = np.ones(p_v.size, dtype=bool)
        cuts = self.cuts
        for i, (n, m, p) in enumerate(zip(n_v.tolist(), m_v.tolist(), p_v.tolist())):
            have = cuts[n, m]
            if have and any(abs(p - q) <= 1e-12 * max(p, 1e-300) for q in have):
                ok[i] = False
        if not ok.all():
            n_v, m_v, p_v = n_v[ok], m_v[ok], p_v[ok]
        if p_v.size == 0:
            return 0
        e, de = self.e_and_slope_pairs(n_v, m_v, p_v)
        steep = ~np.isfinite(de)   # a slope past the largest float (a share near 1e-306: data of 1e-300
        if steep.any():            # bits): no cut there (any subset of valid cuts is a relaxation)
            keep = ~steep
            n_v, m_v, p_v, e, de = n_v[keep], m_v[keep], p_v[keep], e[keep], de[keep]
            if p_v.size == 0:
                return 0
        pairs = list(zip(n_v.tolist(), m_v.tolist()))
        shares = p_v.tolist()
        for pair, p in zip(pairs, shares):
            cuts[pair].append(p)
        a = e - de * p_v          # coefficient of y
        b = de.copy()             # coefficient of phi (<= 0)
        # a coefficient this small would be dropped by HiGHS, making the cut invalid: use the weaker
        # valid cut eta >= (e + e'(1 - p)) y  (phi <= y, e' <= 0)
        tiny = -b < 1e-9
        a = np.where(tiny, e + de * (1.0 - p_v), a)
        b = np.where(tiny, 0.0, b)
        a = np.where(a < 1e-9, np.maximum(a, 0.0), a)
        # the row divided by sigma in [1, CUT_ROW_SCALE_MAX]: its slack, which enters the bound's
        # derating term (`derate`), is then at most eta + |b| / sigma (not eta + |b|)
        sigma = np.minimum(np.maximum(-b, 1.0), CUT_ROW_SCALE_MAX)
        k = p_v.size
        info = np.array([self.pair_info[pair] for pair in pairs]).reshape(k, 5)   # y, phi, eta, e(pmin), e(1)
        y_j, phi_j, eta_j = (info[:, i].astype(np.int64) for i in range(3))
        has_b = b != 0.0
        width = 2 + has_b.astype(np.int64)
        starts = np.concatenate(([0], np.cumsum(width)[:-1]))
        idx = np.empty(int(width.sum()), dtype=np.int64)
        val = np.empty(idx.size)
        idx[starts], val[starts] = eta_j, -1.0 / sigma
        idx[starts + 1], val[starts + 1] = y_j, a / sigma
        idx[starts[has_b] + 2], val[starts[has_b] + 2] = phi_j[has_b], (b / sigma)[has_b]
        self.h.addRows(k, np.full(k, -self.hs.kHighsInf), np.zeros(k), idx.size, starts.astype(np.int32),
                       idx.astype(np.int32), val)
        # the most each row's slack can be (rows' units) at an LP optimum, where eta is the largest
        # of its pair's cuts (all under the convex e) and y <= 1: the most e(q) exceeds the cut at a
        # share q in [pmin, 1], at an end (coefficients HiGHS would drop as tiny are 0)
        a_kept = np.where(a / sigma >= 1e-9, a, 0.0)
        b_kept = np.where(-b / sigma >= 1e-9, b, 0.0)
        pmin_v = pd.f_min[n_v, m_v] / pd.cpu_hz[m_v]
        gap_ends = np.maximum(np.maximum(info[:, 3] - a_kept - b_kept * pmin_v, info[:, 4] - a_kept - b_kept), 0.0)
        slack_top = self.slack_top
        for pair, sl in zip(pairs, (gap_ends / sigma).tolist()):
            slack_top[pair] += sl
        self.cut_rows.extend(zip(pairs, shares))
        self.n_cuts += k
        return k

    def cut_server(self, oracle, m: int, S: list[int], xv: np.ndarray) -> tuple[Any, int]:
        """Refine the master on server ``m`` at its solution ``xv``, whose served set there is ``S``:
        outer-approximation cuts at the optimal allocation of ``S`` (``oracle(pd, m, S)``, when it
        is feasible) and Kelley cuts at the master's shares where its ``eta`` under-estimates the
        energy. Returns the allocation and the number of cuts added."""
        pd = self.pd
        a = oracle(pd, m, np.array(S))
        new_cuts = 0
        if a.feasible:
            for n, f in zip(a.mus, a.cpu_hz):
                if (n, m) in self.phi:
                    new_cuts += self.add_cuts(int(n), m, [f / pd.cpu_hz[m]])
        for n in S:
            if (n, m) in self.phi:
                p = xv[self.phi[n, m]]
                e = self.e_at(n, m, max(p, 1e-300))
                if e > xv[self.eta[n, m]] + 1e-10:
                    new_cuts += self.add_cuts(n, m, [p])
        return a, new_cuts

    def take_incumbent(self, a) -> None:
        """The decision ``a`` (``placement``, ``served``, ``tx_time``, ``cpu_hz`` [N]) as HiGHS's MIP start,
        and OA cuts at its allocation's shares."""
        self.set_incumbent(a.placement, a.served, a.cpu_hz, _eta_values(self, a))
        on = [(int(n), int(a.placement[n])) for n in np.flatnonzero(a.served)]
        on = np.array([p for p in on if p in self.phi], dtype=np.int64).reshape(-1, 2)
        self.add_cuts_many(on[:, 0], on[:, 1], a.cpu_hz[on[:, 0]] / self.pd.cpu_hz[on[:, 1]])

    def cut_served_sets(self, oracle, xv: np.ndarray, stats: dict[str, Any]) -> tuple[int, list]:
        """:meth:`cut_server` on every server at the master solution ``xv``, with the set it serves
        there (``y > 0.5``); counts one allocation per served set in ``stats["allocations"]``.
        Returns the number of cuts added and ``(m, S, allocation)`` per server that serves a set."""
        new_cuts, sets = 0, []
        for m in range(self.s.n_bss):
            S = [n for (n, mm) in self.pairs if mm == m and xv[self.y[n, mm]] > 0.5]
            if not S:
                continue
            a, added = self.cut_server(oracle, m, S, xv)
            new_cuts += added
            stats["allocations"] += 1
            sets.append((m, S, a))
        return new_cuts, sets

    def placement_of(self, xv: np.ndarray) -> np.ndarray:
        """The hosts of the master solution ``xv``: each free DT on its largest ``x``, the others where
        they were."""
        placement = self.s.placement_prev.copy()
        if self.free.size:
            placement[self.free] = np.argmax(xv[self.x[self.free]], axis=1)
        return placement

    def initial_cuts(self) -> None:
        """Per pair: tangents at its least share, a grid of ``initial_cuts`` shares up to 1,
        ``1/k`` for k up to min(8, the pairs on its server), and the shares carried from an earlier master.

        The grid is geometric in the share from ``pmin`` when ``initial_first_step`` is None, else
        crowded near ``pmin`` as the fast solver's tangent MILP (:func:`tangent_cpus`, in shares)."""
        if not self.phi:
            return
        pd = self.pd
        ns, ms = (np.array(v, dtype=np.int64) for v in zip(*self.phi))
        load = np.bincount(ms, minlength=pd.cpu_hz.size)
        pmin = pd.f_min[ns, ms] / pd.cpu_hz[ms]
        if self.opts.initial_first_step is None:
            grid = np.geomspace(np.maximum(pmin, 1e-6), 1.0, self.opts.initial_cuts, axis=1)
        else:
            F = pd.cpu_hz[ms].astype(float)
            grid = tangent_cpus(pd.f_min[ns, ms], F, self.opts.initial_cuts,
                                self.opts.initial_first_step) / F[:, None]
        inv_k = 1.0 / np.arange(1, 9)
        parts_n, parts_m, parts_p = [], [], []
        for i, (n, m) in enumerate(zip(ns.tolist(), ms.tolist())):
            carried = self.carry.get((n, m), []) if self.carry else []
            pts = np.concatenate(([pmin[i]], grid[i], inv_k[:min(int(load[m]), 8)], carried))
            parts_n.append(np.full(pts.size, n))
            parts_m.append(np.full(pts.size, m))
            parts_p.append(pts)
        self.add_cuts_many(np.concatenate(parts_n), np.concatenate(parts_m), np.concatenate(parts_p))

    def pair_columns(self) -> tuple[np.ndarray, ...]:
        """The pairs with a CPU share, in master order: ``n, m, pmin, y, phi, eta`` columns (cached)."""
        if getattr(self, "_pair_cols", None) is None:
            ns, ms = (np.array(v, dtype=np.int64) for v in zip(*self.phi))
            cols = [np.array([d[p] for p in self.phi], dtype=np.int64) for d in (self.y, self.phi, self.eta)]
            self._pair_cols = (ns, ms, self.pd.f_min[ns, ms] / self.pd.cpu_hz[ms], *cols)
        return self._pair_cols

    def kelley_cuts(self, xv: np.ndarray) -> int:
        """Tangent cuts at the shares ``phi / y`` of the LP solution ``xv`` where its ``eta`` lies below
        the energy (by more than 1e-9); returns how many were added."""
        ns, ms, pmin, yc, pc, ec = self.pair_columns()
        yv = xv[yc]
        on = yv > 1e-7
        if not on.any():
            return 0
        ns, ms, pmin, yv = ns[on], ms[on], pmin[on], yv[on]
        p = xv[pc[on]] / yv
        # below the least share the time is pinned at t_min, so e is constant there: evaluate at
        # pmin (a tiny p made the discarded slope divide by zero)
        e, _ = self.e_and_slope_pairs(ns, ms, np.maximum(p, pmin))
        low = e * yv > xv[ec[on]] + 1e-9
        return self.add_cuts_many(ns[low], ms[low], p[low]) if low.any() else 0

    def shares_at_slope(self, ns: np.ndarray, ms: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """The CPU shares ``p`` in ``[pmin, 1]`` where ``-d e_nm / d p = lam`` (ref units per share):
        each pair's best response to the CPU price ``lam`` (its end where none; bisection on ``log p``,
        60 steps; any share gives a valid cut, so the precision only places it)."""
        pmin = self.pd.f_min[ns, ms] / self.pd.cpu_hz[ms]
        lo, hi = np.log(np.maximum(pmin, 1e-300)), np.zeros(ns.size)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            steep = -self.e_and_slope_pairs(ns, ms, np.exp(mid))[1] > lam
            lo, hi = np.where(steep, mid, lo), np.where(steep, hi, mid)
        return np.clip(np.exp(0.5 * (lo + hi)), pmin, 1.0)

    def price_cuts(self, multipliers) -> int:
        """Tangent cuts of every pair of a server at its best responses to that server's CPU price
        times each of ``multipliers``, the price read from the last root LP's CPU row dual.

        A served set's optimal allocation prices the server's CPU at one ``lam`` (its KKT point: every
        served pair at ``-e' = lam``); with tangents of all the server's pairs at the responses to
        prices near the root's, the master's energy of any set served there is nearly exact at once,
        instead of after rounds of OA cuts at the sets the master tries. Returns how many were new.
        """
        if self.root_duals is None or not self.phi or not multipliers:
            return 0
        ns, ms = self.pair_columns()[:2]
        lam = self.root_cpu_prices()[ms]
        on = lam > 0
        if not on.any():
            return 0
        mult = np.asarray(multipliers, dtype=float)
        k = mult.size
        n_all, m_all = np.repeat(ns[on], k), np.repeat(ms[on], k)
        p = self.shares_at_slope(n_all, m_all, np.repeat(lam[on], k) * np.tile(mult, int(on.sum())))
        return self.add_cuts_many(n_all, m_all, p)

    def root_cpu_prices(self) -> np.ndarray:
        """Each server's CPU price (ref units per unit share) from the last root LP's CPU row dual
        ([M], 0 where there is none)."""
        lam = np.zeros(self.s.n_bss)
        y = self.root_duals
        if y is not None:
            for m, r in self.cpu_rows.items():
                if r < y.size:
                    lam[m] = max(-float(y[r]), 0.0) * self.obj_ref / self.ref
        return lam

    def server_dual_terms(self, ns: np.ndarray, ms: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """A lower bound of ``g_nm(lam) = min_{pmin <= p <= 1} e_nm(p) + lam p`` (ref units) for pairs
        ``(ns[i], ms[i])`` at CPU prices ``lam[i]`` (ref units per share).

        ``h(p) = e_nm(p) + lam p`` is convex on ``[pmin, 1]``; at the bisection's best response ``p``
        its value less ``|h'(p)|`` times the distance to the end its slope points to is below its
        minimum (the tangent at ``p`` is under ``h``), so no round-off of the response overstates it.
        """
        p = self.shares_at_slope(ns, ms, lam)
        e, de = self.e_and_slope_pairs(ns, ms, p)
        pmin = self.pd.f_min[ns, ms] / self.pd.cpu_hz[ms]
        slope = de + lam
        return e + lam * p - np.maximum(-slope, 0.0) * (1.0 - p) - np.maximum(slope, 0.0) * (p - pmin)

    def server_rows(self, ms: np.ndarray, lams: np.ndarray) -> int:
        """Rows ``sum_n eta[n, m] >= sum_n g_nm(lam) y[n, m] - lam``, one per server ``ms[i]`` and CPU
        price ``lams[i]`` (ref units per share), over the server's pairs with a CPU share.

        Valid for every decision (docs/solvers.md, "Per-server price rows"): the energy of the set
        ``S`` served on ``m`` at its shares ``p_n`` (``sum p_n <= 1``) is at least
        ``sum_S (e_nm(p_n) + lam p_n) - lam >= sum_S g_nm(lam) - lam``, the Lagrangian dual function
        of its allocation problem. Tangent cuts at the same best responses imply a row in the LP,
        but at integer points one row per (server, price) makes the master's energy of every served
        set nearly exact, where tangents need one row per pair. A row whose scale would exceed
        ``CUT_ROW_SCALE_MAX`` is skipped. Returns how many rows were added.
        """
        if not self.phi:
            return 0
        ns_all, ms_all, _, yc_all, _, ec_all = self.pair_columns()
        ms = np.asarray(ms, dtype=np.int64).ravel()
        lams = np.asarray(lams, dtype=float).ravel()
        ok = (lams > 0) & np.isfinite(lams) & np.isin(ms, ms_all)
        ms, lams = ms[ok], lams[ok]
        if ms.size == 0:
            return 0
        order = np.argsort(ms_all, kind="stable")               # pairs grouped by server
        per = np.bincount(ms_all, minlength=self.s.n_bss)
        first = np.concatenate(([0], np.cumsum(per)[:-1]))
        width = per[ms]                                          # pairs in each row
        row = np.repeat(np.arange(ms.size), width)
        pos = np.arange(row.size) - np.repeat(np.cumsum(width) - width, width)
        pair = order[first[ms][row] + pos]                       # each entry's pair (master order)
        g = np.maximum(self.server_dual_terms(ns_all[pair], ms_all[pair], lams[row]), 0.0)
        # rows divided by sigma >= 1 (like the cut rows), so that the slack in the derating term is small
        sigma = np.maximum(np.maximum(1.0, lams), np.maximum.reduceat(g, np.cumsum(width) - width))
        keep = sigma <= CUT_ROW_SCALE_MAX
        if not keep.all():
            on = keep[row]
            ms, lams, sigma, width = ms[keep], lams[keep], sigma[keep], width[keep]
            pair, g = pair[on], g[on]
            row = np.repeat(np.arange(ms.size), width)
            pos = np.arange(row.size) - np.repeat(np.cumsum(width) - width, width)
        k = ms.size
        if k == 0:
            return 0
        # each row: its eta entries, then its y entries (a y coefficient HiGHS drops as tiny only
        # weakens the row; the eta coefficients are at least 1 / CUT_ROW_SCALE_MAX)
        starts = 2 * (np.cumsum(width) - width)
        at = starts[row] + pos
        idx = np.empty(2 * row.size, dtype=np.int64)
        val = np.empty(2 * row.size)
        idx[at], val[at] = ec_all[pair], 1.0 / sigma[row]
        idx[at + width[row]], val[at + width[row]] = yc_all[pair], -g / sigma[row]
        self.h.addRows(k, -lams / sigma, np.full(k, self.hs.kHighsInf), idx.size, starts.astype(np.int32),
                       idx.astype(np.int32), val)
        # the most a row's slack can be (rows' units): its server's eta sum at an LP optimum is at
        # most sum_n e_nm(pmin) (see `derate`), its y terms are <= 0 and the constant is lam; each
        # pair's g is added too, as a margin for y's fractional values
        top = np.array([self.e_top[int(n), int(m)] for n, m in zip(ns_all[pair].tolist(), ms_all[pair].tolist())])
        self.n_server_rows += k
        self.server_slack += float(((np.bincount(row, weights=top + g, minlength=k) + lams) / sigma).sum())
        return k

    def fenchel_rows(self, xv: np.ndarray, pools: dict, deadline: float | None, stats: dict) -> int:
        """Fenchel cuts of each server's convex hull of (served set, energy) at the LP solution ``xv``
        (solvers/server_hull.py; docs/solvers.md, "Fenchel cuts of each server's hull"), added as rows
        ``sum_n eta[n, m] - sum_n b_n y[n, m] >= a`` where they cut ``xv`` off by more than 1e-9 of
        the objective's unit. ``pools[m]`` keeps the served sets generated on m across calls.
        Returns how many rows were added."""
        from .server_hull import separate_fenchel

        if not self.phi:
            return 0
        ns_all, ms_all, _, yc_all, _, ec_all = self.pair_columns()
        y_full = np.zeros(self.s.n_mus)
        added = 0
        for m in np.unique(ms_all).tolist():
            on = np.flatnonzero(ms_all == m)
            y_full[:] = 0.0
            y_full[ns_all[on]] = np.clip(xv[yc_all[on]], 0.0, 1.0)
            cut = separate_fenchel(self.pd, m, y_full, ns_all[on], columns=pools.setdefault(m, []),
                                   deadline=deadline)
            if cut is None:
                continue
            stats["hull_pricings"] = stats.get("hull_pricings", 0) + cut.pricings
            stats["hull_nodes"] = stats.get("hull_nodes", 0) + cut.nodes
            col_of = dict(zip(ns_all[on].tolist(), on.tolist()))
            eta_sum = float(xv[ec_all[[col_of[int(n)] for n in cut.mus.tolist()]]].sum())
            if cut.point_value / self.ref <= eta_sum + 1e-9 * self.obj_ref / self.ref:
                continue
            b = cut.coef / self.ref
            a = cut.const / self.ref
            # divided by sigma >= 1 like the other rows; a y coefficient HiGHS drops as tiny only
            # weakens the row (b >= 0), the eta coefficients stay >= 1 / CUT_ROW_SCALE_MAX
            sigma = max(1.0, float(b.max(initial=0.0)), abs(a))
            if sigma > CUT_ROW_SCALE_MAX:
                continue
            # over the cut's MUs only: E_m is monotone, so the energy the others add is >= 0
            at = np.array([col_of[int(n)] for n in cut.mus.tolist()], dtype=np.int64)
            idx = np.concatenate((ec_all[at], yc_all[at]))
            val = np.concatenate((np.full(at.size, 1.0 / sigma), -b / sigma))
            self.h.addRow(a / sigma, self.hs.kHighsInf, idx.size, idx.astype(np.int32), val)
            # its slack at an LP optimum is at most sum_n eta (<= sum_n e_nm(pmin)) less its constant;
            # b's sum is added as a margin for y's fractional values
            top = sum(self.e_top[int(n), m] for n in cut.mus.tolist())
            self.n_server_rows += 1
            self.server_slack += (top + float(b.sum()) + abs(a)) / sigma
            added += 1
        return added

    def hull_root(self, rounds: int, deadline: float | None, stats: dict) -> float:
        """Rounds of :meth:`fenchel_rows` at the master's LP relaxation, each followed by one round of
        :meth:`kelley_root`; returns the last (derated) LP bound (-inf if no LP was solved)."""
        hs = self.hs
        ni = self.integer.size
        pools: dict = {}
        bound = -math.inf
        for _ in range(rounds):
            self.h.changeColsIntegrality(ni, self.integer, np.array([hs.HighsVarType.kContinuous] * ni))
            try:
                self.h.run()
                ok = self.h.getModelStatus() == hs.HighsModelStatus.kOptimal
                xv = np.array(self.h.getSolution().col_value) if ok else None
            finally:
                self.h.changeColsIntegrality(ni, self.integer, np.array([hs.HighsVarType.kInteger] * ni))
            if xv is None or not self.fenchel_rows(xv, pools, deadline, stats):
                break
            # one Kelley round only: more add tangent rows that slow the branch and bound's LPs
            # (strong branching) more than they raise the bound (BENCHMARKS.md, "Fenchel cuts")
            bound = max(bound, self.kelley_root(1, deadline))
        return bound

    def kelley_root(self, max_rounds: int, deadline: float | None) -> float:
        """Tighten the cuts on the master's LP relaxation (Kelley's cutting planes); return its bound.

        The LP relaxation of the master is a relaxation of the snapshot problem, so its optimum is a
        valid lower bound too. Cuts at the LP's shares ``phi / y`` make the piecewise-linear energy
        exact where the relaxation wants it, before any branching.
        """
        hs = self.hs
        ni = self.integer.size
        self.h.changeColsIntegrality(ni, self.integer, np.array([hs.HighsVarType.kContinuous] * ni))
        self.h.setOptionValue("time_limit", math.inf)
        bound = -math.inf
        try:
            for _ in range(max_rounds):
                if deadline is not None:
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        break
                    self.h.setOptionValue("time_limit", left)
                self.h.run()
                if self.h.getModelStatus() != hs.HighsModelStatus.kOptimal:
                    break
                bound = self.h.getInfo().objective_function_value * self.obj_ref   # derated on return
                sol = self.h.getSolution()
                xv = np.array(sol.col_value)
                if self.keep_duals and sol.dual_valid:
                    self.root_duals = np.array(sol.row_dual)
                if not self.phi or not self.kelley_cuts(xv):
                    break
            if (self.opts.drop_slack is not None and self.n_server_rows == 0
                    and self.h.getModelStatus() == hs.HighsModelStatus.kOptimal):   # (cut rows contiguous)
                self.drop_slack_cuts(self.opts.drop_slack)
        finally:
            self.h.changeColsIntegrality(ni, self.integer, np.array([hs.HighsVarType.kInteger] * ni))
        return self.safe(bound)

    def drop_slack_cuts(self, slack_tol: float) -> int:
        """Delete the cut rows with slack above ``slack_tol`` at the last LP solution (smaller LPs).

        Any subset of valid cuts is still a relaxation; the loop re-adds the cuts it needs.
        """
        rv = np.array(self.h.getSolution().row_value)
        cut_act = rv[self.n_base_rows:self.n_base_rows + len(self.cut_rows)]
        drop = np.flatnonzero(cut_act < -slack_tol)
        if drop.size == 0:
            return 0
        self.h.deleteRows(drop.size, (drop + self.n_base_rows).astype(np.int32))
        keep = np.ones(len(self.cut_rows), dtype=bool)
        keep[drop] = False
        self.cut_rows = [c for c, k in zip(self.cut_rows, keep) if k]
        self.cuts = {p: [] for p in self.phi}
        for pair, share in self.cut_rows:
            self.cuts[pair].append(share)
        return int(drop.size)

    # -- solve -----------------------------------------------------------------------------------
    def set_incumbent(self, placement: np.ndarray, served: np.ndarray, cpu: np.ndarray, eta_val: dict) -> None:
        v = np.zeros(self.ncol)
        for n in self.free:
            v[self.x[n, placement[n]]] = 1.0
        for n, uj in self.u.items():
            v[uj] = 0.0 if served[n] else 1.0
        for n, m in self.pairs:
            if served[n] and placement[n] == m:
                v[self.y[n, m]] = 1.0
                if (n, m) in self.phi:
                    v[self.phi[n, m]] = cpu[n] / self.pd.cpu_hz[m]
                    v[self.eta[n, m]] = eta_val.get((n, m), 0.0)
        sol = self.hs.HighsSolution()
        sol.col_value = list(v)
        sol.value_valid = True
        self.incumbent = sol

    def run(self, time_limit: float | None, mip_gap: float, use_start: bool = True) -> dict[str, Any]:
        h = self.h
        started = time.perf_counter()
        if self.incumbent is not None and self.opts.use_mip_start and use_start:  # forgotten when rows are added
            try:
                h.setSolution(self.incumbent)
            except Exception:  # pragma: no cover - an incumbent hint is optional
                pass
        h.setOptionValue("mip_rel_gap", mip_gap)
        h.setOptionValue("mip_abs_gap", 0.0)
        improving: list[np.ndarray] = []
        if self.opts.improving_cuts:
            # HiGHS's improving solutions of this run (columns of the model as passed)
            def keep(e) -> None:
                sol = np.asarray(e.data_out.mip_solution, dtype=float)
                if sol.size == self.ncol:
                    improving.append(sol.copy())

            h.cbMipImprovingSolution.subscribe(keep)
        try:
            r = run_model(h, time_limit=time_limit)
        finally:
            if self.opts.improving_cuts:
                h.cbMipImprovingSolution.unsubscribe(keep)
        out: dict[str, Any] = {"status": r.outcome, "raw_status": r.raw_status, "bound": -math.inf, "x": None,
                               "infeasible": r.infeasible, "nodes": r.nodes, "improving": improving}
        if r.infeasible:
            return out
        out["bound"] = self.safe(r.bound * self.obj_ref)
        if r.x is not None:
            # HiGHS 1.16 can report the optimum's value but hand back the MIP start's columns (seen
            # when presolve maps the start to a better point): never trust a solution whose cost is
            # not the reported one; solve again without the start.
            val = (float(self.col_cost @ r.x) + self.offset) * (self.ref / self.obj_ref)
            if abs(val - r.objective) > 1e-9 * max(1.0, abs(val)) and use_start:
                left = None if time_limit is None else time_limit - (time.perf_counter() - started)
                if left is None or left > 0:
                    h.clearSolver()  # else HiGHS starts from the same solution again
                    again = self.run(left, mip_gap, use_start=False)
                    again["bound"] = max(again["bound"], out["bound"])
                    again["nodes"] = again.get("nodes", 0) + r.nodes
                    again["improving"] = improving + again["improving"]
                    return again
            out["x"] = r.x
        return out


class ExactWarmStart:
    """What :func:`solve_exact` keeps between solves of one snapshot under changing failure prices.

    Pass the same object as ``warm=`` to successive solves of snapshots that differ only in
    ``failure_penalty`` (the dual steps of the hindsight bound, docs/longterm.md): the MILP master
    with its cuts and HiGHS basis is repriced instead of rebuilt (every cut is a tangent of the
    energy, valid whatever the prices), and the last optimum's placement seeds the incumbent. A
    snapshot that differs in any other field makes a fresh master. Lives in one process (it holds
    a HiGHS object); the certificate is the same as without it.
    """

    def __init__(self) -> None:
        self.master: _Master | None = None
        self.placement: np.ndarray | None = None
        self.snapshot: Snapshot | None = None
        self.solves = 0
        self.reused = 0
        self.certificate: PriceCertificate | None = None   # of the last solve (price_certificate)

    def matches(self, s: Snapshot) -> bool:
        """Whether ``s`` equals the last snapshot in every field but ``failure_penalty``."""
        last = self.snapshot
        if last is None or self.master is None or last.n_mus != s.n_mus or last.n_bss != s.n_bss:
            return False
        from wdtnopt.snapshot import FIELDS
        for name in FIELDS:
            if name == "failure_penalty":
                continue
            a, b = getattr(last, name), getattr(s, name)
            if a is not b and not np.array_equal(a, b):
                return False
        return True


def _round_start(master: "_Master", stats: dict[str, Any], it: int, time_limit: float | None, t0: float,
                 mip_gap: float) -> dict[str, Any] | None:
    """The start of one decomposition round, shared by exact's loop and the level master's loop: the
    master MILP within the time left (``time_limit`` s from ``t0``) at HiGHS gap ``mip_gap``; None when
    no time is left. Counts the round and HiGHS's nodes in ``stats``."""
    stats["iterations"] = it + 1
    left = None if time_limit is None else time_limit - (time.perf_counter() - t0)
    if left is not None and left <= 0:
        return None
    res = master.run(left, mip_gap)
    stats["milp_nodes"] += res.get("nodes", 0)
    return res


def _round_outcome(res: dict[str, Any] | None, stats: dict[str, Any], lb: float,
                   shift: float = 0.0) -> tuple[str | None, float]:
    """What the master run of :func:`_round_start` means for the loop, shared by exact's loop and the
    level master's loop.

    Returns
    -------
    stop, lb
        ``stop``: None when the run has a master solution ``res["x"]`` to use; ``"time_limit"`` when
        no time was left or HiGHS ran out of it; ``"infeasible"`` when the master has no solution;
        ``"feasible"`` when HiGHS gave up (``stats["why"]``). ``lb``: the bound so far raised to the
        run's bound less ``shift`` (the master's objective minus the real one).
    """
    if res is None:
        return "time_limit", lb
    if res["infeasible"]:
        return "infeasible", lb
    lb = max(lb, res["bound"] - shift)
    if res["x"] is None:  # no master solution: out of time, or HiGHS gave up
        timed_out = res["status"] is MasterOutcome.TIME_LIMIT
        stats["highs_status"] = res["raw_status"]
        if not timed_out:
            stats["why"] = f"the HiGHS master returned no solution ({res['raw_status']})"
        return ("time_limit" if timed_out else "feasible"), lb
    return None, lb


def _round_end(master: "_Master", stats: dict[str, Any], it: int, lb: float, ub: float, has_incumbent: bool,
               gap: float, new_cuts: int, target_gap: float, verbose: bool, t0: float) -> tuple[str | None, float]:
    """The end of one decomposition round, shared by exact's loop and the level master's loop.

    Returns
    -------
    stop, target_gap
        ``"optimal"`` when the incumbent is within ``gap`` of ``lb``, ``"feasible"`` when the round
        added no cut and HiGHS already ran at mip_rel_gap 1e-12 (nothing left to refine), else None;
        and the MIP gap to ask HiGHS next (a hundredth of the last one when no cut was added).
    """
    stats["cuts"] = master.n_cuts
    if verbose:
        print(f"iter {it}: lb {lb:.10g} ub {ub:.10g} new cuts {new_cuts} t {time.perf_counter() - t0:.3f}s")
    if has_incumbent and lb >= ub - gap * abs(ub):
        return "optimal", target_gap
    if new_cuts == 0:
        if target_gap <= 1e-12:
            # nothing left to refine: the gap left is HiGHS's round-off
            stats["why"] = ("no new cut at the master's solution and HiGHS at mip_rel_gap 1e-12: the gap "
                            "left is the master's round-off at its feasibility tolerance")
            return "feasible", target_gap
        target_gap = max(target_gap / 100, 1e-12)
    return None, target_gap


def solve_exact(snapshot: Snapshot, options: ExactOptions | None = None, *, warm: ExactWarmStart | None = None,
                **overrides: Any) -> Solution:
    """Certified global optimum of the snapshot problem to relative ``gap`` (see module docstring).

    Parameters
    ----------
    snapshot : Snapshot
        The decision point.
    options : ExactOptions, optional
        All options at once; ``overrides`` (its field names: ``gap``, ``time_limit`` in s,
        ``threads``, ``max_iterations``, ``verbose``, ``oracle``, ...) replace single fields.
    warm : ExactWarmStart, optional
        Reused across solves that change only ``failure_penalty`` (the master is repriced, not rebuilt).

    Returns
    -------
    Solution
        ``optimal`` when the certified bound is within ``gap`` of the objective; ``time_limit``
        (incumbent and certified bound) when stopped by ``time_limit``; ``feasible`` when
        ``max_iterations`` ran out or the master cannot refine further (``stats["why"]``);
        ``infeasible`` when no placement fits the storage.

    Raises
    ------
    SolverError
        Unknown option or bad value; ``oracle="cvxpy"`` without cvxpy.

    Notes
    -----
    Certifies the strict problem only; ``solve(snapshot, method="exact")`` also certifies the limits
    ``evaluate`` accepts (docs/solvers.md, "The certified entry point").
    """
    opts = ExactOptions.build(options, overrides)
    if snapshot.level_ratio is not None:  # a semantic menu: the level choice too (solvers/levels.py)
        from .levels import solve_exact_levels
        return solve_exact_levels(snapshot, options=opts)
    if opts.primal_seed == "auto" and short_time_limit(snapshot, opts.time_limit):
        opts = dataclasses.replace(opts, primal_seed="fast")
    return _solve_exact(snapshot, opts, time.perf_counter(), None, 0, warm)


CUT_ROW_SCALE_MAX = 100.0
"""Cut rows ``eta >= a y + b phi`` are divided by ``min(max(|b|, 1), this)``: the bound's derating
term grows with their slopes in the rows' units, the eta coefficient must stay far above HiGHS's
``small_matrix_value`` and a primal violation of a row (1e-9) is worth this much more in eta."""
DUAL_TOL = 1e-10
"""HiGHS's dual feasibility tolerance in exact's master (its least allowed value): the bound is
derated by it times the master's coefficients (``_Master.derate``)."""
RESCALE_OBJECTIVE_BELOW = 0.5
"""When the incumbent falls below this fraction of the objective's unit, the objective is measured
in units of the new incumbent (in place): the derating term is proportional to that unit."""
REBUILD_ABOVE = 1e6
"""A warm master is rebuilt, not repriced, when the incumbent's cost exceeds its objective unit by
this factor: failure prices raised from 1 J to 1e30 J put coefficients of 1e30 in the master, above
HiGHS's infinite cost (1e20), which then returned no solution (status feasible, bound 0)."""
RESCALE_BELOW = 1e-3
"""When an incumbent below this fraction of the rows' unit is found, the master is rebuilt at the new
incumbent's scale, with the cut shares found so far: cut coefficients far below 1 would meet HiGHS's
``small_matrix_value`` (1e-9) and be dropped (weaker cuts, slower closing)."""
MAX_RESCALES = 64
PRIMAL_SEED_MIN_PAIRS = 500
"""``primal_seed="auto"`` runs the fast method for a start on snapshots with N M at least this (the
default scenario's 50 x 5, 250 pairs, is solved without it); at least this, the exchange search
takes ``exchange_candidates_large`` and the rows ``server_prices_large``."""
PRIMAL_SEED_SHARE = 0.25
"""Share of the time left that the fast start may take (with a ``time_limit``)."""
SHORT_LIMIT_S_PER_PAIR = 2e-3
"""A ``time_limit`` below this many seconds per MU-server pair (N M) is short: ``primal_seed="auto"``
then starts from the fast method too (docs/solvers.md, "Short time limits")."""


def follow_incumbent(master: _Master, ub: float, rescales: int) -> bool:
    """Scale ``master`` to a cheaper incumbent of cost ``ub`` (J), shared by exact's loop and the level
    master's loop: True when the master is to be rebuilt at ``ub``'s scale with its cut shares
    (``ub`` below :data:`RESCALE_BELOW` of its rows' unit, at most :data:`MAX_RESCALES` times, counted
    by ``rescales``); else False, its objective moved to units of ``ub`` in place when ``ub`` is below
    :data:`RESCALE_OBJECTIVE_BELOW` of the objective's unit."""
    if ub < RESCALE_BELOW * master.ref and rescales < MAX_RESCALES:
        return True
    if ub < RESCALE_OBJECTIVE_BELOW * master.obj_ref:
        master.rescale(ub)
    return False


def short_time_limit(snapshot: Snapshot, time_limit: float | None) -> bool:
    """True when ``time_limit`` (s) is below :data:`SHORT_LIMIT_S_PER_PAIR` times the snapshot's N M."""
    return time_limit is not None and time_limit < SHORT_LIMIT_S_PER_PAIR * snapshot.n_mus * snapshot.n_bss


def continue_exact(snapshot: Snapshot, quick: Solution, options: ExactOptions, started: float) -> Solution:
    """The exact method started from a fast-method solution of the same snapshot (its decision and bound).

    Parameters
    ----------
    snapshot : Snapshot
        The decision point ``quick`` solved.
    quick : Solution
        A ``method="fast"`` solution: its placement is a start (exactly admitted) and its certified
        bound the initial lower bound.
    options : ExactOptions
        ``gap`` and ``time_limit`` count from ``started``.
    started : float
        ``time.perf_counter()`` when the whole solve began.

    Returns
    -------
    Solution
        As :func:`solve_exact`.
    """
    return _solve_exact(snapshot, options, started, None, 0, None, None, quick)


def _solve_exact(snapshot: Snapshot, opts: ExactOptions, t0: float, start: Any, rescales: int,
                 warm: ExactWarmStart | None = None, carry: dict | None = None,
                 quick: Solution | None = None) -> Solution:
    pd = PairData.of(snapshot)
    with remembered_allocations(pd):   # the polish, the searches and the admissions share allocations
        return _solve_exact_on(snapshot, pd, opts, t0, start, rescales, warm, carry, quick)


def _solve_exact_on(snapshot: Snapshot, pd: PairData, opts: ExactOptions, t0: float, start: Any, rescales: int,
                    warm: ExactWarmStart | None, carry: dict | None, quick: Solution | None) -> Solution:
    gap, time_limit, max_iterations, verbose = opts.gap, opts.time_limit, opts.max_iterations, opts.verbose
    s = snapshot
    M = s.n_bss
    prev = s.placement_prev
    prev_fits = fits_storage(s, prev)
    stats: dict[str, Any] = {"iterations": 0, "cuts": 0, "milp_nodes": 0, "allocations": 0, "oracle": opts.oracle}
    if opts.oracle == "cvxpy":
        from .cvxpy_oracle import CvxpyAllocator

        oracle = CvxpyAllocator()
    else:
        oracle = allocate_server

    def finish(a, bound: float, status: str) -> Solution:
        if opts.oracle == "cvxpy":
            stats["conic_solves"], stats["oracle_fallbacks"] = oracle.solves, oracle.fallbacks
        return make_solution(s, a.placement, a.served, a.tx_time, a.cpu_hz, bound=bound, status=status,
                             method="exact", started=t0, stats=stats, gap=gap)

    # the exact admissions stop at the time limit with their best sets (feasible, valid upper bounds)
    deadline = None if time_limit is None else t0 + time_limit
    if not s.allow_migration or s.pinned.all():
        if not prev_fits:
            return fail_all_solution(s, bound=math.inf, status=SolveStatus.INFEASIBLE, method="exact", started=t0,
                                     stats=stats)
        a = allocate(s, prev, pair_data=pd, deadline=deadline, oracle=oracle)
        return finish(a, a.bound, "optimal" if a.exact else "time_limit")

    # incumbent: the cheaper of the previous placement and of every DT at its best host alone (the
    # Lagrangian's best responses at zero prices, storage repaired), each with exact admission and
    # allocation; the master is scaled by it, so it should be near the optimum's magnitude
    best = allocate(s, prev, pair_data=pd, deadline=deadline, oracle=oracle) if prev_fits else None
    if start is not None and (best is None or start.cost < best.cost):
        best = start
    stats["rescales"] = rescales
    if start is None:
        ld = LagrangianData.of(s, pd)
        responses = price(ld, np.zeros(M), np.zeros(M))
        alone = repair_storage(ld, responses.host, responses.pair_value)
        if alone is not None and fits_storage(s, alone):
            a = allocate(s, alone, pair_data=pd, deadline=deadline, oracle=oracle)
            if best is None or a.cost < best.cost:
                best = a
    seed_bound = 0.0
    if quick is None and start is None and warm is None and (opts.primal_seed == "fast" or (
            opts.primal_seed == "auto" and s.n_mus * M >= PRIMAL_SEED_MIN_PAIRS)):
        # large or loaded snapshots: the fast method's decision (Lagrangian best responses, repair,
        # local search) as a third start, exactly admitted at its placement; its certified
        # Lagrangian bound is a lower bound too (that fast run never continues in exact itself)
        from .fast import solve_fast

        left = None if time_limit is None else max(time_limit - (time.perf_counter() - t0), 1e-3)
        quick = solve_fast(s, gap=opts.gap, time_limit=None if left is None else PRIMAL_SEED_SHARE * left,
                           exact_pairs=0)
        stats["fast_seed_s"] = quick.solve_time_s
    if quick is not None:  # (after a rescale only its bound is still news)
        if start is None and math.isfinite(quick.objective):
            a = allocate(s, quick.placement, pair_data=pd, deadline=deadline, oracle=oracle)
            if best is None or a.cost < best.cost:
                best = a
        if math.isfinite(quick.bound):
            seed_bound = float(quick.bound)
    reuse = warm is not None and warm.matches(s)
    if reuse and warm.placement is not None:  # the last optimum, at the new prices
        again = allocate(s, warm.placement, pair_data=pd, deadline=deadline, oracle=oracle)
        if best is None or again.cost < best.cost:
            best = again
    ub = best.cost if best is not None else math.inf
    if ub == 0.0:
        return finish(best, 0.0, "optimal")
    if reuse and not ub <= REBUILD_ABOVE * warm.master.obj_ref:
        reuse = False   # prices far above the kept master's units (its coefficients would pass HiGHS's infinite cost)
    if reuse:
        master = warm.master
        master.reprice(pd, price_cap=ub)
        ref = master.ref
        warm.reused += 1
    else:
        ref = master_ref(s, ub)
        master = _Master(pd, ref, opts, carry, price_cap=ub)
        if warm is not None or not opts.highs_presolve:
            # the masters of repeated solves are small and re-solved often: HiGHS's presolve costs
            # more than it saves there (measured in benchmarks/bench_bound.py); on the default
            # scenario's 50 x 5 its reductions and restarts cost more nodes than they save (BENCHMARKS.md)
            master.h.setOptionValue("presolve", "off")
        master.initial_cuts()
    if math.isfinite(ub) and ub < RESCALE_OBJECTIVE_BELOW * master.obj_ref:  # a repriced master
        master.rescale(ub)
    if warm is not None:
        warm.master, warm.snapshot, warm.placement, warm.certificate = master, s, None, None
        warm.solves += 1
    master.keep_duals, master.root_duals = True, None
    lb = seed_bound
    cache: dict[tuple[int, tuple[int, ...]], Any] = {}
    req = s.request & ~s.migrating
    target_gap = max(gap / 4, 1e-9)
    if math.isfinite(ub) and ub > 0 and opts.mip_gap_share > 0.25:
        # the MIP gap HiGHS is asked: a share of the asked gap, less twice the derating term (HiGHS's
        # gap is relative to its own incumbent, at most ours; the loop checks the derated bound)
        target_gap = max(target_gap, opts.mip_gap_share * gap - 2.0 * master.derate(ub) / ub)
    status = "optimal"

    def server_best(m: int, hosted: np.ndarray):
        key = (m, tuple(int(i) for i in hosted))
        r = cache.get(key)
        if r is None:
            r = admit_server(pd, m, hosted, deadline, oracle=oracle)
            stats["allocations"] += r.nodes
            cache[key] = r
        return r

    def cheaper(found) -> Solution | None:
        """Take ``found`` (cheaper than ``ub``) as the incumbent: the solve restarted at its finer
        scale (returned), or the master's objective moved to it (None; the caller hands it to HiGHS)."""
        nonlocal ub, best
        ub, best = found.cost, found
        if follow_incumbent(master, ub, rescales):
            if warm is not None:
                warm.master = None  # a master at the old scale is not kept
            return _solve_exact(s, opts, t0, best, rescales + 1, warm, master.cuts, quick)
        return None

    if best is not None:
        master.take_incumbent(best)   # the MIP start, and OA cuts at its optimal allocation
    root = master.kelley_root(opts.root_rounds, None if time_limit is None else t0 + time_limit)
    lb = max(lb, root)
    stats["root_bound"] = root
    # a bound in closed form that no solver tolerance enters: the Lagrangian dual function at the
    # root LP's CPU and storage prices (solvers/price_certificate.py, certified pricing)
    certificate = master.price_certificate()
    if certificate is not None:
        stats["lagrangian_bound"] = certificate.bound(s.failure_penalty)
        lb = max(lb, stats["lagrangian_bound"])
    closed_at_root = best is not None and lb >= ub - gap * abs(ub)
    # (not on a master reused through `warm`: its solves are many and small, measured without them)
    stats["price_cuts"] = 0 if closed_at_root or warm is not None else master.price_cuts(opts.price_cuts)
    if stats["price_cuts"]:
        # the root is open: tangents at every pair's responses to prices near the root's CPU prices,
        # and the root again (its LP's prices may move: the Lagrangian bound is taken again)
        root = max(root, master.kelley_root(opts.root_rounds, None if time_limit is None else t0 + time_limit))
        lb = max(lb, root)
        stats["root_bound"] = root
        again = master.price_certificate()
        if again is not None:
            certificate = again
            stats["lagrangian_bound"] = max(stats.get("lagrangian_bound", -math.inf), again.bound(s.failure_penalty))
            lb = max(lb, stats["lagrangian_bound"])
        closed_at_root = best is not None and lb >= ub - gap * abs(ub)
    if not closed_at_root and warm is None and opts.hull_rounds > 0:
        # the root is open: Fenchel cuts of each server's convex hull (solvers/server_hull.py)
        t_h = time.process_time()
        stats["lagrangian_root_bound"] = root
        root = max(root, master.hull_root(opts.hull_rounds, deadline, stats))
        lb = max(lb, root)
        stats["root_bound"] = root
        stats["hull_s"] = time.process_time() - t_h
        stats["hull_rows"] = master.n_server_rows
        closed_at_root = best is not None and lb >= ub - gap * abs(ub)
    stats["root_objective"] = ub   # the incumbent when the root is done (before the polish)
    if (not closed_at_root and warm is None and opts.polish_rounds > 0 and certificate is not None
            and lb < ub - max(opts.polish_gap, gap) * abs(ub)):
        # the root is open: a better incumbent before branching (HiGHS prunes with it)
        found = _polish(s, pd, best, certificate, deadline, opts.polish_rounds, oracle)
        stats["polish_cost"] = None if found is None else found.cost
        if found is not None and found.cost < ub:
            restarted = cheaper(found)
            if restarted is not None:
                return restarted
            master.take_incumbent(best)
            closed_at_root = lb >= ub - gap * abs(ub)
    if (not closed_at_root and warm is None and "polish_cost" in stats and best is not None
            and opts.exchange_gap is not None and lb < ub - opts.exchange_gap * abs(ub)):
        # the polish left the gap wide open (where the first MILP round found the optimum late and
        # a second proved it again, BENCHMARKS.md): moves and exchanges for a better start, and
        # rows per server that make the master's energy of a served set nearly exact, so that one
        # round proves what the start found
        t_x = time.process_time()
        large = s.n_mus * M >= PRIMAL_SEED_MIN_PAIRS   # (large or loaded: fast's decision is the start)
        placement = _exchange_search(s, pd, best, deadline,
                                     opts.exchange_candidates_large if large else opts.exchange_candidates,
                                     lambda ns, ms, lam: master.server_dual_terms(ns, ms, lam / master.ref) * master.ref,
                                     cycles=0 if large else opts.exchange_cycles)
        improved = False
        if placement is not None and fits_storage(s, placement):
            found = allocate(s, placement, pair_data=pd, deadline=deadline, oracle=oracle)
            stats["exchange_cost"] = found.cost
            if found.cost < ub:
                restarted = cheaper(found)
                if restarted is not None:
                    return restarted
                master.take_incumbent(best)
                closed_at_root = lb >= ub - gap * abs(ub)
                improved = True
        stats["exchange_s"] = time.process_time() - t_x
        if improved and not closed_at_root:
            _add_server_price_rows(master, opts, large, stats)
    if warm is not None:
        warm.certificate = certificate
    first = master.base_reliability if opts.first_round_reliability is None else opts.first_round_reliability
    later = first if opts.later_rounds_reliability is None else opts.later_rounds_reliability
    proving = False   # the last round's solution is the incumbent, its bound within proving_rows_gap
    for it in range(0 if closed_at_root else max_iterations):
        if proving and not stats.get("server_rows"):
            # a proving round: the master found the incumbent and values it a little below its cost;
            # rows that make it nearly exact at integer points (BENCHMARKS.md, seventh round)
            _add_server_price_rows(master, opts, s.n_mus * M >= PRIMAL_SEED_MIN_PAIRS, stats)
            proving = False
        if warm is None and (opts.first_round_reliability is not None or opts.later_rounds_reliability is not None):
            # pseudocost branching without strong branching to make the pseudocosts reliable (the
            # rounds after the first mostly re-prove a known incumbent; BENCHMARKS.md, seventh
            # round); not on a master reused through `warm` (its solves measured without it)
            master.h.setOptionValue("mip_pscost_minreliable", first if it == 0 else later)
        res = _round_start(master, stats, it, time_limit, t0, target_gap)
        stop, lb = _round_outcome(res, stats, lb)
        if stop == "infeasible":
            if best is None:
                return fail_all_solution(s, bound=math.inf, status=SolveStatus.INFEASIBLE, method="exact",
                                         started=t0, stats=stats)
            break  # cannot happen for a valid incumbent; keep it
        if stop is not None:
            status = stop
            break
        xv = res["x"]
        new_cuts = 0
        seen: set[bytes] = set()
        # the master's solution, then (improving_cuts) HiGHS's earlier improving solutions, latest first
        for xi in [xv] + res["improving"][::-1]:
            key = np.round(xi[master.integer]).astype(np.int8).tobytes()
            if key in seen or (xi is not xv and lb >= ub - gap * abs(ub)):   # (no next round to help)
                continue
            seen.add(key)
            if xi is not xv:
                stats["improving_solutions"] = stats.get("improving_solutions", 0) + 1
            # placement of the master and its exact cost
            placement = master.placement_of(xi)
            if fits_storage(s, placement):
                results = [server_best(m, np.flatnonzero(req & (placement == m))) for m in range(M)]
                cost = (sum(r.cost for r in results) + float(s.failure_penalty[s.request & s.migrating].sum())
                        + float(s.migration_penalty[placement != prev].sum()))
                if cost < ub:
                    # the same cost unless the deadline cut an admission short: ub is always the cost
                    # of the incumbent actually held
                    found = allocate(s, placement, pair_data=pd, deadline=deadline, oracle=oracle)
                    if found.cost < ub:
                        restarted = cheaper(found)
                        if restarted is not None:
                            return restarted
                        master.set_incumbent(best.placement, best.served, best.cpu_hz, _eta_values(master, best))
                for m, r in enumerate(results):  # OA cuts at the optimal allocation of the admitted sets
                    for n, f in zip(r.alloc.mus, r.alloc.cpu_hz):
                        if (n, m) in master.phi:
                            new_cuts += master.add_cuts(int(n), m, [f / pd.cpu_hz[m]])
            # OA cuts at the optimal allocation of the master's served sets, Kelley cuts at its shares
            new_cuts += master.cut_served_sets(oracle, xi, stats)[0]
        proving = (opts.proving_rows_gap is not None and warm is None and best is not None
                   and lb >= ub - opts.proving_rows_gap * abs(ub)
                   and np.array_equal(master.placement_of(xv), best.placement))   # (the incumbent as updated)
        stop, target_gap = _round_end(master, stats, it, lb, ub, best is not None, gap, new_cuts, target_gap,
                                      verbose, t0)
        if stop is not None:
            status = stop
            break
    else:
        if not closed_at_root:
            status = "feasible"
            stats["why"] = f"max_iterations ({max_iterations}) reached"
    if best is None:
        return fail_all_solution(s, bound=lb, status=SolveStatus.BOUND_ONLY, method="exact", started=t0, stats=stats)
    stats["upper_bound_allocations_cached"] = len(cache)
    stats["bound_derate"] = master.derate(lb)  # at the final bound: what HiGHS's tolerances may be worth (J)
    stats["objective_unit"] = master.obj_ref
    if warm is not None:
        warm.placement = best.placement.copy()
    return finish(best, lb, status)


def _add_server_price_rows(master: "_Master", opts: ExactOptions, large: bool, stats: dict[str, Any]) -> None:
    """The per-server price rows of ``server_prices`` (``server_prices_large`` when ``large``) at the
    root's CPU prices, HiGHS's presolve off when any was added; their count in ``stats``."""
    factors = opts.server_prices_large if large else opts.server_prices
    if not factors:
        return
    lam_root = master.root_cpu_prices()
    on = np.flatnonzero(lam_root > 0)
    k = len(factors)
    stats["server_rows"] = master.server_rows(
        np.repeat(on, k), np.repeat(lam_root[on], k) * np.tile(np.asarray(factors), on.size))
    if stats["server_rows"]:
        # HiGHS's presolve of the dense rows costs more than it saves (BENCHMARKS.md)
        master.h.setOptionValue("presolve", "off")


def _polish(s: Snapshot, pd: PairData, best, certificate: PriceCertificate, deadline: float | None,
            rounds: int, oracle):
    """A start for the branch and bound: the fast method's local search (solvers/fast_primal.py, at
    most ``rounds`` rounds of single-DT moves, so the result does not depend on the machine's speed)
    from the incumbent and, separately, from the Lagrangian best responses at the root LP's prices
    (storage repaired), the better end exactly admitted; None if there is no start."""
    from .fast_primal import PrimalPool, local_search

    ld = LagrangianData.of(s, pd)
    starts = [] if best is None else [best.placement]
    responses = price(ld, certificate.lam, certificate.pi)
    hosts = repair_storage(ld, responses.host, responses.pair_value)
    if hosts is not None and fits_storage(s, hosts):
        starts.append(hosts)
    stop = math.inf if deadline is None else deadline   # only the caller's time_limit cuts it short
    found, cost = None, math.inf
    for placement in starts:   # a search from each start (the better start is not always the better end)
        pool = PrimalPool(ld)
        pool.offer(placement)
        local_search(pool, stop, max_rounds=rounds)
        if pool.best_cost < cost:
            found, cost = pool.best_placement, pool.best_cost
    return None if found is None else allocate(s, found, pair_data=pd, deadline=deadline, oracle=oracle)


def _eta_values(master: _Master, a) -> dict:
    out = {}
    pd = master.pd
    for (n, m) in master.phi:
        if a.served[n] and a.placement[n] == m:
            out[n, m] = float(pd.energy(np.array([n]), np.array([a.tx_time[n]]))[0]) / master.ref
    return out


def _first_order(ld: LagrangianData, req: np.ndarray, movable: np.ndarray, pl: np.ndarray,
                 allocs: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First-order estimates of every single move and pairwise exchange of the ``movable`` DTs at
    placement ``pl``, each server's CPU priced at its allocation ``allocs[m]``'s KKT price
    (:func:`solvers.fast_primal.move_estimates`, as the fast method's local search prices moves).

    Returns ``est`` [K, M] (a move of ``movable[i]`` to m; inf where not allowed or its host), and the
    exchanges ``ia, ib`` (indices into ``movable``, on different hosts) with their estimates.
    """
    est = move_estimates(ld, req, movable, pl, allocs)
    cur = pl[movable]
    ia, ib = np.triu_indices(movable.size, 1)
    diff = cur[ia] != cur[ib]
    ia, ib = ia[diff], ib[diff]
    return est, ia, ib, est[ia, cur[ib]] + est[ib, cur[ia]]


EXCHANGE_PRICE_GRID = 2.0 ** np.arange(-4, 5)
"""Factors of a server's current CPU price at which the exchange search bounds its costs (with 0)."""


def _server_lower_terms(pd: PairData, req: np.ndarray, res: list, dual_terms) -> tuple[list, np.ndarray]:
    """Per server m, ``w[m]`` [G, N]: ``min(p_n, g_nm(lam_k))`` at the prices ``lam_k`` of a grid
    around m's current KKT price (unit share; J), ``p_n`` where n cannot be served on m; and the
    grid ``lam`` [M, G]. ``sum_{n in H} w[m][k, n] - lam[m, k]`` is a lower bound of m's admission
    cost for any hosted set H (each served set's energy is at least its Lagrangian dual function)."""
    M = len(res)
    pen = pd.penalty.astype(float)
    lam = np.zeros((M, EXCHANGE_PRICE_GRID.size + 1))
    w = []
    for m, r in enumerate(res):
        now = max(r.alloc.price, 0.0) * float(pd.cpu_hz[m]) if r.alloc.mus.size else 0.0
        if not math.isfinite(now):
            now = 0.0
        lam[m, 1:] = now * EXCHANGE_PRICE_GRID if now > 0 else 0.0
        wm = np.tile(pen, (lam.shape[1], 1))
        on = np.flatnonzero(req & pd.servable[:, m])
        cpu = on[pd.cycles[on] > 0]
        free = on[pd.cycles[on] <= 0]          # no CPU needed: the energy at the whole budget
        if free.size:
            wm[:, free] = np.minimum(pen[free], pd.energy(free, pd.budget[free, m]))[None, :]
        if cpu.size:
            G = lam.shape[1]
            g = dual_terms(np.tile(cpu, G), np.full(cpu.size * G, m), np.repeat(lam[m], cpu.size))
            wm[:, cpu] = np.minimum(pen[cpu][None, :], g.reshape(G, cpu.size))
        w.append(wm)
    return w, lam


def _exchange_search(s: Snapshot, pd: PairData, best, deadline: float | None, candidates: int,
                     dual_terms=None, kept_rounds: int = 60, admit_rounds: int = 40,
                     cycles: int = 0, move_candidates: int | None = None,
                     served_out: list | None = None) -> np.ndarray | None:
    """A better placement than ``best``'s by single moves and pairwise exchanges of requesting DTs
    (None if none is found): a primal heuristic for the branch and bound's start, whose result the
    caller admits exactly. Its work is capped by rounds, not time (the same result on any machine).

    Two stages, the cheaper first. (1) Served sets kept: each round estimates every move and
    exchange to first order (:func:`_first_order`), evaluates every move and the ``candidates`` best
    exchanges by one allocation per touched server (the moved DTs served at their new hosts or
    failing: an upper bound of the exact admission's cost) and takes the best improvement; at most
    ``kept_rounds`` rounds. (2) From its end: every move and the ``candidates`` best exchanges, in
    order of their estimates, evaluated with the exact admission of the touched servers, the first
    improvement taken; at most ``admit_rounds`` rounds. With ``dual_terms(ns, ms, lam)`` (each pair's
    ``g_nm(lam) = min_p e_nm(p) + lam p``, J, at CPU prices ``lam`` in J per unit share, a lower bound
    of it) a candidate is skipped without admissions when the Lagrangian lower bounds of its
    servers' costs, ``sum_{n hosted} min(p_n, g_nm(lam)) - lam`` at a grid of prices, show it
    cannot improve (docs/solvers.md, "Per-server price rows", for why they are lower bounds): the
    search takes the same steps, fewer admissions. With ``cycles > 0``, where no move or exchange
    improves in (2), the ``cycles`` best three-DT cycles by their first-order estimates (DT a to
    b's host, b to c's, c to a's: three servers, the same number of DTs on each) are tried the same
    way before the search ends, and a taken one continues it.

    ``move_candidates`` caps the moves of a round too (the best by their estimates; None: every
    move, as exact uses it): ``fast`` runs stage (1) on large snapshots, where every move is some
    23,000 trials a round at 1000 x 50. With ``served_out`` (a list) and ``admit_rounds=0``, the
    served set of each server at the end of stage (1) is appended to it ([M] arrays of MUs).
    """
    ld = LagrangianData.of(s, pd)
    req = s.request & ~s.migrating
    movable = np.flatnonzero(req & ~s.pinned)
    M = s.n_bss
    if movable.size == 0:
        return None
    cap = storage_capacity(s)
    fail = np.where(req, s.failure_penalty, 0.0).astype(float)
    size = ld.size
    alloc_cache: dict = {}

    def alloc(m: int, served: np.ndarray):
        key = (m, served.tobytes())
        a = alloc_cache.get(key)
        if a is None:
            a = alloc_cache[key] = allocate_server(pd, m, served)
        return a

    def energy(m: int, served: np.ndarray) -> float:
        a = alloc(m, served)
        return a.energy if a.feasible else math.inf

    def trial(pl: np.ndarray, a: int, b: int, m2: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """The placement after moving DT a to m2 (b < 0) or exchanging a and b; its moved DTs and touched hosts."""
        q = pl.copy()
        if m2 < -1:   # a compound move: compound[-2 - m2] = (its DTs, their new hosts)
            moved, hosts = compound[-2 - m2]
            q[moved] = hosts
        elif b < 0:
            q[a] = m2
            moved = np.array([a])
        else:
            q[a], q[b] = pl[b], pl[a]
            moved = np.array([a, b])
        return q, moved, sorted({int(v) for v in pl[moved]} | {int(v) for v in q[moved]})

    def ranked(est, ia, ib, ex_est) -> list[tuple[int, int, int]]:
        """Every move and the ``candidates`` best exchanges as (a, b or -1, host of a for a move),
        by their estimates."""
        mi, mm = np.nonzero(np.isfinite(est))
        if move_candidates is not None and mi.size > move_candidates:
            keep = np.sort(np.argsort(est[mi, mm], kind="stable")[:move_candidates])
            mi, mm = mi[keep], mm[keep]
        vals = np.concatenate((est[mi, mm], ex_est))
        swaps = np.flatnonzero(np.isfinite(ex_est))
        swaps = mi.size + swaps[np.argsort(ex_est[swaps], kind="stable")][:candidates]
        pick = np.concatenate((np.arange(mi.size), swaps))
        out = []
        for c in pick[np.argsort(vals[pick], kind="stable")].tolist():
            if c < mi.size:
                out.append((int(movable[mi[c]]), -1, int(mm[c])))
            else:
                k = c - mi.size
                out.append((int(movable[ia[k]]), int(movable[ib[k]]), -1))
        return out

    def mig(moved: np.ndarray, q: np.ndarray, pl: np.ndarray) -> float:
        return float(ld.mig[moved, q[moved]].sum() - ld.mig[moved, pl[moved]].sum())

    def loads(load: np.ndarray, pl: np.ndarray, q: np.ndarray, moved: np.ndarray, ms: list[int]):
        """The servers' storage loads after the trial, None when a touched server overflows."""
        new_load = load.copy()
        np.add.at(new_load, pl[moved], -size[moved])
        np.add.at(new_load, q[moved], size[moved])
        return None if (new_load[ms] > cap[ms]).any() else new_load

    # (1) served sets kept
    pl = best.placement.copy()
    served = [np.flatnonzero(req & best.served & (pl == m)).astype(np.int64) for m in range(M)]
    e_now = np.array([energy(m, served[m]) + fail[req & ~best.served & (pl == m)].sum() for m in range(M)])
    load = np.bincount(pl, weights=size, minlength=M)
    moved_any = False
    tol = 1e-12 * max(abs(float(best.cost)), 1e-300)
    late = False
    for _ in range(kept_rounds):
        if late or (deadline is not None and time.perf_counter() > deadline):
            break
        found = None
        for a, b, m2 in ranked(*_first_order(ld, req, movable, pl, [alloc(m, served[m]) for m in range(M)])):
            if deadline is not None and time.perf_counter() > deadline:
                late = True   # a round evaluates up to 2 candidates allocations each (0.2-0.3 s at 1000 x 50)
                break         # keep the best improvement met so far, run no further round
            q, moved, ms = trial(pl, a, b, m2)
            new_load = loads(load, pl, q, moved, ms)
            if new_load is None:
                continue
            sets, delta = {}, mig(moved, q, pl)
            for m in ms:
                base = served[m][~np.isin(served[m], moved)]
                failing = fail[req & (q == m)].sum() - fail[base].sum()   # everyone hosted on m, unserved
                options = [(energy(m, base) + failing, base)]
                for t in moved[q[moved] == m].tolist():
                    if pd.servable[t, m]:
                        with_t = np.sort(np.append(base, t))
                        options.append((energy(m, with_t) + failing - fail[t], with_t))
                c_m, S = min(options, key=lambda o: o[0])
                sets[m] = (c_m, S)
                delta += c_m - e_now[m]
            if delta < -tol and (found is None or delta < found[0]):
                found = (delta, q, sets, new_load)
        if found is None:
            break
        _, pl, sets, load = found
        for m, (c_m, S) in sets.items():
            served[m], e_now[m] = S, c_m
        moved_any = True

    if served_out is not None and admit_rounds == 0:
        served_out.extend(served)
    # (2) exact admissions of the touched servers, first improvement
    admit_cache: dict = {}

    def admitted(m: int, q: np.ndarray):
        hosted = np.flatnonzero(req & (q == m))
        key = (m, hosted.tobytes())
        r = admit_cache.get(key)
        if r is None:
            r = admit_cache[key] = admit_server(pd, m, hosted, deadline)
        return r

    compound: list[tuple[np.ndarray, np.ndarray]] = []

    def cycles_ranked(est: np.ndarray) -> list[tuple[int, int, int]]:
        """The ``cycles`` best three-DT cycles by their first-order estimates, as (a, -1, -2 - index
        into ``compound``)."""
        cur = pl[movable]
        K = movable.size
        i, j, k = (v.ravel() for v in np.meshgrid(np.arange(K), np.arange(K), np.arange(K), indexing="ij"))
        keep = (i < j) & (i < k) & (j != k) & (cur[i] != cur[j]) & (cur[j] != cur[k]) & (cur[k] != cur[i])
        i, j, k = i[keep], j[keep], k[keep]
        val = est[i, cur[j]] + est[j, cur[k]] + est[k, cur[i]]
        top = np.flatnonzero(np.isfinite(val))
        top = top[np.argsort(val[top], kind="stable")][:cycles]
        out = []
        for a, b, c in zip(i[top].tolist(), j[top].tolist(), k[top].tolist()):
            compound.append((movable[[a, b, c]], cur[[b, c, a]]))
            out.append((int(movable[a]), -1, -1 - len(compound)))
        return out

    res = [admitted(m, pl) for m in range(M)]
    load = np.bincount(pl, weights=size, minlength=M)
    for _ in range(admit_rounds):
        if deadline is not None and time.perf_counter() > deadline:
            break
        taken = False
        low = None if dual_terms is None else _server_lower_terms(pd, req, res, dual_terms)
        if low is not None:
            w, lam_grid = low
            hosted_sum = np.stack([w[m][:, req & (pl == m)].sum(axis=1) for m in range(M)])   # [M, G]
        first = _first_order(ld, req, movable, pl, [r.alloc for r in res])
        todo = ranked(*first)
        tried_cycles = cycles <= 0
        while True:
            if not todo:
                if tried_cycles:
                    break
                todo, tried_cycles = cycles_ranked(first[0]), True   # no move or exchange improved
                continue
            a, b, m2 = todo.pop(0)
            q, moved, ms = trial(pl, a, b, m2)
            new_load = loads(load, pl, q, moved, ms)
            if new_load is None:
                continue
            if low is not None:
                bound = mig(moved, q, pl)
                for m in ms:
                    sums = hosted_sum[m].copy()
                    for t in moved.tolist():
                        if pl[t] == m:
                            sums -= w[m][:, t]
                        if q[t] == m:
                            sums += w[m][:, t]
                    bound += float(np.max(sums - lam_grid[m])) - res[m].cost
                if bound >= -tol:
                    continue
            new = {m: admitted(m, q) for m in ms}
            if sum(new[m].cost - res[m].cost for m in ms) + mig(moved, q, pl) < -tol:
                pl, load = q, new_load
                for m, r in new.items():
                    res[m] = r
                taken = moved_any = True
                break
        if not taken:
            break
    return pl if moved_any else None
