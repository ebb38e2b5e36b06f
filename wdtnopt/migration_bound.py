"""A hindsight lower bound that keeps the migration dynamics (docs/longterm.md, "Migration-aware bound").

The hindsight bound of :mod:`wdtnopt.bounds` relaxes migration entirely: every slot may re-place
every DT for free. This one keeps, for every MU, the rules of the simulator (MODEL.md section 4):
a DT moves only at a frame start (``t % K == 0``), a moved DT is unavailable for
``ceil(T_mig / tau)`` slots starting with that one (its requests there fail) and cannot move again
before it arrives, and the trace starts from ``initial_placement``. What it relaxes instead is the
coupling between MUs: each slot's CPU and storage constraints are dualized with prices
``lam[t, m] >= 0`` (J per cycle/s) and ``pi[t, m] >= 0`` (J per bit). For every ``mu >= 0`` and such
prices, every policy's energy ``E`` with failures ``F_n <= eps_n R_n`` satisfies

    E >= sum_n DP_n(mu_n, lam, pi) - sum_t sum_m (lam[t,m] cpu_hz[m] + pi[t,m] storage_bits[m])
         - sum_n mu_n eps_n R_n,

where ``DP_n`` is the least cost of MU n alone over every placement path allowed by the rules:
at slot t on an available host m it pays ``pi[t,m] size_n`` and, if requesting,
``min(mu_n, h[t,n,m])`` (``h`` the certified least energy plus priced CPU of serving it on m,
solvers/price_certificate.py, ``pair_serve_bounds``); each slot of a migration costs ``mu_n`` if it
requests. Why: take the policy's own trajectory; adding ``sum_n mu_n (F_n - eps_n R_n) <= 0`` and
``sum_t,m lam (CPU used - cpu_hz) + pi (storage used - storage_bits) <= 0`` to ``E`` only lowers it;
the result separates over MUs, and each MU's part is at least its own ``DP_n`` (its path is one of
those the DP minimizes over, its served slots cost at least ``h`` and its failed ones ``mu_n``). A
DT in migration is charged no storage, which only lowers the bound (weak duality, as for the
migration-free bound).

``DP_n`` is a backward dynamic programme over (slot, available host): ``O(T M^2)`` per MU, vectorized
over MUs. The prices are taken from the slots' price certificates of a hindsight bound already
computed (the exact oracle's root-LP duals, the certificate best at the evaluated ``mu``), and ``mu``
is improved by projected supergradient steps (``F_n - eps_n R_n``, with ``F_n`` the failures of the
DPs' optimal paths). Every evaluated point is a valid bound; the best is reported.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import WdtnoptError
from .trace import Trace


@dataclass
class MigrationBound:
    """The migration-aware hindsight bound of one trace at targets ``eps`` (J), with its multipliers."""

    total_energy: float
    mu: np.ndarray
    n_mus: int
    trace_slots: int
    history: list[float] = field(default_factory=list)   # bound (J) at each evaluated mu

    @property
    def energy_per_mu_slot(self) -> float:
        """The bound in the unit of ``SimResult.energy_per_mu_slot`` (J per MU per slot)."""
        return self.total_energy / (self.n_mus * self.trace_slots)


class _Prices:
    """Per-slot CPU and storage prices and serve costs, chosen from the slots' price certificates."""

    def __init__(self, trace: Trace, evaluator: Any):
        self.trace, self.ev = trace, evaluator
        T, N, M = trace.slots, trace.n_mus, trace.n_bss
        self.serve = np.full((T, N, M), np.inf)     # h[t, n, m] for requesting n (inf elsewhere)
        self.pi = np.zeros((T, M))
        self.const = np.zeros(T)                      # sum_m lam cpu_hz + pi storage_bits
        self.chosen: list[Any] = [None] * T
        self._pd: dict[int, Any] = {}

    def update(self, mu: np.ndarray) -> None:
        from .snapshot import Snapshot
        from .solvers.allocation import PairData
        from .solvers.price_certificate import pair_serve_bounds

        tr, ev = self.trace, self.ev
        for i, (t, req) in enumerate(zip(ev.slots, ev.req)):
            certs = ev.certificates[i]
            if not certs:
                continue
            best = max(certs, key=lambda c: c.bound(mu[req]))
            if best is self.chosen[t]:
                continue
            self.chosen[t] = best
            pd = self._pd.get(i)
            if pd is None:
                sub = ev.subs[i]
                pd = self._pd[i] = PairData.of(Snapshot.from_dict(sub) if isinstance(sub, dict) else sub)
            self.serve[t] = np.inf
            self.serve[t, req] = pair_serve_bounds(pd, best.lam)
            self.pi[t] = best.pi
            self.const[t] = float(best.lam @ tr.cpu_hz + best.pi @ tr.storage_bits)


