"""Primal repair of the ``fast`` method: placements -> storage repair -> per-server admission -> local search.

Each placement is priced by a per-server admission (:func:`admit_local`), cached per server and
hosted set in :class:`PrimalPool`; :func:`local_search` relocates single DTs between servers. See
solvers/fast.py.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np


from .allocation import PairData, ServerAllocation, allocate_server, storage_capacity, worth_serving
from .fast_dual import LagrangianData, inner_min, price

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
    with np.errstate(over="ignore"):   # a penalty of 1e300 J over the f_min of data of 1e-200 bits
        np.maximum.at(hi, bm, np.minimum(pen[bi] / pd.f_min[bn, bm] * 2.0, np.finfo(float).max))
    lo = hi * 1e-15

    def fits(lam: np.ndarray):
        f, _, ach, _ = inner_min(pd, bn, bm, lam[bm], iters=30)
        take = ach < pen[bi]
        return take, np.bincount(bm, weights=np.where(take, f, 0.0), minlength=M) <= pd.cpu_hz

    for _ in range(steps):
        with np.errstate(over="ignore"):   # prices near 1e295 (f_min of data of 1e-300 bits): lo hi = inf
            prod = lo * hi
        mid = np.where(np.isfinite(prod), np.sqrt(prod), np.sqrt(lo) * np.sqrt(hi))
        _, fit = fits(mid)
        hi = np.where(fit, mid, hi)
        lo = np.where(fit, lo, mid)
    take, _ = fits(hi)
    served[bi] = take
    return served


class PrimalPool:
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
    cap = storage_capacity(s)
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


def move_estimates(ld: LagrangianData, req: np.ndarray, n_idx: np.ndarray, placement: np.ndarray,
                   allocs: list) -> np.ndarray:
    """First-order cost change of moving each DT ``n_idx[i]`` to each server, ``[K, M]`` (J).

    With each server's CPU priced at its allocation ``allocs[m]``'s KKT price ``lam_m``, moving
    requesting DT n from m to m2 changes the cost by about ``min(fail_n, h[n,m2](lam_m2)) + mig[n,m2]
    - mig[n,m] - saving_n`` (``saving_n`` = its energy plus its CPU at ``lam_m`` if served in a feasible
    allocation, its penalty otherwise), one vectorized pricing for all pairs; inf at its own host.
    """
    M = len(allocs)
    lam = np.array([max(a.price, 0.0) if a.mus.size else 0.0 for a in allocs])
    lam = np.where(np.isfinite(lam), lam, 0.0)
    P = price(ld, lam, np.zeros(M))
    saving = np.where(req, ld.fail, 0.0)
    for m, a in enumerate(allocs):
        if a.mus.size and a.feasible:
            saving[a.mus] = ld.pd.energy(a.mus, a.tx_time) + lam[m] * a.cpu_hz
    cur = placement[n_idx]
    est = P.pair_value[n_idx] - (ld.mig[n_idx, cur] + saving[n_idx])[:, None]
    est[np.arange(n_idx.size), cur] = np.inf
    return est


def local_search(primal: PrimalPool, deadline: float, max_rounds: int = 50, per_round: int = 40,
                 start: np.ndarray | None = None) -> int:
    """Relocate single DTs between servers while the exact cost goes down (returns the moves made).

    Screening is first-order (:func:`move_estimates`, each server's CPU priced at its current
    allocation's price).
    The most promising moves are then evaluated exactly (admission of both servers, started from
    their current served sets) and taken when they lower the cost. ``start`` (a placement that fits)
    replaces the best placement as the starting point; the end point is offered to ``primal``.
    """
    ld = primal.ld
    s = primal.s
    if start is None and primal.best_placement is None:
        return 0
    M = s.n_bss
    placement = (primal.best_placement if start is None else start).copy()
    total, results = primal.cost(placement)
    results = list(results)
    load = np.bincount(placement, weights=ld.size, minlength=M)
    cap = storage_capacity(s)
    movable = primal.req & ~s.pinned
    moves = 0
    for _ in range(max_rounds):
        if time.perf_counter() > deadline:
            break
        n_idx = np.flatnonzero(movable)
        if n_idx.size == 0:
            break
        est = move_estimates(ld, primal.req, n_idx, placement, [r.alloc for r in results])
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
            if delta < -1e-12 * max(abs(total), 1e-300):   # the start's cost (the pool may hold none)
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
