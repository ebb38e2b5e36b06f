"""Lower bounds of a snapshot's optimum as functions of its failure prices (docs/longterm.md).

The hindsight bound re-solves the same slot problems at every dual step with new failure prices
only. The Lagrangian relaxation of solvers/fast.py (docs/solvers_fast.md) prices each server's CPU
(``lam``) and storage (``pi``); at fixed ``(lam, pi)`` each MU's term is

    min(serve_n, host_n + mu_n)      (best host served, or cheapest host and fail)

where ``serve_n`` (certified inner minima) and ``host_n`` do not depend on the failure price
``mu_n``. So one pricing gives a bound valid at *every* ``mu >= 0``:

    B(mu) = sum_n min(serve_n, host_n + mu_n [n requesting]) - sum_m (lam_m cpu_hz_m + pi_m storage_m)

(less a relative round-off margin). With ``(lam, pi)`` from the duals of the exact oracle's root LP
(solvers/exact.py) it is at least that LP's bound at the prices it was solved at: pricing the
couplings and keeping each MU's options exact only relaxes the master less. It stays tight at other
prices while each MU's best option does not change; :func:`refine` climbs ``(lam, pi)`` at new
prices (Polyak steps towards a known upper bound) when it does.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from .allocation import PairData


def _never_failing(pd: PairData) -> Any:
    """The Lagrangian data of ``pd``'s snapshot with failing priced out (each MU's best *served* option)."""
    from .fast import LagrangianData

    ld = LagrangianData.of(pd.snapshot, pd)
    return dataclasses.replace(ld, fail=np.full(pd.snapshot.n_mus, np.inf))


class PriceCertificate:
    """A certified lower bound of one snapshot's optimum at any failure prices (module docstring).

    Parameters
    ----------
    serve_j, host_j : ndarray [N]
        Certified least cost of each MU served (J; inf if it cannot be) and of hosting it failed.
    charged : ndarray [N] of bool
        MUs whose failure is priced (the requesting ones).
    prices_j : float
        ``sum_m lam_m cpu_hz_m + pi_m storage_bits_m`` (J).
    lam, pi : ndarray [M]
        The CPU (J per cycle/s) and storage (J per bit) prices it was computed at.
    """

    def __init__(self, serve_j: np.ndarray, host_j: np.ndarray, charged: np.ndarray, prices_j: float,
                 lam: np.ndarray, pi: np.ndarray):
        self.serve_j, self.host_j, self.charged, self.prices_j = serve_j, host_j, charged, float(prices_j)
        self.lam, self.pi = lam, pi

    @classmethod
    def at(cls, pd: PairData, lam: np.ndarray, pi: np.ndarray, never: Any = None) -> "PriceCertificate":
        """The certificate of ``pd``'s snapshot at CPU prices ``lam`` [M] and storage prices ``pi`` [M]
        (negative entries are taken as 0). ``never``: ``_never_failing(pd)`` if the caller has it."""
        from .fast import price

        s = pd.snapshot
        ld = _never_failing(pd) if never is None else never
        pr = price(ld, lam, pi)
        host = np.where(ld.allowed, ld.mig + pr.pi[None, :] * ld.size[:, None], np.inf).min(axis=1)
        return cls(pr.theta_lb, host, s.request.copy(), float(pr.lam @ s.cpu_hz + pr.pi @ s.storage_bits),
                   pr.lam, pr.pi)

    def bound(self, mu: np.ndarray) -> float:
        """The lower bound (J) at failure prices ``mu`` [N] (J per failure)."""
        from .fast import SAFETY_RTOL

        fail = np.where(self.charged, np.asarray(mu, dtype=float), 0.0)
        terms = np.minimum(self.serve_j, self.host_j + fail)
        return float(terms.sum()) - self.prices_j - SAFETY_RTOL * (float(np.abs(terms).sum()) + self.prices_j)


def refine(pd: PairData, start: PriceCertificate, mu: np.ndarray, target: float, *, iters: int = 10,
           never: Any = None) -> PriceCertificate:
    """Climb the Lagrangian bound at failure prices ``mu`` from ``start``'s CPU and storage prices.

    Polyak steps ``u <- max(u + (target - B) / |g|^2 g, 0)`` on the prices per server
    (``u = (lam cpu_hz, pi storage_bits)``, ``g`` the shares of CPU and storage the best responses
    over-use), with ``target`` an upper bound of the optimum (a known decision's cost); the step is
    halved after a step that did not improve. Returns the best certificate seen (``start`` if none
    is better at ``mu``): every one is valid, the climb only chooses which.
    """
    from .fast import price

    s = pd.snapshot
    ld = _never_failing(pd) if never is None else never
    priced = dataclasses.replace(ld, fail=np.where(s.request, np.asarray(mu, dtype=float), 0.0))
    Fs = np.where(s.cpu_hz > 0, s.cpu_hz, 1.0)
    Ss = np.where(s.storage_bits > 0, s.storage_bits, 1.0)
    best_lam, best_pi, best = start.lam, start.pi, start.bound(mu)
    u = np.concatenate([start.lam * Fs, start.pi * Ss])
    M = s.n_bss
    theta = 1.0
    for _ in range(iters):
        pr = price(priced, u[:M] / Fs, u[M:] / Ss)
        if pr.value > best:
            best, best_lam, best_pi = pr.value, pr.lam, pr.pi
        else:
            theta *= 0.5
        g = np.concatenate([(pr.cpu_use - s.cpu_hz) / Fs, (pr.storage_use - s.storage_bits) / Ss])
        g = np.where((u <= 0) & (g < 0), 0.0, g)
        norm2 = float(g @ g)
        if norm2 == 0.0 or not math.isfinite(target) or target <= best:
            break
        u = np.maximum(u + theta * (target - pr.value) / norm2 * g, 0.0)
    if best_lam is start.lam and best_pi is start.pi:
        return start
    return PriceCertificate.at(pd, best_lam, best_pi, never=ld)


def pair_serve_bounds(pd: PairData, lam: np.ndarray, ld: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """[N, M] certified lower bounds of ``min_f E_n(T[n,m] - c_n/f) + lam_m f`` over the CPU a
    served MU may take on server m (its energy plus the CPU it uses at price ``lam``, J; ``inf``
    where the pair cannot be served), and [N, M] the CPU of that minimizer (cycles/s). The inner
    minima of solvers/fast.py (tangent bounds), less the round-off margin of
    :data:`solvers.fast.SAFETY_RTOL`. ``ld``: the snapshot's ``LagrangianData`` if the caller has it.
    """
    from .fast import SAFETY_RTOL, LagrangianData, inner_min

    s = pd.snapshot
    ld = LagrangianData.of(s, pd) if ld is None else ld
    out = np.full((s.n_mus, s.n_bss), np.inf)
    cpu = np.zeros((s.n_mus, s.n_bss))
    lam = np.maximum(np.asarray(lam, dtype=float), 0.0)
    if ld.busy_n.size:
        f, _, _, certified = inner_min(pd, ld.busy_n, ld.busy_m, lam[ld.busy_m])
        out[ld.busy_n, ld.busy_m] = certified
        cpu[ld.busy_n, ld.busy_m] = f
    if ld.idle_n.size:
        out[ld.idle_n, ld.idle_m] = ld.idle_energy
    return out - SAFETY_RTOL * np.abs(np.where(np.isfinite(out), out, 0.0)), cpu