def path_costs(trace: Trace, mu: np.ndarray, serve: np.ndarray, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``DP_n`` of every MU (J) and the failures on its optimal path (module docstring).

    ``serve``: [T, N, M] serve costs of requesting MUs (inf where it cannot be served or does not
    request); ``pi``: [T, M] storage prices (J per bit).
    """
    T, N, M = trace.slots, trace.n_mus, trace.n_bss
    K = trace.scenario.frame_slots
    req = trace.request                                              # [T, N]
    size = trace.dt_size_bits
    served_cost = np.minimum(serve, mu[None, :, None])
    cost = np.where(req[:, :, None], served_cost, 0.0) + pi[:, None, :] * size[None, :, None]   # [T, N, M]
    fails_here = req[:, :, None] & (mu[None, :, None] <= serve)     # failing is the cheaper option
    forced = req * mu[None, :]                                       # a request during a migration
    P = np.concatenate([np.zeros((1, N)), np.cumsum(forced, axis=0)])  # P[t] = sum_{t' < t} forced
    Pf = np.concatenate([np.zeros((1, N)), np.cumsum(req, axis=0)])
    # k[n, m, m']: slots of unavailability of DT n moving m -> m'
    k = np.stack([np.stack([trace.migration_slots(np.full(N, a), np.full(N, b)) for b in range(M)], axis=1)
                  for a in range(M)], axis=1)                        # [N, M, M]
    V = np.zeros((T + 1, N, M))
    move_to = np.full((T, N, M), -1, dtype=np.int64)                # -1: stay
    n_idx = np.arange(N)[:, None, None]
    for t in range(T - 1, -1, -1):
        stay = cost[t] + V[t + 1]
        if t % K == 0 and M > 1:
            arrive = np.minimum(t + k, T)                            # [N, M, M]
            mig = P[arrive, n_idx] - P[t][:, None, None] + V[arrive, n_idx, np.arange(M)[None, None, :]]
            mig = np.where(k > 0, mig, np.inf)                       # m' = m is staying
            best = mig.argmin(axis=2)
            best_v = np.take_along_axis(mig, best[:, :, None], axis=2)[:, :, 0]
            take = best_v < stay
            V[t] = np.where(take, best_v, stay)
            move_to[t] = np.where(take, best, -1)
        else:
            V[t] = stay
    # failures along each MU's optimal path
    host = trace.initial_placement.copy()
    t_at = np.zeros(N, dtype=np.int64)
    failures = np.zeros(N)
    value = V[0, np.arange(N), host]
    active = np.ones(N, dtype=bool)
    for t in range(T):
        now = active & (t_at == t)
        if not now.any():
            continue
        idx = np.flatnonzero(now)
        dest = move_to[t, idx, host[idx]]
        moving = dest >= 0
        for n, d in zip(idx[moving], dest[moving]):
            arrive = min(t + int(k[n, host[n], d]), T)
            failures[n] += Pf[arrive, n] - Pf[t, n]
            host[n], t_at[n] = d, arrive
        still = idx[~moving]
        failures[still] += fails_here[t, still, host[still]]
        t_at[still] = t + 1
        active &= t_at < T
    return value, failures


def migration_bound(trace: Trace, bound: Any, eps: Any = None, *, iters: int = 10) -> MigrationBound:
    """The migration-aware lower bound (module docstring) at per-MU failure targets ``eps``.

    Parameters
    ----------
    trace : Trace
        The trace of ``bound``.
    bound : HindsightBound
        A hindsight bound computed on ``trace`` with warm starts and ``method="exact"`` (its slots'
        price certificates give the CPU and storage prices; slots without one are priced at 0).
    eps : float or array [N], optional
        Failure targets (default: the scenario's ``eps``), e.g. a policy's own failure ratios.
    iters : int
        Supergradient steps on ``mu`` after the start at the hindsight bound's best multipliers.

    Returns
    -------
    MigrationBound
        ``total_energy`` (J) below the energy of every policy whose per-MU failure ratios are <= eps.
    """
    ev = getattr(bound, "_evaluator", None)
    if ev is None or ev.trace is not trace:
        raise WdtnoptError("bound: expected a hindsight bound computed on this trace")
    n = trace.n_mus
    eps_arr = np.broadcast_to(np.asarray(trace.scenario.eps if eps is None else eps, dtype=float), (n,)).copy()
    if not (np.isfinite(eps_arr).all() and (eps_arr >= 0).all() and (eps_arr <= 1).all()):
        raise WdtnoptError(f"eps: expected a number or {n} numbers in [0, 1]")
    R = trace.request.sum(axis=0).astype(float)
    prices = _Prices(trace, ev)
    _, mu = bound.value_at(eps_arr)
    mu = np.asarray(mu, dtype=float).copy()
    best, best_mu, history = -math.inf, mu.copy(), []
    level = float(mu.max()) if mu.any() else float(trace.scenario.failure_price)
    for k in range(iters + 1):
        prices.update(mu)
        value, failures = path_costs(trace, mu, prices.serve, prices.pi)
        lb = float(value.sum() - prices.const.sum() - mu @ (eps_arr * R))
        history.append(lb)
        if lb > best:
            best, best_mu = lb, mu.copy()
        g = failures - eps_arr * R
        g = np.where((mu <= 0) & (g < 0), 0.0, g)
        norm = float(np.abs(g).max())
        if norm == 0.0 or k == iters:
            break
        mu = np.maximum(mu + 0.25 * level / math.sqrt(k + 1) * g / norm, 0.0)
    return MigrationBound(total_energy=max(best, 0.0), mu=best_mu, n_mus=n, trace_slots=trace.slots, history=history)
