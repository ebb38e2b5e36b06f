"""The convex hull of one server's (served set, energy) pairs: exact pricing and Fenchel cuts.

The snapshot problem of docs/model.md, section 5 couples the servers only through the placement
(one host per DT, storage); once the hosts are fixed, server ``m`` chooses its served set ``S`` and
pays ``E_m(S)``, the optimal energy of the convex allocation of ``S`` under its CPU (solvers/allocation.py;
``inf`` when the least CPUs of ``S`` exceed the server's). The exact oracle's master bounds
``sum_n eta[n, m]`` below by tangents of each pair's energy and by per-server price rows, which
together give at best the Lagrangian dual of the CPU constraint (docs/solvers.md, "Per-server price
rows"). The convex hull of ``{(1_S, E_m(S))}`` is a stronger relaxation (the Dantzig-Wolfe bound of
per-server columns): one server's choice of ``S`` under one CPU knapsack has no integrality property.

Its facets are the *Fenchel cuts* (also called Lagrangian cuts)

    sum_n eta[n, m] >= a + sum_n b_n y[n, m]     with   a <= min_S  E_m(S) - sum_{n in S} b_n,

valid for every served set ``S`` the server could serve, whatever ``b``: the cut's constant is the
*pricing* value :func:`price_server`, solved exactly (or replaced by a proven lower bound). A
served set is any subset of the candidates that fits the CPU (storage is ignored: a superset of the
sets the server can really serve, so the cut stays valid). Given a point ``y*`` (the master's LP
solution on server ``m``), :func:`separate_fenchel` finds the most violated cut by column generation
on

    min  sum_S z_S E_m(S)   s.t.  sum_S z_S 1_S >= y*,  sum_S z_S <= 1,  z >= 0

(the empty set costs 0; ``E_m`` is monotone in ``S``, so ``>=`` gives the hull's value), whose duals
``b >= 0`` and the pricing's minimum give the cut. Whatever the LP's accuracy, the cut is valid,
because its constant is the pricing's certified minimum less a margin for round-off
(:data:`PRICING_RTOL`).

Pricing is exact: ``E_m(S) - b.1_S = cost_b(S) - sum_n b_n`` with ``cost_b(S) = E_m(S) +
sum_{n not in S} b_n`` the server's admission cost when each candidate's failure penalty is ``b_n``,
which :func:`solvers.allocation.admit_server` minimizes by a proven branch-and-bound (its bound is the
allocation of the fixed set plus each free candidate alone on the CPU left, see that module).
Candidates with ``b_n <= 0`` are never served by a minimizer (``E_m`` is monotone), so they drop out.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from wdtnopt.formulations.coefficients import allowed_hosts

from .allocation import PairData, admit_server, allocate_server


def _checked_prices(name: str, values, n: int, read) -> np.ndarray:
    """``values`` as N floats (J); the entries ``read`` must not be NaN or +inf and their positive
    part must sum to a finite number (the pricing subtracts that sum), else a SolverError naming ``name``."""
    from . import SolverError

    w = np.asarray(values, dtype=float)
    if w.shape != (n,):
        raise SolverError(f"{name}: expected {n} numbers (J, one per MU), got shape {list(w.shape)}")
    r = w[read]
    if np.isnan(r).any() or (r == np.inf).any():
        raise SolverError(f"{name}: expected numbers (J) that are not NaN or +inf, got {float(r[np.isnan(r) | (r == np.inf)][0])!r}")
    with np.errstate(over="ignore"):
        total = float(np.maximum(r, 0.0).sum())
    if not math.isfinite(total):
        raise SolverError(f"{name}: the positive values sum past the largest float ({total!r}); "
                          f"expected values whose sum is finite (J)")
    return w

def _checked_indices(pd: PairData, m, candidates) -> np.ndarray:
    """``candidates`` as MU indices in [0, N) and ``m`` a server in [0, M), else a SolverError naming
    them (an index N raised an IndexError deep in the search, -1 silently meant the last MU)."""
    from . import SolverError

    n, n_servers = pd.servable.shape
    if isinstance(m, (bool, np.bool_)) or not isinstance(m, (int, np.integer)) or not 0 <= int(m) < n_servers:
        raise SolverError(f"m: expected a server index in [0, {n_servers - 1}], got {m!r}")
    raw = np.asarray(candidates)
    if raw.size and raw.dtype.kind not in "iu":
        raise SolverError(f"candidates: expected MU indices (integers), got {raw.ravel()[:3].tolist()!r} (first values)")
    cand = raw.astype(np.int64).ravel()
    bad = cand[(cand < 0) | (cand >= n)]
    if bad.size:
        raise SolverError(f"candidates: expected MU indices in [0, {n - 1}], got {int(bad[0])}")
    return cand


PRICING_RTOL = 1e-9
"""Relative margin (of ``E_m(S*) + sum_n b_n``, the magnitudes the pricing's difference is taken
from) by which a cut's constant is lowered below the pricing's value: it covers the KKT allocation's
CPU residual (relative 1e-13, solvers/allocation.py), the admission search's relative pruning
tolerance (1e-12) and the floating-point sums."""


@dataclass(frozen=True)
class Pricing:
    """Result of :func:`price_server` (J)."""

    value: float            # E_m(S) - sum_{n in S} b_n at the best set found (<= 0: the empty set costs 0)
    served: np.ndarray      # that set (MU indices, ascending)
    energy: float           # E_m(served)
    bound: float            # certified lower bound of min_S E_m(S) - b.1_S (round-off margin included)
    exact: bool             # False: the search stopped at its deadline (bound from its root node)
    nodes: int              # allocations the search computed


def price_server(pd: PairData, m: int, weights, candidates, *, deadline: float | None = None) -> Pricing:
    """The single-server pricing problem ``min_S E_m(S) - sum_{n in S} weights[n]``.

    Parameters
    ----------
    pd : PairData
        Per-(MU, server) data of the snapshot (solvers/allocation.py).
    m : int
        The server.
    weights : array_like of float, shape [N]
        The value ``b_n`` of serving MU n on m (J); only ``weights[candidates]`` is read.
    candidates : array_like of int
        The MUs ``S`` may contain (e.g. the requesting, servable ones); a candidate that cannot be
        served on m (:attr:`PairData.servable`) or whose weight is <= 0 is never in ``S``.
    deadline : float, optional
        ``time.perf_counter()`` value past which the search stops with its best set and the bound of
        its root node (``exact=False``).

    Returns
    -------
    Pricing
        The best set, its value and energy, and a certified lower ``bound`` of the minimum
        (``value`` less the margin :data:`PRICING_RTOL` when exact).

    Raises
    ------
    SolverError
        ``weights`` is not N numbers, a candidate's weight is NaN or +inf, or the candidates'
        positive weights sum past the largest float; a candidate is not an MU index in [0, N) or
        ``m`` not a server index in [0, M).

    Notes
    -----
    ``E_m(S) - b.1_S = cost_b(S) - sum_n b_n`` where ``cost_b`` is the admission cost with failure
    penalties ``b``; :func:`solvers.allocation.admit_server` minimizes it exactly (module docstring).
    """
    cand = _checked_indices(pd, m, candidates)
    w = _checked_prices("weights", weights, pd.penalty.size, cand)
    cand = cand[(w[cand] > 0) & pd.servable[cand, m]]
    if cand.size == 0:
        return Pricing(0.0, cand, 0.0, 0.0, True, 0)
    pen = np.zeros(pd.penalty.size)
    pen[cand] = w[cand]
    r = admit_server(dataclasses.replace(pd, penalty=pen), m, cand, deadline)
    total = float(pen[cand].sum())
    served = np.sort(np.asarray(r.alloc.mus, dtype=np.int64))
    energy = float(r.alloc.energy) if served.size else 0.0
    value = min(r.cost - total, 0.0)
    margin = PRICING_RTOL * (abs(r.cost) + total)
    bound = min((r.cost if r.exact else r.bound) - total, 0.0) - margin
    return Pricing(value, served, energy, bound, bool(r.exact), int(r.nodes))


@dataclass(frozen=True)
class FenchelCut:
    """A valid inequality ``sum_n eta[n, m] >= const + sum_i coef[i] y[mus[i], m]`` of server ``m`` (J)."""

    m: int
    mus: np.ndarray         # MU indices with a coefficient
    coef: np.ndarray        # b_n >= 0 (J per unit of y)
    const: float            # certified pricing lower bound (<= 0)
    hull_value: float       # the column-generation LP's value at the point (J): the hull's bound there
    point_value: float      # const + coef . y* (J): the cut's value at the separated point
    exact: bool             # False: column generation stopped before proving the LP optimal
    columns: int            # served sets generated
    pricings: int           # pricing problems solved
    nodes: int              # allocations computed by the pricings


def separate_fenchel(pd: PairData, m: int, y, candidates, *, columns: list | None = None,
                     max_rounds: int = 60, tol: float = 1e-9, deadline: float | None = None) -> FenchelCut | None:
    """The Fenchel cut of server ``m``'s convex hull at the point ``y`` (column generation).

    Parameters
    ----------
    pd : PairData
        Per-(MU, server) data of the snapshot.
    m : int
        The server.
    y : array_like of float, shape [N]
        The point ``y*[n] = y[n, m]`` in [0, 1] (e.g. the master's LP solution); only
        ``y[candidates]`` is read.
    candidates : array_like of int
        The MUs a served set of m may contain (requesting, servable on m; the MUs that need CPU,
        when the cut is added on the CPU pairs' ``eta`` only).
    columns : list of array, optional
        Served sets to start from (each a set of m's candidates, MU indices; sets that do not fit
        are skipped); the singletons of the support of ``y`` are always added. New sets are
        appended to it in place (a pool reused across rounds).
    max_rounds : int
        Most pricing rounds.
    tol : float
        Relative tolerance (of the LP's value) on the reduced cost below which the column
        generation stops: the cut is then the hull's facet at ``y`` up to it.
    deadline : float, optional
        ``time.perf_counter()`` value past which it stops (the cut stays valid).

    Returns
    -------
    FenchelCut or None
        None when ``y`` has no support on the candidates. The cut is valid for every served set of
        m whatever the LP's accuracy: its constant is the last pricing's certified lower bound.

    Raises
    ------
    SolverError
        ``y`` is not N numbers or is NaN or infinite at a candidate; a candidate is not an MU
        index in [0, N) or ``m`` not a server index in [0, M).

    Notes
    -----
    The restricted LP is ``min sum_S z_S E_m(S) + big sum_n s_n`` s.t. ``sum_S z_S 1_S[n] + s_n >=
    y_n`` (duals ``b_n >= 0``), ``sum_S z_S <= 1`` (dual ``a <= 0``); its dual is the cut's LP
    ``max a + b.y`` over the cuts valid for the generated columns; the pricing problem adds the set
    of most negative reduced cost ``E_m(S) - b.1_S - a`` until none is negative (Dantzig-Wolfe
    column generation, solved by HiGHS with the basis kept between rounds). The artificial columns
    ``s_n`` (cost ``big``, ten times the most any served set can cost) keep it feasible where
    ``y`` lies outside the hull (the master's relaxation allows some such points); they bound
    ``b_n <= big``.
    """
    import highspy

    from .highs import quiet_highs

    from . import SolverError

    cand = _checked_indices(pd, m, candidates)
    y_all = np.asarray(y, dtype=float)
    if y_all.shape != (pd.penalty.size,):
        raise SolverError(f"y: expected {pd.penalty.size} numbers (one per MU), got shape {list(y_all.shape)}")
    yv = y_all[cand]
    if not np.isfinite(yv).all():   # NaN was read as 0 (no cut, or a cut at another point)
        raise SolverError(f"y: expected finite numbers in [0, 1] at the candidates, got {float(yv[~np.isfinite(yv)][0])!r}")
    on = (yv > 1e-9) & pd.servable[cand, m]
    items, yv = cand[on], np.minimum(yv[on], 1.0)
    if items.size == 0:
        return None
    k = items.size
    pos = {int(n): i for i, n in enumerate(items.tolist())}
    pool = columns if columns is not None else []
    # each served MU gets at least its least CPU, so its energy is at most e_n(f_min): no served set
    # costs more than the sum of these
    e_max = pd.energy_at_cpu(items, m, pd.f_min[items, m])
    big = 10.0 * float(np.sum(e_max[np.isfinite(e_max)])) + 1e-300
    h = quiet_highs(1)
    h.setOptionValue("presolve", "off")
    inf = h.getInfinity()
    h.addVars(k, np.zeros(k), np.full(k, inf))
    h.changeColsCost(k, np.arange(k, dtype=np.int32), np.full(k, big))
    h.addRows(k, yv, np.full(k, inf), k, np.arange(k, dtype=np.int32), np.arange(k, dtype=np.int32), np.ones(k))
    h.addRow(-inf, 1.0, 0, np.empty(0, dtype=np.int32), np.empty(0))
    seen: set[tuple[int, ...]] = set()
    n_cols = 0

    def take(S) -> bool:
        nonlocal n_cols
        S = np.sort(np.asarray([n for n in np.asarray(S).tolist() if int(n) in pos], dtype=np.int64))
        key = tuple(S.tolist())
        if not key or key in seen:
            return False
        a = allocate_server(pd, m, S)
        if not (a.feasible and math.isfinite(a.energy)):
            return False
        seen.add(key)
        rows = np.array([pos[int(n)] for n in key] + [k], dtype=np.int32)
        h.addCol(float(a.energy), 0.0, inf, rows.size, rows, np.ones(rows.size))
        n_cols += 1
        return True

    for S in list(pool) + [np.array([n]) for n in items.tolist()]:
        take(S)
    last = None
    pricings = nodes = 0
    exact = False
    for _ in range(max_rounds):
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            break
        lp_value = float(h.getInfo().objective_function_value)
        duals = np.asarray(h.getSolution().row_dual)
        b = np.maximum(duals[:k], 0.0)
        a = min(float(duals[k]), 0.0)
        weights = np.zeros(pd.penalty.size)
        weights[items] = b
        pr = price_server(pd, m, weights, items, deadline=deadline)
        pricings += 1
        nodes += pr.nodes
        last = (b, pr, lp_value)
        if not pr.exact or pr.value >= a - tol * max(abs(lp_value), 1e-300):
            exact = pr.exact
            break
        if not take(pr.served):   # already a column: the LP is optimal up to round-off
            exact = True
            break
        pool.append(pr.served)
        if deadline is not None and time.perf_counter() > deadline:
            break
    if last is None:
        return None
    b, pr, lp_value = last
    keep = b > 0
    point = pr.bound + float(b @ yv)
    return FenchelCut(int(m), items[keep], b[keep], float(pr.bound), lp_value, point, exact, n_cols,
                      pricings, nodes)


@dataclass(frozen=True)
class HullBound:
    """Result of :func:`lagrangian_hull_bound` (J)."""

    bound: float              # certified lower bound of the snapshot's optimum
    served: list              # [M] the pricing's served set of each server (MU indices)
    supergradient: np.ndarray  # [N] d bound / d mu: [mu_n < p_n] - (servers serving n), 0 off the requests
    exact: bool               # every pricing solved to optimality


def lagrangian_hull_bound(pd: PairData, mu, *, deadline: float | None = None) -> HullBound:
    """A lower bound of the snapshot's optimum from per-server columns, at multipliers ``mu``.

    Relax storage, migration penalties (>= 0) and the link between hosting and serving (a DT may
    be served by any server it may be hosted on), and dualize "each request is served at most once
    or fails" with ``mu_n >= 0``:

        L(mu) = fixed + sum_n min(mu_n, p_n) + sum_m min_S (E_m(S) - sum_{n in S} mu_n),

    ``fixed`` the penalties of requests that cannot be served anywhere (migrating, unservable).
    Every ``mu`` gives a valid bound (weak duality); its maximum over ``mu`` is the Dantzig-Wolfe
    bound of this relaxation (per-server convex hulls), at least the CPU-price Lagrangian's.

    Parameters
    ----------
    pd : PairData
        Per-(MU, server) data of the snapshot.
    mu : array_like of float, shape [N]
        Multipliers (J), one per MU (only requests that can be served somewhere are read; negative
        values are taken as 0).
    deadline : float, optional
        ``time.perf_counter()`` value for the pricings (a stopped one contributes its certified bound).

    Returns
    -------
    HullBound
        The bound, each server's pricing set and a supergradient of ``L`` at ``mu``.

    Raises
    ------
    SolverError
        ``mu`` is not N numbers, a read multiplier is NaN or +inf, or the read positive
        multipliers sum past the largest float; a snapshot with a semantic compression menu.
    """
    s = pd.snapshot
    if s.level_ratio is not None:   # PairData prices level 0's data only: above the optimum of a menu
        from . import SolverError
        raise SolverError("snapshot: a semantic compression menu is not priced by this bound (it would read "
                          "level 0's data only and can exceed the optimum); use the snapshot at fixed "
                          "levels (solvers/levels.py, reduce_levels) or method 'exact'")
    req = s.request & ~s.migrating
    ok = pd.servable & allowed_hosts(s) & req[:, None]
    can = ok.any(axis=1)
    pen = s.failure_penalty.astype(float)
    w = np.where(can, np.maximum(_checked_prices("mu", mu, s.n_mus, can), 0.0), 0.0)
    bound = float(pen[s.request & ~can].sum()) + float(np.minimum(w, pen)[can].sum())
    grad = np.where(can & (w < pen), 1.0, 0.0)
    served, exact = [], True
    for m in range(s.n_bss):
        pr = price_server(pd, m, w, np.flatnonzero(ok[:, m]), deadline=deadline)
        bound += pr.bound
        exact &= pr.exact
        served.append(pr.served)
        grad[pr.served] -= 1.0
    return HullBound(bound, served, grad, exact)


def reference_hull_value(pd: PairData, m: int, y, candidates) -> float:
    """The hull's value at ``y`` by enumerating every served set of ``candidates`` (tests only):
    ``min sum_S z_S E_m(S)`` s.t. ``sum_S z_S 1_S >= y``, ``sum_S z_S <= 1``, ``z >= 0``."""
    from itertools import combinations

    from scipy.optimize import linprog

    from .allocation import reference_allocate_server

    cand = [int(n) for n in np.asarray(candidates).ravel()]
    yv = np.asarray(y, dtype=float)[cand]
    sets, costs = [], []
    for r in range(1, len(cand) + 1):
        for sub in combinations(range(len(cand)), r):
            e, _, _ = reference_allocate_server(pd, m, [cand[i] for i in sub])
            if math.isfinite(e):
                sets.append(sub)
                costs.append(e)
    A = np.zeros((len(cand) + 1, len(sets)))
    for j, sub in enumerate(sets):
        A[list(sub), j] = -1.0
    A[-1, :] = 1.0
    res = linprog(np.array(costs), A_ub=A, b_ub=np.concatenate((-yv, [1.0])), bounds=(0, None), method="highs")
    return float(res.fun) if res.status == 0 else math.inf
