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
server's CPU and storage (price-and-branch: only options near their MU's best are kept). Each
placement is priced by a per-server admission (:func:`admit_local`: Lagrangian start, exact
``allocate_server`` for every candidate served set, drop / add / swap moves; cached per server and
hosted set); then :func:`local_search` relocates single DTs between servers, screened by first-order
prices and accepted on the exact cost. The best decision seen is returned through
``make_solution`` (which re-checks it with ``evaluate``). With every DT pinned the problem splits
by server (:func:`_pinned_bound`): small servers get the exact branch-and-bound admission.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from wdtnopt.snapshot import Snapshot

from . import Solution, SolverError, make_solution, relative_gap
from .allocation import (PairData, ServerAllocation, _q, admit_server, allocate_server, energy_slope,
                         worth_serving)

SAFETY_RTOL = 1e-9
"""Relative margin taken off every certified dual value (floating-point round-off of the sums)."""


# -- the per-snapshot data of the Lagrangian -----------------------------------------------------
@dataclass(frozen=True)
class LagrangianData:
    """[N, M] arrays of the relaxation; ``allowed`` pairs are the hosts a DT may take."""

    pd: PairData
    allowed: np.ndarray       # [N, M] host m allowed for DT n (pinned: only placement_prev)
    mig: np.ndarray           # [N, M] migration penalty of hosting n on m
    fail: np.ndarray          # [N] cost of not serving n (failure penalty if requesting, else 0)
    size: np.ndarray          # [N] DT size (bit)
    serve: np.ndarray         # [N, M] pair may be served (allowed, requesting, not migrating, servable)
    busy_n: np.ndarray        # [P] MU of each servable pair with c > 0 (flattened)
    busy_m: np.ndarray        # [P] its server
    idle_n: np.ndarray        # [Q] MU of each servable pair with c = 0 (no CPU needed)
    idle_m: np.ndarray        # [Q]
    idle_energy: np.ndarray   # [Q] its energy E(T) (it sends in the whole budget)

    @classmethod
    def of(cls, s: Snapshot, pd: PairData | None = None) -> "LagrangianData":
        pd = pd or PairData.of(s)
        N, M = s.n_mus, s.n_bss
        prev = s.placement_prev
        allowed = np.ones((N, M), dtype=bool)
        pinned = s.pinned
        allowed[pinned] = False
        allowed[np.flatnonzero(pinned), prev[pinned]] = True
        mig = np.where(np.arange(M)[None, :] != prev[:, None], s.migration_penalty[:, None], 0.0)
        fail = np.where(s.request, s.failure_penalty, 0.0)
        serve = allowed & pd.servable & (s.request & ~s.migrating)[:, None]
        busy = serve & (pd.cycles[:, None] > 0)
        idle = serve & ~busy
        bn, bm = np.nonzero(busy)
        qn, qm = np.nonzero(idle)
        idle_energy = pd.energy(qn, pd.budget[qn, qm]) if qn.size else np.empty(0)
        return cls(pd, allowed, mig, fail, s.dt_size_bits, serve, bn, bm, qn, qm, idle_energy)


@dataclass
class Pricing:
    """The exact pricing of all pairs at prices (lam, pi): a certified D and each MU's best option."""

    lam: np.ndarray           # [M] CPU price (J per cycle/s)
    pi: np.ndarray            # [M] storage price (J per bit)
    value: float              # certified lower bound D(lam, pi) of the snapshot optimum
    host: np.ndarray          # [N] best host of each MU (by the achieved value)
    served: np.ndarray        # [N] its best option serves it
    cpu: np.ndarray           # [N] CPU of that option (cycles/s; 0 if not served)
    const: np.ndarray         # [N] that option's cost without its price terms (energy or fail + mig)
    pair_value: np.ndarray    # [N, M] achieved value of the best option on each host (inf if not allowed)
    pair_cpu: np.ndarray      # [N, M] CPU of the best option on each host (0 if failed there)
    pair_const: np.ndarray    # [N, M] its cost without price terms
    pair_served: np.ndarray   # [N, M] that option serves the MU
    theta_lb: np.ndarray      # [N] certified lower bound of each MU's term of D
    cpu_use: np.ndarray       # [M] CPU the best responses use (subgradient + cpu_hz)
    storage_use: np.ndarray   # [M] storage they use


