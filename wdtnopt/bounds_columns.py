"""The hindsight bound's dual maximized by column generation over the whole trace (docs/longterm.md).

The hindsight bound of wdtnopt/bounds.py dualizes each MU's reliability constraint with ``mu_n``
and needs, at each ``mu``, a certified lower bound of every slot's relaxed snapshot minimum. Any
lower bound will do. Here each slot's minimum is bounded by its Lagrangian relaxation
(solvers/fast.py, docs/solvers_fast.md): CPU prices ``lam[t, m]`` and storage prices ``pi[t, m]``
make the slot separate over MUs, and for ANY ``mu, lam, pi >= 0``

    Phi(mu, lam, pi) = sum_t D_t(mu, lam_t, pi_t) - sum_n mu_n eps_n R_n
    D_t = sum_{n requesting at t} min_m [pi_tm size_n + min(mu_n, h_nm(lam_tm))] - lam_t . cpu_hz - pi_t . storage

(``h`` the certified inner minimum of a served pair, :func:`solvers.fast_dual.price`) is at most
``sum_t g_t(mu) - mu . eps R``, hence a valid bound of every causal policy's energy (weak duality,
twice). ``Phi`` is concave in all its arguments together, and its maximum is the optimum of one
linear programme over the whole trace (Dantzig-Wolfe): per (slot, MU) a convex combination of
options (host m, served with CPU f at its energy, or failed), per (slot, server) the CPU and
storage rows, per MU its failure row ``sum_t fail_tn <= eps_n R_n``. We solve that programme by
column generation: the restricted master (HiGHS, warm-started dual simplex) starts with, per
servable pair, a few CPU levels geometrically spaced between the least CPU that meets the deadline
and the whole server, and the failed option on every host; its row duals give ``(mu, lam, pi)``;
pricing every slot at those duals (one vectorized :func:`price` per slot, no MILP) gives a certified
``Phi`` and each (slot, MU)'s best option, added as a column when its reduced cost is negative. The
master's value is an upper bound of ``max Phi`` (a restriction of the full programme), so
``master - best Phi`` measures convergence. Only ``Phi`` at the priced duals is ever reported: the
master only proposes prices. Every priced point is kept as a ``BoundPoint`` (``G = Phi + mu . eps R``
does not depend on ``eps``), so :meth:`HindsightBound.value_at` re-scores it at other targets, and
:func:`wdtnopt.gap` re-solves the master at a policy's own targets (only the failure rows' right-hand
side changes; the columns are kept).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .trace import Trace

CPU_LEVELS = 6          # initial served columns per pair: CPU levels from f_min to the whole server
ELASTIC = 1e3           # a failure row may be overrun at this many failure prices per failure (caps mu)


class ColumnDual:
    """The restricted master of the trace's Lagrangian dual and the pricing of its slots (module docstring).

    Parameters
    ----------
    trace : Trace
        The trace; only slots with requests enter, each relaxed as in wdtnopt/bounds.py (migration
        free, only the requesting DTs).
    ref : float
        The scale of energies and prices (J), e.g. the failure price.
    progress : bool, optional
        Show a progress bar while the slots' relaxed snapshots are built (one pass over the trace:
        on a large windowed trace, the longest part before the first dual step).
    """

    def __init__(self, trace: Trace, ref: float, progress: bool = False):
        import highspy

        from .bounds import relaxed_slot
        from .solvers.allocation import storage_capacity
        from .solvers.fast_dual import LagrangianData
        from .solvers.highs import quiet_highs

        self.hs = highspy
        self.trace = trace
        n = trace.n_mus
        self.n_mus = n
        self.ref = float(ref) if ref > 0 else 1.0
        base = dict(placement_prev=trace.initial_placement, migrating=np.zeros(n, bool),
                    migration_penalty=np.zeros(n), allow_migration=True)
        bar = None
        if progress:
            from .progress import progress_bar
            bar = progress_bar(desc="hindsight bound: slots", unit="slot", total=trace.slots)
        self.slots, self.req, self.subs, self.lds = [], [], [], []
        try:
            for t in range(trace.slots):   # in slot order: a windowed trace holds one window at a time
                r = np.flatnonzero(trace.request[t])
                if r.size:
                    sub = relaxed_slot(trace, t, r, base)   # the limits evaluate accepts
                    self.slots.append(t)
                    self.req.append(r)
                    self.subs.append(sub)
                    self.lds.append(LagrangianData.of(sub))
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        M = trace.n_bss
        self.M = M
        # requests no policy can serve (no up server meets the deadline): failures of every policy
        self.forced = np.zeros(n)
        for r, ld in zip(self.req, self.lds):
            self.forced[r] += ~ld.pd.servable.any(axis=1)
        S = len(self.slots)
        # rows: convexity (slot, requesting MU), CPU (slot, server), storage (slot, server), failure (MU)
        self.conv0 = np.cumsum([0] + [r.size for r in self.req])
        n_conv = int(self.conv0[-1])
        self.cpu0 = n_conv
        self.sto0 = n_conv + S * M
        self.fail0 = n_conv + 2 * S * M
        self.n_rows = self.fail0 + n
        self.F = np.array([np.where(ld.pd.snapshot.cpu_hz > 0, ld.pd.snapshot.cpu_hz, 1.0) for ld in self.lds])
        self.Sto = np.array([np.where(storage_capacity(ld.pd.snapshot) > 0, storage_capacity(ld.pd.snapshot), 1.0)
                             for ld in self.lds])
        self.cap_cpu = np.array([ld.pd.snapshot.cpu_hz for ld in self.lds])
        self.cap_sto = np.array([storage_capacity(ld.pd.snapshot) for ld in self.lds])
        h = quiet_highs()
        h.setOptionValue("simplex_strategy", 4)  # primal simplex: columns are added, the basis stays primal feasible
        inf = highspy.kHighsInf
        lo = np.concatenate([np.ones(n_conv), np.full(2 * S * M, -inf), np.full(n, -inf)])
        hi = np.concatenate([np.ones(n_conv), np.where(self.cap_cpu > 0, 1.0, 0.0).ravel(),
                             np.where(self.cap_sto > 0, 1.0, 0.0).ravel(), np.zeros(n)])
        h.addRows(self.n_rows, lo, hi, 0, np.zeros(self.n_rows, dtype=np.int32), np.zeros(0, dtype=np.int32),
                  np.zeros(0))
        self.h = h
        # elastic columns of the failure rows: cost ELASTIC failure prices per failure over the target
        self.columns = 0
        self._add(np.full(n, ELASTIC), [np.array([self.fail0 + j]) for j in range(n)], [np.array([-1.0])] * n)
        self._initial_columns()

    # -- columns --------------------------------------------------------------------------------
    def _add(self, cost: np.ndarray, rows: list[np.ndarray], vals: list[np.ndarray]) -> None:
        k = len(rows)
        if not k:
            return
        starts = np.cumsum([0] + [r.size for r in rows[:-1]]).astype(np.int32)
        idx = np.concatenate(rows).astype(np.int32)
        val = np.concatenate(vals).astype(float)
        self.h.addCols(k, np.asarray(cost, float), np.zeros(k), np.full(k, self.hs.kHighsInf), idx.size, starts, idx, val)
        self.columns += k

    def _option_columns(self, i: int, n_local: np.ndarray, m: np.ndarray, served: np.ndarray, cpu: np.ndarray,
                        energy: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Columns of options (slot i, requesting MU n_local, host m, served with CPU cpu at energy, or failed)."""
        ld = self.lds[i]
        M = self.M
        cost = (energy * served + ld.mig[n_local, m]) / self.ref
        rows, vals = [], []
        size = ld.size[n_local] / self.Sto[i, m]
        gl = self.req[i][n_local]
        for a, (nl, mm, sv, f, sz, g) in enumerate(zip(n_local, m, served, cpu, size, gl)):
            r = [self.conv0[i] + nl, self.sto0 + i * M + mm]
            v = [1.0, sz]
            if sv:
                if f > 0:
                    r.append(self.cpu0 + i * M + mm)
                    v.append(f / self.F[i, mm])
            else:
                r.append(self.fail0 + g)
                v.append(1.0)
            rows.append(np.array(r))
            vals.append(np.array(v))
        return cost, rows, vals

    def _initial_columns(self) -> None:
        for i, ld in enumerate(self.lds):
            pd = ld.pd
            nn, mm = np.nonzero(ld.allowed)
            cost, rows, vals = self._option_columns(i, nn, mm, np.zeros(nn.size, bool), np.zeros(nn.size), np.zeros(nn.size))
            self._add(cost, rows, vals)
            bn, bm = ld.busy_n, ld.busy_m
            if bn.size:
                fmin = np.maximum(pd.f_min[bn, bm], 1e-12 * pd.cpu_hz[bm])
                F = pd.cpu_hz[bm]
                for q in np.linspace(0.0, 1.0, CPU_LEVELS):
                    f = np.minimum(fmin * (F / fmin) ** q, F)
                    t = np.maximum(pd.budget[bn, bm] - pd.cycles[bn] / f, pd.t_min[bn])
                    e = pd.energy(bn, t)
                    ok = np.isfinite(e)
                    cost, rows, vals = self._option_columns(i, bn[ok], bm[ok], np.ones(ok.sum(), bool), f[ok], e[ok])
                    self._add(cost, rows, vals)
            qn, qm = ld.idle_n, ld.idle_m
            if qn.size:
                cost, rows, vals = self._option_columns(i, qn, qm, np.ones(qn.size, bool), np.zeros(qn.size),
                                                        ld.idle_energy)
                self._add(cost, rows, vals)

    # -- master and pricing ---------------------------------------------------------------------
    def set_targets(self, eps: np.ndarray, requests: np.ndarray) -> None:
        """Failure rows ``sum_t fail_tn <= eps_n R_n``."""
        n = self.n_mus
        rhs = np.asarray(eps, float) * np.asarray(requests, float)
        self.h.changeRowsBounds(n, np.arange(self.fail0, self.fail0 + n, dtype=np.int32), np.full(n, -self.hs.kHighsInf),
                                rhs)
        self.rhs = rhs

    def master(self) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """Solve the restricted master: (its value in J, mu [N], lam [S, M], pi [S, M], convexity duals [rows] in J)."""
        self.h.run()
        if self.h.getModelStatus() != self.hs.HighsModelStatus.kOptimal:
            return None
        sol = self.h.getSolution()
        d = np.asarray(sol.row_dual)
        S, M = len(self.slots), self.M
        mu = np.maximum(-d[self.fail0:self.fail0 + self.n_mus], 0.0) * self.ref
        lam = np.maximum(-d[self.cpu0:self.sto0].reshape(S, M), 0.0) * self.ref / self.F
        pi = np.maximum(-d[self.sto0:self.fail0].reshape(S, M), 0.0) * self.ref / self.Sto
        value = float(self.h.getInfo().objective_function_value) * self.ref
        return value, mu, lam, pi, d[:self.cpu0] * self.ref

    def price(self, mu: np.ndarray, lam: np.ndarray, pi: np.ndarray, sigma: np.ndarray | None = None
              ) -> tuple[float, np.ndarray, int]:
        """``G = sum_t D_t(mu, lam_t, pi_t)`` (certified, J), the failures [N] of the best responses, and
        how many columns of negative reduced cost (against convexity duals ``sigma``) were added."""
        import dataclasses

        from .solvers.fast_dual import price

        G = 0.0
        failures = np.zeros(self.n_mus)
        new_n: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for i, ld in enumerate(self.lds):
            r = self.req[i]
            P = price(dataclasses.replace(ld, fail=mu[r].astype(float)), lam[i], pi[i])
            G += P.value
            failures[r] += ~P.served
            if sigma is None:
                continue
            # each MU's best option and its best on the second-best host, where they price below sigma
            idx = np.arange(r.size)
            sig = sigma[self.conv0[i]:self.conv0[i + 1]]
            pv = P.pair_value
            h1 = P.host
            pv2 = pv.copy()
            pv2[idx, h1] = np.inf
            h2 = np.argmin(pv2, axis=1)
            for h in (h1, h2):
                val = pv[idx, h]
                good = np.isfinite(val) & (val < sig - 1e-9 * np.maximum(np.abs(sig), self.ref))
                if good.any():
                    nl, mm = idx[good], h[good]
                    sv = P.pair_served[nl, mm]
                    en = P.pair_const[nl, mm] - ld.mig[nl, mm]
                    new_n.append((i, nl, mm, sv, P.pair_cpu[nl, mm], np.where(sv, en, 0.0)))
        added = 0
        for i, nl, mm, sv, f, e in new_n:
            cost, rows, vals = self._option_columns(i, nl, mm, sv, f, e)
            self._add(cost, rows, vals)
            added += len(rows)
        return G, failures, added


