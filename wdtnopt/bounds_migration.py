"""A hindsight lower bound that keeps the migration dynamics (docs/longterm.md, "Migration-aware bound").

The hindsight bound of :mod:`wdtnopt.bounds` relaxes migration entirely: every slot may re-place
every DT for free. This one keeps, for every MU, the rules of the simulator (docs/model.md, section 4):
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

from .bounds import check_iters, eps_targets
from .errors import WdtnoptError
from .trace import Trace

U_STEP = 0.05   # CPU-price steps, a fraction of the largest starting price


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
    """Per-slot CPU and storage prices and the serve costs they give (module docstring)."""

    def __init__(self, trace: Trace, evaluator: Any):
        self.trace, self.ev = trace, evaluator
        T, N, M = trace.slots, trace.n_mus, trace.n_bss
        self.serve = np.full((T, N, M), np.inf)     # h[t, n, m] for requesting n (inf elsewhere)
        self.cpu = np.zeros((T, N, M))               # CPU of that minimizer (cycles/s)
        self.lam = np.zeros((T, M))
        self.pi = np.zeros((T, M))
        self._data: dict[int, Any] = {}

    @property
    def const(self) -> np.ndarray:
        """[T] ``sum_m lam cpu_hz + pi storage_bits`` (J), at the capacities ``evaluate`` accepts
        (times ``1 + FEAS_RTOL``, as the slots' pair data: docs/longterm.md, "The hindsight lower bound")."""
        from .cost import FEAS_RTOL

        up = 1 + FEAS_RTOL
        return self.lam @ (self.trace.cpu_hz * up) + self.pi @ (self.trace.storage_bits * up)

    def _slot_data(self, i: int) -> tuple[Any, Any]:
        from .snapshot import Snapshot
        from .solvers.allocation import PairData
        from .solvers.fast import LagrangianData

        got = self._data.get(i)
        if got is None:
            sub = self.ev.subs[i]
            pd = PairData.of(Snapshot.from_dict(sub) if isinstance(sub, dict) else sub)
            got = self._data[i] = (pd, LagrangianData.of(pd.snapshot, pd))
        return got

    def _price_slot(self, i: int, lam: np.ndarray) -> None:
        from .solvers.price_certificate import pair_serve_bounds

        t, req = self.ev.slots[i], self.ev.req[i]
        pd, ld = self._slot_data(i)
        serve, cpu = pair_serve_bounds(pd, lam, ld)
        self.serve[t] = np.inf
        self.serve[t, req] = serve
        self.cpu[t] = 0.0
        self.cpu[t, req] = cpu
        self.lam[t] = np.maximum(lam, 0.0)

    def from_certificates(self, mu: np.ndarray) -> None:
        """Each slot's prices from its certificate best at ``mu`` (none: prices 0)."""
        for i, req in enumerate(self.ev.req):
            certs = self.ev.certificates[i]
            if certs:
                best = max(certs, key=lambda c: c.bound(mu[req]))
                self._price_slot(i, best.lam)
                self.pi[self.ev.slots[i]] = best.pi
            else:
                # zero prices are a valid point of the dual too; leaving the slot's serve costs at
                # inf instead charged every request there as a failure, above what policies spend
                self._price_slot(i, np.zeros(self.trace.n_bss))

    def from_slot_prices(self, lam: np.ndarray, pi: np.ndarray) -> None:
        """Each slot's prices from a column-generation point (``BoundPoint.slot_prices``, [slots, M])."""
        for i, t in enumerate(self.ev.slots):
            self._price_slot(i, lam[i])
            self.pi[t] = np.maximum(pi[i], 0.0)

    def priced(self) -> np.ndarray:
        """[slots] whether slot i has prices worth climbing (a certificate, or column generation's)."""
        certs = getattr(self.ev, "certificates", None)
        return np.ones(len(self.ev.slots), bool) if certs is None else np.array([bool(c) for c in certs], bool)

    def set_lam(self, lam: np.ndarray) -> None:
        """New CPU prices [T, M] (slots with prices worth climbing only)."""
        priced = self.priced()
        for i, t in enumerate(self.ev.slots):
            if priced[i] and not np.array_equal(lam[t], self.lam[t]):
                self._price_slot(i, lam[t])


def path_costs(trace: Trace, mu: np.ndarray, serve: np.ndarray, pi: np.ndarray, cpu: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``DP_n`` of every MU (J), the failures on its optimal path, and the CPU [T, M] those paths use.

    ``serve``: [T, N, M] serve costs of requesting MUs (inf where it cannot be served or does not
    request); ``pi``: [T, M] storage prices (J per bit); ``cpu``: [T, N, M] the CPU of each serve
    option (cycles/s), for the CPU use.
    """
    T, N, M = trace.slots, trace.n_mus, trace.n_bss
    K = trace.scenario.frame_slots
    req = trace.request                                              # [T, N]
    size = trace.dt_size_bits
    served_cost = np.minimum(serve, mu[None, :, None])
    cost = np.where(req[:, :, None], served_cost, 0.0) + pi[:, None, :] * size[None, :, None]   # [T, N, M]
    serves_here = req[:, :, None] & (serve < mu[None, :, None])     # serving is the cheaper option
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
    # failures and CPU use along each MU's optimal path
    host = trace.initial_placement.copy()
    t_at = np.zeros(N, dtype=np.int64)
    failures = np.zeros(N)
    use = np.zeros((T, M))
    value = V[0, np.arange(N), host]
    for t in range(T):
        idx = np.flatnonzero(t_at == t)
        if idx.size == 0:
            continue
        dest = move_to[t, idx, host[idx]]
        moving = dest >= 0
        for n, d in zip(idx[moving], dest[moving]):
            arrive = min(t + int(k[n, host[n], d]), T)
            failures[n] += Pf[arrive, n] - Pf[t, n]
            host[n], t_at[n] = d, arrive
        still = idx[~moving]
        h = host[still]
        served = serves_here[t, still, h]
        failures[still] += req[t, still] & ~served
        if cpu is not None:
            np.add.at(use[t], h[served], cpu[t, still[served], h[served]])
        t_at[still] = t + 1
    return value, failures, use


def uncovered_setting(scenario: Any) -> str | None:
    """The scenario setting that :func:`migration_bound` does not cover, in words, or None.

    Parameters
    ----------
    scenario : Scenario
        The scenario of the trace.

    Returns
    -------
    str or None
        ``"server failures (server_mtbf_s > 0)"`` (restores after a server failure move DTs outside
        frame starts: paths the DP does not have), ``"semantic compression levels (semantic_levels >
        0)"`` (the DP prices each served slot without the level choice: with a compression menu,
        docs/model.md, section 13, policies spend less and the value is no lower bound), or None.
    """
    if getattr(scenario, "server_failures", False):
        return "server failures (server_mtbf_s > 0)"
    if getattr(scenario, "semantic_levels", 0) > 0:
        return "semantic compression levels (semantic_levels > 0)"
    return None


def check_covered(scenario: Any) -> None:
    """Raise :class:`WdtnoptError` if :func:`migration_bound` does not cover traces of ``scenario``.

    Parameters
    ----------
    scenario : Scenario
        The scenario of the trace.

    Raises
    ------
    WdtnoptError
        With server failures or semantic compression levels (:func:`uncovered_setting`).
    """
    setting = uncovered_setting(scenario)
    if setting is not None:
        raise WdtnoptError(f"migration_bound: traces with {setting} are not covered (use hindsight_bound)")


def migration_bound(trace: Trace, bound: Any, eps: Any = None, *, iters: int = 20) -> MigrationBound:
    """The migration-aware lower bound (module docstring) at per-MU failure targets ``eps``.

    Parameters
    ----------
    trace : Trace
        The trace of ``bound``.
    bound : HindsightBound
        A hindsight bound computed on ``trace`` with warm starts and ``method="exact"`` (its slots'
        price certificates give the CPU and storage prices; slots without one, as with another method or
        without warm starts, are priced at 0: valid, weaker).
    eps : float or array [N], optional
        Failure targets (default: the scenario's ``eps``), e.g. a policy's own failure ratios.
    iters : int
        Supergradient steps on ``mu`` after the start at the hindsight bound's best multipliers
        (an integer >= 0; 0: the start alone).

    Returns
    -------
    MigrationBound
        ``total_energy`` (J) below the energy of every policy whose per-MU failure ratios are <= eps.

    Raises
    ------
    WdtnoptError
        If ``bound`` is not a hindsight bound of ``trace``, ``eps`` is not in ``[0, 1]``, ``iters``
        is not an integer >= 0 (-1 gave a bound of 0 without a word, 2.5 a TypeError), or the
        scenario has server failures (their restores move DTs outside frame starts) or semantic
        compression levels (the DP does not choose levels).
    """
    iters = check_iters(iters, 0)
    ev = getattr(bound, "_evaluator", None)
    cols = getattr(bound, "_columns", None)
    if cols is not None:
        ev = cols.cd
    if ev is None or ev.trace is not trace:
        raise WdtnoptError("bound: expected a hindsight bound computed on this trace")
    check_covered(trace.scenario)
    n = trace.n_mus
    eps_arr = eps_targets(trace, eps)
    prices = _Prices(trace, ev)
    _, point = bound.best_point(eps_arr)
    mu = (np.zeros(n) if point is None else np.asarray(point.mu, dtype=float)).copy()
    if point is not None and point.slot_prices is not None:
        prices.from_slot_prices(*point.slot_prices)
    else:
        prices.from_certificates(mu)
    F = np.where(trace.cpu_hz > 0, trace.cpu_hz, 1.0)
    u = prices.lam * F                                   # CPU prices per server and slot (J)
    priced = np.zeros(trace.slots, dtype=bool)
    priced[[t for i, t in enumerate(ev.slots) if prices.priced()[i]]] = True
    target = bound.targets(eps_arr)                       # eps R, raised to the forced failures
    best, best_mu, history = -math.inf, mu.copy(), []
    level_mu = float(mu.max()) if mu.any() else float(trace.scenario.failure_price)
    level_u = float(u.max()) if u.any() else 0.0
    for k in range(iters + 1):
        value, failures, use = path_costs(trace, mu, prices.serve, prices.pi, prices.cpu)
        lb = float(value.sum() - prices.const.sum() - mu @ target)
        history.append(lb)
        if lb > best:
            best, best_mu = lb, mu.copy()
        if k == iters:
            break
        step = 1.0 / math.sqrt(k + 1)
        g = failures - target
        g = np.where((mu <= 0) & (g < 0), 0.0, g)
        if np.abs(g).max() > 0:
            mu = np.maximum(mu + 0.25 * level_mu * step * g / np.abs(g).max(), 0.0)
        gu = np.where(priced[:, None], use / F - 1.0, 0.0)  # supergradient: CPU over-use, in shares
        gu = np.where((u <= 0) & (gu < 0), 0.0, gu)
        if level_u > 0 and np.abs(gu).max() > 0:
            u = np.maximum(u + U_STEP * level_u * step * gu / np.abs(gu).max(), 0.0)
            prices.set_lam(u / F)
    return MigrationBound(total_energy=max(best, 0.0), mu=best_mu, n_mus=n, trace_slots=trace.slots, history=history)
