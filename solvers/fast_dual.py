"""Dual pricing of the ``fast`` method: the Lagrangian data of a snapshot and its certified pricing.

``price(ld, lam, pi)`` evaluates the Lagrangian dual function ``D(lam, pi)`` (a lower bound of the
snapshot optimum at ANY prices, by weak duality) with a certified inner minimum per pair; see
solvers/fast.py for the whole method and docs/solvers_fast.md for the argument.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wdtnopt.snapshot import Snapshot

from wdtnopt.formulations.coefficients import allowed_hosts

from .allocation import PairData, _phi_checked, _q, _rate, cpu_slope, energy_slope, log_share, storage_capacity

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
        M = s.n_bss
        prev = s.placement_prev
        allowed = allowed_hosts(s)
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
    smin = log_share(c, F)   # (by parts where c / F underflows)
    with np.errstate(divide="ignore"):
        ell = np.log(lam)  # -inf for lam = 0: the whole server's CPU is best
    phi_hi = _phi(smax, T, c, alpha, k, tmin)[0]
    phi_lo = _phi(smin, T, c, alpha, k, tmin)[0]
    sig = np.where(phi_hi <= ell, smax, smin)
    inside = (phi_hi > ell) & (phi_lo < ell) & (smax > smin)
    if inside.any():
        ii = np.flatnonzero(inside)
        lo, hi = smin[ii], smax[ii]
        Ti, ci, ai, ki, li, tmi = T[ii], c[ii], alpha[ii], k[ii], ell[ii], tmin[ii]
        n_bis = 8
        for _ in range(n_bis):
            mid = 0.5 * (lo + hi)
            v = _phi(mid, Ti, ci, ai, ki, tmi)[0]
            up = v > li
            hi = np.where(up, mid, hi)
            lo = np.where(up, lo, mid)
        x = hi
        for _ in range(iters - n_bis):
            v, d = _phi(x, Ti, ci, ai, ki, tmi)
            step = (v - li) / d
            x_new = np.maximum(x - np.maximum(step, 0.0), lo)
            done = np.abs(x_new - x) <= 1e-14 * np.maximum(1.0, np.abs(x))
            x = x_new
            if done.all():
                break
        sig[ii] = x
    f = np.clip(_rate(c, sig), fmin, F)   # (a compute time below 1e-308 s at data of 1e-300 bits: in logs)
    t = np.maximum(T - c / f, tmin)
    energy = pd.energy(n, t)
    achieved = energy + lam * f
    slope = lam - cpu_slope(energy_slope(t, alpha, k), c, f)   # (f near 1e300: the limit lam)
    # a slope of -1e210 over a server of 1e100 Hz (data of 1e-200 bits at its least CPU): the exact
    # tangent term is below -1e308 and overflows to -inf, its limit, which leaves a valid (if
    # useless) lower bound of h; D at those prices is then -inf, a valid bound the climb moves past
    with np.errstate(over="ignore"):
        certified = achieved - np.maximum(slope, 0.0) * (f - fmin) + np.minimum(slope, 0.0) * (F - f)
    return f, energy, achieved, certified


def _phi(sigma, T, c, alpha, k, tmin):
    """``log(-E'(T - s) s^2 / c)`` at ``s = exp(sigma)`` and its derivative in sigma (``t`` at least
    ``tmin``: see solvers/allocation.py ``_phi``)."""
    s = np.exp(sigma)
    t = np.maximum(T - s, tmin)
    u = alpha / t
    q = _q(u)
    with np.errstate(all="ignore"):   # data of 1e-300 bits: q underflows, der overflows; checked next
        val = np.log(k * q) + 2.0 * sigma - np.log(c)
        der = 2.0 + s * (np.exp(u) * u * u / t) / q
    return _phi_checked(val, der, q, sigma, t, u, k, c)   # (solvers/allocation.py)


def price(ld: LagrangianData, lam: np.ndarray, pi: np.ndarray, serve=None) -> Pricing:
    """Price every allowed pair at (lam, pi): the certified dual value and the best responses.
    ``serve(lam)``, if given, returns the serve option of every pair (achieved value, certified
    lower bound, CPU, energy; [N, M] each) in place of the pairs' own inner minima: the semantic
    levels' minimum over levels (solvers/levels.py, :class:`~wdtnopt.solvers.levels.LevelPricing`)."""
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
    if serve is not None:
        serve_ach, serve_lb, serve_cpu, serve_energy = serve(lam)
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
    lin = float(lam @ s.cpu_hz + pi @ storage_capacity(s))
    tot = float(theta_lb.sum())
    value = tot - lin - SAFETY_RTOL * (float(np.abs(theta_lb).sum()) + lin)
    return Pricing(lam=lam, pi=pi, value=value, host=host, served=served, cpu=cpu, const=pair_const[idx, host],
                   pair_value=pair_value, pair_cpu=pair_cpu, pair_const=pair_const, pair_served=use, theta_lb=theta_lb,
                   cpu_use=np.bincount(host, weights=cpu, minlength=M),
                   storage_use=np.bincount(host, weights=ld.size, minlength=M))
