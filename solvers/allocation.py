"""Fast allocation for a fixed placement: exact admission, CPU shares and transmission times.

Given where every DT is hosted, the snapshot problem of docs/model.md, section 5 splits into one
independent problem per server ``m``: choose which of the requesting DTs hosted on ``m`` to serve,
then share ``cpu_hz[m]`` among them and pick each transmission time.

Allocation for a fixed served set ``S`` (convex, one CPU price)
---------------------------------------------------------------
``E_n(t)`` is strictly decreasing, so at the optimum every served MU uses its whole time budget:
``t_n = T_n - c_n / f_n`` with ``T_n = deadline_n - relay_n``, ``c_n`` its cycles. Writing
``s_n = c_n / f_n`` for the compute time, the problem on one server is

    min  sum_n E_n(T_n - s_n)   s.t.  sum_n c_n / s_n <= F,   0 < s_n <= T_n - t_min_n.

Its KKT conditions give one CPU price ``lam >= 0``: ``-E_n'(T_n - s_n) s_n^2 / c_n = lam`` for a MU
whose power cap is slack, and ``s_n = T_n - t_min_n`` for a capped one. In ``sigma = log s`` the
left side is ``exp(phi_n(sigma))`` with ``phi_n`` convex and increasing (slope >= 2), so for a
given ``lam`` each ``s_n(lam)`` is found by a few Newton steps that never leave the bracket; the
price solves the monotone scalar equation ``sum_n c_n / s_n(lam) = F`` (safeguarded Newton in
``log lam``). Everything is vectorized over the MUs of a server. MUs with ``c_n = 0`` need no CPU
and send in ``T_n``.

Exact admission on one server
-----------------------------
``cost(S) = A(S) + sum_{n not in S} failure_penalty_n``, with ``A(S)`` the allocation above
(``inf`` when ``sum_n fmin_n > F``). It is minimized over all subsets by a depth-first
branch-and-bound (include before exclude). A node fixes ``I`` (served) and ``O`` (failed); for any
completion ``S = I + J``

    A(I + J) >= A(I) + sum_{j in J} e_j(F - sum_{i in I} fmin_i)

because the served MUs of ``I`` keep a feasible CPU split (``A(I)`` is their minimum) and each ``j``
gets at most the CPU left over after the minimum of ``I`` (``e_j(f)`` the energy of ``j`` alone
with CPU ``f``, decreasing in ``f``). Hence ``A(I) + P(O) + sum_{u undecided} min(p_u, e_u(F_left))``
is a lower bound of every leaf below the node, and pruning on it never discards an optimum. A MU
whose energy with the whole server ``e_n(F)`` is not below its penalty is never served (removing it
from any served set lowers the cost by at least ``e_n(F) - p_n >= 0``). The search visits at most
``2^k`` nodes for ``k`` candidates and in practice a handful (see ``tests/test_allocation.py``,
which checks it against exhaustive enumeration).

``reference_*`` functions are the slow, obvious versions (SciPy ``brentq`` on the same KKT
conditions and exhaustive enumeration of served sets) kept next to the fast path for the tests.
"""
from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import combinations
from typing import Callable

import numpy as np

from wdtnopt import physics
from wdtnopt.formulations.coefficients import energy_coefficients, server_up, storage_capacity_bits
from wdtnopt.snapshot import Snapshot

LN2 = physics.LN2


# -- storage: the one fit check of every method, with evaluate's tolerance -----------------------
def storage_load(s: Snapshot, placement) -> np.ndarray:
    """[M] DT bits stored on each server by ``placement`` (float, also for an empty placement)."""
    return np.bincount(np.asarray(placement, dtype=np.int64), weights=s.dt_size_bits,
                       minlength=s.n_bss).astype(float)


def storage_capacity(s: Snapshot) -> np.ndarray:
    """[M] the most bits ``evaluate`` accepts on each server: ``storage_bits (1 + FEAS_RTOL)``."""
    return storage_capacity_bits(s)


def fits_storage(s: Snapshot, placement) -> bool:
    """True when ``evaluate`` accepts the storage of ``placement`` (its relative tolerance ``FEAS_RTOL``)."""
    return bool((storage_load(s, placement) <= storage_capacity(s)).all())


def _sum_by(index: np.ndarray, weights: np.ndarray, m: int) -> np.ndarray:
    """``bincount`` that stays float for an empty index (numpy returns int64 zeros then)."""
    return np.bincount(index, weights=weights, minlength=m).astype(float)


# -- derivatives of the energy law (physics.energy_for_time), needed by the KKT conditions -------
def _q(u: np.ndarray, eu: np.ndarray | None = None) -> np.ndarray:
    """``u e^u - expm1(u)`` (= ``-E'(t) / k`` with ``u = alpha / t``), accurate for small u.

    ``eu`` may pass ``exp(u)`` when the caller has it already.
    """
    u = np.asarray(u, dtype=float)
    q = u * (np.exp(u) if eu is None else eu) - np.expm1(u)
    if u.size and u.min() < 1e-4:  # cancellation: use the series u^2/2 + u^3/3 + u^4/8
        q = np.where(u < 1e-4, u * u * (0.5 + u * (1.0 / 3.0 + u * 0.125)), q)
    return q