def inner_min(pd: PairData, n: np.ndarray, m: np.ndarray, lam, iters: int = 60):
    """``h = min_{f_min <= f <= cpu_hz[m]} E_n(T[n,m] - c_n/f) + lam f`` for servable pairs with c > 0.

    Returns ``(f, energy, achieved, certified)``: the computed minimizer, its energy (through
    ``physics``), ``g(f)`` (an upper bound of h: a feasible point) and the tangent lower bound
    ``g(f) + min_{f' in [f_min, cpu_hz]} g'(f)(f' - f) <= h`` (g is convex). The root of
    ``g'(f) = 0`` is found in ``sigma = log(c / f)`` where the KKT condition reads
    ``phi(sigma) = log(lam)``, ``phi`` convex and increasing (see solvers/allocation.py): bisection
    to a small bracket, then Newton from the bracket's right end (monotone for a convex increasing
    function), at most ``iters`` evaluations in all.
    """
    T, tmin, c = pd.budget[n, m], pd.t_min[n], pd.cycles[n]
    alpha, k = pd.alpha[n], pd.k[n]
    fmin, F = pd.f_min[n, m], pd.cpu_hz[m]
    lam = np.broadcast_to(np.asarray(lam, dtype=float), T.shape)
    smax = np.log(T - tmin)
    smin = np.log(c / F)
    with np.errstate(divide="ignore"):
        ell = np.log(lam)  # -inf for lam = 0: the whole server's CPU is best
    phi_hi = _phi(smax, T, c, alpha, k)[0]
    phi_lo = _phi(smin, T, c, alpha, k)[0]
    sig = np.where(phi_hi <= ell, smax, smin)
    inside = (phi_hi > ell) & (phi_lo < ell) & (smax > smin)
    if inside.any():
        ii = np.flatnonzero(inside)
        lo, hi = smin[ii], smax[ii]
        Ti, ci, ai, ki, li = T[ii], c[ii], alpha[ii], k[ii], ell[ii]
        n_bis = 8
        for _ in range(n_bis):
            mid = 0.5 * (lo + hi)
            v = _phi(mid, Ti, ci, ai, ki)[0]
            up = v > li
            hi = np.where(up, mid, hi)
            lo = np.where(up, lo, mid)
        x = hi
        for _ in range(iters - n_bis):
            v, d = _phi(x, Ti, ci, ai, ki)
            step = (v - li) / d
            x_new = np.maximum(x - np.maximum(step, 0.0), lo)
            done = np.abs(x_new - x) <= 1e-14 * np.maximum(1.0, np.abs(x))
            x = x_new
            if done.all():
                break
        sig[ii] = x
    f = np.clip(c * np.exp(-sig), fmin, F)
    t = np.maximum(T - c / f, tmin)
    energy = pd.energy(n, t)
    achieved = energy + lam * f
    slope = lam - energy_slope(t, alpha, k) * c / (f * f)
    certified = achieved - np.maximum(slope, 0.0) * (f - fmin) + np.minimum(slope, 0.0) * (F - f)
    return f, energy, achieved, certified


def _phi(sigma, T, c, alpha, k):
    """``log(-E'(T - s) s^2 / c)`` at ``s = exp(sigma)`` and its derivative in sigma."""
    s = np.exp(sigma)
    t = T - s
    u = alpha / t
    q = _q(u)
    val = np.log(k * q) + 2.0 * sigma - np.log(c)
    der = 2.0 + s * (np.exp(u) * u * u / t) / q
    return val, der


def price(ld: LagrangianData, lam: np.ndarray, pi: np.ndarray) -> Pricing:
    """Price every allowed pair at (lam, pi): the certified dual value and the best responses."""
    pd = ld.pd
    s = pd.snapshot
    N, M = s.n_mus, s.n_bss
    lam = np.maximum(np.asarray(lam, dtype=float), 0.0)
    pi = np.maximum(np.asarray(pi, dtype=float), 0.0)
    # serve option on each pair: achieved value (a feasible option) and certified lower bound
    serve_ach = np.full((N, M), np.inf)
    serve_lb = np.full((N, M), np.inf)
    serve_cpu = np.zeros((N, M))
    serve_energy = np.zeros((N, M))
    bn, bm = ld.busy_n, ld.busy_m
    if bn.size:
        f, e, ach, lb = inner_min(pd, bn, bm, lam[bm])
        serve_ach[bn, bm] = ach
        serve_lb[bn, bm] = lb
        serve_cpu[bn, bm] = f
        serve_energy[bn, bm] = e
    qn, qm = ld.idle_n, ld.idle_m
    if qn.size:
        serve_ach[qn, qm] = ld.idle_energy
        serve_lb[qn, qm] = ld.idle_energy
        serve_energy[qn, qm] = ld.idle_energy
    fail = ld.fail[:, None]
    base = np.where(ld.allowed, ld.mig + pi[None, :] * ld.size[:, None], np.inf)
    use = serve_ach < fail
    pair_value = base + np.where(use, serve_ach, fail)
    pair_lb = base + np.minimum(serve_lb, fail)
    pair_cpu = np.where(use, serve_cpu, 0.0)
    pair_const = ld.mig + np.where(use, serve_energy, fail)
    host = np.argmin(pair_value, axis=1)
    idx = np.arange(N)
    theta_lb = pair_lb.min(axis=1)
    cpu = pair_cpu[idx, host]
    served = use[idx, host]
    lin = float(lam @ s.cpu_hz + pi @ s.storage_bits)
    tot = float(theta_lb.sum())
    value = tot - lin - SAFETY_RTOL * (float(np.abs(theta_lb).sum()) + lin)
    return Pricing(lam=lam, pi=pi, value=value, host=host, served=served, cpu=cpu, const=pair_const[idx, host],
                   pair_value=pair_value, pair_cpu=pair_cpu, pair_const=pair_const, pair_served=use, theta_lb=theta_lb,
                   cpu_use=np.bincount(host, weights=cpu, minlength=M),
                   storage_use=np.bincount(host, weights=ld.size, minlength=M))


