"""The bundle master of the ``fast`` method and its restricted-master MILP (both HiGHS, solvers/highs.py).

:class:`BundleMaster` keeps, for each MU, the options found by pricing and maximizes the resulting
piecewise-linear model of the dual function inside a trust box; :func:`restricted_master_placement`
picks one found option per MU under every server's CPU and storage. See solvers/fast.py.
"""
from __future__ import annotations

import numpy as np

from .allocation import PairData
from .fast_dual import LagrangianData, Pricing, inner_min
from .highs import MasterOutcome, quiet_highs, run_model

# -- the master LP: a piecewise-linear model of D from the options found so far -----------------
class BundleMaster:
    """``max sum_n theta_n - lam . cpu_hz - pi . storage`` s.t. ``theta_n <= option`` for known options.

    Variables are scaled: ``theta^ = theta / ref``, ``lam^ = lam Fs / ref``, ``pi^ = pi Ss / ref``
    (``Fs``, ``Ss`` the servers' CPU and storage, 1-ish where those are 0), so every coefficient is
    a share of a server and every right-hand side a cost in units of a typical failure penalty.
    """

    def __init__(self, ld: LagrangianData, ref: float):
        import highspy

        self.hs = highspy
        s = ld.pd.snapshot
        self.ld, self.ref = ld, ref
        N, M = s.n_mus, s.n_bss
        self.N, self.M = N, M
        self.Fs = np.where(s.cpu_hz > 0, s.cpu_hz, 1.0)
        self.Ss = np.where(s.storage_bits > 0, s.storage_bits, max(float(s.dt_size_bits.max()), 1.0))
        h = quiet_highs(1, heuristic_effort=0.0)
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
        with np.errstate(over="ignore"):   # a migration of 1e307 J over a ref of 1e-6 J: +inf, a free
            rhs = const / self.ref            # row, as HiGHS reads any bound past 1e20 (no warning)
        self.h.addRows(r, np.full(r, -self.hs.kHighsInf), rhs, idx.size, starts, idx, val)
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
        r = run_model(self.h, mip=False)
        if r.outcome is not MasterOutcome.OPTIMAL:
            return None
        x = r.x
        w = -np.asarray(self.h.getSolution().row_dual)
        lam = x[N:N + M] * self.ref / self.Fs
        pi = x[N + M:] * self.ref / self.Ss
        return lam, pi, -r.objective * self.ref, w, x[N:]

    def options(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every option (row) found so far: MU, host, CPU, cost without price terms, served."""
        return (np.concatenate(self.row_n), np.concatenate(self.row_m), np.concatenate(self.row_cpu),
                np.concatenate(self.row_const), np.concatenate(self.row_served))


    def add_priced(self, idx: np.ndarray, P) -> None:
        """Add each MU's best option at the pricing ``P`` and its second-best host's (often the one a
        fractional master mixes in), for the MUs ``idx``."""
        self.add_options(idx, P.host, P.cpu, P.const, P.served)
        pv = P.pair_value.copy()
        pv[idx, P.host] = np.inf
        h2 = np.argmin(pv, axis=1)
        fin = np.isfinite(pv[idx, h2])
        self.add_options(idx[fin], h2[fin], P.pair_cpu[idx, h2][fin], P.pair_const[idx, h2][fin],
                         P.pair_served[idx, h2][fin])


def bundle_step(center: np.ndarray, center_value: float, width: np.ndarray, x_hat: np.ndarray, model: float,
                value: float, ref: float, stats: dict) -> tuple[np.ndarray, float, np.ndarray, bool]:
    """One step of the box-constrained bundle ascent (docs/solvers_fast.md): a serious step moves the
    box to the master's point ``x_hat`` (and widens it where the point sits on the box), a null step
    far below the centre's value shrinks it.

    A null step may find a better value than the centre's (the caller keeps it as its best dual),
    possibly outside a later, shrunk box: the model there says nothing about it, so the step and the
    stopping test compare with the centre's value, never with the best value seen.

    Parameters
    ----------
    center, width : ndarray, shape (2M,)
        The box's centre and half-widths (scaled prices).
    center_value : float
        The dual value at the centre (J).
    x_hat : ndarray, shape (2M,)
        The master's maximizer in the box; ``model`` (J) its model value, ``value`` (J) the dual there.
    ref : float
        The cost scale (J) of the tolerances.
    stats : dict
        ``stats["serious_steps"]`` is counted.

    Returns
    -------
    center, center_value, width, converged
        The new box, and whether the model promises at most 1e-4 (relative) above the centre.
    """
    predicted, improved = model - center_value, value - center_value
    tol = 1e-9 * max(abs(center_value), ref)
    if improved >= 0.1 * predicted and improved > tol:
        at_box = np.isclose(x_hat, center + width) | (np.isclose(x_hat, center - width) & (center - width > 0))
        center, center_value = x_hat.copy(), value
        stats["serious_steps"] += 1
        width = np.where(at_box, width * 2.0, width)
    elif improved < -tol:
        width = np.maximum(width * 0.7, 1e-6)
    return center, center_value, width, bool(predicted <= 1e-4 * max(abs(center_value), ref))


def _grouped(index: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row starts, column order) [int32] of HiGHS's row-wise form for one row per entry of ``groups``
    (sorted) holding the columns whose ``index`` equals it."""
    order = np.argsort(index, kind="stable")
    return np.searchsorted(index[order], groups).astype(np.int32), order.astype(np.int32)


def near_options(ld: LagrangianData, master: BundleMaster, Pr: Pricing, slack: float):
    """The master's options within ``slack`` typical penalties of their MU's best value at the prices
    ``Pr``, plus each MU's fail-in-place option: (MU, host, CPU, cost without price terms, served)."""
    s = ld.pd.snapshot
    on, om, ocpu, oconst, oserved = master.options()
    value = oconst + Pr.lam[om] * ocpu + Pr.pi[om] * ld.size[on]
    best = Pr.pair_value.min(axis=1)
    keep = (value <= best[on] + slack * master.ref) | ((om == s.placement_prev[on]) & ~oserved)
    return on[keep], om[keep], ocpu[keep], oconst[keep], oserved[keep]


def reduced_cost_options(ld: LagrangianData, Pr: Pricing, threshold: float, failures: bool = False,
                         limit: int | None = None, exclude: np.ndarray | None = None):
    """Every option whose Lagrangian reduced cost at the prices of ``Pr`` is at most ``threshold`` (J).

    The option "n on m, served" has reduced cost ``mig + pi[m] size[n] + h_lb[n,m](lam[m]) - theta_lb[n]``
    and "n on m, failed" ``mig + pi[m] size[n] + fail[n] - theta_lb[n]`` (``h_lb`` the certified lower
    bound of the inner minimum, ``theta_lb`` that of the MU's term of ``D``). Any decision costs at
    least ``D(lam, pi)`` plus the sum of its MUs' reduced costs (each >= 0), so a decision cheaper
    than ``D + threshold`` uses only the options returned (docs/solvers_fast.md, section 2,
    "Options by reduced cost"). The tangent MILP needs no CPU per option (its CPU is a variable), so
    every such pair can be offered, not only those the bundle's pricing met.

    Parameters
    ----------
    ld : LagrangianData
        The snapshot's Lagrangian data.
    Pr : Pricing
        A pricing (its ``lam``, ``pi``, ``theta_lb``).
    threshold : float
        Largest reduced cost kept (J), usually the best decision's cost less ``Pr.value``.
    failures : bool
        Also the failure options (every allowed host of every MU, nearly: on loaded snapshots a
        DT's move costs little beside the threshold); by default the served pairs only, the
        failures being the bundle's and fail-in-place (four times fewer columns; measured
        BENCHMARKS.md, "fast on loaded 100 x 10 (seventh round)").
    limit : int, optional
        At most this many served pairs, those of least reduced cost (ties by MU, then host); every
        one when None. The claim above then holds only for decisions whose served pairs all rank
        among them: a capped set is a heuristic choice of options, not a filter.
    exclude : ndarray of int, optional
        Served pairs ``n M + m`` left out before the cap (those offered anyway, e.g. the bundle's).

    Returns
    -------
    (on, om, ocpu, oconst, oserved)
        MU, host, CPU at the prices (cycles/s; 0 for a failure), cost without price terms (J:
        migration plus energy at that CPU, or plus the failure penalty) and whether it serves; in
        the form of :meth:`BundleMaster.options`.
    """
    s = ld.pd.snapshot
    N, M = s.n_mus, s.n_bss
    lam, pi = Pr.lam, Pr.pi
    serve_lb = np.full((N, M), np.inf)
    serve_cpu = np.zeros((N, M))
    serve_energy = np.zeros((N, M))
    if ld.busy_n.size:
        f, e, _, lb = inner_min(ld.pd, ld.busy_n, ld.busy_m, lam[ld.busy_m])
        serve_lb[ld.busy_n, ld.busy_m] = lb
        serve_cpu[ld.busy_n, ld.busy_m] = f
        serve_energy[ld.busy_n, ld.busy_m] = e
    serve_lb[ld.idle_n, ld.idle_m] = ld.idle_energy
    serve_energy[ld.idle_n, ld.idle_m] = ld.idle_energy
    base = np.where(ld.allowed, ld.mig + pi[None, :] * ld.size[:, None], np.inf) - Pr.theta_lb[:, None]
    sn, sm = np.nonzero(ld.serve & (base + serve_lb <= threshold))
    if exclude is not None:
        new = ~np.isin(sn * M + sm, exclude)
        sn, sm = sn[new], sm[new]
    if limit is not None and sn.size > limit:   # the least reduced costs first (stable: ties by MU, host)
        keep = np.sort(np.argsort((base + serve_lb)[sn, sm], kind="stable")[:max(int(limit), 0)])
        sn, sm = sn[keep], sm[keep]
    fn, fm = np.nonzero(ld.allowed & (base + ld.fail[:, None] <= threshold) & failures)
    return (np.concatenate([sn, fn]), np.concatenate([sm, fm]), np.concatenate([serve_cpu[sn, sm], np.zeros(fn.size)]),
            np.concatenate([ld.mig[sn, sm] + serve_energy[sn, sm], ld.mig[fn, fm] + ld.fail[fn]]),
            np.concatenate([np.ones(sn.size, dtype=bool), np.zeros(fn.size, dtype=bool)]))


def _run_picks(h, time_limit: float, mip_gap: float, save: bool, decode=None, on_found=None) -> np.ndarray | None:
    """Run a restricted-master MILP at ``mip_gap`` within ``time_limit`` s (HiGHS keeps every improving
    solution when ``save``); its solution, or None when it has none.

    With ``on_found``, each improving solution HiGHS meets is handed to ``on_found(*decode(x))`` as it
    is found; HiGHS stops at its next interrupt check once that has returned True (the caller's gap is
    closed: a better MILP objective buys nothing more)."""
    h.setOptionValue("mip_rel_gap", float(mip_gap))
    if save:
        h.setOptionValue("mip_improving_solution_save", True)
    if on_found is not None:
        stop = [False]

        def improving(e) -> None:
            if not stop[0] and on_found(*decode(np.asarray(e.data_out.mip_solution, dtype=float))):
                stop[0] = True

        def interrupt(e) -> None:
            if stop[0]:
                e.interrupt()

        h.cbMipImprovingSolution.subscribe(improving)
        h.cbMipInterrupt.subscribe(interrupt)
    return run_model(h, time_limit=max(float(time_limit), 0.05)).x


def _picked(h, x: np.ndarray, decode, found: list | None):
    """``decode(x)``, HiGHS's solution of a restricted-master MILP; with ``found``, every improving
    solution HiGHS saved (:func:`_run_picks`) and then that one appended to it, decoded."""
    last = decode(x)
    if found is not None:
        found.extend(decode(sol.col_value) for sol in h.getSavedMipSolutions())
        found.append(last)
    return last


def restricted_master_placement(ld: LagrangianData, master: BundleMaster, time_limit: float, Pr: Pricing,
                                slack: float = 0.3, mip_gap: float = 1e-4, found: list | None = None,
                                on_found=None):
    """Pick one found option per MU by a MILP (HiGHS) under every server's CPU and storage.

    The options are the dual master's rows (Dantzig-Wolfe columns), restricted to those within
    ``slack`` typical penalties of their MU's best value at the prices ``Pr`` (price-and-branch)
    plus each MU's fail-in-place option, which keeps the MILP feasible whenever the current
    placement fits. Each option's CPU is what its MU asks at the prices where it was found, so any
    feasible pick is a placement with a feasible served set, which the per-server admission can
    only improve. Returns ``(placement, served)`` or None (no solution within ``time_limit``).

    ``mip_gap`` is HiGHS's relative MIP gap. The MILP's costs are those of fixed CPU shares, which the
    exact admission re-balances, so its optimum is not the best placement: on loaded snapshots an
    early incumbent often admits cheaper than the last one. With ``found`` (a list), every improving
    solution HiGHS met is appended to it as ``(placement, served)``, the last one included; with
    ``on_found``, each is handed over as HiGHS finds it (see :func:`tangent_master_placement`).
    """
    import highspy

    s = ld.pd.snapshot
    N, M = s.n_mus, s.n_bss
    on, om, ocpu, oconst, oserved = near_options(ld, master, Pr, slack)
    K = on.size
    h = quiet_highs(1, heuristic_effort=0.0)
    inf = highspy.kHighsInf
    cols = np.arange(K, dtype=np.int32)
    h.addVars(K, np.zeros(K), np.ones(K))
    h.changeColsCost(K, cols, oconst / master.ref)
    h.changeColsIntegrality(K, cols, np.full(K, highspy.HighsVarType.kInteger))
    starts, order = _grouped(on, np.arange(N))
    h.addRows(N, np.ones(N), np.ones(N), K, starts, order, np.ones(K))
    starts, order = _grouped(om, np.arange(M))
    h.addRows(M, np.full(M, -inf), s.cpu_hz / master.Fs, K, starts, order, ocpu[order] / master.Fs[om[order]])
    h.addRows(M, np.full(M, -inf), s.storage_bits / master.Ss, K, starts, order,
              ld.size[on[order]] / master.Ss[om[order]])

    def decode(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pick = np.asarray(x) > 0.5
        placement = s.placement_prev.copy()
        placement[on[pick]] = om[pick]
        served = np.zeros(N, dtype=bool)
        served[on[pick & oserved]] = True
        return placement, served

    x = _run_picks(h, time_limit, mip_gap, found is not None, decode, on_found)
    if x is None:
        return None
    return _picked(h, x, decode, found)


def storage_placement(ld: LagrangianData, time_limit: float) -> tuple[np.ndarray | None, bool]:
    """A placement that fits every server's storage, by a feasibility MILP (HiGHS), or a proof that
    none exists.

    Binary ``x[n, m]`` over the allowed hosts of the DTs that may move, one host each, and per server
    ``sum_n size_n x[n, m] <= capacity_m - pinned load_m`` (in units of the largest capacity or movable size).
    Used when fast's repair and master found no placement: the problem is then either infeasible
    (every method's status ``infeasible``) or a bin packing that the heuristics missed.

    Returns
    -------
    (placement [N] int or None, infeasible : bool)
        ``infeasible`` is True only when HiGHS proved the MILP infeasible; a placement is returned
        only when :func:`~solvers.allocation.fits_storage` accepts it (evaluate's tolerance).
    """
    import highspy

    from .allocation import fits_storage, storage_capacity

    s = ld.pd.snapshot
    M = s.n_bss
    cap = storage_capacity(s)
    fixed = s.pinned
    # sizes and rooms in units of the largest of them, so every coefficient is <= 1 (with every
    # capacity 0, units of the capacity would make the sizes overflow what HiGHS reads as finite)
    unit = max(float(cap.max()), float(ld.size[~fixed].max(initial=0.0)), 1e-300)
    room = (cap - np.bincount(s.placement_prev[fixed], weights=ld.size[fixed], minlength=M)) / unit
    on, om = np.nonzero(ld.allowed & ~fixed[:, None])
    movers = np.flatnonzero(~fixed)
    if np.setdiff1d(movers, on).size:   # a DT that may move has no allowed host
        return None, True
    K = on.size
    h = quiet_highs(1)
    h.addVars(K, np.zeros(K), np.ones(K))
    cols = np.arange(K, dtype=np.int32)
    h.changeColsIntegrality(K, cols, np.full(K, highspy.HighsVarType.kInteger))
    starts, order = _grouped(on, movers)
    h.addRows(movers.size, np.ones(movers.size), np.ones(movers.size), K, starts, order, np.ones(K))
    starts, order = _grouped(om, np.arange(M))
    h.addRows(M, np.full(M, -highspy.kHighsInf), room, K, starts, order, ld.size[on[order]] / unit)
    r = run_model(h, time_limit=max(float(time_limit), 0.05))
    if r.infeasible:
        return None, True
    if r.x is None:
        return None, False
    placement = s.placement_prev.copy()
    pick = r.x > 0.5
    placement[on[pick]] = om[pick]
    return (placement if fits_storage(s, placement) else None), False


def energy_tangents(pd: PairData, n: np.ndarray, m: np.ndarray, f: np.ndarray,
                    share: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``e_n(f) = E_n(T[n,m] - c_n / f)`` (J) and its slope ``de/df = E'(t) c_n / f^2`` (J per cycle/s),
    or with ``share`` (``f = cpu_hz[m] share``) its slope in the share ``de/dp = E'(t) c_n / (f p)``
    (J per unit share: exact's tangent cuts, solvers/exact.py ``_Master.e_and_slope_pairs``).

    ``e`` is convex in f (E convex decreasing, ``T - c/f`` concave), so ``e(f) + e'(f) (g - f) <= e(g)``
    for every g in ``[f_min, cpu_hz]``: the tangent cuts of :func:`tangent_master_placement`. MUs with
    no cycles have the constant ``E(T)`` (slope 0).

    Parameters
    ----------
    pd : PairData
        The snapshot's pair data.
    n, m : ndarray of int, shape (K,)
        MU and server of each pair.
    f : ndarray, shape (K,)
        CPU (cycles/s), at least ``f_min[n, m]``.
    share : ndarray, shape (K,), optional
        ``f / cpu_hz[m]``, as the caller has it (the slope is then per unit share).

    Returns
    -------
    e, slope : ndarray, shape (K,)
        ``e_n(f)`` (J, physics.energy_for_time at ``t = T - c/f``) and ``de/df`` (J per cycle/s, <= 0)
        or, with ``share``, ``de/dp`` (J, <= 0).
    """
    from .allocation import cpu_slope, energy_slope

    c = pd.cycles[n]
    busy = (c > 0) & (f > 0)
    fb = np.where(busy, f, 1.0)
    t = np.maximum(np.where(busy, pd.budget[n, m] - c / fb, pd.budget[n, m]), pd.t_min[n])
    e = pd.energy(n, t)
    g = None if share is None else np.where(busy, share, 1.0)
    return e, np.where(busy, -cpu_slope(energy_slope(t, pd.alpha[n], pd.k[n]), c, fb, g), 0.0)   # (f near 1e300: 0)


TANGENT_FIRST_STEP = 0.03
"""The tangent CPUs of :func:`tangent_cpus` start this share of the way from ``f_min`` to ``cpu_hz``."""


def tangent_cpus(f_min: np.ndarray, cpu_hz: np.ndarray, points: int, first_step: float = TANGENT_FIRST_STEP) -> np.ndarray:
    """Where the tangent MILP cuts each pair's energy ``e_n(f)``: ``points`` CPUs (cycles/s) per pair.

    ``f_min`` itself, then ``f_min + (cpu_hz - f_min) r_j`` with the ``points - 1`` steps ``r_j``
    geometric from ``first_step`` to 1 (``cpu_hz``). On a loaded server a served MU gets little more
    than its least CPU (1.03-1.7 ``f_min`` in the optima of loaded 100 x 10 snapshots), where
    ``e_n`` is steepest, so the cuts crowd there; a grid geometric in ``f`` itself left the MILP
    under-estimating those energies by up to 97% (docs/solvers_fast.md, section 2).

    Parameters
    ----------
    f_min, cpu_hz : ndarray, shape (P,)
        Each pair's least CPU (0 for MUs without cycles) and its server's CPU (cycles/s).
    points : int
        CPUs per pair (>= 2).
    first_step : float
        The first step's share of ``cpu_hz - f_min`` (in (0, 1]).

    Returns
    -------
    ndarray, shape (P, points)
        Increasing CPUs in ``[max(f_min, 1e-6 cpu_hz), cpu_hz]``.
    """
    lo = np.maximum(f_min, 1e-6 * cpu_hz)
    steps = first_step ** (1.0 - np.arange(points - 1) / max(points - 2, 1))
    return np.concatenate([lo[:, None], lo[:, None] + (cpu_hz - lo)[:, None] * steps[None, :]], axis=1)


def tangent_master_placement(ld: LagrangianData, master: BundleMaster, time_limit: float, Pr: Pricing,
                             slack: float = 0.3, mip_gap: float = 1e-4, found: list | None = None,
                             points: int = 6, heuristic_effort: float = 0.05, on_found=None, options=None,
                             start=None):
    """Pick one found host per MU by a MILP (HiGHS) in which each served pair's CPU is a variable.

    The same options as :func:`restricted_master_placement` (within ``slack`` typical penalties of
    their MU's best value at the prices ``Pr``, plus fail-in-place), but an option "n served on m"
    no longer carries the CPU it asked at the prices where it was found: the pair (n, m) gets a binary
    ``x``, a CPU ``f`` in ``[f_min x, cpu_hz[m] x]`` and an energy ``e`` above the tangents of the
    convex ``e_n(f) = E(T - c / f)`` at ``points`` CPUs crowded near ``f_min`` (:func:`tangent_cpus`)
    and at the CPUs of its found options (tangents in ``(x, f)``: ``e >= (e(f_j) - e'(f_j) f_j) x +
    e'(f_j) f``, the perspective cut, 0 at ``x = 0``), and every server's CPU is shared:
    ``sum f <= cpu_hz[m]``. Its objective thus models the admission's re-balancing of CPU
    (docs/solvers_fast.md, section 2) instead of fixing each MU's share; the picks' served sets are
    hints to the per-server admission, which prices them exactly.

    Parameters
    ----------
    ld : LagrangianData
        The snapshot's Lagrangian data.
    master : BundleMaster
        The bundle master; its rows are the options.
    time_limit : float
        HiGHS's wall-clock limit (s).
    Pr : Pricing
        The pricing at the best dual prices (filters the options).
    slack : float
        Options within this many typical failure penalties of their MU's best value are kept.
    mip_gap : float
        HiGHS's relative MIP gap.
    found : list, optional
        Every improving solution HiGHS met is appended as ``(placement, served)``, the last included.
    points : int
        Tangent CPUs per pair from :func:`tangent_cpus` (besides the found options' CPUs).
    on_found : callable, optional
        ``on_found(placement, served) -> bool`` is called with each improving solution as HiGHS finds
        it; HiGHS stops once it has returned True (the caller's gap is closed).
    heuristic_effort : float
        HiGHS's ``mip_heuristic_effort`` (its primal heuristics are on when > 0).
    options : tuple of ndarray, optional
        More options in the form of :meth:`BundleMaster.options` (:func:`reduced_cost_options`:
        every pair whose reduced cost at ``Pr`` leaves room below the best decision), kept beside the
        master's.
    start : (placement [N], served [N], cpu_hz [N]), optional
        A decision handed to HiGHS as its MIP start (its energies at ``cpu_hz``); ignored when one of
        its options is not in the MILP.

    Returns
    -------
    (placement [N] int, served [N] bool) or None
        None when HiGHS has no solution within ``time_limit``.
    """
    import highspy

    s = ld.pd.snapshot
    pd = ld.pd
    N, M = s.n_mus, s.n_bss
    on, om, ocpu, oconst, oserved = near_options(ld, master, Pr, slack)
    if options is not None:
        on, om, ocpu, oconst, oserved = (np.concatenate([a, b]) for a, b in
                                         zip((on, om, ocpu, oconst, oserved), options))
    fo, fm, fconst = on[~oserved], om[~oserved], oconst[~oserved]   # fail options: one binary each
    if options is not None:   # (one per MU and host)
        _, first = np.unique(fo * M + fm, return_index=True)
        first.sort()
        fo, fm, fconst = fo[first], fm[first], fconst[first]
    pair_key = np.unique(on[oserved] * M + om[oserved])
    pn, pm = pair_key // M, pair_key % M                             # served pairs: x, f, e each
    K, P = fo.size, pn.size
    ref = master.ref
    Fm = master.Fs[pm]
    fmin = np.where(pd.cycles[pn] > 0, pd.f_min[pn, pm], 0.0)
    # tangent points: a grid crowded near f_min and the CPUs the options asked
    grid = tangent_cpus(fmin, Fm, points)
    tn, tm, tf = [np.repeat(pn, points)], [np.repeat(np.arange(P), points)], [grid.ravel()]
    sv = oserved & (ocpu > 0)
    tn.append(on[sv])
    tm.append(np.searchsorted(pair_key, on[sv] * M + om[sv]))
    tf.append(ocpu[sv])
    tn, tp, tf = np.concatenate(tn), np.concatenate(tm), np.concatenate(tf)
    # no tangent below the grid's lower end max(f_min, 1e-6 cpu_hz): at data of 1e-300 bits f_min
    # is ~1e-297 Hz and the slope there (~-6e295 J/Hz) times cpu_hz / ref overflowed; a tangent at
    # any CPU is a valid cut
    tf = np.clip(tf, np.maximum(fmin[tp], 1e-6 * Fm[tp]), Fm[tp])
    e, de = energy_tangents(pd, tn, pm[tp], tf)
    ok = np.isfinite(e) & np.isfinite(de)
    tp, tf, e, de = tp[ok], tf[ok], e[ok], de[ok]
    T = tp.size
    # columns: y (K fail options), x (P), f^ = f / cpu_hz (P), e^ = e / ref (P)
    h = quiet_highs(1, heuristics=heuristic_effort > 0, heuristic_effort=heuristic_effort)
    inf = highspy.kHighsInf
    nv = K + 3 * P
    mig = ld.mig[pn, pm]
    cost = np.concatenate([fconst / ref, mig / ref, np.zeros(P), np.ones(P)])
    upper = np.concatenate([np.ones(K + P), np.ones(P), np.full(P, inf)])
    h.addVars(nv, np.zeros(nv), upper)
    h.changeColsCost(nv, np.arange(nv, dtype=np.int32), cost)
    h.changeColsIntegrality(K + P, np.arange(K + P, dtype=np.int32),
                            np.full(K + P, highspy.HighsVarType.kInteger))
    X, Fc, E = K, K + P, K + 2 * P

    def rows(lo_, hi_, idx: np.ndarray, val: np.ndarray, width: int) -> None:
        r = idx.size // width
        h.addRows(r, lo_, hi_, idx.size, np.arange(0, idx.size, width, dtype=np.int32),
                  idx.astype(np.int32), val)

    # one option per MU
    who = np.concatenate([fo, pn])
    col = np.concatenate([np.arange(K), X + np.arange(P)])
    starts, order = _grouped(who, np.arange(N))
    h.addRows(N, np.ones(N), np.ones(N), col.size, starts, col[order].astype(np.int32), np.ones(col.size))
    # CPU per server (f^ in units of its server's CPU) and storage per server
    starts, order = _grouped(pm, np.arange(M))
    h.addRows(M, np.full(M, -inf), np.ones(M), P, starts, (Fc + order).astype(np.int32), np.ones(P))
    host = np.concatenate([fm, pm])
    starts, order = _grouped(host, np.arange(M))
    h.addRows(M, np.full(M, -inf), s.storage_bits / master.Ss, col.size, starts, col[order].astype(np.int32),
              ld.size[who[order]] / master.Ss[host[order]])
    # f_min x <= f <= cpu_hz x (scaled: f^ - f_min/F x >= 0, x - f^ >= 0)
    ar = np.arange(P)
    rows(np.zeros(P), np.full(P, inf), np.stack([Fc + ar, X + ar], 1).ravel(),
         np.stack([np.ones(P), -fmin / Fm], 1).ravel(), 2)
    rows(np.zeros(P), np.full(P, inf), np.stack([X + ar, Fc + ar], 1).ravel(),
         np.stack([np.ones(P), -np.ones(P)], 1).ravel(), 2)
    # tangents: e^ - (e - de f_j)/ref x - de F / ref f^ >= 0
    rows(np.zeros(T), np.full(T, inf), np.stack([E + tp, X + tp, Fc + tp], 1).ravel(),
         np.stack([np.ones(T), -(e - de * tf) / ref, -de * Fm[tp] / ref], 1).ravel(), 3)

    def decode(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x)
        placement = s.placement_prev.copy()
        yf = x[:K] > 0.5
        placement[fo[yf]] = fm[yf]
        xs = x[X:X + P] > 0.5
        placement[pn[xs]] = pm[xs]
        served = np.zeros(N, dtype=bool)
        served[pn[xs]] = True
        return placement, served

    if start is not None:
        _set_start(h, start, fo * M + fm, pair_key, M, (X, Fc, E, nv), Fm, ref, (tp, tf, e, de))
    x = _run_picks(h, time_limit, mip_gap, found is not None, decode, on_found)
    if x is None:
        return None
    return _picked(h, x, decode, found)


def _set_start(h, start, fail_key: np.ndarray, pair_key: np.ndarray, M: int, cols: tuple, Fm: np.ndarray,
               ref: float, cuts: tuple) -> bool:
    """Hand a decision to the tangent MILP's HiGHS as its MIP start (False when one of its options is
    not a column): its fail options and served pairs at 1, each served pair's CPU share and energy
    (the largest of its tangents at that CPU, so that every cut holds)."""
    placement, served, cpu = (np.asarray(a) for a in start)
    X, Fc, E, nv = cols
    tp, tf, e, de = cuts
    key = np.arange(placement.size) * M + placement
    order = np.argsort(fail_key, kind="stable")   # (the fail options' keys, unsorted, one per MU and host)
    at = np.searchsorted(fail_key[order], key[~served])
    fi = order[np.minimum(at, order.size - 1)] if order.size else at
    pi = np.searchsorted(pair_key, key[served])
    for idx, keys, want in ((fi, fail_key, key[~served]), (pi, pair_key, key[served])):
        if want.size and (keys.size == 0 or (idx >= keys.size).any() or (keys[np.minimum(idx, keys.size - 1)] != want).any()):
            return False
    P = pair_key.size
    x = np.zeros(nv)
    x[fi] = 1.0
    x[X + pi] = 1.0
    share = np.zeros(P)
    share[pi] = cpu[served] / Fm[pi]
    x[Fc:Fc + P] = share
    level = np.zeros(P)
    np.maximum.at(level, tp, (e - de * tf) + de * share[tp] * Fm[tp])   # each tangent at the start's CPU (J)
    on = np.zeros(P, dtype=bool)
    on[pi] = True
    x[E:E + P] = np.where(on, level, 0.0) / ref
    import highspy

    sol = highspy.HighsSolution()
    sol.col_value = list(map(float, x))
    sol.value_valid = True
    try:
        h.setSolution(sol)
    except Exception:  # pragma: no cover - a start is only a hint
        return False
    return True