def _phi_robust(sigma, t, u, k, c) -> tuple[np.ndarray, np.ndarray]:
    """``log(k q(u) / c) + 2 sigma`` and its derivative in sigma (``_phi``'s), in a form that stays
    finite where the direct one does not.

    For data of 1e-300 bits ``u = alpha / t`` is about 1e-306 and ``q ~ u^2 / 2`` (:func:`_q`) is 0 in
    floating point (``log q = -inf``, ``u^2 / q = 0 / 0``), and at the power cap ``t = t_min`` (1e-306
    s) the derivative ``2 + s e^u u^2 / (t q)`` exceeds the largest float. Here ``log q`` and ``u^2 / q``
    come from the series ``q = u^2 (1/2 + u/3 + u^2/8)`` below ``u = 1e-4`` (``log q = 2 log u +
    log(1/2 + ...)``, finite for every ``u > 0``), the logarithm is taken term by term and the
    derivative's second term as ``exp(min(log(...), 709))`` (the largest float's logarithm: past it the
    Newton step is 0 either way). ``k, c, t > 0``.
    """
    small = u < 1e-4
    tail = 0.5 + u * (1.0 / 3.0 + u * 0.125)
    q = np.where(small, 1.0, _q(np.where(small, 1.0, u)))     # normal where u >= 1e-4
    log_q = np.where(small, 2.0 * np.log(np.where(small, u, 1.0)) + np.log(tail), np.log(q))
    u2_q = np.where(small, 1.0 / tail, u * u / q)
    val = np.log(k) + log_q - np.log(c) + 2.0 * sigma
    der = 2.0 + np.exp(np.minimum(sigma + u + np.log(u2_q) - np.log(t), 709.0))
    return val, der


def _phi_checked(val, der, q, sigma, t, u, k, c) -> tuple[np.ndarray, np.ndarray]:
    """``_phi``'s direct ``(val, der)`` where they are finite and ``q`` a normal number (bit for bit),
    :func:`_phi_robust`'s elsewhere."""
    bad = ~(np.isfinite(val) & np.isfinite(der) & (q >= np.finfo(float).tiny))
    if not bad.any():
        return val, der
    i = np.flatnonzero(bad)
    pick = (lambda a: a[i] if np.ndim(a) else a)
    rv, rd = _phi_robust(pick(sigma), pick(t), pick(u), pick(k), pick(c))
    val, der = np.array(val, dtype=float), np.array(der, dtype=float)
    val[i], der[i] = rv, rd
    return val, der


def energy_slope(t, alpha, k):
    """``-dE/dt`` of ``E(t) = k t (exp(alpha / t) - 1)`` (>= 0); ``alpha = D ln2 / B``, ``k = N0 B / g``."""
    return k * _q(alpha / np.asarray(t, dtype=float))


def cpu_slope(es, c, f, g=None) -> np.ndarray:
    """``es c / f^2``: the rate ``-dE/df`` of a DT's energy in its CPU ``f`` (``es = -dE/dt`` J/s,
    ``c`` cycles; ``t = T - c / f``), bit for bit ``es * c / (f * f)`` where ``f^2`` is a normal float.
    With ``g``: ``es c / (f g)``, the rate in a variable ``g`` with ``f = F g`` (``g`` the CPU share of
    a server of ``F`` cycles/s: ``-dE/dg = es c / (F g^2)``).

    Where ``f g`` underflows (``f`` below 1.5e-154 cycles/s: data of 1e-300 bits) it is
    ``es (c / f) / g`` (``c / f`` is the compute time); where it overflows (``f`` near 1e300) the
    quotient is its limit 0; a quotient past the largest float is ``inf`` (its limit).
    """
    es, c, f = np.broadcast_arrays(np.asarray(es, dtype=float), np.asarray(c, dtype=float),
                                   np.asarray(f, dtype=float))
    g = f if g is None else np.broadcast_to(np.asarray(g, dtype=float), f.shape)
    with np.errstate(over="ignore"):   # f^2 = inf at f near 1e300; a quotient past the largest float
        ff = f * g
        small = ff < np.finfo(float).tiny
        out = es * c / np.where(small, 1.0, ff)
        if small.any():
            fs, gs = np.where(small, f, 1.0), np.where(small, g, 1.0)
            out = np.where(small, es * (np.where(small, c, 0.0) / fs) / gs, out)
    return out


def energy_curvature(t, alpha, k):
    """``d^2E/dt^2 = k e^u u^2 / t`` with ``u = alpha / t`` (> 0: E is convex)."""
    t = np.asarray(t, dtype=float)
    u = alpha / t
    return k * np.exp(u) * u * u / t