def covers(trace: Any) -> bool:
    """Whether the column-generation dual covers ``trace`` (a Trace, or its Scenario): not with a menu
    of two or more semantic levels (docs/model.md, section 13: its pricing has no level choice)."""
    sc = getattr(trace, "scenario", trace)
    return getattr(sc, "semantic_levels", 0) <= 1   # one level: ratio 1, no extraction cost


def maximize(cd: ColumnDual, hb: Any, eps: np.ndarray, iters: int, bar: Any = None, rtol: float = 1e-7) -> int:
    """Column generation on the trace's Lagrangian dual at targets ``hb.targets(eps)``, at most ``iters``
    pricing passes, each appended to ``hb.points`` as a ``BoundPoint``; returns the passes spent.

    Stops early when no column prices below its convexity dual (the master is optimal for the full
    programme: its duals maximize ``Phi``) or when the best ``Phi`` is within ``rtol`` of the
    master's value (an upper bound of ``max Phi``).
    """
    from .bounds import BoundPoint

    target = hb.targets(eps)
    R = np.maximum(hb.requests, 1.0)
    cd.set_targets(target / R, R)
    best = -math.inf
    spent = 0
    for _ in range(iters):
        got = cd.master()
        if got is None:       # not solved to optimality: no prices to propose
            if spent == 0:    # still one valid point: the scale's uniform price, CPU and storage free
                S = len(cd.slots)
                mu = np.full(cd.n_mus, cd.ref)
                G, failures, _ = cd.price(mu, np.zeros((S, cd.M)), np.zeros((S, cd.M)))
                hb.points.append(BoundPoint(mu=mu, G=G, failures=failures, certified_all_optimal=False))
                spent = 1
            break
        value, mu, lam, pi, sigma = got
        G, failures, added = cd.price(mu, lam, pi, sigma)
        hb.points.append(BoundPoint(mu=mu, G=G, failures=failures, certified_all_optimal=False, slot_prices=(lam, pi)))
        spent += 1
        if bar is not None:
            bar.update(len(cd.slots))
        best = max(best, G - float(mu @ target))
        if added == 0 or value - best <= rtol * max(abs(value), 1e-300):
            break
    return spent