# -- the master LP: a piecewise-linear model of D from the options found so far -----------------
class _Master:
    """``max sum_n theta_n - lam . cpu_hz - pi . storage`` s.t. ``theta_n <= option`` for known options.

    Variables are scaled: ``theta^ = theta / ref``, ``lam^ = lam Fs / ref``, ``pi^ = pi Ss / ref``
    (``Fs``, ``Ss`` the servers' CPU and storage, 1-ish where those are 0), so every coefficient is
    a share of a server and every right-hand side a cost in units of a typical failure penalty.
    """

    def __init__(self, ld: LagrangianData, ref: float):
        import highspy

        from .exact import _quiet_highs

        self.hs = highspy
        s = ld.pd.snapshot
        self.ld, self.ref = ld, ref
        N, M = s.n_mus, s.n_bss
        self.N, self.M = N, M
        self.Fs = np.where(s.cpu_hz > 0, s.cpu_hz, 1.0)
        self.Ss = np.where(s.storage_bits > 0, s.storage_bits, max(float(s.dt_size_bits.max()), 1.0))
        h = _quiet_highs(1)
        inf = highspy.kHighsInf
        cost = np.concatenate([-np.ones(N), s.cpu_hz / self.Fs, s.storage_bits / self.Ss])
        lower = np.concatenate([np.full(N, -inf), np.zeros(2 * M)])
        upper = np.full(N + 2 * M, inf)
        h.addVars(N + 2 * M, lower, upper)
        h.changeColsCost(N + 2 * M, np.arange(N + 2 * M, dtype=np.int32), cost)
        h.setOptionValue("simplex_strategy", 1)  # dual simplex: rows are added, the basis stays dual feasible
        self.h = h
        self.row_n: list[np.ndarray] = []
        self.row_m: list[np.ndarray] = []
        self.row_cpu: list[np.ndarray] = []
        self.row_const: list[np.ndarray] = []
        self.row_served: list[np.ndarray] = []
        self.seen: set[tuple[int, int, float]] = set()
        self.n_rows = 0

    def add_options(self, n: np.ndarray, m: np.ndarray, cpu: np.ndarray, const: np.ndarray,
                    served: np.ndarray) -> int:
        """Rows ``theta^_n - cpu/Fs_m lam^_m - size_n/Ss_m pi^_m <= const / ref``; returns how many were new."""
        keep = []
        for i, key in enumerate(zip(n.tolist(), m.tolist(), np.round(cpu, 3).tolist(), served.tolist())):
            if key not in self.seen:
                self.seen.add(key)
                keep.append(i)
        if not keep:
            return 0
        k = np.array(keep)
        n, m, cpu, const, served = n[k], m[k], cpu[k], const[k], served[k]
        r = n.size
        N, M = self.N, self.M
        idx = np.stack([n, N + m, N + M + m], axis=1).ravel().astype(np.int32)
        val = np.stack([np.ones(r), -cpu / self.Fs[m], -self.ld.size[n] / self.Ss[m]], axis=1).ravel()
        starts = np.arange(0, 3 * r, 3, dtype=np.int32)
        self.h.addRows(r, np.full(r, -self.hs.kHighsInf), const / self.ref, idx.size, starts, idx, val)
        self.row_n.append(n)
        self.row_m.append(m)
        self.row_cpu.append(cpu)
        self.row_const.append(const)
        self.row_served.append(served)
        self.n_rows += r
        return r

    def solve(self, lo: np.ndarray, hi: np.ndarray):
        """Maximize the model with the scaled prices in [lo, hi] (length 2M): prices, model value, weights."""
        N, M = self.N, self.M
        cols = np.arange(N, N + 2 * M, dtype=np.int32)
        self.h.changeColsBounds(2 * M, cols, lo, hi)
        self.h.run()
        if self.h.getModelStatus() != self.hs.HighsModelStatus.kOptimal:
            return None
        sol = self.h.getSolution()
        x = np.asarray(sol.col_value)
        w = -np.asarray(sol.row_dual)
        lam = x[N:N + M] * self.ref / self.Fs
        pi = x[N + M:] * self.ref / self.Ss
        return lam, pi, -self.h.getInfo().objective_function_value * self.ref, w, x[N:]

    def options(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every option (row) found so far: MU, host, CPU, cost without price terms, served."""
        return (np.concatenate(self.row_n), np.concatenate(self.row_m), np.concatenate(self.row_cpu),
                np.concatenate(self.row_const), np.concatenate(self.row_served))


def restricted_master_placement(ld: LagrangianData, master: _Master, time_limit: float, Pr: Pricing,
                                slack: float = 0.3):
    """Pick one found option per MU by a MILP (HiGHS) under every server's CPU and storage.

    The options are the dual master's rows (Dantzig-Wolfe columns), restricted to those within
    ``slack`` typical penalties of their MU's best value at the prices ``Pr`` (price-and-branch)
    plus each MU's fail-in-place option, which keeps the MILP feasible whenever the current
    placement fits. Each option's CPU is what its MU asks at the prices where it was found, so any
    feasible pick is a placement with a feasible served set, which the per-server admission can
    only improve. Returns ``(placement, served)`` or None (no solution within ``time_limit``).
    """
    import highspy

    from .exact import _quiet_highs

    s = ld.pd.snapshot
    N, M = s.n_mus, s.n_bss
    on, om, ocpu, oconst, oserved = master.options()
    value = oconst + Pr.lam[om] * ocpu + Pr.pi[om] * ld.size[on]
    best = Pr.pair_value.min(axis=1)
    keep = (value <= best[on] + slack * master.ref) | ((om == s.placement_prev[on]) & ~oserved)
    on, om, ocpu, oconst, oserved = on[keep], om[keep], ocpu[keep], oconst[keep], oserved[keep]
    K = on.size
    h = _quiet_highs(1)
    inf = highspy.kHighsInf
    cols = np.arange(K, dtype=np.int32)
    h.addVars(K, np.zeros(K), np.ones(K))
    h.changeColsCost(K, cols, oconst / master.ref)
    h.changeColsIntegrality(K, cols, np.full(K, highspy.HighsVarType.kInteger))
    order = np.argsort(on, kind="stable")
    starts = np.searchsorted(on[order], np.arange(N)).astype(np.int32)
    h.addRows(N, np.ones(N), np.ones(N), K, starts, order.astype(np.int32), np.ones(K))
    order = np.argsort(om, kind="stable")
    starts = np.searchsorted(om[order], np.arange(M)).astype(np.int32)
    h.addRows(M, np.full(M, -inf), s.cpu_hz / master.Fs, K, starts, order.astype(np.int32),
              ocpu[order] / master.Fs[om[order]])
    h.addRows(M, np.full(M, -inf), s.storage_bits / master.Ss, K, starts, order.astype(np.int32),
              ld.size[on[order]] / master.Ss[om[order]])
    h.setOptionValue("time_limit", max(float(time_limit), 0.05))
    h.setOptionValue("mip_rel_gap", 1e-4)
    h.run()
    if h.getInfo().primal_solution_status < 2:
        return None
    pick = np.asarray(h.getSolution().col_value) > 0.5
    placement = s.placement_prev.copy()
    placement[on[pick]] = om[pick]
    served = np.zeros(N, dtype=bool)
    served[on[pick & oserved]] = True
    return placement, served


# -- primal: placement -> storage repair -> per-server admission ----------------------------------
@dataclass
class ServerChoice:
    """An admission on one server: its exact allocation and cost (energy + penalties of the rest)."""

    alloc: ServerAllocation
    cost: float
    nodes: int = 0


def admit_local(pd: PairData, m: int, candidates, *, max_evals: int = 10, start=None) -> ServerChoice:
    """A good admission on server m: Lagrangian start, then exact-evaluated drop / add / swap moves.

    solvers/allocation.py's ``admit_server`` is exact but its branch-and-bound can take exponential
    time on crowded servers; the primal needs a good feasible admission, not a proof. On one server
    the admission is ``min sum_n c_n(f_n) s.t. sum_n f_n <= F`` with ``c_n(0) = penalty`` and
    ``c_n(f) = e_n(f)`` for ``f >= f_min``: one coupling constraint, so pricing the CPU at the
    smallest price ``lam*`` whose best responses fit leaves at most one MU "split" (Shapley-Folkman).
    Start from those best responses, allocate exactly, then repeat: rank the moves (drop one, add
    one, swap one in for one out) by their first-order change at the server's CPU price, evaluate
    the ``max_evals`` best exactly with ``allocate_server``, and take the first that lowers the cost.
    ``start`` (a set of MUs) replaces the price search when the caller has done it for many servers
    at once (:func:`fit_prices`).
    """
    pen = pd.penalty
    F = float(pd.cpu_hz[m])
    cand, alone, base = worth_serving(pd, m, candidates)
    k = cand.size
    if k == 0:
        return ServerChoice(allocate_server(pd, m, cand), base)
    p = pen[cand]
    fmin = pd.f_min[cand, m]
    c = pd.cycles[cand]
    busy = c > 0
    cand_busy = cand[busy]
    m_busy = np.full(cand_busy.size, m)

    def respond(lam: float):
        """Best responses at CPU price lam: (cost h_n incl. lam f_n, f_n); h = alone for idle MUs."""
        h = alone.copy()
        f = np.zeros(k)
        if busy.any():
            fb, _, ach, _ = inner_min(pd, cand_busy, m_busy, lam, iters=30)
            h[busy] = ach
            f[busy] = fb
        return h, f

    inside = np.ones(k, dtype=bool)
    if start is not None:
        inside = np.isin(cand, np.asarray(start, dtype=np.int64))
    elif int(busy.sum()) > 1:
        hi = float(np.max(p[busy] / fmin[busy])) * 2.0
        h, f = respond(hi)
        lo = hi * 1e-15
        for _ in range(30):  # smallest price whose best responses fit the CPU (geometric bisection)
            mid = math.sqrt(lo * hi)
            h, f = respond(mid)
            if f[h < p].sum() <= F:
                hi = mid
            else:
                lo = mid
        h, f = respond(hi)
        inside = h < p
    if fmin[inside].sum() > F:  # a start that cannot fit: drop the least valuable per unit of CPU
        for i in np.argsort((p - alone) / np.maximum(fmin, 1e-300), kind="stable"):
            if fmin[inside].sum() <= F:
                break
            inside[i] = False
    a = allocate_server(pd, m, cand[inside])
    nodes = 1
    if not a.feasible:  # cannot happen (the responses fit), but stay safe: serve nobody
        inside = np.zeros(k, dtype=bool)
        a = allocate_server(pd, m, cand[:0])
    cost = a.energy + float(p[~inside].sum())
    for _ in range(4 * k + 4):
        lam = max(a.price, 0.0)
        h, _ = respond(lam)
        # first-order change of the cost: drop i -> p_i - (e_i + lam f_i); add j -> h_j - p_j
        d_drop = np.full(k, np.inf)
        inn = np.flatnonzero(inside)
        if inn.size:
            pos = {int(v): i for i, v in enumerate(a.mus)}
            at = np.array([pos[int(cand[i])] for i in inn])
            d_drop[inn] = p[inn] - (pd.energy(cand[inn], a.tx_time[at]) + lam * a.cpu_hz[at])
        d_add = np.where(inside, np.inf, h - p)
        moves = [(d_drop[i], (i,), ()) for i in inn]
        out = np.flatnonzero(~inside)
        moves += [(d_add[j], (), (j,)) for j in out]
        moves += [(d_drop[i] + d_add[j], (i,), (j,)) for i in inn for j in out]
        moves.sort(key=lambda mv: mv[0])
        better = False
        for _, drop, add in moves[:max_evals]:
            trial = inside.copy()
            trial[list(drop)] = False
            trial[list(add)] = True
            if fmin[trial].sum() > F:
                continue
            a2 = allocate_server(pd, m, cand[trial])
            nodes += 1
            c2 = a2.energy + float(p[~trial].sum())
            if a2.feasible and c2 < cost * (1 - 1e-12):
                inside, a, cost, better = trial, a2, c2, True
                break
        if not better:
            break
    return ServerChoice(a, base + cost, nodes)


def fit_prices(pd: PairData, n: np.ndarray, m: np.ndarray, steps: int = 24) -> np.ndarray:
    """For candidate pairs (n, m) of several servers at once: the best responses at each server's
    smallest CPU price whose responses fit its CPU (geometric bisection, vectorized over servers).

    Returns the mask of pairs served by those responses (the start of :func:`admit_local`).
    """
    pen = pd.penalty[n]
    F = pd.cpu_hz[m]
    alone = pd.energy_at_cpu(n, m, F) if n.size else np.empty(0)
    ok = pd.servable[n, m] & (alone < pen)
    busy = ok & (pd.cycles[n] > 0)
    served = ok & ~busy
    if not busy.any():
        return served
    bi = np.flatnonzero(busy)
    bn, bm = n[bi], m[bi]
    M = pd.cpu_hz.size
    hi = np.zeros(M)
    np.maximum.at(hi, bm, pen[bi] / pd.f_min[bn, bm] * 2.0)
    lo = hi * 1e-15

    def fits(lam: np.ndarray):
        f, _, ach, _ = inner_min(pd, bn, bm, lam[bm], iters=30)
        take = ach < pen[bi]
        return take, np.bincount(bm, weights=np.where(take, f, 0.0), minlength=M) <= pd.cpu_hz

    for _ in range(steps):
        mid = np.sqrt(lo * hi)
        _, fit = fits(mid)
        hi = np.where(fit, mid, hi)
        lo = np.where(fit, lo, mid)
    take, _ = fits(hi)
    served[bi] = take
    return served


class _Primal:
    """Exact cost of placements (per-server admission cached by hosted set) and the best seen."""

    def __init__(self, ld: LagrangianData):
        self.ld = ld
        s = ld.pd.snapshot
        self.s = s
        self.req = s.request & ~s.migrating
        self.cache: dict[tuple[int, bytes], Any] = {}
        self.best_cost = math.inf
        self.best_placement: np.ndarray | None = None
        self.fixed = float(s.failure_penalty[s.request & s.migrating].sum())
        self.admissions = 0
        self.hinted: set[tuple[int, bytes]] = set()

    def server(self, m: int, hosted: np.ndarray, start=None, hint=None):
        """Admission on m of the requesting DTs ``hosted`` (sorted), cached; ``hint``: a served set
        to try as a second start (kept if better)."""
        key = (m, hosted.tobytes())
        r = self.cache.get(key)
        if r is None:
            r = admit_local(self.ld.pd, m, hosted, start=start)
            self.admissions += 1
            self.cache[key] = r
        if hint is not None and key not in self.hinted:
            self.hinted.add(key)
            r2 = admit_local(self.ld.pd, m, hosted, start=hint)
            self.admissions += 1
            if r2.cost < r.cost:
                r = self.cache[key] = r2
        return r

    def cost(self, placement: np.ndarray, served_hint: np.ndarray | None = None) -> tuple[float, list]:
        s = self.s
        M = s.n_bss
        hosted = [np.flatnonzero(self.req & (placement == m)) for m in range(M)]
        todo = [m for m in range(M) if (m, hosted[m].tobytes()) not in self.cache]
        if todo:  # one vectorized price search for every server not seen with this hosted set
            n = np.concatenate([hosted[m] for m in todo])
            mm = np.concatenate([np.full(hosted[m].size, m) for m in todo])
            take = fit_prices(self.ld.pd, n, mm)
            for m in todo:
                self.server(m, hosted[m], start=n[take & (mm == m)])
        results = [self.server(m, hosted[m], hint=None if served_hint is None else hosted[m][served_hint[hosted[m]]])
                   for m in range(M)]
        total = sum(r.cost for r in results) + self.fixed + float(s.migration_penalty[placement != s.placement_prev].sum())
        return total, results

    def offer(self, placement: np.ndarray, served_hint: np.ndarray | None = None) -> float:
        c, _ = self.cost(placement, served_hint)
        if c < self.best_cost:
            self.best_cost = c
            self.best_placement = placement.copy()
        return c

    def decision(self):
        """(placement, served, tx_time, cpu_hz) of the best placement."""
        s = self.s
        N = s.n_mus
        placement = self.best_placement
        _, results = self.cost(placement)
        served = np.zeros(N, dtype=bool)
        tx = np.zeros(N)
        cpu = np.zeros(N)
        for r in results:
            a = r.alloc
            if a.feasible and a.mus.size:
                served[a.mus] = True
                tx[a.mus] = a.tx_time
                cpu[a.mus] = a.cpu_hz
        return placement, served, tx, cpu


def repair_storage(ld: LagrangianData, placement: np.ndarray, pair_value: np.ndarray) -> np.ndarray | None:
    """Move DTs off overfull servers, cheapest move (by ``pair_value``) first; None if stuck."""
    s = ld.pd.snapshot
    M = s.n_bss
    size = ld.size
    placement = placement.copy()
    load = np.bincount(placement, weights=size, minlength=M)
    cap = s.storage_bits * (1 + 1e-12)
    movable = ~s.pinned
    for _ in range(s.n_mus + 1):
        over = load > cap
        if not over.any():
            return placement
        cand = np.flatnonzero(over[placement] & movable)
        if cand.size == 0:
            return None
        room = cap[None, :] - load[None, :] >= size[cand, None]
        ok = room & ld.allowed[cand] & ~over[None, :]
        regret = np.where(ok, pair_value[cand] - pair_value[cand, placement[cand]][:, None], np.inf)
        if not np.isfinite(regret).any():
            return None
        i, m_to = np.unravel_index(np.argmin(regret), regret.shape)
        n = cand[i]
        load[placement[n]] -= size[n]
        load[m_to] += size[n]
        placement[n] = m_to
    return None


def local_search(primal: _Primal, deadline: float, max_rounds: int = 50, per_round: int = 40) -> int:
    """Relocate single DTs between servers while the exact cost goes down (returns the moves made).

    Screening is first-order: with each server's CPU priced at its current allocation's price
    ``lam_m``, moving requesting DT n from m to m2 changes the cost by about
    ``min(fail_n, h[n,m2](lam_m2)) + mig[n,m2] - mig[n,m] - saving_n`` (``saving_n`` = its energy plus
    its CPU at ``lam_m`` if served, its penalty if declined), one vectorized pricing for all pairs.
    The most promising moves are then evaluated exactly (admission of both servers, started from
    their current served sets) and taken when they lower the cost.
    """
    ld = primal.ld
    s = primal.s
    if primal.best_placement is None:
        return 0
    M = s.n_bss
    pd = ld.pd
    placement = primal.best_placement.copy()
    _, results = primal.cost(placement)
    results = list(results)
    load = np.bincount(placement, weights=ld.size, minlength=M)
    cap = s.storage_bits * (1 + 1e-12)
    movable = primal.req & ~s.pinned
    moves = 0
    zero = np.zeros(M)
    for _ in range(max_rounds):
        if time.perf_counter() > deadline:
            break
        lam = np.array([max(r.alloc.price, 0.0) if r.alloc.mus.size else 0.0 for r in results])
        lam = np.where(np.isfinite(lam), lam, 0.0)
        P = price(ld, lam, zero)
        served = np.zeros(s.n_mus, dtype=bool)
        saving = np.where(primal.req, ld.fail, 0.0)
        for m, r in enumerate(results):
            a = r.alloc
            if a.mus.size:
                served[a.mus] = True
                saving[a.mus] = pd.energy(a.mus, a.tx_time) + lam[m] * a.cpu_hz
        n_idx = np.flatnonzero(movable)
        if n_idx.size == 0:
            break
        cur = placement[n_idx]
        est = P.pair_value[n_idx] - (ld.mig[n_idx, cur] + saving[n_idx])[:, None]
        est[np.arange(n_idx.size), cur] = np.inf
        est[~(cap[None, :] - load[None, :] >= ld.size[n_idx, None])] = np.inf
        flat = np.argsort(est, axis=None, kind="stable")[:per_round]
        touched: set[int] = set()
        accepted = 0
        for fi in flat:
            i, m2 = np.unravel_index(fi, est.shape)
            if not est[i, m2] < 0:
                break
            if time.perf_counter() > deadline:
                break
            n = int(n_idx[i])
            m = int(placement[n])
            if m in touched or m2 in touched or cap[m2] - load[m2] < ld.size[n]:
                continue
            h_m = np.flatnonzero(primal.req & (placement == m))
            h_m2 = np.flatnonzero(primal.req & (placement == m2))
            s_m = results[m].alloc.mus
            s_m2 = results[m2].alloc.mus
            new_m = primal.server(m, h_m[h_m != n], start=s_m[s_m != n])
            new_m2 = primal.server(m2, np.sort(np.append(h_m2, n)), start=np.append(s_m2, n))
            delta = (new_m.cost + new_m2.cost - results[m].cost - results[m2].cost
                     + ld.mig[n, m2] - ld.mig[n, m])
            if delta < -1e-12 * max(abs(primal.best_cost), 1e-300):
                placement[n] = m2
                load[m] -= ld.size[n]
                load[m2] += ld.size[n]
                results[m], results[m2] = new_m, new_m2
                touched.update((m, m2))
                accepted += 1
        moves += accepted
        if not accepted:
            break
    if moves:
        primal.offer(placement)
    return moves


# -- the method -------------------------------------------------------------------------------------
EXACT_MAX_CANDIDATES = 6
"""With every DT pinned, servers with at most this many admissible requests get the exact
branch-and-bound admission of solvers/allocation.py (at most 2^6 nodes): bound = cost there."""


def solve_fast(snapshot: Snapshot, *, gap: float = 0.01, time_limit: float | None = None, max_iters: int = 100,
               box: float = 1.0, primal_every: int = 50, search_time: float = 5.0, milp_time: float = 1.0, extra_rounds: int = 2, verbose: bool = False, **ignored: Any) -> Solution:
    """A feasible decision and a certified lower bound for large snapshots (see module docstring).

    ``gap``: stop when ``(objective - bound) / objective <= gap`` (status ``optimal``);
    ``time_limit`` (s): stop with status ``time_limit``; ``max_iters``: dual iterations (then status
    ``feasible`` if the gap is not reached); ``box``: initial half-width of the trust box on the
    scaled prices (a server's whole CPU or storage priced at ``box`` typical failure penalties);
    ``primal_every``: run the primal heuristics every that many dual iterations (and once the dual
    has converged); ``search_time`` (s): budget of each local search; ``milp_time`` (s): of each restricted-master MILP; ``extra_rounds``: primal rounds (with
    three times the MILP time each) after the dual has converged, while the gap is not reached. Other options of the common interface (``threads``, ...) are accepted and ignored.
    """
    if snapshot.level_ratio is not None:  # a semantic menu: the level-aware Lagrangian (solvers/levels.py)
        from .levels import solve_fast_levels
        return solve_fast_levels(snapshot, gap=gap, time_limit=time_limit, max_iters=max_iters)
    t0 = time.perf_counter()
    if not (gap >= 0):
        raise SolverError(f"gap must be >= 0, got {gap!r}")
    if time_limit is not None and not (time_limit > 0):
        raise SolverError(f"time_limit must be > 0 seconds or None, got {time_limit!r}")
    deadline = math.inf if time_limit is None else t0 + float(time_limit)
    s = snapshot
    N, M = s.n_mus, s.n_bss
    prev = s.placement_prev
    ld = LagrangianData.of(s)
    primal = _Primal(ld)
    stats: dict[str, Any] = {"iterations": 0, "serious_steps": 0, "master_rows": 0, "admissions": 0,
                             "pricing_s": 0.0, "master_s": 0.0, "primal_s": 0.0}
    fail_all = np.zeros(N, dtype=bool)

    def done(bound: float, status: str) -> Solution:
        stats["admissions"] = primal.admissions
        stats["dual_bound"] = bound
        if primal.best_placement is None:
            st = "infeasible" if status == "infeasible" else "bound_only"
            return make_solution(s, prev, fail_all, np.zeros(N), np.zeros(N), bound=bound, status=st,
                                 method="fast", started=t0, stats=stats)
        placement, served, tx, cpu = primal.decision()
        if status not in ("time_limit",):
            status = "optimal" if relative_gap(primal.best_cost, bound) <= gap else "feasible"
        return make_solution(s, placement, served, tx, cpu, bound=bound, status=status, method="fast",
                             started=t0, stats=stats)

    pinned_load = np.bincount(prev[s.pinned], weights=s.dt_size_bits[s.pinned], minlength=M)
    if (pinned_load > s.storage_bits * (1 + 1e-12)).any():
        return done(math.inf, "infeasible")  # the pinned DTs alone overfill a server
    if s.pinned.all():
        return done(_pinned_bound(ld, primal, stats), "optimal")

    def primal_from(Pr: Pricing) -> None:
        t = time.perf_counter()
        pl = repair_storage(ld, Pr.host, Pr.pair_value)
        if pl is not None:
            primal.offer(pl)
        stats["primal_s"] += time.perf_counter() - t

    def primal_round(Pr: Pricing, budget: float) -> None:
        t = time.perf_counter()
        primal_from(Pr)
        res = restricted_master_placement(ld, master, min(milp_time, max(deadline - time.perf_counter(), 0.05)), Pr)
        if res is not None:
            pl, served = res
            if (np.bincount(pl, weights=ld.size, minlength=M) <= s.storage_bits * (1 + 1e-12)).all():
                primal.offer(pl, served)
        stats["admit_s"] = stats.get("admit_s", 0.0) + time.perf_counter() - t
        t1 = time.perf_counter()
        stats["moves"] = stats.get("moves", 0) + local_search(primal, min(deadline, t1 + budget))
        stats["search_s"] = stats.get("search_s", 0.0) + time.perf_counter() - t1
        stats["primal_s"] += time.perf_counter() - t

    t = time.perf_counter()
    P = price(ld, np.zeros(M), np.zeros(M))
    stats["pricing_s"] += time.perf_counter() - t
    best_dual, best_P = P.value, P
    req_fail = ld.fail[s.request]
    ref = float(req_fail.mean()) if req_fail.size and req_fail.mean() > 0 else 1.0
    master = _Master(ld, ref)
    idx = np.arange(N)
    master.add_options(idx, P.host, P.cpu, P.const, P.served)
    # every MU may also fail at (or, if not requesting, stay on) its current host
    master.add_options(idx, prev, np.zeros(N), ld.fail + 0.0 * ld.mig[idx, prev], np.zeros(N, dtype=bool))
    center = np.zeros(2 * M)
    width = np.full(2 * M, float(box))
    status = "feasible"
    converged = False
    for it in range(1, max_iters + 1):
        stats["iterations"] = it
        if primal.best_placement is not None and relative_gap(primal.best_cost, best_dual) <= gap:
            status = "optimal"
            break
        if time.perf_counter() > deadline:
            status = "time_limit"
            break
        t = time.perf_counter()
        res = master.solve(np.maximum(center - width, 0.0), center + width)
        stats["master_s"] += time.perf_counter() - t
        if res is None:
            break
        lam, pi, model, _, x_hat = res
        t = time.perf_counter()
        P = price(ld, lam, pi)
        stats["pricing_s"] += time.perf_counter() - t
        predicted = model - best_dual
        improved = P.value - best_dual
        tol = 1e-9 * max(abs(best_dual), ref)
        if improved >= 0.1 * predicted and improved > tol:  # serious step: move the box
            at_box = np.isclose(x_hat, center + width) | (np.isclose(x_hat, center - width) & (center - width > 0))
            center = x_hat.copy()
            stats["serious_steps"] += 1
            width = np.where(at_box, width * 2.0, width)
        elif improved < -tol:  # null step far off: trust the model less
            width = np.maximum(width * 0.7, 1e-6)
        if P.value > best_dual:
            best_dual, best_P = P.value, P
        master.add_options(idx, P.host, P.cpu, P.const, P.served)
        # the second-best host too: it is often the one a fractional master mixes in
        pv = P.pair_value.copy()
        pv[idx, P.host] = np.inf
        h2 = np.argmin(pv, axis=1)
        fin = np.isfinite(pv[idx, h2])
        master.add_options(idx[fin], h2[fin], P.pair_cpu[idx, h2][fin], P.pair_const[idx, h2][fin],
                           P.pair_served[idx, h2][fin])
        stats["master_rows"] = master.n_rows
        # the dual is (nearly) maximized when the model promises little more than the best value
        converged = predicted <= 1e-4 * max(abs(best_dual), ref)
        if it % primal_every == 0 or converged:
            primal_round(best_P, search_time)
        if verbose:
            print(f"it {it}: D {P.value:.6g} best {best_dual:.6g} model {model:.6g} ub {primal.best_cost:.6g} "
                  f"gap {relative_gap(primal.best_cost, best_dual):.4f} width {np.median(width):.3g} "
                  f"t {time.perf_counter() - t0:.2f}s")
        if converged:
            break
    # the dual is spent: give the primal a few more tries with longer MILP and search budgets
    for extra in range(1, extra_rounds + 1):
        if primal.best_placement is not None and relative_gap(primal.best_cost, best_dual) <= gap:
            break
        if time.perf_counter() > deadline or not converged:
            break
        milp_time *= 3.0
        primal_round(best_P, search_time * 2)
        stats["extra_rounds"] = extra
    if primal.best_placement is None:  # stopped before any primal round: one cheap placement anyway
        primal_from(best_P)
    if primal.best_placement is None and (np.bincount(prev, weights=ld.size, minlength=M)
                                          <= s.storage_bits * (1 + 1e-12)).all():
        primal.offer(prev.copy())
    return done(best_dual, status)


def _pinned_bound(ld: LagrangianData, primal: _Primal, stats: dict[str, Any]) -> float:
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
        if n_cand <= EXACT_MAX_CANDIDATES:
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