# -- per-MU data of a snapshot, in the form the allocation needs ---------------------------------
@dataclass(frozen=True)
class PairData:
    """Derived [N] / [N, M] arrays shared by the allocation and the exact oracle."""

    budget: np.ndarray      # [N, M] T = deadline - relay: time for transmission + DT update (s)
    t_min: np.ndarray       # [N] shortest transmission time under the power cap (s)
    cycles: np.ndarray      # [N] cycles of one DT update
    alpha: np.ndarray       # [N] D ln2 / B
    k: np.ndarray           # [N] N0 B / g (W)
    f_min: np.ndarray       # [N, M] least CPU that meets the deadline at t_min (inf if impossible)
    servable: np.ndarray    # [N, M] requesting, not migrating, and able to meet its deadline on m
    cpu_hz: np.ndarray      # [M]
    penalty: np.ndarray     # [N] failure penalty
    snapshot: Snapshot

    @classmethod
    def of(cls, s: Snapshot) -> "PairData":
        budget = s.deadline[:, None] - s.relay
        t_min = s.t_min
        cycles = s.cycles
        slack = budget - t_min[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            f_min = np.where(cycles[:, None] > 0,
                             np.where(slack > 0, cycles[:, None] / np.where(slack > 0, slack, 1.0), np.inf),
                             np.where(slack >= 0, 0.0, np.inf))
        servable = (s.request & ~s.migrating)[:, None] & np.isfinite(f_min) & (f_min <= s.cpu_hz[None, :])
        servable &= np.isfinite(t_min)[:, None] & server_up(s)[None, :]  # a down server serves no DT
        alpha, k = energy_coefficients(s)
        for a in (budget, f_min, servable, alpha, k):
            a.setflags(write=False)
        return cls(budget, t_min, cycles, alpha, k, f_min, servable, s.cpu_hz, s.failure_penalty, s)

    def energy(self, n, t) -> np.ndarray:
        """Energy of MUs ``n`` sending in ``t`` (physics.energy_for_time)."""
        s = self.snapshot
        return physics.energy_for_time(t, s.data_bits[n], s.bandwidth[n], s.noise_psd[n], s.serving_gain[n])

    def energy_at_cpu(self, n, m: int, f) -> np.ndarray:
        """``e_n(f)``: energy of MU n served alone on server m with CPU f (inf below f_min)."""
        n = np.asarray(n)
        f = np.asarray(f, dtype=float)
        c = self.cycles[n]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):   # c / 1e-300 is inf: no time
            t = self.budget[n, m] - np.where(c > 0, c / np.where(f > 0, f, 1.0), 0.0)
            ok = (f >= self.f_min[n, m] * (1 - 1e-12)) & ((f > 0) | (c == 0))
            t = np.maximum(t, self.t_min[n])
            return np.where(ok, self.energy(n, np.where(ok, t, 1.0)), np.inf)


# -- allocation of one server for a fixed served set ---------------------------------------------
@dataclass
class ServerAllocation:
    """Optimal allocation of one server for a fixed served set (arrays aligned with ``mus``)."""

    mus: np.ndarray         # MU indices served
    tx_time: np.ndarray     # s
    cpu_hz: np.ndarray      # cycles/s
    energy: float           # J, sum over mus
    price: float            # CPU price lam (J per cycle/s); 0 if the CPU is not binding
    feasible: bool = True


_INFEASIBLE = ServerAllocation(np.empty(0, dtype=np.int64), np.empty(0), np.empty(0), math.inf, math.inf, False)


def trivial_allocation(pd: PairData, m: int, mus: np.ndarray) -> ServerAllocation | None:
    """The allocation of server m when no solve is needed: nobody served (cost 0), or a set that
    cannot be served (an unservable MU, or least CPUs above the server's); None otherwise.
    Every subproblem oracle starts with it."""
    if mus.size == 0:
        return ServerAllocation(mus, np.empty(0), np.empty(0), 0.0, 0.0)
    if not pd.servable[mus, m].all() or pd.f_min[mus, m].sum() > float(pd.cpu_hz[m]) * (1 + 1e-12):
        return _INFEASIBLE
    return None


_MEMO = threading.local()


@contextmanager
def remembered_allocations(pd: PairData):
    """Within the block (in this thread), :func:`allocate_server` on ``pd`` returns the allocation it
    computed before for the same server and the same MUs in the same order (the same object, its
    arrays read-only) instead of solving again: one solve's local searches and admissions ask for
    the same sets many times. The results are those of a fresh call, bit for bit."""
    saved = getattr(_MEMO, "state", None)
    _MEMO.state = (pd, {})
    try:
        yield
    finally:
        _MEMO.state = saved


def allocate_server(pd: PairData, m: int, mus, *, rtol: float = 1e-13) -> ServerAllocation:
    """Optimal CPU shares and transmission times on server ``m`` for the served MUs ``mus``
    (remembered within :func:`remembered_allocations`)."""
    mus = np.asarray(mus, dtype=np.int64)
    state = getattr(_MEMO, "state", None)
    if state is None or state[0] is not pd or rtol != 1e-13:
        return _allocate_server(pd, m, mus, rtol)
    key = (int(m), mus.tobytes())
    a = state[1].get(key)
    if a is None:
        a = _allocate_server(pd, m, mus.copy(), rtol)   # (its mus is kept: not the caller's array)
        for v in (a.mus, a.tx_time, a.cpu_hz):
            v.setflags(write=False)
        state[1][key] = a
    return a


def _allocate_server(pd: PairData, m: int, mus: np.ndarray, rtol: float) -> ServerAllocation:
    done = trivial_allocation(pd, m, mus)
    if done is not None:
        return done
    F = float(pd.cpu_hz[m])
    T = pd.budget[mus, m]
    tmin = pd.t_min[mus]
    c = pd.cycles[mus]
    t = T.copy()
    f = np.zeros(mus.size)
    price = 0.0
    busy = c > 0
    if busy.any():
        ib = np.flatnonzero(busy)
        if ib.size == 1:
            i = ib[0]
            f[i] = F
            t[i] = max(T[i] - c[i] / F, tmin[i])
            f2 = F**2 if F < 1e154 else np.inf  # a Python float's F**2 raises OverflowError past 1.34e154
            price = float(energy_slope(t[i], pd.alpha[mus[i]], pd.k[mus[i]]) * c[i] / f2)
        else:
            tb, fb, prices = _price_solve_groups(T[ib], tmin[ib], c[ib], pd.alpha[mus[ib]], pd.k[mus[ib]],
                                                 np.zeros(ib.size, dtype=np.int64), np.array([F]), rtol)
            t[ib] = tb
            f[ib] = fb
            price = float(prices[0])
    energy = float(pd.energy(mus, t).sum())
    return ServerAllocation(mus, t, f, energy, price)


_kkt_allocate_server = allocate_server


def _price_solve_groups(T, tmin, c, alpha, k, group, F, rtol=1e-13):
    """KKT solve of several servers at once (``group[i]`` the server slot of MU i, ``F[g]`` its CPU).

    Every MU has c > 0 and every group fits (sum of f_min <= F, checked by the caller). A joint
    (semi-smooth) Newton method on the unknowns ``sigma_i = log s_i`` and the log-prices ``ell_g``
    solves all groups in a few vectorized steps; its result is verified against the KKT conditions
    and any group that fails the check is re-solved by the nested, safeguarded :func:`_price_solve`.
    Returns ``(t, f, prices)``.
    """
    G = F.size
    slack = T - tmin
    sig_max = np.log(slack)
    phi_max, _ = _phi(sig_max, T, c, alpha, k, tmin)
    fmin = c / slack
    logF = np.log(F)
    all_capped = np.bincount(group, weights=fmin, minlength=G) >= F * (1 - rtol)
    csum = np.bincount(group, weights=c, minlength=G)
    sig = np.minimum(log_share(csum, F)[group], sig_max)
    v0, _ = _phi(sig, T, c, alpha, k, tmin)
    cnt = np.bincount(group, minlength=G)
    ell = np.bincount(group, weights=v0, minlength=G) / np.maximum(cnt, 1)
    ok = False
    for _ in range(60):
        capped = phi_max <= ell[group]
        sig = np.where(capped, sig_max, np.minimum(sig, sig_max))
        val, der = _phi(sig, T, c, alpha, k, tmin)
        f = _rate(c, sig)
        Gs = np.bincount(group, weights=f, minlength=G)
        cap_res = np.log(Gs) - logF
        free = ~capped
        r = np.where(free, ell[group] - val, 0.0)
        if (np.abs(cap_res) <= rtol).all() and (np.abs(r) <= 1e-11).all():
            ok = True
            break
        w = np.where(free, f / der, 0.0)
        W = np.bincount(group, weights=w, minlength=G)
        rhs = Gs * cap_res - np.bincount(group, weights=w * r, minlength=G)
        with np.errstate(divide="ignore", invalid="ignore"):
            dell = np.where(W > 0, rhs / np.where(W > 0, W, 1.0), -1.0)  # no free MU: lower the price
        dell = np.minimum(np.maximum(dell, -4.0), 4.0)
        dsig = np.where(free, (r + dell[group]) / der, 0.0)
        dsig = np.minimum(np.maximum(dsig, -2.0), 2.0)
        sig = np.minimum(sig + dsig, sig_max)
        ell = ell + dell
    t = T - np.exp(sig)
    f = _rate(c, sig)
    prices = np.exp(ell)
    redo = all_capped.copy()
    if not ok:
        redo[:] = True
    for g in np.flatnonzero(redo):
        idx = np.flatnonzero(group == g)
        if all_capped[g]:
            t[idx], f[idx], prices[g] = tmin[idx], fmin[idx], float(np.exp(phi_max[idx].max()))
            continue
        t[idx], f[idx], prices[g] = _price_solve(T[idx], tmin[idx], c[idx], alpha[idx], k[idx], float(F[g]), rtol)
    if ok:  # exact feasibility as in _price_solve: capped MUs at t_min, the others absorb round-off
        capped = (phi_max <= ell[group]) & ~all_capped[group]
        f = np.where(capped, fmin, f)
        t = np.where(capped, tmin, t)
        for g in np.flatnonzero(~all_capped):
            idx = np.flatnonzero(group == g)
            fr = idx[~capped[idx]]
            excess = float(f[idx].sum()) - float(F[g])
            if excess > 0 and fr.size:
                f[fr] *= (float(F[g]) - float(f[idx[capped[idx]]].sum())) / float(f[fr].sum())
                f[fr] = np.nextafter(f[fr], 0)
                t[fr] = T[fr] - c[fr] / f[fr]
        t = np.maximum(t, tmin)
    return t, f, prices


def _rate(c: np.ndarray, sig: np.ndarray) -> np.ndarray:
    """``c exp(-sig)`` (cycles/s: ``c`` cycles over the compute time ``exp(sig)`` s), as that product
    where ``exp(-sig)`` is finite, and as ``exp(log c - sig)`` where it overflows (data of 1e-300
    bits: ``sig`` near -710 with ``c`` of 1e-297 cycles), so that a finite rate never passes through inf."""
    sig = np.asarray(sig, dtype=float)
    with np.errstate(over="ignore"):   # exp(-sig) past the largest float: taken in logs below
        inv = np.exp(-sig)
    fin = np.isfinite(inv)
    if fin.all():
        return c * inv
    c = np.broadcast_to(np.asarray(c, dtype=float), sig.shape)
    out = np.empty(sig.shape)
    out[fin] = c[fin] * inv[fin]
    with np.errstate(divide="ignore"):   # log(0) = -inf for an MU without cycles: rate 0
        out[~fin] = np.exp(np.log(c[~fin]) - sig[~fin])
    return out


def log_share(c, F):
    """``log(c / F)`` elementwise (the log of a CPU share, cycles over Hz), by parts (``log c - log F``)
    where the quotient leaves the float range (1e-129 cycles on a 1e198 Hz server underflows to 0);
    ``-inf`` where ``c = 0``. Equal to ``np.log(c / F)`` wherever that is finite."""
    with np.errstate(divide="ignore"):
        out = np.log(c / F)
        return np.where(np.isfinite(out) | (c <= 0), out, np.log(np.where(c > 0, c, 1.0)) - np.log(F))


def _phi(sigma, T, c, alpha, k, tmin):
    """``log(-E'(T - s) s^2 / c)`` at ``s = exp(sigma)`` and its derivative in sigma.

    ``t = T - s`` is at least ``tmin`` for ``sigma <= log(T - tmin)``; with data so small that
    ``tmin`` is below ``T``'s rounding unit (1e-12 bits: ``tmin`` ~ 1e-19 s) the difference rounds
    to 0 at that end, so it is taken as at least ``tmin`` (else ``alpha / 0``).
    """
    s = np.exp(sigma)
    t = np.maximum(T - s, tmin)
    u = alpha / t
    eu = np.exp(u)
    q = _q(u, eu)
    with np.errstate(all="ignore"):   # data of 1e-300 bits: q underflows, der overflows; checked next
        val = np.log(k * q / c) + 2.0 * sigma
        der = 2.0 + s * (eu * u * u / t) / q
    return _phi_checked(val, der, q, sigma, t, u, k, c)


def _sigma_of_price(ell, sig0, sig_max, phi_max, T, c, alpha, k, tmin, iters=60):
    """Per-MU compute time ``log s_n`` at log-price ``ell`` (Newton on convex increasing phi)."""
    capped = phi_max <= ell
    sig = np.where(capped, sig_max, np.minimum(sig0, sig_max))
    free = ~capped
    if not free.any():
        return sig, capped, np.zeros_like(sig)
    idx = np.flatnonzero(free)
    x = sig[idx]
    Ti, ci, ai, ki, tmi, xmax = T[idx], c[idx], alpha[idx], k[idx], tmin[idx], sig_max[idx]
    for _ in range(iters):
        val, der = _phi(x, Ti, ci, ai, ki, tmi)
        step = (val - ell) / der
        x_new = np.minimum(x - step, xmax)
        if np.all(np.abs(x_new - x) <= 1e-15 * np.maximum(1.0, np.abs(x))):
            x = x_new
            break
        x = x_new
    _, der = _phi(x, Ti, ci, ai, ki, tmi)
    sig[idx] = x
    dsig = np.zeros_like(sig)
    dsig[idx] = 1.0 / der
    return sig, capped, dsig


def _price_solve(T, tmin, c, alpha, k, F, rtol):
    """KKT solve on one server, every MU with c > 0; feasibility (sum fmin <= F) checked by caller."""
    slack = T - tmin
    sig_max = np.log(slack)
    phi_max, _ = _phi(sig_max, T, c, alpha, k, tmin)
    logF = math.log(F)
    # all capped (largest useful price): CPU use = sum fmin
    ell_hi = float(phi_max.max())
    g_hi = math.log(float((c / slack).sum())) - logF
    if g_hi >= -rtol:  # the power caps use up the CPU: every MU at t_min
        return tmin.copy(), c / slack, math.exp(ell_hi)
    # start: every MU finishes its update at the same time
    sig0 = np.minimum(np.full(c.size, math.log(float(c.sum()) / F)), sig_max)
    v0, _ = _phi(sig0, T, c, alpha, k, tmin)
    ell = float(min(np.mean(v0), ell_hi))
    ell_lo = -math.inf
    sig = sig0
    for _ in range(100):
        sig, capped, dsig = _sigma_of_price(ell, sig, sig_max, phi_max, T, c, alpha, k, tmin)
        fs = _rate(c, sig)
        G = float(fs.sum())
        gam = math.log(G) - logF
        if abs(gam) <= rtol:
            break
        if gam > 0:
            ell_lo = ell
        else:
            ell_hi = ell
        dgam = -float((fs * dsig).sum()) / G
        nxt = ell - gam / dgam if dgam < 0 else math.nan
        if not math.isfinite(ell_lo) and nxt < ell - 4.0:
            # a long step down with no lower bracket (the free MUs' CPU is a vanishing share, so
            # dgam ~ 0: 1e-185 cycles beside a capped MU stepped to -1e139 and ended in NaN): not
            # below the price at which some MU alone asks for the whole server (G >= F there)
            with np.errstate(divide="ignore"):
                alone = np.minimum(np.log(c) - logF, sig_max)
            nxt = max(nxt, float(_phi(alone, T, c, alpha, k, tmin)[0].min()))
        if not (ell_lo < nxt < ell_hi):
            nxt = 0.5 * (ell_lo + ell_hi) if math.isfinite(ell_lo) else ell - 4.0
        if abs(nxt - ell) <= 1e-15 * max(1.0, abs(ell)):
            break
        ell = nxt
    f = _rate(c, sig)
    t = T - np.exp(sig)
    # exact feasibility: capped MUs sit at t_min; the others absorb the last round-off of the CPU sum
    f[capped] = (c / slack)[capped]
    t[capped] = tmin[capped]
    excess = float(f.sum()) - F
    if excess > 0 and (~capped).any():
        free = ~capped
        f[free] *= (F - float(f[capped].sum())) / float(f[free].sum())
        f[free] = np.nextafter(f[free], 0)
        t[free] = T[free] - c[free] / f[free]
    t = np.maximum(t, tmin)
    return t, f, math.exp(ell)


# -- exact admission on one server ---------------------------------------------------------------
@dataclass
class ServerResult:
    """Best admission and allocation of one server: the served MUs and the server's cost."""

    alloc: ServerAllocation
    cost: float             # energy of the served + failure penalties of the candidates not served
    nodes: int = 0          # branch-and-bound nodes (allocations computed)
    exact: bool = True      # False: stopped at the deadline; ``alloc`` is feasible, not proven optimal
    bound: float = math.nan  # certified lower bound of the server's optimum (= cost when exact)

    def __post_init__(self) -> None:
        if math.isnan(self.bound):
            self.bound = self.cost


def worth_serving(pd: PairData, m: int, candidates) -> tuple[np.ndarray, np.ndarray, float]:
    """The candidates of server m that can be worth serving, their energy with the whole CPU, and
    the penalties of the others (unservable on m, or dearer to serve alone than to fail)."""
    cand = np.asarray(candidates, dtype=np.int64)
    pen = pd.penalty
    serv = pd.servable[cand, m]
    base = float(pen[cand[~serv]].sum())
    cand = cand[serv]
    alone = pd.energy_at_cpu(cand, m, np.full(cand.size, float(pd.cpu_hz[m])))
    keep = alone < pen[cand]
    base += float(pen[cand[~keep]].sum())
    return cand[keep], alone[keep], base


def admit_server(pd: PairData, m: int, candidates, deadline: float | None = None, *,
                 oracle: Callable[..., ServerAllocation] | None = None) -> ServerResult:
    """Exact admission + allocation on server m among ``candidates`` (requesting DTs hosted on m).

    Candidates that cannot be served on m simply pay their penalty. See the module docstring for
    why the branch-and-bound is exact. Past ``deadline`` (a ``time.perf_counter()`` value) the search
    stops at the best served set found so far (``exact=False``), with the root node's bound (each
    candidate alone with the whole CPU, or failing) as its certified lower bound. ``oracle``
    replaces :func:`allocate_server` for the allocation of each served set (e.g. the CVXPY oracle
    of solvers/cvxpy_oracle.py).
    """
    allocate_server = oracle or _kkt_allocate_server
    pen = pd.penalty
    F = float(pd.cpu_hz[m])
    cand, alone, base = worth_serving(pd, m, candidates)
    if cand.size == 0:
        return ServerResult(allocate_server(pd, m, cand), base)
    # most valuable first: largest saving per unit of minimum CPU
    fmin = pd.f_min[cand, m]
    with np.errstate(over="ignore"):  # a 1e12 penalty over a tiny least CPU is +inf: first, as it should be
        order = np.argsort(-(pen[cand] - alone) / np.maximum(fmin, 1e-300 * F + 1e-300), kind="stable")
    cand, fmin = cand[order], fmin[order]
    p = pen[cand]
    nc = cand.size

    # quick exit: serving everyone is feasible and each MU's marginal energy is below its penalty
    best_cost = math.inf
    best: ServerAllocation | None = None
    nodes = 0
    inc: list[int] = []

    def rest_bound(start: int, f_left: float) -> float:
        if start >= nc:
            return 0.0
        idx = np.arange(start, nc)
        e = pd.energy_at_cpu(cand[idx], m, np.full(idx.size, max(f_left, 0.0)))
        return float(np.minimum(p[idx], e).sum())

    stopped = False

    def dfs(pos: int, fmin_used: float, pen_out: float, a_inc: ServerAllocation) -> None:
        nonlocal best_cost, best, nodes, stopped
        if best is not None and deadline is not None and (stopped or time.perf_counter() > deadline):
            stopped = True
            return
        f_left = F - fmin_used
        if a_inc.energy + pen_out + rest_bound(pos, f_left) >= best_cost * (1 - 1e-12):
            return
        if pos == nc:
            best_cost = a_inc.energy + pen_out
            best = a_inc
            return
        # include cand[pos]
        if fmin[pos] <= f_left * (1 + 1e-12):
            inc.append(pos)
            nodes += 1
            a_new = allocate_server(pd, m, cand[inc])
            if a_new.feasible:
                dfs(pos + 1, fmin_used + fmin[pos], pen_out, a_new)
            inc.pop()
        # exclude cand[pos]
        dfs(pos + 1, fmin_used, pen_out + p[pos], a_inc)

    dfs(0, 0.0, 0.0, allocate_server(pd, m, cand[:0]))
    assert best is not None
    if stopped:
        return ServerResult(best, base + best_cost, nodes, exact=False, bound=base + rest_bound(0, F))
    return ServerResult(best, base + best_cost, nodes)


# -- fixed placement: the whole snapshot ---------------------------------------------------------
@dataclass
class Allocation:
    """A full decision for a fixed placement (arrays of length N) and its cost by parts."""

    placement: np.ndarray
    served: np.ndarray
    tx_time: np.ndarray
    cpu_hz: np.ndarray
    cost: float                 # energy + failure penalties + migration penalties
    server_cost: np.ndarray     # [M] energy + penalties of the requesting DTs hosted on each server
    exact: bool = True          # False: some server's admission stopped at the deadline
    bound: float = math.nan     # certified lower bound of the optimum for this placement (= cost when exact)
    level: np.ndarray | None = None  # [N] semantic levels (a snapshot with a menu: solvers/levels.py)

    def __post_init__(self) -> None:
        if math.isnan(self.bound):
            self.bound = self.cost


def allocate(snapshot: Snapshot, placement, served=None, *, pair_data: PairData | None = None,
             deadline: float | None = None, oracle: Callable[..., ServerAllocation] | None = None) -> Allocation:
    """Optimal admission (or the given ``served`` set) and allocation for a fixed ``placement``.

    The small-timescale problem of docs/model.md, section 5, solved server by server with one CPU price.
    Storage is not checked here (the placement is given); ``evaluate`` reports it.

    Parameters
    ----------
    snapshot : Snapshot
        The decision point (N MUs, M servers).
    placement : array_like of int, shape [N]
        Host server of every DT.
    served : array_like of bool, shape [N], optional
        A served set to allocate (restricted to requesting, available DTs); infeasible served sets
        on a server give ``cost = inf``. Default: the optimal admission.
    pair_data : PairData, optional
        Precomputed per-(MU, server) data of ``snapshot`` (reused across calls).
    deadline : float, optional
        Time budget (s) of the admission search; see :func:`admit_server` (the result is then
        feasible, with ``exact`` and a certified ``bound``). With a menu it bounds the level oracle
        (:func:`~wdtnopt.solvers.levels.allocate_levels`) the same way.
    oracle : callable, optional
        Replaces :func:`allocate_server` (same signature) for the allocation of each served set,
        e.g. solvers/cvxpy_oracle.py's ``CvxpyAllocator``; default the KKT allocation.

    Returns
    -------
    Allocation
        ``placement [N]``, ``served [N]``, ``tx_time [N]`` (s), ``cpu_hz [N]`` (cycles/s), ``cost``
        (J: energy + failure and migration penalties), ``server_cost [M]`` (J), ``exact`` (False if
        an admission stopped at ``deadline``) and a certified lower ``bound`` (J).
    """
    if snapshot.level_ratio is not None and served is None:  # a semantic menu: the levels too
        from .levels import allocate_levels
        return allocate_levels(snapshot, placement, deadline=deadline)
    s = snapshot
    pd = pair_data or PairData.of(s)
    placement = np.asarray(placement, dtype=np.int64)
    n, M = s.n_mus, s.n_bss
    out_served = np.zeros(n, dtype=bool)
    tx = np.zeros(n)
    cpu = np.zeros(n)
    server_cost = np.zeros(M)
    req = s.request & ~s.migrating
    if served is not None:
        return _allocate_fixed(s, pd, placement, np.asarray(served, dtype=bool) & req)
    exact, server_bound = True, np.zeros(M)
    for m in range(M):
        here = np.flatnonzero(req & (placement == m))
        if served is None:
            r = admit_server(pd, m, here, deadline, oracle=oracle)
            a, cost = r.alloc, r.cost
            exact &= r.exact
            server_bound[m] = r.bound
        else:
            want = here[np.asarray(served, dtype=bool)[here]]
            a = allocate_server(pd, m, want)
            cost = a.energy + float(pd.penalty[np.setdiff1d(here, want)].sum())
        server_cost[m] = cost
        if a.feasible:
            out_served[a.mus] = True
            tx[a.mus] = a.tx_time
            cpu[a.mus] = a.cpu_hz
    fixed = float(s.failure_penalty[s.request & s.migrating].sum())
    moved = float(s.migration_penalty[placement != s.placement_prev].sum())
    return Allocation(placement, out_served, tx, cpu, float(server_cost.sum()) + fixed + moved, server_cost,
                      exact=exact, bound=float(server_bound.sum()) + fixed + moved)


def _allocate_fixed(s: Snapshot, pd: PairData, placement: np.ndarray, served: np.ndarray) -> Allocation:
    """Fixed placement and served set: every server's KKT system in one vectorized solve."""
    n, M = s.n_mus, s.n_bss
    tx = np.zeros(n)
    cpu = np.zeros(n)
    req = s.request & ~s.migrating
    mus = np.flatnonzero(served)
    host = placement[mus]
    feasible_m = np.ones(M, dtype=bool)
    ok_pair = pd.servable[mus, host]
    feasible_m[host[~ok_pair]] = False
    load_min = _sum_by(host[ok_pair], pd.f_min[mus[ok_pair], host[ok_pair]], M)
    feasible_m &= load_min <= s.cpu_hz * (1 + 1e-12)
    keep = feasible_m[host]
    mus, host = mus[keep], host[keep]
    T = pd.budget[mus, host]
    c = pd.cycles[mus]
    tx[mus] = T
    busy = c > 0
    if busy.any():
        ib = mus[busy]
        hb = host[busy]
        servers, group = np.unique(hb, return_inverse=True)
        tb, fb, _ = _price_solve_groups(T[busy], pd.t_min[ib], c[busy], pd.alpha[ib], pd.k[ib], group,
                                        s.cpu_hz[servers].astype(float))
        tx[ib] = tb
        cpu[ib] = fb
    out_served = np.zeros(n, dtype=bool)
    out_served[mus] = True
    energy = np.zeros(n)
    if mus.size:
        energy[mus] = pd.energy(mus, tx[mus])
    server_cost = _sum_by(host, energy[mus], M)
    failed = req & ~out_served
    server_cost += _sum_by(placement[failed], s.failure_penalty[failed], M)
    server_cost[~feasible_m] = math.inf
    fixed = float(s.failure_penalty[s.request & s.migrating].sum())
    moved = float(s.migration_penalty[placement != s.placement_prev].sum())
    return Allocation(placement, out_served, tx, cpu, float(server_cost.sum()) + fixed + moved, server_cost)


# -- slow, obvious references (tests only) -------------------------------------------------------
def reference_allocate_server(pd: PairData, m: int, mus) -> tuple[float, np.ndarray, np.ndarray]:
    """Bisection on the CPU price with SciPy ``brentq`` per MU on ``-E'(t) (T-t)^2 / c = lam``.

    Returns ``(energy, tx_time, cpu_hz)``; ``energy = inf`` if the set does not fit.
    """
    from scipy.optimize import brentq

    mus = [int(i) for i in mus]
    F = float(pd.cpu_hz[m])
    if not mus:
        return 0.0, np.empty(0), np.empty(0)
    if any(not pd.servable[i, m] for i in mus) or sum(pd.f_min[i, m] for i in mus) > F * (1 + 1e-12):
        return math.inf, np.empty(0), np.empty(0)

    def t_of(i: int, lam: float) -> float:
        T, tmin, c = pd.budget[i, m], pd.t_min[i], pd.cycles[i]
        h = lambda t: float(energy_slope(t, pd.alpha[i], pd.k[i])) * (T - t) ** 2 / c - lam
        if h(tmin) <= 0:
            return tmin
        return brentq(h, tmin, T, xtol=1e-15, rtol=1e-15, maxiter=500)

    def cpu_use(lam: float) -> float:
        return sum(pd.cycles[i] / (pd.budget[i, m] - t_of(i, lam)) for i in mus if pd.cycles[i] > 0)

    busy = [i for i in mus if pd.cycles[i] > 0]
    ts = {i: float(pd.budget[i, m]) for i in mus}
    fs = {i: 0.0 for i in mus}
    if busy:
        hi = max(float(energy_slope(pd.t_min[i], pd.alpha[i], pd.k[i])) * (pd.budget[i, m] - pd.t_min[i]) ** 2
                 / pd.cycles[i] for i in busy) * (1 + 1e-12)
        lo = hi
        while cpu_use(lo) <= F and lo > 1e-300:
            lo /= 16.0
        while hi / lo > 1 + 1e-14:
            mid = math.sqrt(lo * hi)
            if cpu_use(mid) > F:
                lo = mid
            else:
                hi = mid
        for i in busy:
            ts[i] = t_of(i, hi)
            fs[i] = pd.cycles[i] / (pd.budget[i, m] - ts[i])
    t = np.array([ts[i] for i in mus])
    f = np.array([fs[i] for i in mus])
    return float(pd.energy(np.array(mus), t).sum()), t, f


def reference_admit_server(pd: PairData, m: int, candidates) -> tuple[float, frozenset[int]]:
    """Every subset of the candidates, each allocated by :func:`reference_allocate_server`."""
    cand = [int(i) for i in candidates]
    best = (math.inf, frozenset())
    for r in range(len(cand) + 1):
        for sub in combinations(cand, r):
            e, _, _ = reference_allocate_server(pd, m, sub)
            cost = e + sum(float(pd.penalty[i]) for i in cand if i not in sub)
            if cost < best[0]:
                best = (cost, frozenset(sub))
    return best
